"""Forms at run time (FM-1, FM-3, FM-4, FM-6): finding a form, judging a submission, saving it.

A submission is judged in this order (the design's server rules): each widget reads its posted
value -> fields hidden by a condition (or a column the viewer may not see) must be empty and are
dropped -> disabled fields (by condition, computed, read-only or masked columns) must keep the
server's value -> JSON Schema on the visible data, `required` extended by `require_when` ->
`checks` -> bound forms: dynamic_models.records.save (entity rules, rbac, owner fields, audit).
Nothing is written unless every step passes.
"""

from __future__ import annotations

import copy
import datetime
import decimal
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import services as audit
from forms_engine import audit_actions, conditions
from forms_engine.definitions import data_keys, entity_fields
from forms_engine.models import FormSubmission
from forms_engine.signals import form_submitted
from forms_engine.widgets import FileWidget, widget_registry
from lowcode.expressions import ExpressionError, compile_expression
from lowcode.expressions.functions import as_bool
from metadata import services as metadata

#: Widgets of entity field types in a generated form ("form from entity").
ENTITY_WIDGETS = {
    "text": "text", "email": "text", "url": "text", "phone": "text", "uuid": "text", "long_text": "textarea",
    "rich_text": "rich_text", "integer": "number", "decimal": "number", "boolean": "checkbox", "date": "date",
    "datetime": "datetime", "time": "time", "choice": "select", "multiple_choice": "multi_select",
    "user": "user", "relation": "relation", "file": "file", "image": "image",
    "currency": "number", "percent": "number", "duration": "text", "rating": "rating", "users": "users",
    "generic_link": "text",
}
#: Not "email" for email fields: browsers refuse Unicode local parts (clara.lefèvre@...) there.
_INPUT_TYPES = {"url": "url", "phone": "tel"}
_FORMATS = {"email": "email", "url": "uri", "uuid": "uuid"}


@dataclass(frozen=True)
class Form:
    """A form to fill: a published definition's body, or one generated from an entity (version None)."""

    key: str
    body: dict
    version: int | None = None

    @property
    def label(self) -> str:
        return self.body.get("label") or self.key

    @property
    def entity(self) -> str:
        return self.body.get("entity") or ""

    @property
    def is_public(self) -> bool:
        return bool(self.body.get("public")) and not self.entity

    def model(self):
        from dynamic_models import runtime

        return runtime.get_model(self.entity) if self.entity else None

    def data_keys(self) -> list[str]:
        return data_keys(self.body)

    def widget(self, key: str):
        return widget_registry.get(self.body["fields"][key]["widget"])


@dataclass
class SubmitResult:
    ok: bool
    errors: dict[str, list[str]] = field(default_factory=dict)
    """{field key: [messages]}; "__all__" for the whole form."""
    data: dict = field(default_factory=dict)
    """The cleaned JSON data (visible fields, computed values)."""
    record: models.Model | None = None
    submission: FormSubmission | None = None
    forbidden: bool = False
    """The write was refused by rbac (answer 403), not by a rule of the data (400)."""


def get_form(key: str) -> Form:
    """The published form `key`; Http404 if there is none."""
    published = metadata.get_published("form", key)
    if published is None:
        raise Http404(_("No such form."))
    return Form(key, published.body, published.version)


def published_forms() -> list[Form]:
    return sorted((Form(key, d.body, d.version) for key, d in metadata.published_bodies("form").items()),
                  key=lambda form: form.label.lower())


def form_from_entity(entity_key: str) -> dict:
    """A form body with every writable field of the published entity (FM-5 "form from entity"):
    widgets by field type, the entity's required fields and limits mirrored in the schema."""
    from dynamic_models import runtime

    entity = runtime.published_entity_bodies().get(entity_key)
    if entity is None:
        raise Http404(_("No published entity %(key)r.") % {"key": entity_key})
    properties, fields, items, required = {}, {}, [], []
    for spec in entity["fields"]:
        widget = ENTITY_WIDGETS.get(spec["type"])
        if widget is None or spec.get("read_only"):
            continue
        if spec["type"] == "relation" and spec.get("options", {}).get("cardinality") == "many_to_many":
            continue
        key = spec["key"]
        properties[key] = _property_schema(spec, widget)
        fields[key] = {"widget": widget, "label": spec.get("label") or key.replace("_", " ").capitalize()}
        if spec.get("help_text"):
            fields[key]["help"] = spec["help_text"]
        if spec.get("default") is not None:
            fields[key]["default"] = spec["default"]
        if spec["type"] in _INPUT_TYPES:
            fields[key]["options"] = {"input_type": _INPUT_TYPES[spec["type"]]}
        if spec.get("required") and spec.get("default") is None:
            required.append(key)
        items.append({"field": key, "width": 12 if widget in ("textarea", "rich_text", "file", "image") else 6})
    checks = [{"expression": f"is_null({spec['key']}) or {spec['key']} <= today()", "field": spec["key"],
               "message": _("Cannot be in the future.")}
              for spec in entity["fields"] if spec["key"] in fields and spec.get("options", {}).get("not_in_future")]
    body = {
        "label": entity.get("label") or entity_key, "entity": entity_key,
        "schema": {"type": "object", "properties": properties, "required": required},
        "fields": fields, "layout": {"steps": [{"key": "main", "label": "", "items": items}]},
    }
    return {**body, "checks": checks} if checks else body


def _property_schema(spec: dict, widget: str) -> dict:
    options = spec.get("options", {})
    schema = copy.deepcopy(widget_registry.get(widget).json_schema)
    kind = spec["type"]
    if kind in _FORMATS:
        schema["format"] = _FORMATS[kind]
    if kind in ("text", "long_text", "email", "url", "phone") and options.get("max_length"):
        schema["maxLength"] = options["max_length"]
    if options.get("min_length"):
        schema["minLength"] = options["min_length"]
    if options.get("regex"):
        schema["pattern"] = options["regex"]
    if kind == "integer":
        schema["type"] = "integer"
    if kind in ("integer", "decimal"):
        if options.get("min") is not None:
            schema["exclusiveMinimum" if options.get("exclusive_min") else "minimum"] = options["min"]
        if options.get("max") is not None:
            schema["maximum"] = options["max"]
    if kind == "choice":
        schema["enum"] = [choice["value"] for choice in options.get("choices", [])]
    if kind == "multiple_choice":
        schema["items"] = {"enum": [choice["value"] for choice in options.get("choices", [])]}
    if kind in ("file", "image") and not options.get("multiple"):
        schema["maxItems"] = 1
    return schema


def entity_form(model, *, user, request=None) -> Form:
    """The form that creates and edits records of `model` for `user`: the entity's `entity_pages`
    form, else one generated from the entity; fields hidden from the viewer are left out."""
    entity_key = model.lowcode_entity["key"]
    form = next((form for form in published_forms()
                 if form.entity == entity_key and form.body.get("entity_pages")), None)
    if form is None:
        form = Form(f"entity-{entity_key}", form_from_entity(entity_key))
    hidden = {key for key, rule in column_rules(form, user, request).items() if rule == "hidden"}
    return Form(form.key, without_fields(form.body, hidden), form.version) if hidden else form


def without_fields(body: dict, keys: set[str]) -> dict:
    """`body` without the fields `keys` (out of the schema, the layout and the checks)."""
    body = copy.deepcopy(body)
    for key in keys:
        body["fields"].pop(key, None)
        body["schema"].get("properties", {}).pop(key, None)
    body["schema"]["required"] = [key for key in body["schema"].get("required", []) if key not in keys]

    def keep(items):
        return [{**item, "items": keep(item["items"])} if "group" in item else item
                for item in items if item.get("field") not in keys]

    for step in body["layout"]["steps"]:
        step["items"] = keep(step["items"])
    body["checks"] = [check for check in body.get("checks", [])
                      if not compile_expression(check["expression"]).references & keys]
    return body


def column_rules(form: Form, user, request=None) -> dict[str, str]:
    """{field key: "hidden" | "masked" | "read_only"} of a bound form's fields for `user`."""
    from rbac import columns

    model = form.model()
    if model is None:
        return {}
    access = columns.column_access(user, model, request=request)
    rules = {key: access.rule(key) for key in form.body["fields"] if access.rule(key)}
    for key, spec in entity_fields(form.body).items():
        if key in form.body["fields"] and spec.get("read_only"):
            rules.setdefault(key, "read_only")
    return rules


# --- Values ------------------------------------------------------------------------------------------


def record_value(record, key: str):
    """The record's value of field `key` as the form's JSON data."""
    from dynamic_models import file_fields

    if key in file_fields.file_specs(type(record)):
        return [str(stored.pk) for stored in file_fields.current_files(record, key)] or None
    model_field = record._meta.get_field(key)
    value = getattr(record, model_field.attname)
    if isinstance(value, (decimal.Decimal, datetime.date, datetime.time)):
        return conditions.json_value(value)
    if value in ("", []):
        return None
    return value


def initial_data(form: Form, *, record=None, submission: FormSubmission | None = None) -> dict:
    """What the form starts with: a draft's data, else the record's values, else the defaults."""
    if submission is not None:
        return dict(submission.data)
    result = {}
    for key in form.data_keys():
        if record is not None:
            result[key] = record_value(record, key)
        else:
            result[key] = form.body["fields"][key].get("default")
    return result


def _same(widget, left, right) -> bool:
    kind = widget.value_kind
    return conditions.expression_value(kind, left) == conditions.expression_value(kind, right)


def _empty(value) -> bool:
    return value in (None, "", [], False)


# --- Submitting ---------------------------------------------------------------------------------------


def submit(form: Form, data, files, *, user, request=None, record=None, draft: bool = False,
           submission: FormSubmission | None = None) -> SubmitResult:
    """Judge and save one submission of `form` (see the module's docstring for the order).

    :param data: the POST (a QueryDict); `files`: request.FILES.
    :param record: a bound form's record to edit; None creates one.
    :param draft: save a draft (FormSubmission in status draft) checked for types only.
    :param submission: the user's draft being resumed; it becomes the submission.
    """
    user = user if user is not None and user.is_authenticated else None
    body = form.body
    rules = column_rules(form, user, request)
    server = initial_data(form, record=record, submission=submission if submission and not form.entity else None)
    if submission is not None and form.entity:
        server = {**server, **{k: v for k, v in submission.data.items() if rules.get(k) is None}}
    posted, errors = {}, {}
    for key in form.data_keys():
        widget = form.widget(key)
        posted[key] = widget.value_from_post(data, files, key)
    state = conditions.evaluate(body, {**server, **{k: v for k, v in posted.items() if k not in rules}},
                                user=user, request=request)
    cleaned = {}
    for key in form.data_keys():
        widget, field_state, rule = form.widget(key), state.fields[key], rules.get(key)
        sent = widget.is_posted(data, files, key)
        if rule in ("hidden", "masked"):
            if sent:
                errors[key] = [_("You may not change this field.")]
            continue
        if not field_state.visible:
            if sent and not _empty(posted[key]):
                errors[key] = [_("This field is hidden; it cannot take a value.")]
            continue
        if rule == "read_only" or not field_state.enabled:
            expected = state.data.get(key) if field_state.computed else server.get(key)
            if sent and not _same(widget, posted[key], expected):
                errors[key] = [_("This field cannot be changed.")]
            if not _empty(expected):
                cleaned[key] = expected
            continue
        if not _empty(posted[key]) or widget.value_kind == "boolean":
            cleaned[key] = posted[key]
    if errors:
        return SubmitResult(False, errors, cleaned)
    if not draft:
        errors = validate(form, cleaned, state, user=user, editable={
            key for key in cleaned if rules.get(key) is None and state.fields[key].enabled}, record=record)
    if errors:
        return SubmitResult(False, errors, cleaned)
    try:
        with transaction.atomic():
            return _save(form, cleaned, files, state, user=user, request=request, record=record, draft=draft,
                         submission=submission, rules=rules)
    except PermissionDenied as error:
        return SubmitResult(False, {"__all__": [str(error) or _("You may not do this.")]}, cleaned, forbidden=True)
    except ValidationError as error:
        return SubmitResult(False, _error_dict(error), cleaned)


def validate(form: Form, cleaned: dict, state: conditions.FormState, *, user, editable: set[str],
             record=None) -> dict[str, list[str]]:
    """Errors of the visible data: JSON Schema (required extended by conditions), picker values,
    then the checks."""
    from forms_engine import schema_validation

    schema = copy.deepcopy(form.body["schema"])
    hidden = state.hidden()
    required = [key for key in schema.get("required", []) if key not in hidden]
    required += [key for key, field_state in state.fields.items()
                 if field_state.required and field_state.visible and key not in required]
    schema["required"] = required
    errors: dict[str, list[str]] = {}
    for error in schema_validation.validate(schema, cleaned):
        errors.setdefault(error.field or "__all__", []).append(error.message)
    bound = entity_fields(form.body)
    for key in editable:
        if key in errors or key not in cleaned or (record is not None and record_value(record, key) == cleaned[key]):
            continue  # Wrong already, empty, or kept as the record has it (a value its editor may not see).
        message = form.widget(key).invalid(cleaned[key], form.body["fields"][key], user=user,
                                           entity_field=bound.get(key))
        if message:
            errors[key] = [message]
    if errors:
        return errors
    values = conditions.context(form.body, cleaned, conditions.user_context(user))
    for check in form.body.get("checks", []):
        target = check.get("field") or "__all__"
        if target in hidden:
            continue
        try:
            holds = as_bool(compile_expression(check["expression"]).evaluate(values))
        except ExpressionError:
            holds = False
        if not holds:
            errors.setdefault(target, []).append(check["message"])
    return errors


def _error_dict(error: ValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {("__all__" if key == "__all__" else key): [message for item in items for message in item.messages]
                for key, items in error.error_dict.items()}
    return {"__all__": error.messages}


def _store_uploads(form: Form, key: str, values: list[str], files, *, user, kept: list[str]) -> list[str]:
    """Store a file field's new uploads (field rules: the entity field's, else the widget's options)
    and return the StoredFile ids; ids posted must be files the submission held already."""
    from files import services as file_services

    unknown = [value for value in values if value not in kept
               and value not in {getattr(upload, "lowcode_placeholder", None) for upload in files.getlist(key)}]
    if unknown:
        raise ValidationError({key: _("Unknown file.")})
    spec = entity_fields(form.body).get(key) or form.body["fields"][key]
    options = spec.get("options", {})
    rules = file_services.FileRules(allowed_types=tuple(options.get("allowed_types", ())),
                                    max_size=options.get("max_size"), images_only=form.widget(key).type == "image")
    stored_ids = {}
    for upload in files.getlist(key):
        if getattr(upload, "lowcode_placeholder", None) in values:
            stored_ids[upload.lowcode_placeholder] = str(file_services.upload(upload, name=upload.name, user=user,
                                                                              rules=rules).pk)
    return [stored_ids.get(value, value) for value in values]


def _save(form: Form, cleaned: dict, files, state, *, user, request, record, draft: bool,
          submission: FormSubmission | None, rules: dict) -> SubmitResult:
    previous = submission.data if submission is not None else {}
    file_keys = [key for key in cleaned if isinstance(form.widget(key), FileWidget)]
    if submission is None:
        submission = FormSubmission(form_key=form.key, user=user)
    submission.form_version = form.version
    if draft or not form.entity:
        for key in file_keys:
            cleaned[key] = _store_uploads(form, key, cleaned[key], files, user=user, kept=previous.get(key) or [])
    if draft:
        submission.status, submission.data = FormSubmission.Status.DRAFT, cleaned
        if form.version is not None:
            submission.save()
            audit.record_later(audit_actions.DRAFT_SAVE, target=submission, actor=user, data={"form": form.key})
        return SubmitResult(True, {}, cleaned, record, submission)
    if form.entity:
        record = _save_record(form, cleaned, files, state, user=user, request=request, record=record, rules=rules)
        submission.record_entity, submission.record_id, submission.data = form.entity, record.pk, {}
    else:
        submission.data = cleaned
    submission.status, submission.submitted_at = FormSubmission.Status.SUBMITTED, timezone.now()
    if form.version is not None:
        submission.save()
        audit.record_later(audit_actions.SUBMIT, target=submission, actor=user, request=request,
                           data={"form": form.key, "version": form.version, "entity": form.entity or None,
                                 "record": record.pk if record is not None else None})
    saved = submission if submission.pk else None
    transaction.on_commit(lambda: form_submitted.send(sender=FormSubmission, form=form, submission=saved,
                                                      record=record, user=user))
    return SubmitResult(True, {}, cleaned, record, saved)


def _save_record(form: Form, cleaned: dict, files, state, *, user, request, record, rules: dict):
    """Create or change the bound form's record through the entity's one write path."""
    from dynamic_models import file_fields, records, validation

    model = form.model()
    record = record if record is not None else model()
    specs = file_fields.file_specs(model)
    file_values = {}
    for key in form.data_keys():
        field_state = state.fields[key]
        if not field_state.visible or rules.get(key) or not (field_state.enabled or field_state.computed):
            continue  # Not the form's to write: the record keeps (or defaults) its value.
        value = cleaned.get(key)
        if key in specs:
            uploads = {getattr(upload, "lowcode_placeholder", None): upload for upload in files.getlist(key)}
            file_values[key] = [uploads.get(item, item) for item in value or []]
            continue
        model_field = record._meta.get_field(key)
        if model_field.is_relation:
            setattr(record, model_field.attname, value)
        else:
            setattr(record, model_field.attname, model_field.to_python(value) if value is not None else
                    ("" if not model_field.null and isinstance(model_field, models.CharField) else None))
    excluded = {f.name for f in model._meta.fields if not f.editable} | set(specs)
    validation.clean_record(record, exclude=excluded)
    return records.save(record, user=user, request=request, files=file_values)


# --- Who may fill ------------------------------------------------------------------------------------


def may_fill(form: Form, user, request=None) -> bool:
    """Bound forms: signed-in users who may add records of the entity; standalone: signed-in
    users; public forms: anyone."""
    from rbac import services as rbac

    if form.is_public:
        return True
    if user is None or not user.is_authenticated:
        return False
    return not form.entity or rbac.check(user, rbac.entity_operation(form.entity, "add"), request=request)


def fillable_forms(user, request=None) -> list[Form]:
    """The published forms `user` may fill (bound ones only if their entity is published)."""
    from dynamic_models import runtime

    entities = runtime.published_entity_bodies()
    return [form for form in published_forms()
            if (not form.entity or form.entity in entities) and may_fill(form, user, request)]


def own_draft(form: Form, draft_id: int, user) -> FormSubmission:
    """The user's draft `draft_id` of `form`; Http404 for anyone else's, or a submitted one."""
    if user is None or not user.is_authenticated:
        raise Http404(_("No such draft."))
    draft = FormSubmission.objects.filter(pk=draft_id, form_key=form.key, user=user,
                                          status=FormSubmission.Status.DRAFT).first()
    if draft is None:
        raise Http404(_("No such draft."))
    return draft


def public_rate_allows(client: str) -> bool:
    """Count one submission of a public form from `client` (an IP address); False past the limit
    (`settings.FORMS_PUBLIC_RATE`: (submissions, seconds), default 10 a minute)."""
    from django.conf import settings
    from django.core.cache import cache

    limit, seconds = getattr(settings, "FORMS_PUBLIC_RATE", (10, 60))
    key = f"forms:public-rate:{client}"
    cache.add(key, 0, seconds)
    try:
        count = cache.incr(key)
    except ValueError:  # Expired between add and incr.
        cache.set(key, 1, seconds)
        count = 1
    return count <= limit


def relation_choices(form: Form, key: str, query: str, *, user, limit: int = 20) -> list[dict]:
    """Records offered by the relation (or user) picker `key`: those the viewer may see, found by
    id or by the related entity's display field."""
    widget = form.widget(key)
    if not hasattr(widget, "queryset"):
        raise Http404(_("No such picker."))
    queryset = widget.queryset(form.body["fields"][key], user=user, entity_field=entity_fields(form.body).get(key))
    query = query.strip()
    if query:
        display = widget.searched_field(queryset.model)
        condition = models.Q(pk=int(query)) if query.isdigit() else models.Q(pk__in=[])
        if display:
            condition |= models.Q(**{f"{display}__icontains": query})
        queryset = queryset.filter(condition)
    return [{"value": str(row.pk), "label": str(row)} for row in queryset[:limit]]


# --- Export -------------------------------------------------------------------------------------------


def export_csv(queryset, *, user, request=None):
    """The submissions of `queryset` as CSV lines (an iterator, oldest first), audited as one export.

    Bound forms' rows name their record (`expense#12`), not its values: those are read through
    the record pages, under the reader's permissions.
    """
    rows = list(queryset.select_related("user").order_by("created_at", "id"))
    audit.record(audit_actions.EXPORT, actor=user, request=request,
                 data={"count": len(rows), "forms": sorted({row.form_key for row in rows})[:50]})
    return _csv_lines(rows)


def _csv_lines(rows: list[FormSubmission]):
    import csv
    import io

    data_keys = sorted({key for row in rows for key in row.data})
    header = [_("id"), _("form"), _("version"), _("status"), _("user"), _("created"), _("submitted"), _("record"),
              *data_keys]
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield "\ufeff" + line(header)  # The BOM tells spreadsheet programs the text is UTF-8.
    for row in rows:
        record = f"{row.record_entity}#{row.record_id}" if row.record_id else ""
        values = [row.data.get(key) for key in data_keys]
        yield line([row.pk, row.form_key, row.form_version or "", row.status, row.user.get_username() if row.user else "",
                    row.created_at.isoformat(), row.submitted_at.isoformat() if row.submitted_at else "", record,
                    *("" if value is None else value for value in values)])
