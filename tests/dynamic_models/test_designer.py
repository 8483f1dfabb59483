"""The entity designer (issue 12): designs validated on save in plain words, draft against live
(state badge, discard, roll back only with an earlier version), the formula check endpoint."""

import html
import json

import pytest

from audit.models import AuditEvent
from dynamic_models import designer, services
from dynamic_models.keys import key_errors
from dynamic_models.models import Entity, Field
from metadata.exceptions import DefinitionValidationError

from .conftest import design
from .test_admin import field_row, inline_form


@pytest.fixture
def builder(acme, make_user, acme_client):
    """A client signed in to acme's admin as bea, who may design."""
    make_user(acme, "bea", is_staff=True, is_superuser=True)
    response = acme_client.post("/admin/login/?next=/admin/", {"username": "bea", "password": "correct-horse-battery"})
    assert response.status_code == 302
    return acme_client


def post_design(client, key: str, rows: list[dict], url="/admin/dynamic_models/entity/add/", **entity):
    data = {"key": key, "label": key.title(), "label_plural": "", "description": "", "app": "", "display_field": "",
            "ordering": "", "translations": "", "rules": "", **entity}
    data.update(inline_form("fields", rows))
    return client.post(url, data)


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def test_saving_an_invalid_design_names_the_field_and_the_option(scenario, builder):
    response = post_design(builder, "vendor", [
        field_row("id", "text", 0),
        field_row("status", "choice", 1),
        field_row("project", "relation", 2),
        field_row("client", "relation", 3, '{"target": "client"}'),
        field_row("code", "text", 4, '{"regex": "[A-Z"}'),
        field_row("total", "formula", 5, '{"expression": "amount * 2"}'),
        field_row("name", "text", 6, '{"max_length": 0}'),
    ], display_field="title")
    assert response.status_code == 200  # The form again, nothing saved.
    page = page_text(response)
    assert not Entity.objects.filter(key="vendor").exists()
    assert "Field “Id”: 'id' is a system field or method that every record has" in page
    assert "Field “Status”: add at least one choice." in page
    assert "Field “Project”: choose the entity it relates to." in page
    assert "Field “Client”: Unknown entity 'client': publish it first." in page
    assert "Field “Code”: Invalid pattern:" in page
    assert "Field “Total”:" in page and "amount" in page
    assert "Field “Name”: the option “maximum length” must be at least 1." in page
    assert "Display field: Unknown field 'title'." in page
    assert "is a required property" not in page and "fields/" not in page


def test_entity_keys_that_python_or_records_use_are_refused_on_save(tenant, builder):
    for key, words in [("Class", "must start with a lowercase letter"), ("id", "built-in name of Python"),
                       ("list", "built-in name of Python"), ("objects", "every record has"),
                       ("class", "Python keyword")]:
        page = page_text(post_design(builder, key, [field_row("name", "text", 0)]))
        assert words in page, key
        assert not Entity.objects.filter(key=key).exists()
    assert key_errors("vendor", what="entity", max_length=40) == []


def test_the_api_gets_the_same_sentences(tenant):
    with pytest.raises(DefinitionValidationError) as refused:
        services.create_design({"key": "vendor", "fields": [
            {"key": "status", "type": "choice", "label": "Status", "options": {"choices": []}},
            {"key": "rating", "type": "integer", "options": {"min": "high"}},
            {"key": "owner", "type": "user", "options": {"on_delete": "cascade", "colour": "red"}},
        ]})
    assert [(error["path"], error["message"]) for error in refused.value.errors] == [
        ("fields/0/options/choices", "Field “Status”: add at least one choice."),
        ("fields/1/options/min", "Field “rating”: the option “minimum” must be a number."),
        ("fields/2/options", "Field “owner”: unknown option “colour”."),
        ("fields/2/options/on_delete", "Field “owner”: the option “when the related record is deleted” must be one "
                                       "of: protect, set_null."),
    ]


def test_a_design_saved_with_widgets_keeps_choices_with_colours(tenant, builder):
    choices = [{"value": "new", "label": "New", "color": "#2f6fdf"}, {"value": "done", "label": "Done"}]
    response = post_design(builder, "vendor", [field_row("status", "choice", 0, json.dumps({"choices": choices}),
                                                              default='"new"')])
    assert response.status_code == 302, page_text(response)[:2000]
    field = Field.objects.get(entity__key="vendor", key="status")
    assert field.options == {"choices": choices} and field.default == "new"


def test_unpublished_changes_show_and_can_be_discarded_with_an_audit_event(scenario, builder):
    project = scenario["project"]
    assert services.design_state(project) == services.DesignState.LIVE
    listing = page_text(builder.get("/admin/dynamic_models/entity/"))
    assert "Unpublished changes" not in listing and "Live" in listing
    Field.objects.filter(entity=project, key="code").update(label="Project code")
    Field.objects.create(entity=project, key="owner", type="text", position=9)
    assert services.design_state(project) == services.DesignState.CHANGED
    assert "Unpublished changes" in page_text(builder.get("/admin/dynamic_models/entity/"))
    change = page_text(builder.get(f"/admin/dynamic_models/entity/{project.pk}/change/"))
    assert "Unpublished changes" in change and "Discard changes" in change

    confirm = page_text(builder.get(f"/admin/dynamic_models/entity/{project.pk}/discard/"))
    assert "These unpublished changes will be lost" in confirm and "Added field owner (text)" in confirm
    assert Field.objects.filter(entity=project, key="owner").exists()  # Asking changes nothing.
    done = builder.post(f"/admin/dynamic_models/entity/{project.pk}/discard/", follow=True)
    assert "are discarded" in page_text(done)
    assert not Field.objects.filter(entity=project, key="owner").exists()
    assert Field.objects.get(entity=project, key="code").label == ""
    assert services.design_state(project) == services.DesignState.LIVE
    event = AuditEvent.objects.filter(action="dynamic_models.entity.discard_changes").order_by("-seq").first()
    assert event.actor.username == "bea" and event.target_id == str(project.pk)
    assert "Added field owner (text)" in event.data["dropped"]
    # Nothing left to discard: the page says so instead of asking.
    again = builder.get(f"/admin/dynamic_models/entity/{project.pk}/discard/", follow=True)
    assert "no unpublished changes" in page_text(again)


def test_a_design_never_published_cannot_be_discarded(tenant):
    entity = design("vendor", [{"key": "name", "type": "text"}])
    assert services.design_state(entity) == services.DesignState.NEW
    with pytest.raises(services.DesignConflict):
        services.discard_changes(entity)


def test_roll_back_is_offered_only_with_an_earlier_version(scenario, builder):
    expense = scenario["expense"]
    change = page_text(builder.get(f"/admin/dynamic_models/entity/{expense.pk}/change/"))
    assert "/rollback/" not in change and not services.can_roll_back("expense")
    refused = builder.get(f"/admin/dynamic_models/entity/{expense.pk}/rollback/", follow=True)
    assert "has no earlier version to roll back to" in page_text(refused)
    Field.objects.create(entity=expense, key="vat_rate", type="decimal", position=20)
    services.publish(expense)
    change = page_text(builder.get(f"/admin/dynamic_models/entity/{expense.pk}/change/"))
    assert f"/admin/dynamic_models/entity/{expense.pk}/rollback/" in change and services.can_roll_back("expense")


def test_the_formula_editor_checks_against_the_unsaved_fields(tenant, builder):
    url = "/admin/dynamic_models/entity/check-expression/"
    fields = [{"key": "amount", "type": "decimal", "options": {"max_digits": 12, "decimal_places": 2}},
              {"key": "broken", "type": "choice", "options": {}}]

    def check(expression, fields=fields):
        return builder.post(url, json.dumps({"entity": "vendor", "fields": fields, "expression": expression}),
                                 content_type="application/json")

    valid = check("amount * 2").json()
    assert valid["errors"] == [] and valid["type"] == "a number"
    unknown = check("amount * rate").json()["errors"]
    assert unknown[0]["code"] == "unknown_field" and "rate" in unknown[0]["message"]
    assert check("broken == 'a'").json()["errors"]  # A field whose options are invalid is not offered.
    assert check("amount *").json()["errors"][0]["code"] == "expression_syntax"
    bad = builder.post(url, "[1", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["expression"][0]["code"] == "invalid"
    assert builder.get(url).status_code == 405


def test_the_designer_config_describes_each_type(tenant):
    config = designer.config("vendor")
    assert config["types"]["choice"]["default"] == "choice"
    assert config["types"]["boolean"]["default"] == "checkbox"
    assert config["types"]["date"]["default"] == "date"
    assert config["types"]["datetime"]["default"] == "datetime-local"
    assert config["types"]["decimal"]["default"] == "number"
    assert config["types"]["relation"]["default"] is None and config["types"]["formula"]["default"] is None
    assert config["types"]["text"]["schema"]["properties"]["regex"]
    assert {"key": "vendor", "label": "vendor"} in config["entities"]
    assert "round" in [function["name"] for function in config["functions"]]


def test_who_may_only_view_designs_sees_the_fields_read_only(scenario, acme, make_user, acme_client):
    from django.contrib.auth.models import Permission

    viewer = make_user(acme, "vera", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_entity", "view_field"]))
    assert acme_client.post("/admin/login/", {"username": "vera", "password": "correct-horse-battery"}).status_code == 302
    page = acme_client.get(f"/admin/dynamic_models/entity/{scenario['project'].pk}/change/")
    assert page.status_code == 200
    text = page_text(page)
    assert 'id="entity-designer"' not in text and "budget" in text  # The read-only table, no editor.
    check = acme_client.post("/admin/dynamic_models/entity/check-expression/", json.dumps({"expression": "1"}),
                             content_type="application/json")
    assert check.status_code == 403
