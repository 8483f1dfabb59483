"""Entity design and generated record pages in the tenant's admin (DM-4), through HTTP."""

import datetime
import html
import re

import pytest

from dynamic_models import runtime
from dynamic_models.models import Entity, Field

from .conftest import design


@pytest.fixture
def staff_client(acme, make_user, acme_client):
    make_user(acme, "bea", is_staff=True, is_superuser=True)
    response = acme_client.post("/admin/login/?next=/admin/", {"username": "bea", "password": "correct-horse-battery"})
    assert response.status_code == 302
    return acme_client


def inline_form(prefix: str, rows: list[dict], total_initial: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(total_initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"{prefix}-{index}-{name}"] = value
    return data


def field_row(key, type_, position, options="{}", default="", **flags):
    row = {"key": key, "label": key.title(), "type": type_, "position": str(position), "options": options,
           "default": default, "help_text": ""}
    row.update({name: "on" for name, value in flags.items() if value})
    return row


def test_builder_designs_previews_and_publishes_in_admin(tenant, staff_client):
    data = {"key": "project", "label": "Project", "label_plural": "Projects", "description": "", "app": "expenses",
            "display_field": "name", "ordering": "name", "_preview": "1"}
    data.update(inline_form("fields", [
        field_row("name", "text", 0, '{"max_length": 100}', required=True, unique=True, searchable=True,
                  show_in_list=True),
        field_row("budget", "decimal", 1, '{"max_digits": 12, "decimal_places": 2}', show_in_list=True),
    ]))
    response = staff_client.post("/admin/dynamic_models/entity/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    entity = Entity.objects.get(key="project")
    assert response.url == f"/admin/dynamic_models/entity/{entity.pk}/preview/"

    preview = staff_client.get(response.url)
    body = html.unescape(preview.content.decode())
    assert "Create table dm_project with 2 fields." in body and 'CREATE TABLE "dm_project"' in body
    assert "No existing row is affected." in body

    published = staff_client.post(response.url, {"expected_version": "", "note": "first"}, follow=True)
    assert "Published project version 1" in published.content.decode()
    assert Entity.objects.get(key="project").published_version == 1

    # The generated admin is there on the next request, without a restart.
    listing = staff_client.get("/admin/data/project/")
    assert listing.status_code == 200 and "Projects" in listing.content.decode()
    added = staff_client.post("/admin/data/project/add/", {"name": "Apollo", "budget": "1200.50"})
    assert added.status_code == 302
    project = runtime.get_model("project").objects.get()
    assert (project.name, str(project.budget), project.created_by.username) == ("Apollo", "1200.50", "bea")
    assert "Apollo" in staff_client.get("/admin/data/project/?q=apo").content.decode()
    invalid = staff_client.post("/admin/data/project/add/", {"name": "Apollo", "budget": "abc"})
    assert "Project with this Name already exists." in invalid.content.decode()
    assert "Enter a number." in invalid.content.decode()


def test_preview_page_shows_refused_changes(scenario, staff_client):
    Project = runtime.get_model("project")
    Project.objects.create(name="A", code=None)
    code = Field.objects.get(entity=scenario["project"], key="code")
    code.required = True
    code.save()
    page = html.unescape(staff_client.get(f"/admin/dynamic_models/entity/{scenario['project'].pk}/preview/")
                         .content.decode())
    assert "1 rows have no value for code, which becomes required." in page
    assert "Publishing is refused" in page
    refused = html.unescape(staff_client.post(f"/admin/dynamic_models/entity/{scenario['project'].pk}/preview/",
                                              {"expected_version": "1"}, follow=True).content.decode())
    assert "which becomes required" in refused
    assert scenario["project"].__class__.objects.get(key="project").published_version == 1


def test_preview_shows_design_errors(tenant, staff_client):
    entity = design("thing", [{"key": "select", "type": "text"}])
    page = html.unescape(staff_client.get(f"/admin/dynamic_models/entity/{entity.pk}/preview/").content.decode())
    assert "The design has errors" in page and "SQL reserved word" in page


def test_generated_admin_has_filters_search_inlines_and_soft_delete(scenario, staff_client):
    Project, Expense = runtime.get_model("project"), runtime.get_model("expense")
    project = Project.objects.create(name="Apollo")
    expense = Expense.objects.create(title="Taxi", amount=5, spent_on=datetime.date(2026, 1, 2), project=project,
                                     category="travel")
    listing = staff_client.get("/admin/data/expense/?category__exact=travel").content.decode()
    assert "Taxi" in listing and "EXP-0001" in listing
    assert "By category" in listing or "category" in listing.lower()
    change = staff_client.get(f"/admin/data/project/{project.pk}/change/").content.decode()
    assert "Taxi" in change  # Expenses of the project show as an inline.
    deleted = staff_client.post(f"/admin/data/expense/{expense.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert Expense.objects.count() == 0 and Expense.all_objects.get().is_deleted
    trash = staff_client.get("/admin/data/expense/?state=deleted").content.decode()
    assert "Taxi" in trash
    staff_client.post("/admin/data/expense/?state=deleted", {"action": "restore_selected",
                                                              "_selected_action": [expense.pk]})
    assert Expense.objects.count() == 1
    # Purging takes only deleted records, for good.
    staff_client.post("/admin/data/expense/", {"action": "purge_selected", "_selected_action": [expense.pk]})
    assert Expense.all_objects.count() == 1
    expense.soft_delete()
    staff_client.post("/admin/data/expense/?state=deleted", {"action": "purge_selected",
                                                              "_selected_action": [expense.pk]})
    assert Expense.all_objects.count() == 0


def test_migration_history_rollback_and_diagram(scenario, staff_client):
    entity = scenario["expense"]
    Field.objects.create(entity=entity, key="vat_rate", type="decimal", position=20)
    staff_client.post(f"/admin/dynamic_models/entity/{entity.pk}/preview/", {"expected_version": "1"})
    page = html.unescape(staff_client.get(f"/admin/dynamic_models/entity/{entity.pk}/change/").content.decode())
    assert "Migration history" in page and "v1 → v2" in page and "add_field vat_rate" in page
    staff_client.post(f"/admin/dynamic_models/entity/{entity.pk}/rollback/")
    assert Entity.objects.get(pk=entity.pk).published_version == 3
    assert not Field.objects.filter(entity=entity, key="vat_rate").exists()
    diagram = html.unescape(staff_client.get("/admin/dynamic_models/entity/diagram/").content.decode())
    assert re.search(r'data-entity="expense"', diagram) and re.search(r'data-entity="project"', diagram)
    assert "expense.project → project" in diagram


def test_other_tenant_admin_does_not_show_acme_entities(scenario, globex, make_user, globex_client):
    make_user(globex, "gina", is_staff=True, is_superuser=True)
    globex_client.post("/admin/login/?next=/admin/", {"username": "gina", "password": "correct-horse-battery"})
    assert globex_client.get("/admin/data/expense/").status_code == 404
    assert "Expenses" not in globex_client.get("/admin/").content.decode()


def test_deleting_a_user_protected_by_records_shows_a_message(scenario, staff_client):
    from django.contrib.auth import get_user_model

    from dynamic_models import services

    submitted_by = Field.objects.get(entity=scenario["expense"], key="submitted_by")
    submitted_by.options = {"on_delete": "protect"}
    submitted_by.save()
    services.publish(scenario["expense"])
    alice = get_user_model().objects.create_user("alice")
    runtime.get_model("expense").objects.create(title="Taxi", amount=5, spent_on=datetime.date(2026, 1, 2),
                                                submitted_by=alice)
    response = staff_client.post(f"/admin/auth/user/{alice.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "Cannot delete: alice is referenced by Expenses" in html.unescape(response.content.decode())
    assert get_user_model().objects.filter(username="alice").exists()


def test_generated_admin_speaks_the_entity_translations(scenario, staff_client):
    from dynamic_models import services

    entity = scenario["expense"]
    entity.translations = {"zh-hans": {"label": "费用", "label_plural": "费用报销", "fields": {"title": "标题"}}}
    entity.save()
    services.publish(entity)
    page = staff_client.get("/admin/data/expense/add/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "增加 费用" in page and "标题" in page
    assert "Add Expense" in staff_client.get("/admin/data/expense/add/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
