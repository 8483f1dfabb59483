import datetime

import pytest
from django.db import connection

from dynamic_models import runtime
from dynamic_models.models import Entity, Field
from lowcode.apikeys import services as apikeys


def design(key: str, fields: list[dict], **entity) -> Entity:
    """Create an entity design the way a builder does in admin: an Entity with Field rows."""
    instance = Entity.objects.create(key=key, **entity)
    for position, spec in enumerate(fields):
        Field.objects.create(entity=instance, position=position, **spec)
    return instance


PROJECT_FIELDS = [
    {"key": "name", "type": "text", "required": True, "unique": True, "searchable": True, "options": {"max_length": 100}},
    {"key": "code", "type": "text", "options": {"max_length": 7, "regex": r"^[A-Z]{3}-\d{3}$"}},
    {"key": "budget", "type": "decimal", "options": {"max_digits": 12, "decimal_places": 2}},
    {"key": "active", "type": "boolean", "required": True, "default": True, "filterable": True},
]
EXPENSE_FIELDS = [
    {"key": "number", "type": "auto_number", "options": {"prefix": "EXP-", "digits": 4}},
    {"key": "title", "type": "text", "required": True, "searchable": True, "options": {"max_length": 120}},
    {"key": "amount", "type": "decimal", "required": True,
     "options": {"max_digits": 12, "decimal_places": 2, "min": 0, "exclusive_min": True}},
    {"key": "currency", "type": "choice", "required": True, "default": "CNY", "filterable": True,
     "options": {"choices": [{"value": "CNY"}, {"value": "USD"}, {"value": "EUR"}]}},
    {"key": "spent_on", "type": "date", "required": True, "options": {"not_in_future": True}},
    {"key": "category", "type": "choice", "filterable": True, "options": {"choices": [
        {"value": "travel"}, {"value": "meals"}, {"value": "equipment"}, {"value": "other"}]}},
    {"key": "project", "type": "relation", "options": {"target": "project", "on_delete": "protect"}},
    {"key": "iban", "type": "text", "options": {"max_length": 34}},
    {"key": "notes", "type": "long_text", "show_in_list": False},
    {"key": "status", "type": "choice", "required": True, "default": "draft", "filterable": True,
     "options": {"choices": [{"value": "draft"}, {"value": "submitted"}, {"value": "approved"}, {"value": "rejected"}]}},
    {"key": "submitted_by", "type": "user"},
]
#: The receipt of the scenario's expense (examples/expenses.json); the tests' expense has none.
RECEIPT_FIELD = {"key": "receipt", "type": "file",
                 "options": {"allowed_types": ["image/*", "application/pdf"], "max_size": 10 * 1024 * 1024}}


@pytest.fixture
def scenario(tenant):
    """acme's `project` and `expense` designed and published (scenario.md)."""
    from dynamic_models import services

    project = design("project", PROJECT_FIELDS, label="Project", label_plural="Projects", display_field="name")
    services.publish(project)
    expense = design("expense", EXPENSE_FIELDS, label="Expense", label_plural="Expenses", display_field="title")
    services.publish(expense)
    return {"project": project, "expense": expense}


@pytest.fixture
def api(scenario, acme, make_user, acme_client):
    """acme's scenario entities and a client with a key of a user who may do everything."""
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    _key, secret = apikeys.create_key(user, name="integration", scopes=["*:write"])
    acme_client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    acme_client.user = user
    return acme_client


def project(name="Apollo", **values):
    return runtime.get_model("project").objects.create(name=name, **values)


def expense(**values):
    values = {"title": "Taxi", "amount": "12.50", "spent_on": datetime.date(2026, 1, 5), **values}
    return runtime.get_model("expense").objects.create(**values)
