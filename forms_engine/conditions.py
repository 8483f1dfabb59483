"""Conditions of a form (FM-4, EX-2), evaluated on the server: the truth a submission is judged by,
and the initial state the renderer draws.

Every condition is an expression over the form's own fields (`amount`, `record.amount`) and the
user (`user.roles`...). Values are read as the field's widget gives them (forms_engine.widgets
`value_kind`): numbers as Decimal, dates, aware datetimes and times as such, lists as lists,
empty as null. Conditions read the data as entered, in one pass; fields computed by `value`
are computed first, in layout order, so a later one may read an earlier one.
"""

from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.dateparse import parse_datetime, parse_time

from forms_engine.definitions import walk_items
from forms_engine.widgets import widget_registry
from lowcode.expressions import ExpressionError, compile_expression
from lowcode.expressions.functions import as_bool


@dataclass
class FieldState:
    visible: bool = True
    enabled: bool = True
    required: bool = False
    """Required by `require_when` (the schema's `required` is apart)."""
    computed: bool = False
    """Its value comes from its `value` expression (so it is disabled)."""
    step: str = ""


@dataclass
class FormState:
    fields: dict[str, FieldState] = field(default_factory=dict)
    groups: dict[str, FieldState] = field(default_factory=dict)
    steps: dict[str, FieldState] = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    """The data with computed values set."""

    def hidden(self) -> set[str]:
        return {key for key, state in self.fields.items() if not state.visible}


def expression_value(kind: str, value):
    """A JSON value of a widget of `kind` as expressions read it (None when empty or unreadable)."""
    if value in (None, "", []):
        return None
    try:
        if kind == "number":
            return decimal.Decimal(str(value)) if not isinstance(value, bool) else None
        if kind == "date":
            return datetime.date.fromisoformat(value)
        if kind == "datetime":
            return parse_datetime(value)
        if kind == "time":
            return parse_time(value)
        if kind == "boolean":
            return bool(value)
        if kind == "list":
            return [str(item) for item in value] if isinstance(value, list) else None
        return str(value)
    except (ValueError, TypeError, decimal.InvalidOperation):
        return None


def json_value(value):
    """An expression's result as JSON data of a form (the `value` of computed fields)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.time):
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")
    if isinstance(value, datetime.datetime) and timezone.is_aware(value):
        return timezone.localtime(value).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def user_context(user, request=None) -> dict:
    """`user.<attribute>` for the form's expressions: rbac's, or nobody's for visitors."""
    from rbac import services as rbac
    from rbac.scopes import sample_context
    from rbac.scopes import user_context as rbac_user_context

    if user is None or not user.is_authenticated:
        return sample_context()["user"]
    return rbac_user_context(user, rbac.effective(user, request))


def context(body: dict, data: dict, user_values: dict) -> dict:
    record = {}
    for key, spec in body["fields"].items():
        widget = widget_registry.get(spec["widget"])
        if widget.has_data:
            record[key] = expression_value(widget.value_kind, data.get(key))
    return {"record": record, "user": user_values}


def holds(source: str, values: dict, *, default: bool = True) -> bool:
    """Whether a condition holds; empty: `default`. One that fails on its values is false."""
    if not source:
        return default
    try:
        return as_bool(compile_expression(source).evaluate(values))
    except ExpressionError:
        return False


def evaluate(body: dict, data: dict, *, user, request=None, user_values: dict | None = None) -> FormState:
    """The state of every field, group and step of the form `body` for `data` and `user`."""
    user_values = user_context(user, request) if user_values is None else user_values
    state = FormState(data=dict(data))
    for key, spec in body["fields"].items():
        if spec.get("value"):
            try:
                result = compile_expression(spec["value"]).evaluate(context(body, state.data, user_values))
            except ExpressionError:
                result = None
            state.data[key] = json_value(result)
    values = context(body, state.data, user_values)
    for step in body["layout"]["steps"]:
        step_state = FieldState(visible=holds(step.get("show_when", ""), values),
                                enabled=holds(step.get("enable_when", ""), values), step=step["key"])
        state.steps[step["key"]] = step_state
        for item, _path, groups in walk_items(step["items"], ""):
            visible, enabled = step_state.visible, step_state.enabled
            for group in groups:
                group_state = state.groups[group["group"]]
                visible, enabled = visible and group_state.visible, enabled and group_state.enabled
            if "group" in item:
                state.groups[item["group"]] = FieldState(
                    visible=visible and holds(item.get("show_when", ""), values),
                    enabled=enabled and holds(item.get("enable_when", ""), values), step=step["key"])
                continue
            spec = body["fields"].get(item["field"], {})
            computed = bool(spec.get("value"))
            state.fields[item["field"]] = FieldState(
                visible=visible and holds(spec.get("show_when", ""), values),
                enabled=enabled and not computed and holds(spec.get("enable_when", ""), values),
                required=holds(spec.get("require_when", ""), values, default=False),
                computed=computed, step=step["key"])
    return state

