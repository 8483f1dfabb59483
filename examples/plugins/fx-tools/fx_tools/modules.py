"""The data-factory module "Generate demo expenses" at /dmm/demo/expenses (the scenario's).

This file only declares the module (imported by the web process); its handler is
fx_tools/generate.py, which runs in the sandbox and imports nothing of the platform.
"""

from django.utils.translation import gettext_lazy as _

from datafactory.modules import DataFactoryModule


class GenerateExpenses(DataFactoryModule):
    type = "demo/expenses"
    group = _("Demo data")
    label = _("Generate demo expenses")
    help = _("Creates draft expenses submitted by the members of a department, spent between two dates.")
    handler = "fx_tools.generate:generate_expenses"
    requires = ("data.expense.add",)
    form = {
        "schema": {
            "type": "object",
            "properties": {
                "count": {"type": "integer", "minimum": 1, "maximum": 200},
                "department": {"type": "integer"},
                "spent_from": {"type": "string", "format": "date"},
                "spent_until": {"type": "string", "format": "date"},
            },
            "required": ["count", "department", "spent_from", "spent_until"],
        },
        "fields": {
            "intro": {"widget": "paragraph", "text": "Each expense gets a random title, amount, currency and category."},
            "count": {"widget": "number", "label": "How many", "default": 10, "help": "From 1 to 200."},
            "department": {"widget": "department", "label": "Department"},
            "spent_from": {"widget": "date", "label": "Spent from"},
            "spent_until": {"widget": "date", "label": "Spent until"},
        },
        "layout": {"steps": [{"key": "main", "label": "", "items": [
            {"field": "intro", "width": 12}, {"field": "count", "width": 4}, {"field": "department", "width": 8},
            {"field": "spent_from", "width": 6}, {"field": "spent_until", "width": 6}]}]},
        "checks": [{"expression": "spent_from <= spent_until", "field": "spent_until",
                    "message": "Must be on or after the first date."}],
    }
