"""The end-user site (issue 14): home, menu, theme, and each entity's table, detail, export,
bulk actions, inline edits and saved views, as the scenario's people see them."""

from __future__ import annotations

import pytest

from dynamic_models import runtime
from tests.scenario import client_for, expenses_of

IBAN = "DE89370400440532013000"


@pytest.fixture
def clients(people):
    expenses_of(people["alice"]).update(iban=IBAN)
    return {name: client_for(people[name], key=False) for name in ("alice", "bob", "mia", "frank")}


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code, response.content[:2000])
    return response.content.decode()


def test_home_lists_the_entities_with_counts_the_viewer_may_see(clients, people):
    html = page(clients["alice"], "/")
    own = expenses_of(people["alice"]).count()
    assert "Expenses" in html
    assert f"{own} record" in html
    assert 'href="/data/expense/"' in html


def test_anonymous_visitors_are_sent_to_log_in(acme_client, people):
    response = acme_client.get("/data/expense/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    home = page(acme_client, "/")
    assert 'href="/accounts/login/?next=/"' in home and "/data/" not in home


def test_alice_sees_only_her_expenses_with_the_iban_masked(clients, people):
    alice = people["alice"]
    expense = runtime.get_model("expense")
    html = page(clients["alice"], "/data/expense/")
    for record in expense.objects.all():
        shown = f'href="/data/expense/{record.pk}/"' in html
        assert shown == (record.submitted_by_id == alice.pk), record
    assert IBAN not in html
    assert "****" + IBAN[-4:] in html


def test_frank_reads_the_iban_in_clear(clients, people):
    record = expenses_of(people["alice"]).first()
    assert IBAN in page(clients["frank"], f"/data/expense/{record.pk}/")
    assert IBAN not in page(clients["alice"], f"/data/expense/{record.pk}/")


def test_records_outside_the_scope_answer_404(clients, people):
    bobs = expenses_of(people["bob"]).first()
    for path in (f"/data/expense/{bobs.pk}/", f"/data/expense/{bobs.pk}/edit/"):
        page(clients["alice"], path, 404)
    response = clients["alice"].post(f"/data/expense/{bobs.pk}/cell/", {"field": "title", "value": "Mine"})
    assert response.status_code == 404
    assert clients["alice"].post(f"/data/expense/{bobs.pk}/delete/").status_code == 404
    assert runtime.get_model("expense").objects.filter(pk=bobs.pk).exists()
    page(clients["mia"], f"/data/expense/{bobs.pk}/")
    page(clients["alice"], "/data/expense/999999/", 404)
    page(clients["alice"], "/data/nothing/", 404)


def test_every_entity_page_answers_for_each_person(clients, people):
    record = expenses_of(people["alice"]).first()
    project = runtime.get_model("project").objects.first()
    for name, client in clients.items():
        for path in ("/", "/data/expense/", "/data/project/", f"/data/project/{project.pk}/"):
            page(client, path)
        page(client, f"/data/expense/{record.pk}/", 200 if name in ("alice", "mia", "frank") else 404)


def test_status_is_read_only_for_members_in_the_table(clients, people):
    html = page(clients["alice"], "/data/expense/")
    assert 'data-edit="status"' not in html
    assert 'data-edit="title"' in html  # Her drafts' titles are hers to change.
    record = expenses_of(people["alice"]).first()
    response = clients["alice"].post(f"/data/expense/{record.pk}/cell/", {"field": "status", "value": "approved"})
    assert response.status_code == 400
    assert response.json()["status"][0]["code"] == "read_only"
    record.refresh_from_db()
    assert record.status != "approved"


def test_inline_edit_writes_through_the_records_service(clients, people):
    from audit.models import AuditEvent

    record = expenses_of(people["alice"]).filter(status="draft").first()
    response = clients["alice"].post(f"/data/expense/{record.pk}/cell/", {"field": "title", "value": "Taxi to the fair"})
    assert response.status_code == 200, response.content
    assert response.json()["text"] == "Taxi to the fair"
    record.refresh_from_db()
    assert record.title == "Taxi to the fair"
    assert AuditEvent.objects.filter(action="data.expense.update", target_id=str(record.pk)).exists()
    response = clients["alice"].post(f"/data/expense/{record.pk}/cell/", {"field": "amount", "value": "-3"})
    assert response.status_code == 400
    assert "amount" in response.json()


def test_filters_sort_and_search_only_on_fields_read_in_clear(clients, people):
    html = page(clients["frank"], "/data/expense/?status=draft&sort=-amount")
    assert 'name="status"' in html
    page(clients["alice"], "/data/expense/?iban=x", 400)
    page(clients["alice"], "/data/expense/?sort=iban", 400)
    page(clients["frank"], "/data/expense/?sort=iban")
    page(clients["frank"], "/data/expense/?spent_on__gte=not-a-date", 400)
    page(clients["frank"], "/data/expense/?page=99", 404)


def test_filtered_export_for_frank_only(clients, people):
    response = clients["frank"].get("/data/expense/export.csv?status=draft")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    drafts = runtime.get_model("expense").objects.filter(status="draft").count()
    assert len(body.strip().splitlines()) == drafts + 1
    assert IBAN in body
    assert clients["alice"].get("/data/expense/export.csv").status_code == 403
    assert "export.csv" not in page(clients["alice"], "/data/expense/")
    assert "export.csv" in page(clients["frank"], "/data/expense/")


def test_bulk_set_and_delete_in_scope(clients, people):
    expense = runtime.get_model("expense")
    ids = list(expense.objects.values_list("pk", flat=True)[:2])
    response = clients["frank"].post("/data/expense/bulk/", {"ids": ids, "action": "set:category=meals"})
    assert response.status_code == 302
    assert set(expense.objects.filter(pk__in=ids).values_list("category", flat=True)) == {"meals"}
    bobs = expenses_of(people["bob"]).first()
    response = clients["alice"].post("/data/expense/bulk/", {"ids": [bobs.pk], "action": "delete"})
    assert response.status_code == 404
    assert expense.objects.filter(pk=bobs.pk).exists()
    assert clients["alice"].post("/data/expense/bulk/", {"ids": ids[:1], "action": "set:status=approved"}) \
        .status_code in (400, 404)
    submitted = expenses_of(people["alice"]).exclude(status="draft").first()
    response = clients["alice"].post("/data/expense/bulk/", {"ids": [submitted.pk], "action": "set:category=other"},
                                     follow=True)
    assert "You may not" in response.content.decode()
    submitted.refresh_from_db()
    assert submitted.category != "other"


def test_saved_views_are_kept_per_user_and_shared_with_roles(clients, people):
    from pages.models import SavedView

    response = clients["alice"].post("/data/expense/views/", {"name": "My meals", "type": "table",
                                                             "query": "category=meals&sort=-amount&columns=title,amount"})
    assert response.status_code == 302
    view = SavedView.objects.get(name="My meals")
    assert view.state["filters"] == {"category": "meals"} and view.state["sort"] == "-amount"
    assert view.state["columns"] == ["title", "amount"]
    assert "category=meals" in response["Location"]
    assert "My meals" in page(clients["alice"], "/data/expense/")
    assert "My meals" not in page(clients["bob"], "/data/expense/")
    response = clients["alice"].post("/data/expense/views/", {"name": "Team", "type": "table", "query": "",
                                                             "roles": ["member"]})
    assert "Team" in page(clients["bob"], "/data/expense/")
    refused = clients["alice"].post("/data/expense/views/", {"name": "Boss", "type": "table", "query": "",
                                                            "roles": ["finance"]})
    assert refused.status_code == 302 and not SavedView.objects.filter(name="Boss").exists()
    assert clients["bob"].post(f"/data/expense/views/{view.pk}/delete/").status_code == 404


def test_menu_is_grouped_and_ordered_by_the_builder(clients, people):
    from pages.models import MenuGroup, MenuItem

    money = MenuGroup.objects.create(label="Money", position=1)
    MenuItem.objects.create(target="entity:expense", label="Claims", group=money, position=1)
    MenuItem.objects.create(target="entity:project", hidden=True)
    html = page(clients["alice"], "/")
    assert "Money" in html and ">Claims</a>" in html
    assert 'href="/data/project/"' not in html.split("</nav>", 2)[1]


def test_theme_colours_the_pages(clients, people):
    from pages.models import Theme

    Theme.objects.create(brand_colour="#aa3377", mode="dark")
    html = page(clients["alice"], "/")
    assert "--brand: #aa3377" in html and 'data-theme="dark"' in html


def test_alice_creates_and_edits_an_expense_through_the_generated_form(clients, people):
    alice = people["alice"]
    page(clients["alice"], "/data/expense/new/")
    project = runtime.get_model("project").objects.first()
    before = expenses_of(alice).count()
    response = clients["alice"].post("/data/expense/new/", {
        "title": "Train to Lyon", "amount": "42.00", "currency": "EUR", "spent_on": "2026-01-05",
        "category": "travel", "project": str(project.pk)})
    assert response.status_code == 302, response.content.decode()[:3000]
    created = expenses_of(alice).order_by("-id").first()
    assert expenses_of(alice).count() == before + 1 and created.title == "Train to Lyon"
    assert response["Location"] == f"/data/expense/{created.pk}/"
    html = page(clients["alice"], f"/data/expense/{created.pk}/edit/")
    assert "Train to Lyon" in html
    response = clients["alice"].post(f"/data/expense/{created.pk}/edit/", {
        "title": "", "amount": "42.00", "currency": "EUR", "spent_on": "2026-01-05", "category": "travel"})
    assert response.status_code == 400
    created.refresh_from_db()
    assert created.title == "Train to Lyon"


def test_bob_may_not_edit_alices_expense_and_members_see_no_edit_of_submitted_ones(clients, people):
    record = expenses_of(people["alice"]).first()
    assert clients["bob"].post(f"/data/expense/{record.pk}/edit/", {"title": "Mine"}).status_code == 404


def test_deleting_a_record_asks_first_then_soft_deletes_it(clients, people, make_user, acme):
    record = expenses_of(people["alice"]).filter(status="draft").first()
    page(clients["alice"], f"/data/expense/{record.pk}/delete/", 403)  # Members may not delete.
    admin = client_for(make_user(acme, "admin", is_superuser=True), key=False)
    assert "Yes, delete it" in page(admin, f"/data/expense/{record.pk}/delete/")
    assert runtime.get_model("expense").objects.filter(pk=record.pk).exists()
    response = admin.post(f"/data/expense/{record.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/data/expense/"
    assert not runtime.get_model("expense").objects.filter(pk=record.pk).exists()
    assert runtime.get_model("expense").all_objects.filter(pk=record.pk).exists()
    page(admin, f"/data/expense/{record.pk}/", 404)
