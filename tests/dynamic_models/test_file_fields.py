"""File and image fields of entities (issue 11, DM-1): the one write path, reads, column rules,
exports and imports, audit values, admin, and bundles with their files."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from PIL import Image

from audit.models import AuditEvent
from dynamic_models import file_fields, records, runtime, services
from files.models import FileAttachment, StoredFile
from lowcode.apikeys import services as apikeys
from metadata.exceptions import MetadataError
from rbac import services as rbac
from rbac.models import Role

from .conftest import design
from .test_api_transfer import read_csv, upload

CLAIM_FIELDS = [
    {"key": "title", "type": "text", "required": True, "options": {"max_length": 100}},
    {"key": "receipt", "type": "file",
     "options": {"allowed_types": ["image/*", "application/pdf"], "max_size": 10 * 1024 * 1024}},
    {"key": "photos", "type": "image", "options": {"multiple": True}},
    {"key": "owner", "type": "user"},
]


def jpeg(color="red", size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def pdf() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buffer, "PDF")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def claims(tenant):
    entity = design("claim", CLAIM_FIELDS, label="Claim", label_plural="Claims", display_field="title")
    services.publish(entity)
    return runtime.get_model("claim")


def _client_of(client, user):
    _key, secret = apikeys.create_key(user, name="test", scopes=["*:write"])
    client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    client.user = user
    return client


@pytest.fixture
def api(claims, acme, make_user, acme_client):
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    return _client_of(acme_client, user)


def upload_file(client, content: bytes, name: str):
    response = client.post("/api/v1/files/", {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_api_record_takes_an_uploaded_id_and_shows_the_file(api, claims):
    file_id = upload_file(api, jpeg(), "taxi.jpg")
    response = api.post("/api/v1/data/claim/", {"title": "Taxi", "receipt": file_id}, content_type="application/json")
    assert response.status_code == 201, response.json()
    receipt = response.json()["receipt"]
    assert receipt["id"] == file_id and receipt["name"] == "taxi.jpg" and receipt["content_type"] == "image/jpeg"
    assert receipt["download_url"].startswith("/files/d/")
    assert receipt["open_url"] == f"/files/open/record/claim/{response.json()['id']}/receipt/{file_id}/"
    assert response.json()["photos"] == []
    attachment = FileAttachment.objects.get(stored_file_id=file_id)
    assert (attachment.owner_type, attachment.owner_key, attachment.field, attachment.detached_at) == \
        ("record", "claim", "receipt", None)
    downloaded = api.get(receipt["download_url"])
    assert downloaded.status_code == 200 and b"".join(downloaded.streaming_content) == jpeg()
    listed = api.get("/api/v1/data/claim/").json()["results"][0]
    assert listed["receipt"]["id"] == file_id


def test_api_multipart_create_and_update_with_files(api, claims):
    response = api.post("/api/v1/data/claim/", {
        "title": "Lunch", "receipt": SimpleUploadedFile("lunch.pdf", pdf()),
        "photos": [SimpleUploadedFile("a.jpg", jpeg("red")), SimpleUploadedFile("b.jpg", jpeg("blue"))]})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["receipt"]["content_type"] == "application/pdf"
    assert sorted(photo["name"] for photo in body["photos"]) == ["a.jpg", "b.jpg"]
    record = claims.objects.get()
    old = record.receipt

    # A new receipt replaces the old one as its next version; the old one stays, detached.
    body_bytes, content_type = _multipart({"receipt": ("lunch2.pdf", pdf())})
    changed = api.patch(f"/api/v1/data/claim/{record.pk}/", body_bytes, content_type=content_type)
    assert changed.status_code == 200, changed.json()
    record.refresh_from_db()
    assert record.receipt.name == "lunch2.pdf" and record.receipt.previous_id == old.pk
    assert FileAttachment.objects.get(stored_file=old).detached_at is not None

    # Keep one photo by id, drop the other.
    keep = body["photos"][0]["id"]
    kept = api.patch(f"/api/v1/data/claim/{record.pk}/", {"photos": [keep]}, content_type="application/json")
    assert kept.status_code == 200, kept.json()
    assert [photo["id"] for photo in kept.json()["photos"]] == [keep]


def _multipart(fields: dict) -> tuple[bytes, str]:
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    data = {key: SimpleUploadedFile(*value) if isinstance(value, tuple) else value for key, value in fields.items()}
    return encode_multipart(BOUNDARY, data), MULTIPART_CONTENT


def _stored_count() -> int:
    return StoredFile.objects.count()


@pytest.mark.parametrize(("value", "code"), [
    ("not-an-id", "invalid"),
    ("6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "does_not_exist"),  # A well-formed id of no file.
    (123, "incorrect_type"),
])
def test_bad_file_ids_are_refused_naming_the_field(api, claims, value, code):
    response = api.post("/api/v1/data/claim/", {"title": "x", "receipt": value}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["receipt"][0]["code"] == code
    assert not claims.objects.exists()


def test_another_users_upload_is_not_yours_to_reference(api, claims, acme, make_user):
    file_id = upload_file(api, jpeg(), "mine.jpg")
    other = make_user(acme, "eve", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    response = _client_of(Client(HTTP_HOST="acme.localhost"), other).post("/api/v1/data/claim/", {"title": "x", "receipt": file_id},
                                                   content_type="application/json")
    assert response.status_code == 400
    assert response.json()["receipt"][0]["code"] == "does_not_exist"


def test_rule_breaks_are_refused_and_nothing_is_stored(api, claims):
    text_id = upload_file(api, b"just some words\n" * 10, "notes.txt")
    refused = api.post("/api/v1/data/claim/", {"title": "x", "receipt": text_id}, content_type="application/json")
    assert refused.status_code == 400
    assert refused.json()["receipt"][0]["code"] == "file_type_not_allowed"

    before = _stored_count()
    multipart = api.post("/api/v1/data/claim/", {"title": "x", "photos": [SimpleUploadedFile("scan.pdf", pdf())]})
    assert multipart.status_code == 400
    assert multipart.json()["photos"][0]["code"] == "file_type_not_allowed"
    renamed = api.post("/api/v1/data/claim/", {"title": "x", "receipt": SimpleUploadedFile("fake.pdf", jpeg())})
    assert renamed.status_code == 400 and renamed.json()["receipt"][0]["code"] == "file_type_mismatch"
    assert _stored_count() == before
    assert not claims.objects.exists()

    one = api.post("/api/v1/data/claim/", {"title": "x", "receipt": [text_id]}, content_type="application/json")
    assert one.status_code == 400 and one.json()["receipt"][0]["code"] == "incorrect_type"


def test_audit_values_show_file_ids_and_names(api, claims):
    first = upload_file(api, jpeg(), "one.jpg")
    response = api.post("/api/v1/data/claim/", {"title": "Taxi", "receipt": first}, content_type="application/json")
    record_id = response.json()["id"]
    second = upload_file(api, jpeg("green"), "two.jpg")
    api.patch(f"/api/v1/data/claim/{record_id}/", {"receipt": second, "photos": [second]},
              content_type="application/json")
    created, updated = AuditEvent.objects.filter(target_type="data.claim", target_id=str(record_id)).order_by("seq")
    assert created.after["receipt"] == {"id": first, "name": "one.jpg"}
    assert updated.before["receipt"] == {"id": first, "name": "one.jpg"}
    assert updated.after == {"receipt": {"id": second, "name": "two.jpg"}, "photos": [{"id": second, "name": "two.jpg"}]}

    record = claims.objects.get(pk=record_id)
    records.restore_version(record, created.seq, user=api.user)  # The former file comes back.
    record = claims.objects.get(pk=record_id)
    assert str(record.receipt_id) == first and file_fields.current_files(record, "photos") == []


def test_purge_releases_the_files(api, claims):
    file_id = upload_file(api, jpeg(), "gone.jpg")
    record_id = api.post("/api/v1/data/claim/", {"title": "x", "receipt": file_id},
                         content_type="application/json").json()["id"]
    assert api.delete(f"/api/v1/data/claim/{record_id}/").status_code == 204
    records.purge(claims.all_objects.filter(pk=record_id), user=api.user)
    assert not FileAttachment.objects.filter(stored_file_id=file_id).exists()


def test_required_file_field(tenant, api):
    entity = design("permit", [{"key": "scan", "type": "file", "required": True}], label="Permit")
    services.publish(entity)
    response = api.post("/api/v1/data/permit/", {}, content_type="application/json")
    assert response.status_code == 400 and response.json()["scan"][0]["code"] == "required"
    file_id = upload_file(api, pdf(), "permit.pdf")
    assert api.post("/api/v1/data/permit/", {"scan": file_id}, content_type="application/json").status_code == 201


def test_multiple_cannot_change_once_published(claims):
    from dynamic_models.models import Entity

    entity = Entity.objects.get(key="claim")
    field = entity.fields.get(key="receipt")
    field.options = {**field.options, "multiple": True}
    field.save()
    with pytest.raises(MetadataError) as error:
        services.publish(entity)
    assert "cannot switch between one and several files" in str(error.value)

    field.options, field.type = {}, "file"
    field.save()
    title = entity.fields.get(key="title")
    title.type, title.options = "file", {}
    title.save()
    with pytest.raises(MetadataError, match="cannot become a file field"):
        services.publish(entity)


# --- column rules ------------------------------------------------------------------------------

@pytest.fixture
def member_api(api, claims, acme, make_user):
    """bob, a member who sees every claim; the test sets his column rules."""
    member = Role.objects.get(key=Role.MEMBER)
    rbac.grant(member, "data.view_claim", "data.add_claim", "data.change_claim")
    rbac.add_scope(member, "claim", "all")
    bob = make_user(acme, "bob", is_staff=True)
    connection.set_tenant(acme)
    rbac.assign_role(bob, member)
    client = _client_of(Client(HTTP_HOST="acme.localhost"), bob)
    client.force_login(bob)  # Open URLs (admin links, exports) take a signed-in user.
    return client, member


def test_hidden_file_field_is_absent_and_its_urls_answer_404(api, claims, member_api):
    file_id = upload_file(api, jpeg(), "secret.jpg")
    record = api.post("/api/v1/data/claim/", {"title": "x", "receipt": file_id},
                      content_type="application/json").json()
    bob, member = member_api
    shown = bob.get(f"/api/v1/data/claim/{record['id']}/").json()
    assert shown["receipt"]["id"] == file_id
    assert bob.get(shown["receipt"]["download_url"]).status_code == 200
    assert bob.get(shown["receipt"]["open_url"]).status_code == 302  # To a fresh signed URL.

    rbac.set_column_rule(member, "claim", "receipt", "hidden")
    hidden = bob.get(f"/api/v1/data/claim/{record['id']}/").json()
    assert "receipt" not in hidden
    assert bob.get(record["receipt"]["download_url"]).status_code == 404
    assert bob.get(record["receipt"]["open_url"]).status_code == 404
    # Nor can a write put a file there.
    mine = upload_file(bob, jpeg("blue"), "mine.jpg")
    refused = bob.patch(f"/api/v1/data/claim/{record['id']}/", {"receipt": mine}, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["receipt"][0]["code"] == "unknown_field"


def test_masked_file_field_shows_a_masked_name_only(api, claims, member_api):
    file_id = upload_file(api, jpeg(), "hotel-invoice.jpg")
    record = api.post("/api/v1/data/claim/", {"title": "x", "receipt": file_id},
                      content_type="application/json").json()
    bob, member = member_api
    rbac.set_column_rule(member, "claim", "receipt", "masked")
    shown = bob.get(f"/api/v1/data/claim/{record['id']}/").json()
    assert shown["receipt"] == {"name": "****.jpg"}
    assert bob.get(record["receipt"]["download_url"]).status_code == 404


# --- exports and imports -----------------------------------------------------------------------

def test_csv_export_shows_name_and_stable_url_and_import_takes_it_back(api, claims):
    file_id = upload_file(api, jpeg(), "taxi.jpg")
    record_id = api.post("/api/v1/data/claim/", {"title": "Taxi", "receipt": file_id},
                         content_type="application/json").json()["id"]
    rows = read_csv(api.get("/api/v1/data/claim/export.csv?fields=title,receipt,photos"))
    url = f"/files/open/record/claim/{record_id}/receipt/{file_id}/"
    assert rows == [["title", "receipt", "photos"], ["Taxi", f"taxi.jpg <{url}>", ""]]

    # The exported cell, a bare id or the URL: the importer may use a file the record holds.
    response = upload(api, "claim", f'title,receipt\nAgain,"taxi.jpg <{url}>"\nBare,{file_id}\n')
    assert response.status_code == 201, response.json()
    assert set(claims.objects.filter(title__in=["Again", "Bare"]).values_list("receipt_id", flat=True)) == \
        {uuid.UUID(file_id)}

    # Several files: a line each; one line is a list of one.
    second = upload_file(api, jpeg("green"), "two.jpg")
    photos = upload(api, "claim", f'title,photos\nTwo,"{file_id}\n{second}"\nOne,{second}\n')
    assert photos.status_code == 201, photos.json()
    by_title = {record.title: record for record in claims.objects.filter(title__in=["Two", "One"])}
    assert {str(f.pk) for f in file_fields.current_files(by_title["Two"], "photos")} == {file_id, second}
    assert [str(f.pk) for f in file_fields.current_files(by_title["One"], "photos")] == [second]


def test_import_refuses_a_file_the_importer_may_not_use(api, claims, acme, make_user):
    other = make_user(acme, "eve", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    theirs = upload_file(_client_of(Client(HTTP_HOST="acme.localhost"), other), jpeg(), "theirs.jpg")
    response = upload(api, "claim", f"title,receipt\nMine,{theirs}\n")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["errors"]["receipt"][0]["code"] == "does_not_exist"


def test_xlsx_export_and_import_of_a_file_column(api, claims):
    import openpyxl

    file_id = upload_file(api, pdf(), "scan.pdf")
    api.post("/api/v1/data/claim/", {"title": "Scan", "receipt": file_id}, content_type="application/json")
    exported = api.get("/api/v1/data/claim/export.xlsx?fields=title,receipt")
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(exported.streaming_content))).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[1][0] == "Scan" and rows[1][1].startswith("scan.pdf </files/open/record/claim/")

    workbook = openpyxl.Workbook()
    workbook.active.append(["title", "receipt"])
    workbook.active.append(["Copy", rows[1][1]])
    payload = io.BytesIO()
    workbook.save(payload)
    response = api.post("/api/v1/data/claim/import/", {"file": SimpleUploadedFile("claims.xlsx", payload.getvalue())})
    assert response.status_code == 201, response.json()
    assert str(claims.objects.get(title="Copy").receipt_id) == file_id


def test_xlsx_zip_bomb_import_is_refused(api, claims):
    import zipfile

    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (50 * 1024 * 1024))
    response = api.post("/api/v1/data/claim/import/", {"file": SimpleUploadedFile("bomb.xlsx", payload.getvalue())})
    assert response.status_code == 400
    assert response.json()["file"][0]["code"] in ("zip_bomb", "too_large_unpacked")
    assert not claims.objects.exists()


# --- admin ------------------------------------------------------------------------------------

def test_admin_uploads_replaces_and_removes_files(claims, acme, make_user, acme_client):
    make_user(acme, "bea", is_staff=True, is_superuser=True)
    acme_client.post("/admin/login/", {"username": "bea", "password": "correct-horse-battery"})
    form = acme_client.get("/admin/data/claim/add/").content.decode()
    assert 'type="file" name="receipt"' in form and 'name="photos" multiple' in form

    added = acme_client.post("/admin/data/claim/add/", {
        "title": "Hotel", "receipt": SimpleUploadedFile("hotel.jpg", jpeg()),
        "photos": [SimpleUploadedFile("p1.jpg", jpeg("blue")), SimpleUploadedFile("p2.jpg", jpeg("green"))]})
    assert added.status_code == 302, added.content.decode()[-3000:]
    record = claims.objects.get()
    assert record.receipt.name == "hotel.jpg" and len(file_fields.current_files(record, "photos")) == 2

    change = acme_client.get(f"/admin/data/claim/{record.pk}/change/").content.decode()
    assert "hotel.jpg" in change and f"/files/open/record/claim/{record.pk}/receipt/{record.receipt_id}/" in change
    listing = acme_client.get("/admin/data/claim/").content.decode()
    assert "hotel.jpg" in listing

    old = record.receipt
    p1 = next(photo for photo in file_fields.current_files(record, "photos") if photo.name == "p1.jpg")
    replaced = acme_client.post(f"/admin/data/claim/{record.pk}/change/", {
        "title": "Hotel", "receipt": SimpleUploadedFile("hotel-2.jpg", jpeg("yellow")), "photos-remove": [str(p1.pk)]})
    assert replaced.status_code == 302, replaced.content.decode()[-3000:]
    record = claims.objects.get()
    assert record.receipt.name == "hotel-2.jpg" and record.receipt.previous_id == old.pk
    assert [photo.name for photo in file_fields.current_files(record, "photos")] == ["p2.jpg"]

    refused = acme_client.post(f"/admin/data/claim/{record.pk}/change/", {
        "title": "Hotel", "photos": SimpleUploadedFile("doc.pdf", pdf())})
    assert refused.status_code == 200 and "not allowed" in refused.content.decode()

    removed = acme_client.post(f"/admin/data/claim/{record.pk}/change/", {
        "title": "Hotel", "receipt-remove": str(record.receipt_id)})
    assert removed.status_code == 302
    assert claims.objects.get().receipt is None


def test_file_fields_are_added_removed_and_restored_on_a_table_with_rows(api, claims):
    from dynamic_models.models import Entity, Field

    file_id = upload_file(api, jpeg(), "kept.jpg")
    record_id = api.post("/api/v1/data/claim/", {"title": "x", "receipt": file_id, "photos": [file_id]},
                         content_type="application/json").json()["id"]
    entity = Entity.objects.get(key="claim")
    Field.objects.create(entity=entity, position=9, key="scan", type="file", required=True)
    Field.objects.create(entity=entity, position=10, key="extra", type="image", options={"multiple": True})
    services.publish(entity)  # A required file field needs no default: it is checked on write.
    assert api.get(f"/api/v1/data/claim/{record_id}/").json()["scan"] is None

    receipt = entity.fields.get(key="receipt")
    removed = {key: value for key, value in Field.objects.filter(pk=receipt.pk).values().get().items()
               if key not in ("id", "entity_id")}
    receipt.delete()
    entity.fields.filter(key="photos").delete()
    services.publish(entity)
    assert "receipt" not in api.get(f"/api/v1/data/claim/{record_id}/").json()

    Field.objects.create(entity=entity, **removed)  # The same field again: its column comes back.
    services.publish(entity)
    assert api.get(f"/api/v1/data/claim/{record_id}/").json()["receipt"]["id"] == file_id


def test_seed_demo_attaches_sample_receipts_once(people, acme):
    from dynamic_models.seed import RECEIPTS, seed_demo

    Expense = runtime.get_model("expense")
    with_receipts = Expense.objects.filter(receipt__isnull=False).select_related("receipt", "submitted_by")
    assert {expense.title: expense.receipt.name for expense in with_receipts} == RECEIPTS
    assert {expense.receipt.content_type for expense in with_receipts} == {"image/jpeg", "application/pdf", "image/png"}
    assert all(expense.receipt.uploaded_by == expense.submitted_by for expense in with_receipts)
    count = StoredFile.objects.count()
    seed_demo()
    connection.set_tenant(acme)
    assert StoredFile.objects.count() == count


# --- bundles with their files --------------------------------------------------------------------

def test_bundle_with_files_round_trip_between_acme_and_globex(api, claims, globex, tmp_path):
    import zipfile

    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    taxi, scan = upload_file(api, jpeg(), "taxi.jpg"), upload_file(api, pdf(), "scan.pdf")
    response = api.post("/api/v1/data/claim/", {"title": "Taxi", "receipt": scan, "photos": [taxi]},
                        content_type="application/json")
    assert response.status_code == 201
    rows = read_csv(api.get("/api/v1/data/claim/export.csv?fields=title,receipt"))
    archive = tmp_path / "claims.zip"
    out = io.StringIO()
    call_command("lowcode", "export", "--tenant", "acme", "--key", "entity:claim", "--with-files",
                 "--output", str(archive), stdout=out)
    assert "1 definitions and 2 files" in out.getvalue()
    with zipfile.ZipFile(archive) as zipped:
        hashes = {stored.sha256 for stored in StoredFile.objects.filter(pk__in=[taxi, scan])}
        assert set(zipped.namelist()) == {"bundle.json", "files.json", *(f"files/{sha}" for sha in hashes)}

    call_command("lowcode", "import", str(archive), "--tenant", "globex", stdout=out)
    assert "Files restored: 2." in out.getvalue()
    globex.refresh_from_db()  # Its entity token changed.
    with tenant_context(globex):
        restored = {str(stored.pk): stored for stored in StoredFile.objects.all()}
        assert set(restored) == {taxi, scan} and restored[scan].content_type == "application/pdf"
        # Records imported afterwards (by an export's CSV) find their files under the same ids.
        from dynamic_models import transfer

        report = transfer.import_rows("claim", [(1, {"title": "Taxi", "receipt": file_fields.FileType().import_value(
            rows[1][1])})], user=None)
        assert report["created"] == 1
        assert str(runtime.get_model("claim").objects.get().receipt_id) == scan
    call_command("lowcode", "import", str(archive), "--tenant", "globex", stdout=out)  # Again: nothing new.
    assert "Files restored: 0." in out.getvalue()


def test_a_zip_bomb_bundle_is_refused(tenant, tmp_path):
    import zipfile

    from django.core.management import call_command
    from django.core.management.base import CommandError

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("bundle.json", '{"format": "lowcode.bundle", "format_version": 1, "definitions": []}')
        zipped.writestr("files/" + "0" * 64, b"\0" * (64 * 1024 * 1024))
    with pytest.raises(CommandError, match="zip bomb"):
        call_command("lowcode", "import", str(archive), "--tenant", "acme", stdout=io.StringIO())


def test_openapi_documents_file_ids_in_and_file_objects_out(api):
    from drf_spectacular.validation import validate_schema

    schema = api.get("/api/schema/?format=json").json()
    validate_schema(schema)
    components = schema["components"]["schemas"]
    request, response = components["ClaimRequest"]["properties"], components["Claim"]["properties"]
    assert request["receipt"]["format"] == "uuid" and request["receipt"]["nullable"] is True
    assert request["photos"]["type"] == "array" and request["photos"]["items"]["format"] == "uuid"
    assert set(response["receipt"]["properties"]) == {"id", "name", "size", "content_type", "preview_url",
                                                      "download_url", "open_url"}
    assert response["photos"]["type"] == "array"
    create = schema["paths"]["/api/v1/data/claim/"]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
    listing = {parameter["name"] for parameter in schema["paths"]["/api/v1/data/claim/"]["get"]["parameters"]}
    assert "receipt__isnull" in listing and "receipt" not in listing and not any(
        name.startswith("photos") for name in listing)


def test_diagram_and_field_type_hooks():
    from dynamic_models.registries import field_type_registry

    file_type, image_type = field_type_registry.get("file"), field_type_registry.get("image")
    assert file_type.diagram_label({"options": {"multiple": True}}) == "file[]"
    assert image_type.rules({"options": {"max_size": 5}}).images_only is True
    assert file_type.rules({"options": {"allowed_types": [".pdf"]}}).allowed_types == (".pdf",)
    assert not file_type.can_order({"key": "receipt", "options": {}})
    assert file_type.import_value("a.pdf </files/open/record/claim/1/receipt/3fa85f64-5717-4562-b3fc-2c963f66afa6/>") \
        == "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    export = file_type.export_value([{"name": f"{name}.jpg", "open_url": f"/files/open/record/claim/1/photos/{file_id}/"}
                                     for name, file_id in zip("ab", ids, strict=True)])
    assert export == f"a.jpg </files/open/record/claim/1/photos/{ids[0]}/>\nb.jpg </files/open/record/claim/1/photos/{ids[1]}/>"
    assert file_type.import_value(export) == ids
    assert file_type.import_value(f" {ids[0]} ") == ids[0]


def test_the_metadata_api_imports_a_zip_bundle_with_its_files(api, claims, globex, make_user, globex_client):
    import zipfile

    from django_tenants.utils import tenant_context

    from metadata import bundles

    scan = upload_file(api, pdf(), "scan.pdf")
    api.post("/api/v1/data/claim/", {"title": "Scan", "receipt": scan}, content_type="application/json")
    archive = io.BytesIO()
    bundles.write_archive(bundles.export_bundle(keys=[("entity", "claim")]), archive)
    gina = make_user(globex, "gina", is_staff=True, is_superuser=True)
    with tenant_context(globex):
        globex_client.force_login(gina)
    response = globex_client.post("/api/v1/meta/bundles/import/", {
        "file": SimpleUploadedFile("claims.zip", archive.getvalue(), content_type="application/zip")})
    assert response.status_code == 200, response.json()
    assert [(row["key"], row["action"]) for row in response.json()["report"]] == [("claim", "create")]
    with tenant_context(globex):
        assert StoredFile.objects.get(pk=scan).uploaded_by.username == "gina"

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("bundle.json", b"{}")
        zipped.writestr("files/" + "1" * 64, b"\0" * (32 * 1024 * 1024))
    refused = globex_client.post("/api/v1/meta/bundles/import/", {
        "file": SimpleUploadedFile("bomb.zip", bomb.getvalue(), content_type="application/zip")})
    assert refused.status_code == 400 and "zip bomb" in str(refused.json())


def test_admin_hides_or_masks_a_file_field_as_its_column_rule_says(api, claims, member_api):
    file_id = upload_file(api, jpeg(), "hotel-invoice.jpg")
    record_id = api.post("/api/v1/data/claim/", {"title": "Hotel", "receipt": file_id},
                         content_type="application/json").json()["id"]
    bob, member = member_api
    page = bob.get(f"/admin/data/claim/{record_id}/change/").content.decode()
    assert "hotel-invoice.jpg" in page and 'type="file" name="receipt"' in page
    assert "hotel-invoice.jpg" in bob.get("/admin/data/claim/").content.decode()

    rbac.set_column_rule(member, "claim", "receipt", "masked")
    page = bob.get(f"/admin/data/claim/{record_id}/change/").content.decode()
    assert "****.jpg" in page and "hotel-invoice" not in page and 'name="receipt"' not in page
    assert "****.jpg" in bob.get("/admin/data/claim/").content.decode()

    rbac.set_column_rule(member, "claim", "receipt", "hidden")
    page = bob.get(f"/admin/data/claim/{record_id}/change/").content.decode()
    assert "jpg" not in page and 'name="receipt"' not in page
    # A post cannot put a file there either: the form has no such field.
    bob.post(f"/admin/data/claim/{record_id}/change/", {"title": "Hotel", "receipt": SimpleUploadedFile("x.jpg", jpeg())})
    assert str(claims.objects.get(pk=record_id).receipt_id) == file_id


def test_a_file_of_another_tenant_is_unknown_here(api, claims, acme, globex, make_user, globex_client):
    gina = make_user(globex, "gina", is_staff=True, is_superuser=True)
    connection.set_tenant(globex)
    theirs = upload_file(_client_of(globex_client, gina), jpeg(), "globex.jpg")
    connection.set_tenant(acme)
    response = api.post("/api/v1/data/claim/", {"title": "x", "receipt": theirs}, content_type="application/json")
    assert response.status_code == 400 and response.json()["receipt"][0]["code"] == "does_not_exist"
    assert not StoredFile.objects.filter(pk=theirs).exists()


def test_an_ejected_entity_uses_djangos_own_fields_for_files(claims):
    from dynamic_models import eject
    from dynamic_models.models import SchemaMigration

    models_py = eject.eject(SchemaMigration.objects.get(entity_key="claim"))["models"]
    assert "    receipt = models.ForeignKey(" in models_py and "to='files.storedfile'" in models_py
    assert "    photos = models.ManyToManyField(" in models_py and "dm_claim_photos" in models_py
    assert "dynamic_models" not in models_py


def test_admin_upload_over_the_storage_quota_is_refused_on_the_form(claims, acme, make_user, acme_client):
    from lowcode.tenancy.models import Tenant

    make_user(acme, "bea", is_staff=True, is_superuser=True)
    acme_client.post("/admin/login/", {"username": "bea", "password": "correct-horse-battery"})
    Tenant.objects.filter(pk=acme.pk).update(max_storage_bytes=10)
    refused = acme_client.post("/admin/data/claim/add/", {"title": "Hotel",
                                                          "receipt": SimpleUploadedFile("hotel.jpg", jpeg())})
    assert refused.status_code == 200 and "quota of storage is reached" in refused.content.decode()
    connection.set_tenant(Tenant.objects.get(pk=acme.pk))
    assert not claims.objects.exists() and not StoredFile.objects.exists()
