"""The templates a new form may start from (FM-5): contact, leave request, expense claim, survey.

Each is a `form` body (forms_design.md) in the request's language: `starter(name)` builds it
when asked, so its labels are translated for the builder who starts from it.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy


def _field(widget: str, label: str, **ui) -> dict:
    return {"widget": widget, "label": label, **ui}


def _choices(*pairs: tuple[str, str]) -> dict:
    return {"choices": [{"value": value, "label": label} for value, label in pairs]}


def _step(key: str, label: str, *items: tuple[str, int]) -> dict:
    return {"key": key, "label": label, "items": [{"field": field, "width": width} for field, width in items]}


def contact() -> dict:
    return {
        "label": _("Contact"), "description": _("Ask us anything; we answer within two working days."),
        "entity": "", "public": True,
        "schema": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 120},
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "subject": {"type": "string", "maxLength": 200},
            "message": {"type": "string", "maxLength": 5000},
        }, "required": ["name", "email", "message"]},
        "fields": {
            "name": _field("text", _("Your name")),
            "email": _field("text", _("Email"), placeholder="name@example.com"),
            "subject": _field("text", _("Subject")),
            "message": _field("textarea", _("Message")),
        },
        "layout": {"steps": [_step("contact", _("Contact"), ("name", 6), ("email", 6), ("subject", 12),
                                   ("message", 12))]},
        "checks": [],
    }


def leave_request() -> dict:
    return {
        "label": _("Leave request"), "description": "", "entity": "", "public": False,
        "schema": {"type": "object", "properties": {
            "kind": {"type": "string", "enum": ["annual", "sick", "unpaid", "other"]},
            "first_day": {"type": "string", "format": "date"},
            "last_day": {"type": "string", "format": "date"},
            "reason": {"type": "string", "maxLength": 2000},
        }, "required": ["kind", "first_day", "last_day"]},
        "fields": {
            "kind": _field("select", _("Kind of leave"), options=_choices(
                ("annual", _("Annual leave")), ("sick", _("Sick leave")), ("unpaid", _("Unpaid leave")),
                ("other", _("Other")))),
            "first_day": _field("date", _("First day")),
            "last_day": _field("date", _("Last day")),
            "reason": _field("textarea", _("Reason"), require_when="kind == 'other'",
                             help=_("Needed for other leave.")),
        },
        "layout": {"steps": [_step("leave", _("Leave"), ("kind", 12), ("first_day", 6), ("last_day", 6),
                                   ("reason", 12))]},
        "checks": [{"expression": "last_day >= first_day", "field": "last_day",
                    "message": _("The last day cannot be before the first.")}],
    }


def expense_claim() -> dict:
    """The scenario's form, bound to `expense` (scenario.md)."""
    return {
        "label": _("Expense claim"), "description": "", "entity": "expense", "entity_pages": False, "public": False,
        "schema": {"type": "object", "properties": {
            "title": {"type": "string", "maxLength": 120},
            "amount": {"type": "number", "exclusiveMinimum": 0},
            "currency": {"type": "string", "enum": ["CNY", "USD", "EUR"]},
            "spent_on": {"type": "string", "format": "date"},
            "category": {"type": "string", "enum": ["travel", "meals", "equipment", "other"]},
            "project": {"type": "integer"},
            "iban": {"type": "string", "maxLength": 34},
            "receipt": {"type": "array", "items": {"type": "string", "format": "uuid"}, "maxItems": 1},
            "notes": {"type": "string"},
        }, "required": ["title", "amount", "currency", "spent_on", "category"]},
        "fields": {
            "title": _field("text", _("Title")),
            "amount": _field("number", _("Amount")),
            "currency": _field("select", _("Currency")),
            "spent_on": _field("date", _("Spent on")),
            "category": _field("select", _("Category")),
            "project": _field("relation", _("Project")),
            "iban": _field("text", _("IBAN"), show_when="category == 'travel'"),
            "receipt": _field("file", _("Receipt"), require_when="amount > 200"),
            "notes": _field("textarea", _("Notes"), require_when="amount > 1000"),
        },
        "layout": {"steps": [
            _step("details", _("Details"), ("title", 8), ("amount", 2), ("currency", 2), ("spent_on", 4),
                  ("category", 4), ("project", 4), ("iban", 12)),
            _step("evidence", _("Receipt and notes"), ("receipt", 12), ("notes", 12)),
        ]},
        "checks": [],
    }


def survey() -> dict:
    return {
        "label": _("Survey"), "description": _("Two minutes to tell us how we did."), "entity": "", "public": True,
        "schema": {"type": "object", "properties": {
            "satisfaction": {"type": "integer", "minimum": 1, "maximum": 5},
            "recommend": {"type": "string", "enum": ["yes", "maybe", "no"]},
            "liked": {"type": "array", "items": {"type": "string", "enum": ["speed", "quality", "price", "service"]},
                      "uniqueItems": True},
            "comments": {"type": "string", "maxLength": 2000},
        }, "required": ["satisfaction", "recommend"]},
        "fields": {
            "intro": _field("paragraph", "", text=_("Thank you for taking part.")),
            "satisfaction": _field("slider", _("How satisfied are you?"), help=_("1: not at all, 5: very."),
                                   options={"min": 1, "max": 5, "step": 1}),
            "recommend": _field("radio", _("Would you recommend us?"), options=_choices(
                ("yes", _("Yes")), ("maybe", _("Maybe")), ("no", _("No")))),
            "liked": _field("multi_select", _("What did you like?"), options=_choices(
                ("speed", _("Speed")), ("quality", _("Quality")), ("price", _("Price")), ("service", _("Service")))),
            "comments": _field("textarea", _("What should we improve?"), require_when="recommend == 'no'"),
        },
        "layout": {"steps": [_step("survey", _("Survey"), ("intro", 12), ("satisfaction", 12), ("recommend", 12),
                                   ("liked", 12), ("comments", 12))]},
        "checks": [],
    }


#: The templates by name, with their names in words (the add page lists them in this order).
STARTERS = {
    "contact": (gettext_lazy("Contact"), contact),
    "leave_request": (gettext_lazy("Leave request"), leave_request),
    "expense_claim": (gettext_lazy("Expense claim"), expense_claim),
    "survey": (gettext_lazy("Survey"), survey),
}


def starter(name: str) -> dict:
    """A new copy of the template `name` (KeyError if there is none)."""
    return STARTERS[name][1]()
