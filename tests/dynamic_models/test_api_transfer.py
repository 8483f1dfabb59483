"""CSV/XLSX export and import of records (DM-5) through the API, and big imports as Celery jobs."""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import json
import time
import zipfile
from urllib.parse import urlsplit

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client
from django_tenants.utils import tenant_context
from drf_spectacular.validation import validate_schema

from dynamic_models import runtime, transfer
from dynamic_models.models import ImportJob
from lowcode.apikeys import services as apikeys
from lowcode.tenancy import services as tenancy

from .conftest import EXPENSE_FIELDS, PROJECT_FIELDS, design, expense, project

XLSX = transfer.XLSX_CONTENT_TYPE


def expenses():
    return runtime.get_model("expense").objects


def upload(client, entity, content: bytes | str, *, name="rows.csv", content_type="text/csv", query=""):
    if isinstance(content, str):
        content = content.encode()
    file = SimpleUploadedFile(name, content, content_type=content_type)
    return client.post(f"/api/v1/data/{entity}/import/{query}", {"file": file})


def read_csv(response) -> list[list[str]]:
    assert response.streaming  # Rows are produced as the client reads them.
    body = b"".join(response.streaming_content)
    assert body.startswith(codecs.BOM_UTF8)  # Excel reads UTF-8 (Chinese text) only with a BOM.
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def xlsx_bytes(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


# --- export -----------------------------------------------------------------------------------

def test_csv_export_streams_filtered_rows_and_chosen_fields(api):
    apollo = project()
    taxi = expense(title="出租车到机场", currency="CNY", project=apollo)
    expense(title="Hotel", currency="USD")
    response = api.get("/api/v1/data/expense/export.csv?currency=CNY&fields=title,amount,project,id")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment") and f'expense-{datetime.date.today().isoformat()}.csv' in disposition
    assert read_csv(response) == [["id", "title", "amount", "project"],
                                  [str(taxi.pk), "出租车到机场", "12.50", str(apollo.pk)]]
    # With the router's trailing slash too, search and ordering as in the list.
    expense(title="Taxi back", currency="CNY")
    rows = read_csv(api.get("/api/v1/data/expense/export.csv/?search=taxi&ordering=title&fields=title"))
    assert rows == [["title"], ["Taxi back"]]
    # A client asking for the file's type gets it.
    assert api.get("/api/v1/data/expense/export.csv?fields=title", HTTP_ACCEPT="text/csv").status_code == 200


def test_csv_export_has_every_field_and_reimports(api):
    apollo = project()
    expense(title="午餐", project=apollo, category="meals")
    rows = read_csv(api.get("/api/v1/data/expense/export.csv"))
    header = rows[0]
    assert header[:5] == ["id", "created_at", "updated_at", "created_by", "updated_by"]
    assert {"number", "title", "amount", "project", "submitted_by"} <= set(header)
    record = dict(zip(header, rows[1], strict=True))
    assert record["number"].startswith("EXP-") and record["notes"] == "" and record["category"] == "meals"
    # The export imports back: system and read-only columns (id, number...) are ignored.
    output = io.StringIO()
    csv.writer(output).writerows(rows)
    response = upload(api, "expense", "\ufeff" + output.getvalue())
    assert response.status_code == 201, response.json()
    assert set(response.json()["ignored_columns"]) >= {"id", "number", "created_at"}
    assert expenses().filter(title="午餐").count() == 2


def test_csv_export_refuses_unknown_filters_and_fields(api):
    assert api.get("/api/v1/data/expense/export.csv?colour=red").status_code == 400
    response = api.get("/api/v1/data/expense/export.csv?fields=colour", HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert "fields" in response.json()


def test_xlsx_export(api):
    apollo = project()
    expense(title="酒店", amount="1200.50", project=apollo, notes="=HYPERLINK(\"http://evil\")")
    expense(title="Taxi", currency="USD")
    response = api.get("/api/v1/data/expense/export.xlsx?currency=CNY&fields=title,amount,spent_on,project,notes")
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    assert "expense-" in response["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows[0] == ("title", "amount", "spent_on", "project", "notes")
    assert rows[1][:4] == ("酒店", 1200.5, datetime.datetime(2026, 1, 5), apollo.pk)
    assert rows[1][4] == '=HYPERLINK("http://evil")'  # Text, not a formula.
    assert workbook.active["E2"].data_type == "s"
    assert len(rows) == 2


FORMULAS = ["=1+2", "+SUM(A1)", "-2+3", "@SUM(A1)", "\tTab", "\rReturn", "'=quoted before", "-5", "+1e3", "Plain"]


def test_csv_export_keeps_formulas_inert_and_numbers_numbers(api):
    for index, text in enumerate(FORMULAS):
        project(name=text, budget="-1500.25" if index == 0 else None)
    rows = read_csv(api.get("/api/v1/data/project/export.csv?fields=name,budget&ordering=id"))
    assert rows[1:] == [["'=1+2", "-1500.25"], ["'+SUM(A1)", ""], ["'-2+3", ""], ["'@SUM(A1)", ""], ["'\tTab", ""],
                        ["'\rReturn", ""], ["''=quoted before", ""], ["-5", ""], ["+1e3", ""], ["Plain", ""]]
    # Imported back, each cell is the value exported (names are unique: the copies get a suffix; text
    # fields trim surrounding whitespace, as for any request).
    copies = io.StringIO()
    csv.writer(copies).writerows([rows[0], *([name + " (copy)", budget] for name, budget in rows[1:])])
    response = upload(api, "project", copies.getvalue())
    assert response.status_code == 201, response.json()
    names = runtime.get_model("project").objects.filter(name__endswith=" (copy)").values_list("name", flat=True)
    assert sorted(names) == sorted(f"{text} (copy)".strip() for text in FORMULAS)


def test_xlsx_export_keeps_formulas_inert_and_numbers_numbers(api):
    for index, text in enumerate(FORMULAS):
        project(name=text, budget="-1500.25" if index == 0 else None)
    response = api.get("/api/v1/data/project/export.xlsx?fields=name,budget&ordering=id")
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    names = list(sheet["A"])[1:]
    # Unchanged (XML reads a lone CR as a line feed): Excel's quote prefix keeps them text.
    assert [cell.value for cell in names] == [text.replace("\r", "\n") for text in FORMULAS]
    assert [cell.quotePrefix for cell in names] == [True] * 7 + [False] * 3
    assert {cell.data_type for cell in names} == {"s"}
    assert (sheet["B2"].value, sheet["B2"].data_type) == (-1500.25, "n")


def test_export_needs_view_permission(api, acme, make_user):
    user = make_user(acme, "nobody")
    connection.set_tenant(acme)
    _key, secret = apikeys.create_key(user, name="n", scopes=["*:write"])
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert client.get("/api/v1/data/expense/export.csv").status_code == 403
    assert upload(client, "expense", "title\nTaxi\n").status_code == 403


def test_export_is_in_the_openapi_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    export = schema["paths"]["/api/v1/data/expense/export.{file_format}/"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv", XLSX}
    names = {parameter["name"] for parameter in export["parameters"]}
    assert {"currency", "amount__gte", "search", "ordering", "fields", "file_format"} <= names
    imports = schema["paths"]["/api/v1/data/expense/import/"]["post"]
    assert {"multipart/form-data", "application/json"} <= set(imports["requestBody"]["content"])
    assert {"200", "201", "202", "400", "413"} <= set(imports["responses"])
    assert "/api/v1/data/import-jobs/{id}/" in schema["paths"]
    validate_schema(schema)


# --- import -----------------------------------------------------------------------------------

BAD_CSV = """title,amount,spent_on,currency,project
Taxi,12.50,2026-01-05,CNY,{project}
Hotel,120,2026-01-06,GBP,
Lunch,8,2026-01-07,,
"""


def test_import_dry_run_reports_the_bad_row_and_writes_nothing(api):
    apollo = project()
    response = upload(api, "expense", BAD_CSV.format(project=apollo.pk), query="?dry_run=true")
    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["dry_run"] is True
    assert (report["total"], report["valid"], report["created"]) == (3, 2, 0)
    assert report["errors"] == [{"row": 2, "errors": {"currency": [
        {"code": "invalid_choice", "message": '"GBP" is not a valid choice.'}]}}]
    assert not expenses().exists()


def test_import_with_a_bad_row_imports_nothing(api):
    apollo = project()
    response = upload(api, "expense", BAD_CSV.format(project=apollo.pk))
    assert response.status_code == 400
    report = response.json()
    assert report["dry_run"] is False and report["created"] == 0
    assert [error["row"] for error in report["errors"]] == [2]
    assert not expenses().exists()


def test_import_good_csv(api):
    apollo = project()
    content = BAD_CSV.format(project=apollo.pk).replace("GBP", "USD")
    response = upload(api, "expense", content)
    assert response.status_code == 201, response.json()
    assert response.json() == {"dry_run": False, "total": 3, "valid": 3, "created": 3, "errors": []}
    rows = {record.title: record for record in expenses().all()}
    assert rows["Taxi"].project == apollo and rows["Taxi"].amount == 12.5
    assert rows["Hotel"].currency == "USD" and rows["Hotel"].project is None
    assert rows["Lunch"].currency == "CNY"  # An empty cell takes the default.
    assert {record.created_by for record in rows.values()} == {api.user}
    assert rows["Taxi"].number.startswith("EXP-")


def test_import_cells_booleans_and_uniqueness_within_the_file(api):
    content = "name,code,budget,active\nApollo,APO-001,1000,yes\nZeus,,,0\nHera,,,TRUE\nApollo,,,no\n"
    report = upload(api, "project", content, query="?dry_run=1").json()
    assert [(error["row"], list(error["errors"])) for error in report["errors"]] == [(4, ["name"])]
    assert report["errors"][0]["errors"]["name"][0]["code"] == "unique"
    response = upload(api, "project", content.rsplit("Apollo", 1)[0])
    assert response.status_code == 201, response.json()
    active = dict(runtime.get_model("project").objects.values_list("name", "active"))
    assert active == {"Apollo": True, "Zeus": False, "Hera": True}


def test_import_semicolon_csv_in_gbk(api):
    """Excel on a Chinese or European Windows: GBK text, semicolons."""
    content = "title;amount;spent_on\n出差住宿;300;2026-01-05\n".encode("gbk")
    response = upload(api, "expense", content)
    assert response.status_code == 201, response.json()
    assert expenses().get().title == "出差住宿"


def test_import_xlsx(api):
    apollo = project()
    content = xlsx_bytes([["title", "amount", "spent_on", "project", None],
                          ["出租车", 12.5, datetime.datetime(2026, 1, 5), apollo.pk, None],
                          [None, None, None, None, None],
                          ["Hotel", 120, "2026-01-06", None, None]])
    response = upload(api, "expense", content, name="expenses.xlsx", content_type=XLSX)
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2
    taxi = expenses().get(title="出租车")
    assert taxi.spent_on == datetime.date(2026, 1, 5) and taxi.project == apollo


def test_import_xlsx_error_rows_count_from_the_first_data_row(api):
    content = xlsx_bytes([["title", "amount", "spent_on"], ["Taxi", 12, "2026-01-05"], ["Hotel", -1, "2026-01-05"]])
    report = upload(api, "expense", content, name="x.xlsx", content_type=XLSX).json()
    assert report["errors"] == [{"row": 2, "errors": {"amount": [
        {"code": "min_value", "message": "Ensure this value is greater than 0."}]}}]


def test_import_json_list(api):
    rows = [{"title": "Taxi", "amount": "12.50", "spent_on": "2026-01-05"},
            {"title": "Hotel", "amount": "100", "spent_on": "2026-01-06", "currency": "EUR"}]
    response = api.post("/api/v1/data/expense/import/", json.dumps(rows), content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2
    assert expenses().count() == 2
    dry = api.post("/api/v1/data/expense/import/", json.dumps({"rows": rows, "dry_run": True}),
                   content_type="application/json")
    assert dry.status_code == 200 and dry.json()["valid"] == 2
    assert expenses().count() == 2
    bad = api.post("/api/v1/data/expense/import/", json.dumps([{"title": "x", "colour": "red"}]),
                   content_type="application/json")
    assert bad.status_code == 400
    errors = {error["row"]: error["errors"] for error in bad.json()["errors"]}
    assert errors[1]["colour"] == [{"code": "unknown_field", "message": "Unknown field."}]
    not_object = api.post("/api/v1/data/expense/import/", json.dumps([{"title": "x"}, 3]),
                          content_type="application/json")
    assert not_object.json()["rows"][0]["message"].endswith("these rows are not: 2.")


def test_import_errors_are_translated(api):
    response = api.post("/api/v1/data/expense/import/", json.dumps([{"title": "x"}]),
                        content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    message = response.json()["errors"][0]["errors"]["amount"][0]["message"]
    assert message != "This field is required."


@pytest.mark.parametrize(("content", "name", "content_type", "code"), [
    ("title,colour\nTaxi,red\n", "rows.csv", "text/csv", "unknown_columns"),
    ("title,title\nTaxi,Taxi\n", "rows.csv", "text/csv", "duplicate_columns"),
    ("", "rows.csv", "text/csv", "empty"),
    ("title\n", "rows.csv", "text/csv", "no_rows"),
    ("title\nTaxi,12\n", "rows.csv", "text/csv", "extra_cells"),
    (b"PK\x03\x04broken", "rows.xlsx", XLSX, "invalid_file"),
    (b"\xd0\xcf\x11\xe0old", "rows.xls", "application/vnd.ms-excel", "unsupported_format"),
    (b"%PDF-1.4", "rows.pdf", "application/pdf", "unsupported_format"),
    (b"title\n\x00\x01", "rows.csv", "text/csv", "invalid_file"),
])
def test_bad_files_are_400(api, content, name, content_type, code):
    response = upload(api, "expense", content, name=name, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["file"][0]["code"] == code, response.json()
    assert not expenses().exists()


def padded_xlsx(padding: int) -> bytes:
    """A valid workbook whose sheet holds `padding` spaces more: it compresses about a thousand times."""
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["title", "amount", "spent_on"], ["Taxi", 12.5, "2026-01-05"]])))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"</sheetData>", b" " * padding + b"</sheetData>")
            target.writestr(entry.filename, content)
    return output.getvalue()


def test_xlsx_zip_bombs_are_refused_before_they_are_opened(api, settings):
    assert upload(api, "expense", padded_xlsx(10_000), name="rows.xlsx", content_type=XLSX).status_code == 201
    started = time.monotonic()
    response = upload(api, "expense", padded_xlsx(20 * 2**20), name="rows.xlsx", content_type=XLSX)
    assert response.status_code == 400
    assert response.json()["file"][0]["code"] == "zip_bomb", response.json()
    assert "zip bomb" in response.json()["file"][0]["message"]
    settings.API_IMPORT_MAX_UNPACKED_BYTES, settings.API_IMPORT_MAX_COMPRESSION_RATIO = 2**20, 10_000
    response = upload(api, "expense", padded_xlsx(2 * 2**20), name="rows.xlsx", content_type=XLSX)
    assert response.status_code == 400
    assert response.json()["file"] == [{"code": "too_large_unpacked", "message": (
        "The XLSX file unpacks to 2.0 MB, more than 1.0 MB.")}]
    assert time.monotonic() - started < 5
    assert expenses().count() == 1


def test_unknown_columns_are_named(api):
    message = upload(api, "expense", "title,colour\nTaxi,red\n").json()["file"][0]["message"]
    assert "colour" in message and "amount" in message


def test_import_needs_a_file_or_a_list(api):
    assert api.post("/api/v1/data/expense/import/", {"other": "x"}).json()["file"][0]["code"] == "required"
    response = api.post("/api/v1/data/expense/import/", json.dumps({"title": "x"}), content_type="application/json")
    assert response.json()["rows"][0]["code"] == "not_a_list"
    response = api.post("/api/v1/data/expense/import/?dry_run=true", "[[null, null]]", content_type="application/json")
    assert response.status_code == 400 and response.json()["rows"][0]["code"] == "not_an_object"
    response = api.post("/api/v1/data/expense/import/?dry_run=maybe", "[]", content_type="application/json")
    assert response.json()["dry_run"][0]["code"] == "invalid"


def test_import_limits(api, settings):
    settings.API_IMPORT_MAX_ROWS = 2
    response = upload(api, "expense", "title\nA\nB\nC\n")
    assert response.status_code == 400 and response.json()["file"][0]["code"] == "too_many_rows"
    response = api.post("/api/v1/data/expense/import/", json.dumps([{}] * 3), content_type="application/json")
    assert response.status_code == 400 and response.json()["rows"][0]["code"] == "too_many_rows"
    settings.API_IMPORT_MAX_BYTES = 1000
    response = upload(api, "expense", "title\n" + "Taxi\n" * 300)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large" and "MB" in response.json()["detail"]
    assert not expenses().exists()


# --- import jobs ------------------------------------------------------------------------------

def big_csv(count: int, start: int = 0) -> str:
    return "title,amount,spent_on\n" + "".join(f"Trip {start + index},{index + 1},2026-01-05\n"
                                               for index in range(count))


def test_big_import_queues_a_job_that_runs_in_a_worker(api, settings, django_capture_on_commit_callbacks):
    settings.API_IMPORT_SYNC_MAX_ROWS = 5
    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(api, "expense", big_csv(12))
    assert response.status_code == 202, response.json()
    job = response.json()
    assert (job["status"], job["total"], job["progress"], job["entity"]) == ("queued", 12, 0, "expense")
    assert urlsplit(response["Location"]).path == f"/api/v1/data/import-jobs/{job['id']}/"
    assert len(callbacks) == 1  # The task is queued once the job row is committed.
    assert not expenses().exists()
    # What the worker runs (the test's transaction hides the job from a real worker).
    transfer.run_import_job(job["id"])
    done = api.get(f"/api/v1/data/import-jobs/{job['id']}/").json()
    assert (done["status"], done["created"], done["processed"], done["progress"]) == ("succeeded", 12, 12, 100)
    assert expenses().count() == 12 and {r.created_by for r in expenses().all()} == {api.user}
    assert ImportJob.objects.get(pk=job["id"]).payload == b""  # The upload is not kept.
    transfer.run_import_job(job["id"])  # A second delivery of the message imports nothing.
    assert expenses().count() == 12


def test_job_with_errors_fails_and_imports_nothing(api, settings):
    settings.API_IMPORT_SYNC_MAX_ROWS = 2
    job_id = upload(api, "expense", big_csv(3) + "Broken,-5,2026-01-05\n").json()["id"]
    transfer.run_import_job(job_id)
    job = api.get(f"/api/v1/data/import-jobs/{job_id}/").json()
    assert job["status"] == "failed" and job["created"] == 0 and job["valid"] == 3
    assert job["errors"] == [{"row": 4, "errors": {"amount": [
        {"code": "min_value", "message": "Ensure this value is greater than 0."}]}}]
    assert "nothing was imported" in job["message"]
    assert not expenses().exists()
    dry_id = upload(api, "expense", big_csv(3), query="?dry_run=true").json()["id"]
    transfer.run_import_job(dry_id)
    dry = api.get(f"/api/v1/data/import-jobs/{dry_id}/").json()
    assert (dry["status"], dry["dry_run"], dry["valid"], dry["created"]) == ("succeeded", True, 3, 0)
    assert not expenses().exists()


def test_job_reports_live_progress_and_is_private(api, settings, acme, make_user):
    settings.API_IMPORT_SYNC_MAX_ROWS = 2
    job_id = upload(api, "expense", big_csv(500)).json()["id"]
    ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.RUNNING)
    transfer._report_progress(job_id, 200)  # What the worker writes while its transaction runs.
    job = api.get(f"/api/v1/data/import-jobs/{job_id}/").json()
    assert (job["status"], job["processed"], job["progress"]) == ("running", 200, 40)
    assert api.get("/api/v1/data/import-jobs/999999/").status_code == 404
    # Neither the job's owner nor allowed to view expenses: as if there were no such job.
    stranger = make_user(acme, "stranger")
    connection.set_tenant(acme)
    _key, secret = apikeys.create_key(stranger, name="s", scopes=["*:read"])
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert client.get(f"/api/v1/data/import-jobs/{job_id}/").status_code == 404
    # A key without a scope on the entity may not read it either.
    _key, secret = apikeys.create_key(api.user, name="p", scopes=["project:read"])
    scoped = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert scoped.get(f"/api/v1/data/import-jobs/{job_id}/").status_code == 403


def test_jobs_of_another_tenant_are_404(api, globex, globex_client, make_user):
    job = transfer.start_import_job("expense", transfer.ImportSource("csv", big_csv(3).encode()), total=3,
                                    user=api.user)
    assert api.get(f"/api/v1/data/import-jobs/{job.pk}/").status_code == 200
    user = make_user(globex, "gadmin", is_superuser=True, is_staff=True)
    with tenant_context(globex):
        globex_client.force_login(user)
    assert globex_client.get(f"/api/v1/data/import-jobs/{job.pk}/").status_code == 404


def test_big_import_with_a_real_worker(committed_acme, celery_worker, make_user, settings):
    """The API queues the job; a Celery worker process imports it and reports its progress."""
    from dynamic_models import services

    with tenant_context(committed_acme):
        services.publish(design("project", PROJECT_FIELDS, label="Project", display_field="name"))
        services.publish(design("expense", EXPENSE_FIELDS, label="Expense", display_field="title"))
    user = make_user(committed_acme, "frank", is_superuser=True, is_staff=True)
    with tenant_context(committed_acme):
        _key, secret = apikeys.create_key(user, name="integration", scopes=["*:write"])
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    settings.API_IMPORT_SYNC_MAX_ROWS = 50  # The worker does not read it: it imports what it is given.
    response = upload(client, "expense", big_csv(1200))
    assert response.status_code == 202, response.json()
    location = urlsplit(response["Location"]).path
    seen, deadline = [], time.monotonic() + 60
    while True:
        job = client.get(location).json()
        seen.append((job["status"], job["processed"], job["progress"]))
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    assert (job["total"], job["processed"], job["created"], job["progress"]) == (1200, 1200, 1200, 100)
    assert job["started_at"] and job["finished_at"]
    running = [entry for entry in seen if entry[0] == "running"]
    # Progress shows while the worker's transaction hides its rows.
    assert any(0 < processed < 1200 and 0 < progress < 100 for _status, processed, progress in running), seen
    with tenant_context(committed_acme):
        records = runtime.get_model("expense").objects
        assert records.count() == 1200
        assert set(records.values_list("created_by", flat=True)) == {user.pk}


def wait_for_job(tenant, job_id: int, done, timeout: float = 120) -> ImportJob:
    """Poll a job (from the database: a suspended tenant's API answers 403) until done(job)."""
    deadline = time.monotonic() + timeout
    while True:
        with tenant_context(tenant):
            job = transfer.with_live_progress(ImportJob.objects.get(pk=job_id))
        if done(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def published_expenses(tenant, make_user) -> tuple:
    from dynamic_models import services

    with tenant_context(tenant):
        services.publish(design("project", PROJECT_FIELDS, label="Project", display_field="name"))
        services.publish(design("expense", EXPENSE_FIELDS, label="Expense", display_field="title"))
    user = make_user(tenant, "frank", is_superuser=True, is_staff=True)
    with tenant_context(tenant):
        _key, secret = apikeys.create_key(user, name="integration", scopes=["*:write"])
    return user, Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Api-Key {secret}")


def test_import_job_stops_when_its_tenant_is_suspended(committed_acme, celery_worker, make_user, settings):
    """`lowcode tenant suspend` while a worker imports: the job stops at its next chunk, nothing written."""
    _user, client = published_expenses(committed_acme, make_user)
    settings.API_IMPORT_SYNC_MAX_ROWS = 50
    response = upload(client, "expense", big_csv(20_000))
    assert response.status_code == 202, response.json()
    job_id = response.json()["id"]
    running = wait_for_job(committed_acme, job_id, lambda job: job.processed > 0 or job.is_finished)
    assert (running.status, running.created) == ("running", 0), running.message
    tenancy.suspend_tenant(committed_acme)
    try:
        job = wait_for_job(committed_acme, job_id, lambda job: job.is_finished)
        assert job.status == "failed" and job.created == 0
        assert job.message == "The workspace was suspended: the import stopped and nothing was imported."
        with tenant_context(committed_acme):
            assert not runtime.get_model("expense").objects.exists()
    finally:
        tenancy.resume_tenant(committed_acme)


def test_import_job_queued_before_a_suspension_does_not_run(committed_acme, celery_worker, make_user):
    user, _client = published_expenses(committed_acme, make_user)
    with tenant_context(committed_acme), transaction.atomic():  # The worker sees both at once.
        job = transfer.start_import_job("expense", transfer.ImportSource("csv", big_csv(3).encode()), total=3,
                                        user=user)
        tenancy.suspend_tenant(committed_acme)
    try:
        job = wait_for_job(committed_acme, job.pk, lambda job: job.is_finished)
        assert job.status == "failed" and "suspended" in job.message
        with tenant_context(committed_acme):
            assert not runtime.get_model("expense").objects.exists()
    finally:
        tenancy.resume_tenant(committed_acme)


def test_jobs_show_read_only_in_admin(api, settings):
    settings.API_IMPORT_SYNC_MAX_ROWS = 2
    job_id = upload(api, "expense", big_csv(3)).json()["id"]
    admin = Client(HTTP_HOST="acme.localhost")
    admin.force_login(api.user)
    listing = admin.get("/admin/dynamic_models/importjob/")
    assert listing.status_code == 200 and "expense" in listing.content.decode()
    assert admin.get(f"/admin/dynamic_models/importjob/{job_id}/change/").status_code == 200
    assert admin.get("/admin/dynamic_models/importjob/add/").status_code == 403
