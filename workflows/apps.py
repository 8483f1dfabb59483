from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowsConfig(AppConfig):
    """Workflows (issue 15): `workflow` definitions run as django-viewflow flows."""

    name = "workflows"
    verbose_name = _("Workflows")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit.actions import audit_action_registry
        from lowcode.cli import subcommand_registry
        from lowcode.site import site_part_registry
        from metadata.registries import definition_kind_registry
        from workflows import audit_actions, inbox, notifications, receivers
        from workflows.actions import BUILTIN_SERVICE_ACTIONS
        from workflows.assignment import BUILTIN_ASSIGNMENT_KINDS
        from workflows.commands import WorkflowCommand
        from workflows.definitions import WorkflowKind
        from workflows.registries import assignment_kind_registry, service_action_registry

        definition_kind_registry.register(WorkflowKind())
        for action in BUILTIN_SERVICE_ACTIONS:
            service_action_registry.register(action())
        for kind in BUILTIN_ASSIGNMENT_KINDS:
            assignment_kind_registry.register(kind())
        audit_action_registry.register_all(audit_actions.ACTIONS)
        subcommand_registry.register(WorkflowCommand())
        receivers.connect()
        notifications.connect()
        notifications.channel_registry.register(notifications.EmailChannel())
        site_part_registry.register(inbox.site_part())
