"""What a member may not see of a related entity stays unseen: pickers, filters, expand= and OpenAPI
offer only the related records the viewer may see (none without view permission on the target)."""

import pytest
from django.db import connection

from dynamic_models import runtime, transfer
from dynamic_models import services as entity_services
from dynamic_models.models import Entity, Field
from tests.dynamic_models.conftest import design
from tests.scenario import client_for, expenses_of


@pytest.fixture
def vendors(people, acme):
    """A `vendor` entity (alice has no permission on it), and expense.vendor pointing at it."""
    connection.set_tenant(acme)
    vendor = design("vendor", [{"key": "name", "type": "text", "required": True}], label="Vendor",
                    label_plural="Vendors", display_field="name")
    entity_services.publish(vendor)
    expense = Entity.objects.get(key="expense")
    Field.objects.create(entity=expense, position=99, key="vendor", type="relation", filterable=True,
                         options={"target": "vendor", "on_delete": "set_null"})
    entity_services.publish(expense)
    secret = runtime.get_model("vendor").objects.create(name="Secret Supplier GmbH")
    record = expenses_of(people["alice"]).first()
    record.vendor = secret
    record.save()
    return {"secret": secret, "record": record}


def test_alice_sees_no_vendor_name_anywhere(people, vendors):
    alice = people["alice"]
    name = vendors["secret"].name
    browser = client_for(alice, key=False)
    assert browser.get("/admin/data/vendor/").status_code == 403
    add = browser.get("/admin/data/expense/add/")
    assert add.status_code == 200 and name not in add.content.decode()
    change = browser.get(f"/admin/data/expense/{vendors['record'].pk}/change/")
    assert change.status_code == 200 and name not in change.content.decode()
    changelist = browser.get("/admin/data/expense/")
    assert changelist.status_code == 200 and name not in changelist.content.decode()
    api = client_for(alice)
    assert api.get("/api/v1/data/vendor/").status_code == 403
    expanded = api.get(f"/api/v1/data/expense/{vendors['record'].pk}/?expand=vendor")
    assert expanded.status_code == 200 and name not in expanded.content.decode()
    listed = api.get("/api/v1/data/expense/?expand=vendor")
    assert listed.status_code == 200 and name not in listed.content.decode()
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200 and name not in schema.content.decode()


def test_a_relation_accepts_only_records_its_writer_may_see_and_keeps_current_values(people, vendors, make_user,
                                                                                    acme):
    alice = people["alice"]
    api = client_for(alice)
    record = vendors["record"]
    other = runtime.get_model("vendor").objects.create(name="Other Ltd")
    refused = api.patch(f"/api/v1/data/expense/{record.pk}/", {"vendor": other.pk}, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["vendor"][0]["code"] == "does_not_exist"
    # Saving a record keeps a value its editor may not see: in the API ...
    kept = api.patch(f"/api/v1/data/expense/{record.pk}/", {"title": "Kept vendor",
                                                           "vendor": vendors["secret"].pk},
                     content_type="application/json")
    assert kept.status_code == 200, kept.json()
    # ... and in the admin, where it is named by its id only.
    browser = client_for(alice, key=False)
    page = browser.get(f"/admin/data/expense/{record.pk}/change/").content.decode()
    assert f'value="{vendors["secret"].pk}" selected>#{vendors["secret"].pk}</option>' in page
    # Someone who may see vendors gets them by name.
    boss = make_user(acme, "boss", is_staff=True, is_superuser=True)
    connection.set_tenant(acme)
    assert vendors["secret"].name in client_for(boss, key=False).get("/admin/data/expense/add/").content.decode()


def test_user_pickers_list_only_active_people(people, acme, make_user):
    make_user(acme, "gone", is_active=False)
    boss = make_user(acme, "boss", is_staff=True, is_superuser=True)
    connection.set_tenant(acme)
    entity_services.publish(design("errand", [{"key": "assignee", "type": "user"}], label="Errand"))
    page = client_for(boss, key=False).get("/admin/data/errand/add/").content.decode()
    assert ">alice<" in page and ">gone<" not in page and "AnonymousUser" not in page


def test_submitted_by_is_whoever_creates_the_expense_and_read_only_after(people, acme):
    alice, bob = people["alice"], people["bob"]
    browser = client_for(alice, key=False)
    form = {"title": "Admin taxi", "amount": "12.50", "currency": "CNY", "spent_on": "2026-01-05",
            "submitted_by": bob.pk}
    page = browser.get("/admin/data/expense/add/").content.decode()
    assert 'name="submitted_by"' not in page
    assert browser.post("/admin/data/expense/add/", form).status_code == 302
    created = runtime.get_model("expense").objects.get(title="Admin taxi")
    assert created.submitted_by == alice
    assert "Admin taxi" in browser.get("/admin/data/expense/").content.decode()  # In her own list.

    api = client_for(alice)
    body = {"title": "API taxi", "amount": "3.00", "spent_on": "2026-01-05"}
    refused = api.post("/api/v1/data/expense/", {**body, "submitted_by": bob.pk}, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["submitted_by"][0]["code"] == "read_only"
    response = api.post("/api/v1/data/expense/", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["submitted_by"] == alice.pk
    changed = api.patch(f"/api/v1/data/expense/{response.json()['id']}/", {"submitted_by": bob.pk},
                        content_type="application/json")
    assert changed.status_code == 400 and changed.json()["submitted_by"][0]["code"] == "read_only"

    # An import (here alice's, through the service: her role may not import) fills it too.
    report = transfer.import_rows("expense", [(1, {"title": "CSV taxi", "amount": "1", "spent_on": "2026-01-05"})],
                                  user=alice)
    assert report["created"] == 1, report
    assert runtime.get_model("expense").objects.get(title="CSV taxi").submitted_by == alice


def test_bulk_writes_accept_only_related_records_their_writer_may_see(people, vendors):
    api = client_for(people["alice"])
    other = runtime.get_model("vendor").objects.create(name="Other Ltd")
    body = [{"title": "Bulk taxi", "amount": "3.00", "spent_on": "2026-01-05", "vendor": other.pk}]
    refused = api.post("/api/v1/data/expense/bulk/", body, content_type="application/json")
    assert refused.status_code == 400, refused.json()
    assert "does_not_exist" in refused.content.decode()
    assert not runtime.get_model("expense").objects.filter(title="Bulk taxi").exists()
