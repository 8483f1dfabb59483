from django.apps import AppConfig


class StaticExpenseConfig(AppConfig):
    """Static `Project` and `Expense` models with a hand-written DRF API, for benchmarks/api_overhead.py.

    Installed by `benchmarks.bench_settings` only, as a tenant app: its tables live in each tenant's schema.
    """

    name = "benchmarks.static_expense"
    label = "static_expense"
    verbose_name = "Static expense (benchmark)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit.actions import audit_action_registry
        from benchmarks.static_expense import audit_actions

        audit_action_registry.register_all(audit_actions.ACTIONS)
