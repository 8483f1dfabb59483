"""Server-rendered forms (issue 13 point 5): accessible, responsive HTML from a form definition,
with the initial state of the conditions applied, and the config static/forms_engine/form.js reads.

The markup contract with form.js is in /work/briefs/forms_design.md: `.lc-form` > `fieldset.lc-step`
> items (`fieldset.lc-group`, `div.lc-field` with `--span`). Without JavaScript every step is shown
in order and the server judges the submission.
"""

from __future__ import annotations

from django.forms.utils import flatatt
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import SafeString

from forms_engine import conditions, services
from forms_engine.definitions import FIELD_CONDITIONS, GROUP_CONDITIONS, entity_fields, walk_items
from lowcode.expressions import ExpressionError, compile_expression, function_registry, serialize


def media_urls() -> dict[str, list[str]]:
    """The stylesheets, classic scripts (in order) and ES modules a page embedding `render()` needs."""
    # Between expressions.js and form.js: the JavaScript twins of the functions that plugins
    # enabled in this tenant add (their static URLs).
    plugin_scripts = sorted({function.browser_script for function in function_registry.get_all()
                             if function.browser_script})
    return {"styles": [static("forms_engine/form.css")],
            "scripts": [static("lowcode/vendor/decimal.js/decimal.js"), static("lowcode/expressions.js"),
                        *plugin_scripts, static("forms_engine/form.js")],
            # schema.js is an ES module (it imports the vendored validator); modules run deferred, and
            # form.js starts on DOMContentLoaded, after both.
            "modules": [static("forms_engine/schema.js")]}


def media() -> SafeString:
    """The <head> tags of `media_urls()`."""
    urls = media_urls()
    tags = [*(format_html('<link rel="stylesheet" href="{}">', url) for url in urls["styles"]),
            *(format_html('<script src="{}" defer></script>', url) for url in urls["scripts"]),
            *(format_html('<script type="module" src="{}"></script>', url) for url in urls["modules"])]
    return format_html_join("\n", "{}", ((tag,) for tag in tags))


def _tree(source: str):
    """The expression's tree for form.js; None when empty, or unparsable in a draft being previewed."""
    try:
        return compile_expression(source).to_json() if source else None
    except ExpressionError:
        return None


def _conditions_json(spec: dict, names) -> dict:
    return {name: _tree(spec.get(name, "")) for name in names}


def config(form: services.Form, *, user, request=None) -> dict:
    """What form.js needs: the schema, per field its widget, value kind and condition trees, the
    groups and steps, checks, translated message templates and the evaluation context."""
    from forms_engine import schema_validation

    body = form.body
    rules = services.column_rules(form, user, request)
    fields = {}
    for key in form.data_keys():
        widget = form.widget(key)
        fields[key] = {"widget": widget.type, "type": widget.value_kind, "column": rules.get(key),
                       **_conditions_json(body["fields"][key], FIELD_CONDITIONS)}
    groups, steps = {}, []
    for step in body["layout"]["steps"]:
        steps.append({"key": step["key"], "label": step.get("label", ""), **_conditions_json(step, GROUP_CONDITIONS),
                      "fields": []})
        for item, _path, item_groups in walk_items(step["items"], ""):
            if "group" in item:
                groups[item["group"]] = {"parent": item_groups[-1]["group"] if item_groups else None,
                                         "step": step["key"], **_conditions_json(item, GROUP_CONDITIONS)}
            elif item["field"] in fields:
                fields[item["field"]].update(step=step["key"], group=item_groups[-1]["group"] if item_groups else None)
                steps[-1]["fields"].append(item["field"])
    return {
        "key": form.key, "schema": body["schema"], "fields": fields, "groups": groups, "steps": steps,
        "checks": [{"expression": _tree(check["expression"]), "field": check.get("field") or "",
                    "message": check["message"]} for check in body.get("checks", [])],
        "messages": schema_validation.messages(),
        "context": {"user": conditions.user_context(user, request), **serialize.browser_options()},
    }


def _display(value) -> str:
    return "" if value is None else str(value)


def _field(form: services.Form, key: str, item: dict, *, state, data: dict, errors: dict, rules: dict,
           bound: dict, user, record) -> dict:
    spec = form.body["fields"][key]
    widget = form.widget(key)
    field_state = state.fields[key]
    rule = rules.get(key)
    value = data.get(key)
    field_errors = errors.get(key, [])
    described = [f"id_{key}_help"] if spec.get("help") else []
    described += [f"id_{key}_errors"]
    result = {
        "key": key, "form_key": form.key, "widget": widget, "spec": spec, "label": spec.get("label") or key.replace("_", " ").capitalize(),
        "id": f"id_{key}", "span": item.get("width", 12), "hidden": not field_state.visible,
        "disabled": not field_state.visible or not field_state.enabled or rule is not None,
        "required": widget.has_data and (key in form.body["schema"].get("required", []) or field_state.required),
        "errors": field_errors, "describedby": " ".join(described), "placeholder": spec.get("placeholder", ""),
        "options": spec.get("options", {}), "value": value, "text": _display(value), "masked": "",
        "values": [str(v) for v in value] if isinstance(value, list) else [_display(value)],
    }
    if rule == "masked" and record is not None:
        from rbac import services as rbac

        result["masked"] = rbac.mask(services.record_value(record, key)) or ""
        result["text"] = result["values"] = None
    if widget.type in ("select", "radio", "multi_select", "user", "department", "relation", "rating", "users"):
        result["choices"] = widget.choices(spec, user=user, entity_field=bound.get(key))
        if widget.type == "relation" and value is not None and str(value) not in {c["value"] for c in result["choices"]}:
            result["choices"].insert(0, {"value": str(value), "label": f"#{value}"})
    if widget.type in ("file", "image") and value:
        from files.models import StoredFile

        result["files"] = list(StoredFile.objects.filter(pk__in=value).only("id", "name"))
    attrs = {"id": result["id"], "name": key, "aria-describedby": result["describedby"]}
    if result["required"]:
        attrs["aria-required"] = "true"
    if field_errors:
        attrs["aria-invalid"] = "true"
    if result["disabled"]:
        attrs["disabled"] = True
    result["attrs"] = flatatt(attrs)
    return result


def render(form: services.Form, *, request, record=None, data: dict | None = None, errors: dict | None = None,
           step: str | None = None, submission=None) -> SafeString:
    """The form's fields and steps, without the <form> tag, CSRF token and buttons (the page's).

    :param data: the data to show (a failed submission's); default: the draft's, the record's or the defaults.
    :param errors: {field: [messages]} ("__all__" for the whole form).
    :param step: the step form.js opens first (all steps are in the page).
    """
    user = getattr(request, "user", None)
    user = user if user is not None and user.is_authenticated else None
    data = dict(data) if data is not None else services.initial_data(form, record=record, submission=submission)
    errors = errors or {}
    rules = services.column_rules(form, user, request)
    state = conditions.evaluate(form.body, data, user=user, request=request)
    data.update({key: state.data[key] for key, field_state in state.fields.items() if field_state.computed})
    bound = entity_fields(form.body)
    context = {"state": state, "data": data, "errors": errors, "rules": rules, "bound": bound, "user": user,
               "record": record}

    def items(entries: list[dict], groups=()) -> list[dict]:
        result = []
        for item in entries:
            if "group" in item:
                group_state = state.groups[item["group"]]
                result.append({"group": item["group"], "label": item.get("label", ""), "span": item.get("width", 12),
                               "columns": item.get("columns", 12), "hidden": not group_state.visible,
                               "items": items(item["items"])})
            elif item["field"] in form.body["fields"]:
                result.append({"field": _field(form, item["field"], item, **context)})
        return result

    steps = [{"key": s["key"], "label": s.get("label", ""), "hidden": not state.steps[s["key"]].visible,
              "items": items(s["items"])} for s in form.body["layout"]["steps"]]
    config_id = f"lc-form-config-{form.key}"
    html = render_to_string("forms_engine/form.html", {
        "form": form, "steps": steps, "wizard": len(steps) > 1, "current_step": step or "",
        "form_errors": errors.get("__all__", []), "config_id": config_id,
    }, request=request)
    return format_html("{}{}", html, json_script(config(form, user=user, request=request), config_id))
