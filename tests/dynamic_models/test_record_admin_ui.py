"""The generated admin of records as people see it (issue 12, findings 3, 7, 8 and 11): forms and
lists without Python internals, every column the builder chose, a history in words, a restore that
asks first, and export and import with the API's services."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import formats

from audit.models import AuditEvent
from dynamic_models import records, runtime, services, transfer
from dynamic_models.models import ImportJob
from rbac import services as rbac
from tests.scenario import client_for, expenses_of

from .conftest import design

OLD_IBAN = "DE89370400440532013000"
REPR = re.compile(r"object at 0x|&lt;django\.|>\s*None\s*<")


@pytest.fixture
def bea(acme, make_user, acme_client):
    acme_client.force_login(make_user(acme, "bea", is_staff=True, is_superuser=True, first_name="Bea",
                                      last_name="Builder"))
    connection.set_tenant(acme)
    return acme_client


@pytest.fixture
def things(tenant):
    """An entity with every kind of field a form shows read-only or starts empty, and 12 list columns."""
    entity = design("thing", [
        {"key": "number", "type": "auto_number", "options": {"prefix": "T-"}},
        {"key": "name", "type": "text"},
        {"key": "data", "type": "json"},
        {"key": "body", "type": "rich_text"},
        {"key": "summary", "type": "rich_text", "read_only": True},
        {"key": "twice", "type": "formula", "options": {"expression": "qty * 2"}},
        {"key": "qty", "type": "integer"},
        {"key": "size", "type": "choice", "options": {"choices": [{"value": "s", "label": "Small"},
                                                                   {"value": "l", "label": "Large"}]}},
        *({"key": f"extra_{index}", "type": "text"} for index in range(6)),
        {"key": "secret_note", "type": "text", "show_in_list": False},
    ], label="Thing", label_plural="Things", display_field="name")
    services.publish(entity)
    return runtime.get_model("thing")


def page_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def field_box(page: str, name: str) -> str:
    """The form row of field `name` (its label and value)."""
    return re.search(rf'<div class="form-row field-{name}">.*?</fieldset>|<div class="form-row field-{name}">.*?'
                     r'(?=<div class="form-row)', page, re.S).group(0)


# --- 1. forms and lists without Python internals ---------------------------------------------


def test_add_form_shows_no_python_internals(things, bea):
    page = page_of(bea.get("/admin/data/thing/add/"))
    assert not REPR.search(page), REPR.search(page)
    assert "Assigned on save" in field_box(page, "assigned_number")
    assert "Computed on save" in field_box(page, "formula_twice")
    assert re.search(r'<textarea name="data"[^>]*>\s*</textarea>', page)  # Empty, not `null`.
    # In the entity's order, not read-only fields last.
    assert page.index("field-assigned_number") < page.index("field-name") < page.index("field-formula_twice") \
        < page.index("field-qty")

    bea.post("/admin/data/thing/add/", {"name": "Widget", "qty": "21", "data": "", "body": "<p>Hi</p>",
                                        "size": "l"})
    thing = things.objects.get()
    assert thing.number == "T-0001" and thing.data is None
    things.objects.filter(pk=thing.pk).update(summary='<p>Read <b>this</b><script>alert(1)</script></p>')
    change = page_of(bea.get(f"/admin/data/thing/{thing.pk}/change/"))
    assert not REPR.search(change)
    assert "T-0001" in field_box(change, "assigned_number")
    assert "42" in field_box(change, "formula_twice")
    summary = field_box(change, "rich_summary")
    assert "<b>this</b>" in summary and "script" not in summary and "&lt;b&gt;" not in summary
    assert 'name="summary"' not in change  # Read-only: no input a post could set.


def test_list_shows_every_column_the_builder_chose(things, bea):
    things.objects.create(name="Widget", qty=2, body="<p>Bold <b>claim</b> &amp; more</p>", size="s")
    page = page_of(bea.get("/admin/data/thing/"))
    columns = re.findall(r'<th scope="col" class="[^"]*column-([a-z_0-9]+)', page)
    assert columns == ["name", "number", "data", "plain_body", "plain_summary", "formula_twice", "qty", "size",
                       *(f"extra_{index}" for index in range(6))]  # 14 columns: no cap at 9.
    assert "secret_note" not in columns
    row = re.search(r'<tbody>.*</tbody>', page, re.S).group(0)
    assert "Bold claim &amp; more" in row and "&lt;" not in row  # Rich text as plain text.
    assert "Small" in row and "4" in row
    assert "lowcode/records/records.css" in page  # The list scrolls in its box, the display column sticky.


# --- 3. history in words, restore with a confirmation ----------------------------------------


def test_history_in_words_as_alice_with_the_iban_masked(people):
    alice, frank = people["alice"], people["frank"]
    Project = runtime.get_model("project")
    draft = expenses_of(alice).filter(status="draft").first()
    draft.notes = ""  # None -> "": nothing anyone sees changes.
    records.save(draft, user=frank)
    borealis = Project.objects.get(name="Borealis")
    draft.project, draft.iban, draft.category, draft.amount = borealis, OLD_IBAN, "other", "455.00"
    records.save(draft, user=frank)

    page = html.unescape(page_of(client_for(alice, key=False).get(f"/admin/data/expense/{draft.pk}/history/")))
    assert page.count('<tr class="event-update">') == 1  # The notes-only save is left out.
    assert page.count('<tr class="event-create">') == 1
    changes = re.search(r'<tr class="event-update">.*?</tr>', page, re.S).group(0)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", changes))
    assert "Project : Apollo → Borealis" in text  # Labels and display values, not ids.
    assert "IBAN : ****3000" in text and OLD_IBAN not in page  # Masked for alice.
    assert "Amount : 420.00 → 455.00" in text and "Category : Meals → Other" in text
    table = re.search(r'<table id="change-history">.*</table>', page, re.S).group(0)
    assert "Notes" not in table and "notes" not in table  # No `notes: — →` line.
    created = re.search(r'<tr class="event-create">.*?</tr>', page, re.S).group(0)
    assert "Submitted by" in created and "Alice" in created
    assert re.search(rf"Spent on</strong>:\s*<span class=\"change-value\">{formats.localize(draft.spent_on)}<", created)
    labels = re.findall(r"<strong>(.*?)</strong>", created)
    assert labels[:3] == ["Number", "Title", "Amount"]  # In the entity's order.
    assert "object at 0x" not in page and f"project: {borealis.pk}" not in page.lower()

    # frank sees the IBAN itself.
    full = html.unescape(page_of(client_for(frank, key=False).get(f"/admin/data/expense/{draft.pk}/history/")))
    assert OLD_IBAN in full


def test_history_names_a_related_record_the_reader_may_not_see_by_its_id(people):
    alice, frank = people["alice"], people["frank"]
    draft = expenses_of(alice).filter(status="draft").first()
    auditor = rbac.create_role("auditor", grants=["data.view_expense"])
    rbac.add_scope(auditor, "expense", "all")
    reader = get_user_model().objects.create_user("ivy", "ivy@acme.example", "x", is_staff=True)
    rbac.assign_role(reader, auditor)
    created = records.history(draft, user=reader)[0]
    project = {change.field: change for change in created.changes}["project"]
    assert (project.label, project.before, project.after) == ("Project", "", f"#{draft.project_id}")
    assert {change.field: change for change in records.history(draft, user=frank)[0].changes}[
        "project"].after == draft.project.name


def test_choice_labels_and_people_by_name_in_history(things, bea):
    bea.post("/admin/data/thing/add/", {"name": "Widget", "qty": "1", "size": "s"})
    thing = things.objects.get()
    bea.post(f"/admin/data/thing/{thing.pk}/change/", {"name": "Widget", "qty": "1", "size": "l"})
    page = html.unescape(page_of(bea.get(f"/admin/data/thing/{thing.pk}/history/")))
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Size : Small → Large" in text
    assert "Bea Builder" in text  # Who did it, by name.


def test_restore_asks_first_showing_what_will_change(people):
    alice, frank = people["alice"], people["frank"]
    frank.is_superuser = True
    frank.save()
    draft = expenses_of(alice).filter(status="draft").first()
    original_title = draft.title
    draft.title, draft.amount = "Lunch with Globex", "460.00"
    records.save(draft, user=frank)
    created = records.history(draft, user=frank)[0].event
    browser = client_for(frank, key=False)

    history = page_of(browser.get(f"/admin/data/expense/{draft.pk}/history/"))
    url = f"/admin/data/expense/{draft.pk}/history/{created.seq}/restore/"
    assert f'href="{url}"' in history and "<form" not in re.search(r'<table id="change-history">.*</table>',
                                                                   history, re.S).group(0)
    confirm = html.unescape(page_of(browser.get(url)))
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th><td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)</td></tr>", confirm, re.S)
    assert sorted(rows) == [("Amount", "460.00", "420.00"), ("Title", "Lunch with Globex", original_title)]
    assert "Yes, restore this version" in confirm
    draft.refresh_from_db()
    assert draft.title == "Lunch with Globex"  # Nothing restored by looking.

    response = browser.post(url)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.title, str(draft.amount)) == (original_title, "420.00")
    assert browser.get(f"/admin/data/expense/{draft.pk}/history/999999/restore/").status_code == 404


def test_restore_confirmation_keeps_masked_values_masked(people):
    alice, frank = people["alice"], people["frank"]
    draft = expenses_of(alice).filter(status="draft").first()
    draft.iban = OLD_IBAN
    records.save(draft, user=frank)
    created = records.history(draft, user=alice)[0].event
    changes = records.restore_changes(draft, created.seq, user=alice)
    assert [(change.label, change.before, change.after) for change in changes] == [("IBAN", "****3000", "")]
    page = page_of(client_for(alice, key=False).get(f"/admin/data/expense/{draft.pk}/history/{created.seq}/restore/"))
    assert OLD_IBAN not in page and "****3000" in page


# --- 4. export and import in admin ----------------------------------------------------------


def test_export_of_the_filtered_list_needs_the_export_permission(people):
    alice, frank = people["alice"], people["frank"]
    as_frank = client_for(frank, key=False)
    listing = page_of(as_frank.get("/admin/data/expense/?status__exact=draft"))
    assert 'href="/admin/data/expense/export.csv?status__exact=draft"' in listing
    response = as_frank.get("/admin/data/expense/export.csv?status__exact=draft")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="expense-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    drafts = runtime.get_model("expense").objects.filter(status="draft")
    assert sorted(row["title"] for row in rows) == sorted(drafts.values_list("title", flat=True))
    assert any(row["iban"] for row in rows) or not any(drafts.values_list("iban", flat=True))
    event = AuditEvent.objects.filter(action="data.expense.export").latest("seq")
    assert event.actor_repr == "frank" and event.data == {"format": "csv", "query": {"status__exact": "draft"}}
    refused = as_frank.get("/admin/data/expense/export.csv?colour=red")
    assert refused.status_code == 400 and "filters are not valid" in refused.content.decode()
    xlsx = as_frank.get("/admin/data/expense/export.xlsx")
    assert xlsx.status_code == 200 and xlsx["Content-Type"] == transfer.XLSX_CONTENT_TYPE

    as_alice = client_for(alice, key=False)
    assert "export.csv" not in page_of(as_alice.get("/admin/data/expense/"))
    assert as_alice.get("/admin/data/expense/export.csv").status_code == 403
    assert as_alice.get("/admin/data/expense/import/").status_code == 403


def _upload(name: str, text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_import_shows_a_dry_run_then_imports(people):
    frank = people["frank"]
    frank.is_superuser = True
    frank.save()
    Expense = runtime.get_model("expense")
    before = Expense.objects.count()
    browser = client_for(frank, key=False)
    assert 'href="/admin/data/expense/import/"' in page_of(browser.get("/admin/data/expense/"))
    assert "Check the file" in page_of(browser.get("/admin/data/expense/import/"))

    bad = page_of(browser.post("/admin/data/expense/import/", {"file": _upload(
        "expenses.csv", "title,amount,spent_on\nTaxi,12.50,2026-01-05\nHotel,-3,2026-01-06\n")}))
    errors = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td><td>(.*?)</td></tr>", html.unescape(bad))
    assert [(row, field) for row, field, _message in errors] == [("2", "Amount")]
    assert "1 row has errors" in bad and 'name="token"' not in bad and "Check the file" in bad
    assert Expense.objects.count() == before

    good = page_of(browser.post("/admin/data/expense/import/", {"file": _upload(
        "expenses.csv", "title,amount,spent_on\nTaxi,12.50,2026-01-05\nHotel,80,2026-01-06\n")}))
    assert "Dry run: 2 of 2 rows are valid" in good
    token = re.search(r'name="token" value="([^"]+)"', good).group(1)
    assert Expense.objects.count() == before  # A dry run writes nothing.

    done = page_of(browser.post("/admin/data/expense/import/", {"token": token}))
    assert "Imported 2 records." in done
    assert Expense.objects.count() == before + 2
    assert AuditEvent.objects.filter(action="data.expense.import").latest("seq").data == {"created": 2}
    again = page_of(browser.post("/admin/data/expense/import/", {"token": token}))
    assert "no longer available" in again and Expense.objects.count() == before + 2
    assert client_for(people["alice"], key=False).post("/admin/data/expense/import/",
                                                       {"token": token}).status_code == 403


def test_a_held_upload_is_its_uploaders_only(people):
    frank, mia = people["frank"], people["mia"]
    source = transfer.ImportSource("csv", b"title\nTaxi\n")
    token = transfer.hold_upload("expense", source, user=frank)
    assert transfer.held_upload("expense", token, user=frank) == source
    for entity_key, user in (("expense", mia), ("project", frank)):
        with pytest.raises(transfer.TransferError) as refused:
            transfer.held_upload(entity_key, token, user=user)
        assert refused.value.code == "expired"


def test_a_big_import_runs_as_a_job_with_a_progress_bar(people, settings):
    settings.API_IMPORT_SYNC_MAX_ROWS = 2
    frank = people["frank"]
    frank.is_superuser = True
    frank.save()
    Expense = runtime.get_model("expense")
    before = Expense.objects.count()
    browser = client_for(frank, key=False)
    rows = "".join(f"Taxi {number},1{number}.00,2026-01-0{number}\n" for number in range(1, 4))
    response = browser.post("/admin/data/expense/import/", {"file": _upload("big.csv", "title,amount,spent_on\n" + rows)})
    job = ImportJob.objects.get()
    assert job.dry_run and response.status_code == 302
    assert response.url.startswith(f"/admin/data/expense/import/{job.pk}/?token=")

    waiting = page_of(browser.get(response.url))
    status_url = f"/api/v1/data/import-jobs/{job.pk}/"
    assert f'data-import-job-status="{status_url}"' in waiting and '<progress max="100" value="0"' in waiting
    assert "lowcode/records/import_job.js" in waiting
    jobs = page_of(browser.get("/admin/dynamic_models/importjob/"))
    assert f'href="/admin/data/expense/import/{job.pk}/">Progress and report</a>' in jobs
    assert browser.get(status_url).json()["status"] == "queued"  # What the progress bar polls.

    transfer.run_import_job(job.pk)  # What the Celery worker does once the upload commits.
    assert browser.get(status_url).json()["progress"] == 100
    checked = page_of(browser.get(response.url))
    assert "Dry run: 3 of 3 rows are valid" in checked and "import_job.js" not in checked
    token = re.search(r'name="token" value="([^"]+)"', checked).group(1)

    started = browser.post("/admin/data/expense/import/", {"token": token})
    real = ImportJob.objects.exclude(pk=job.pk).get()
    assert started.url == f"/admin/data/expense/import/{real.pk}/" and not real.dry_run
    transfer.run_import_job(real.pk)
    assert "Imported 3 records." in page_of(browser.get(started.url))
    assert Expense.objects.count() == before + 3
    # Another tenant member without view permission on the entity cannot follow the job.
    assert client_for(people["bea"], key=False).get(started.url).status_code in (403, 404)


def test_an_invalid_upload_is_refused_naming_the_problem(people):
    frank = people["frank"]
    frank.is_superuser = True
    frank.save()
    browser = client_for(frank, key=False)
    page = html.unescape(page_of(browser.post("/admin/data/expense/import/", {"file": _upload(
        "expenses.csv", "title,colour\nTaxi,red\n")})))
    assert "Unknown columns: colour" in page
    assert ImportJob.objects.count() == 0


def test_list_names_only_related_records_the_viewer_may_see(people):
    auditor = rbac.create_role("auditor", grants=["data.view_expense"])
    rbac.add_scope(auditor, "expense", "all")
    ivy = get_user_model().objects.create_user("ivy", "ivy@acme.example", "x", is_staff=True)
    rbac.assign_role(ivy, auditor)
    expense = runtime.get_model("expense").objects.filter(project__name="Apollo").first()

    page = page_of(client_for(ivy, key=False).get("/admin/data/expense/"))
    assert f'<td class="field-related_project">#{expense.project_id}</td>' in page and "Apollo" not in page
    frank = page_of(client_for(people["frank"], key=False).get("/admin/data/expense/"))
    assert '<td class="field-related_project">Apollo</td>' in frank


def test_inline_records_of_a_related_record_follow_the_viewers_scope(people):
    alice, bob = people["alice"], people["bob"]
    apollo = runtime.get_model("project").objects.get(name="Apollo")
    bobs = runtime.get_model("expense").objects.filter(submitted_by=bob)
    bobs.update(project_id=apollo.pk)
    page = page_of(client_for(alice, key=False).get(f"/admin/data/project/{apollo.pk}/change/"))
    assert expenses_of(alice).filter(project_id=apollo.pk).first().title in html.unescape(page)
    for title in bobs.values_list("title", flat=True):
        assert title not in html.unescape(page)
    assert "DE89370400440532013000" not in page and "IBAN" not in page  # Masked for alice: not in the inline.
    assert not re.search(r'name="[^"]*-0-title"', page)  # Read-only: changed on its own page.
    assert 'class="inlineviewlink"' in page
