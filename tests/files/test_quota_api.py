"""The storage quota through the API's upload endpoint: the upload that fits passes, the next is a
400 `quota_exceeded` naming usage and limit, and nothing of it is stored."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.template.defaultfilters import filesizeformat

from files.models import StoredFile
from lowcode.tenancy.models import Tenant

from .conftest import image_bytes, stored_keys


def test_storage_quota_at_the_limit_and_one_more_through_the_api(tenant, make_user, acme_client):
    acme_client.force_login(make_user(tenant, "alice"))
    first, second = image_bytes("PNG", size=(40, 40)), image_bytes("PNG", size=(41, 41), color=(1, 2, 3))
    Tenant.objects.filter(pk=tenant.pk).update(max_storage_bytes=len(first))
    connection.set_tenant(Tenant.objects.get(pk=tenant.pk))
    fits = acme_client.post("/api/v1/files/", {"file": SimpleUploadedFile("a.png", first, content_type="image/png")})
    assert fits.status_code == 201, fits.json()
    before = stored_keys()
    refused = acme_client.post("/api/v1/files/", {"file": SimpleUploadedFile("b.png", second, content_type="image/png")})
    assert refused.status_code == 400
    assert refused.json()["file"] == [{
        "code": "quota_exceeded",
        "message": f"The tenant's quota of storage is reached: {filesizeformat(len(first))} of "
                   f"{filesizeformat(len(first))} used."}]
    assert stored_keys() == before and StoredFile.objects.count() == 1
