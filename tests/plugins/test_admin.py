"""Plugins in the admins: platform staff register keys and install or upgrade packages by upload
(a refusal is shown with its reason); a tenant's superusers enable and disable them there."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_tenants.utils import tenant_context

from lowcode.tenancy.models import Tenant
from plugins import services
from plugins.models import Plugin, PublisherKey

from .conftest import EXAMPLES, FX_PACKAGE, members_of, zip_of
from .test_lifecycle import fx_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform_admin(db) -> Client:
    with tenant_context(Tenant.objects.get(schema_name="public")):
        root = get_user_model().objects.create_superuser("root", "root@example.com", "correct-horse-battery")
        client = Client(HTTP_HOST="localhost")
        client.force_login(root)
    return client


def _upload(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("fx-tools.zip", data, content_type="application/zip")


def test_platform_staff_register_a_key_and_install_a_package(platform_admin):
    public_key = (EXAMPLES / "test-publisher.pub").read_text().strip()
    response = platform_admin.post("/admin/plugins/publisherkey/add/", {"name": "Examples", "public_key": public_key})
    assert response.status_code == 302 and PublisherKey.objects.get().public_key == public_key
    assert "not a valid" not in platform_admin.post("/admin/plugins/publisherkey/add/",
                                                    {"name": "Bad", "public_key": "abc"}).content.decode()
    assert PublisherKey.objects.count() == 1

    tampered = members_of(FX_PACKAGE.read_bytes())
    tampered["fx_tools/functions.py"] += b"\n"
    page = platform_admin.post("/admin/plugins/plugin/add/", {"package": _upload(zip_of(tampered))}).content.decode()
    assert "fx_tools/functions.py was changed after signing" in page and not Plugin.objects.exists()

    response = platform_admin.post("/admin/plugins/plugin/add/", {"package": _upload(FX_PACKAGE.read_bytes())})
    assert response.status_code == 302
    assert Plugin.objects.get().version == "1.0.0"
    assert "fx-tools" in platform_admin.get("/admin/plugins/plugin/").content.decode()
    assert "install" in platform_admin.get("/admin/plugins/pluginevent/").content.decode()

    key = PublisherKey.objects.get()
    platform_admin.post("/admin/plugins/publisherkey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_tenant_superusers_enable_and_disable_plugins_in_their_admin(publisher, fx_package, tenant, make_user):
    from tests.designers import client_of

    services.install(fx_package)
    admin = client_of(make_user(tenant, "boss", is_staff=True, is_superuser=True))
    page = admin.get("/admin/plugins/plugin/").content.decode()
    assert "fx-tools" in page and 'alt="False"' in page
    plugin = Plugin.objects.get()
    response = admin.post("/admin/plugins/plugin/", {"action": "enable", "_selected_action": [plugin.pk]},
                          follow=True)
    assert "Fx-tools is enabled." in response.content.decode()  # The admin capitalises messages.
    tenant.refresh_from_db()
    assert fx_in(tenant) == Decimal("108.00")
    admin.post("/admin/plugins/plugin/", {"action": "disable", "_selected_action": [plugin.pk]})
    tenant.refresh_from_db()
    assert fx_in(tenant) == "unknown"
    clerk = client_of(make_user(tenant, "clerk", is_staff=True))
    assert clerk.get("/admin/plugins/plugin/").status_code == 403
