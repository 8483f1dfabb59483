"""The built-in service actions: set fields, create or update a record, notify, webhook, script.

Record writes go through dynamic_models.records.save as the tenant's workflow user, so they
are validated, scoped and audited like anyone's.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lowcode.expressions import ExpressionError, compile_expression
from workflows.context import system_user
from workflows.exceptions import WorkflowError
from workflows.registries import ServiceAction, StepContext, script_hook_registry

#: `{{ expression }}` inside a notification's text.
PLACEHOLDER = re.compile(r"\{\{\s*(.+?)\s*\}\}")


def _check_values(values, entity_key: str | None, fields: dict | None, what: str) -> list[tuple[str, str]]:
    """Problems of a {field: expression} mapping writing fields of `entity_key`."""
    from dynamic_models import formulas, runtime
    from rbac.scopes import USER_ATTRIBUTE_TYPES

    if not isinstance(values, dict) or not values:
        return [("no_values", _("Say which fields %(what)s sets.") % {"what": what})]
    entity = runtime.published_entity_bodies().get(entity_key or "")
    if entity is None:
        return [("unknown_entity", _("No published entity %(key)r.") % {"key": entity_key})]
    targets = formulas.expression_fields(entity, database=False)
    result = []
    for key, source in values.items():
        if key not in targets:
            result.append(("unknown_field", _("%(entity)s has no field %(key)r.") % {"entity": entity_key, "key": key}))
        elif fields is not None:
            try:
                compile_expression(str(source)).check(fields, user=USER_ATTRIBUTE_TYPES, database=False)
            except ExpressionError as error:
                result.append((getattr(error, "code", None) or "expression",
                               _("%(key)s: %(error)s") % {"key": key, "error": error}))
    return result


def _evaluate_values(values: dict, context: StepContext) -> dict:
    expression_context = context.expression_context()
    return {key: compile_expression(str(source)).evaluate(expression_context) for key, source in values.items()}


def _write(record, values: dict) -> None:
    """Set `values` on `record` by field key and save it as the workflow user."""
    from dynamic_models import records

    for key, value in values.items():
        field = record._meta.get_field(key)
        setattr(record, field.attname, value.pk if hasattr(value, "pk") else value)
    records.save(record, user=system_user())


class SetFields(ServiceAction):
    """`"fields": {field: expression}` written on the process's record."""

    type = "set_fields"
    verbose_name = gettext_lazy("Set fields")
    options = ("fields",)

    def problems(self, node, body, fields):
        if not body.get("entity"):
            return [("no_entity", _("Only a workflow bound to an entity has fields to set."))]
        return _check_values(node.get("fields"), body["entity"], fields, _("the task"))

    def run(self, context):
        if context.record is None:
            raise WorkflowError(_("The process has no record."))
        _write(context.record, _evaluate_values(context.node["fields"], context))


class CreateRecord(ServiceAction):
    """`"entity": key, "values": {field: expression}`: a new record of any entity."""

    type = "create_record"
    verbose_name = gettext_lazy("Create a record")
    options = ("entity", "values")

    def problems(self, node, body, fields):
        return _check_values(node.get("values"), node.get("entity"), fields, _("the new record"))

    def run(self, context):
        from dynamic_models import runtime

        record = runtime.get_model(context.node["entity"])()
        _write(record, _evaluate_values(context.node["values"], context))
        context.variables.setdefault("created", {})[context.node["id"]] = record.pk


class UpdateRecord(ServiceAction):
    """`"entity": key, "record": expression giving its id, "values": {field: expression}`."""

    type = "update_record"
    verbose_name = gettext_lazy("Update a record")
    options = ("entity", "record", "values")

    def problems(self, node, body, fields):
        result = _check_values(node.get("values"), node.get("entity"), fields, _("the update"))
        if not node.get("record"):
            result.append(("no_record", _("Say which record to update (an expression giving its id).")))
        return result

    def run(self, context):
        from dynamic_models import runtime

        record_id = compile_expression(context.node["record"]).evaluate(context.expression_context())
        record = runtime.get_model(context.node["entity"]).objects.filter(pk=record_id).first()
        if record is None:
            raise WorkflowError(_("No %(entity)s record %(id)s to update.") % {"entity": context.node["entity"],
                                                                              "id": record_id})
        _write(record, _evaluate_values(context.node["values"], context))


class Notify(ServiceAction):
    """`"to": assignment or {"field": user field}`, `"message"` with `{{ expression }}` placeholders."""

    type = "notify"
    verbose_name = gettext_lazy("Notify")
    options = ("to", "message")

    def problems(self, node, body, fields):
        from workflows import validation

        to, result = node.get("to"), []
        if not node.get("message"):
            result.append(("no_message", _("Write the notification's text.")))
        if not isinstance(to, dict) or len(to) != 1:
            return [*result, ("no_recipient", _("Say who is notified."))]
        if "field" in to:
            from workflows.assignment import user_field_problems

            result += user_field_problems(to["field"], body)
        else:
            result += [(problem["code"], problem["message"])
                       for problem in validation.assignment_problems(to, body, fields, node.get("id", ""))]
        if fields is not None:
            for source in PLACEHOLDER.findall(node.get("message") or ""):
                try:
                    compile_expression(source).check(fields, database=False)
                except ExpressionError as error:
                    result.append((getattr(error, "code", None) or "expression", str(error)))
        return result

    def run(self, context):
        from workflows import services

        text = render_text(context.node["message"], context)
        services.notify(services.recipients(context.node["to"], context), kind="message", text=text,
                        link=services.process_link(context.process))


def render_text(template: str, context: StepContext) -> str:
    """`template` with each `{{ expression }}` replaced by its value ("" for null)."""
    expression_context = context.expression_context()

    def value(match) -> str:
        result = compile_expression(match.group(1)).evaluate(expression_context)
        return "" if result is None else str(result)

    return PLACEHOLDER.sub(value, template)


class Webhook(ServiceAction):
    """`"event": name`: the event is posted (signed) to every endpoint subscribed to it, after commit."""

    type = "webhook"
    verbose_name = gettext_lazy("Call a webhook")
    options = ("event",)

    def problems(self, node, body, fields):
        if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", node.get("event") or ""):
            return [("bad_event", _("Name the event like expense.approved."))]
        return []

    def run(self, context):
        from dynamic_models import records
        from workflows import tasks, webhooks

        record = context.record
        deliveries = webhooks.queue(context.node["event"], {
            "workflow": context.process.flow_class.key, "process": context.process.pk,
            "record": {"id": record.pk, **records.values(record)} if record is not None else None})
        for delivery in deliveries:
            transaction.on_commit(lambda pk=delivery.pk: tasks.deliver_webhook.delay(pk))


class Script(ServiceAction):
    """`"hook": name` of a registered script hook."""

    type = "script"
    verbose_name = gettext_lazy("Run a script hook")
    options = ("hook",)

    def problems(self, node, body, fields):
        if not script_hook_registry.is_registered(node.get("hook") or ""):
            return [("unknown_hook", _("No script hook %(hook)r.") % {"hook": node.get("hook")})]
        return []

    def run(self, context):
        script_hook_registry.get(context.node["hook"]).run(context)


BUILTIN_SERVICE_ACTIONS = (SetFields, CreateRecord, UpdateRecord, Notify, Webhook, Script)
