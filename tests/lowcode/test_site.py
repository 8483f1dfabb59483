"""The tenant site is assembled from every app's part; each definition kind has its own token."""

import types

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpResponse
from django.urls import NoReverseMatch, path, resolve, reverse

from dynamic_models import runtime
from dynamic_models import services as entity_services
from dynamic_models.admin import RuntimeProtectionMixin
from dynamic_models.models import Field
from lowcode import site
from lowcode.site import MenuEntry, SitePart, site_part_registry
from lowcode.tenancy.models import Tenant
from metadata import bundles
from metadata import services as metadata
from metadata.exceptions import PublishConflict
from metadata.registries import DefinitionKind, definition_kind_registry
from tests.dynamic_models.conftest import design


class NoteKind(DefinitionKind):
    """A kind with no runtime of its own, standing for forms, pages and workflows to come."""

    type = "note"
    schema = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}


@pytest.fixture
def note_kind():
    kind = definition_kind_registry.register(NoteKind())
    yield kind
    definition_kind_registry.unregister(kind.type)


@pytest.fixture
def expense(tenant):
    """A published entity of acme."""
    entity = design("expense", [{"key": "title", "type": "text", "required": True}])
    entity_services.publish(entity)
    return entity


def stored_versions() -> dict:
    return Tenant.objects.get(pk=connection.tenant.pk).definition_versions


def test_publishing_another_kind_rebuilds_no_entity_model(expense, note_kind):
    snapshot, urlconf = runtime.current(), site.urlconf()
    entity_token = connection.tenant.definition_versions["entity"]

    metadata.save_draft("note", "hello", {"title": "Hello"})
    metadata.publish("note", "hello")
    first_note_token = connection.tenant.definition_versions["note"]
    metadata.save_draft("note", "hello", {"title": "Hello again"})
    metadata.publish("note", "hello")
    metadata.rollback("note", "hello")
    bundles.import_bundle({"format": bundles.FORMAT, "format_version": bundles.FORMAT_VERSION, "definitions": [
        {"kind": "note", "key": "imported", "body": {"title": "From a bundle"}}]}, dry_run=False)
    metadata.archive("note", "hello")

    assert runtime.current() is snapshot and site.urlconf() is urlconf  # Nothing rebuilt.
    assert stored_versions() == connection.tenant.definition_versions
    assert connection.tenant.definition_versions["entity"] == entity_token
    assert connection.tenant.definition_versions["note"] != first_note_token

    Field.objects.create(entity=expense, key="vat_rate", type="decimal", position=20,
                         options={"max_digits": 5, "decimal_places": 2})
    entity_services.publish(expense)
    assert runtime.current() is not snapshot and site.urlconf() is not urlconf
    assert connection.tenant.definition_versions["entity"] != entity_token
    assert "vat_rate" in {f.name for f in runtime.get_model("expense")._meta.fields}


def test_a_refused_publish_or_a_dry_run_keeps_the_tokens(tenant, note_kind):
    metadata.save_draft("note", "hello", {"title": "Hello"})
    metadata.publish("note", "hello")
    before = dict(connection.tenant.definition_versions)
    with pytest.raises(PublishConflict):
        metadata.save_and_publish("note", "hello", {"title": "Stale"}, expected_version=7)
    bundles.import_bundle({"format": bundles.FORMAT, "format_version": bundles.FORMAT_VERSION, "definitions": [
        {"kind": "note", "key": "dry", "body": {"title": "Dry run"}}]}, dry_run=True)
    assert connection.tenant.definition_versions == before == stored_versions()


class ProbePart(SitePart):
    """A site part of a test app: one static route, one per tenant following `state`."""

    def __init__(self):
        super().__init__("probe", urls={"probe/": "tests.site_probe_urls"},
                         menu_entries=(MenuEntry(label="Probe", url_name="probe-static"),))
        self.state = 1
        self.admins_registered = 0

    def tenant_token(self):
        return self.state

    def tenant_urlpatterns(self):
        return [path(f"probe/state-{self.state}/", lambda request: HttpResponse(f"state {self.state}"),
                     name="probe-state")]

    def tenant_api_urlpatterns(self):
        return [path("probe/", lambda request: HttpResponse(str(connection.schema_name)), name="probe-api")]

    def register_tenant_admin(self, admin_site):
        self.admins_registered += 1


@pytest.fixture
def probe_part():
    part = site_part_registry.register(ProbePart())
    yield part
    site_part_registry.unregister(part.type)


def test_an_app_adds_static_and_per_tenant_pieces(probe_part, acme, acme_client, globex_client):
    assert acme_client.get("/probe/static/").content == b"static"
    assert acme_client.get("/probe/state-1/").content == b"state 1"
    assert acme_client.get("/api/v1/probe/").content == b"acme"
    assert globex_client.get("/api/v1/probe/").content == b"globex"
    assert probe_part.admins_registered == 0  # Built by the first request that reaches the admin.
    acme_client.get("/admin/")
    globex_client.get("/admin/")
    assert probe_part.admins_registered == 2  # One admin site per tenant.
    assert MenuEntry(label="Probe", url_name="probe-static") in site.menu_entries()
    connection.set_tenant(acme)
    urlconf = site.urlconf()
    assert reverse("probe-state", urlconf=urlconf) == "/probe/state-1/"

    acme_client.get("/probe/state-1/")
    assert site.urlconf() is urlconf and probe_part.admins_registered == 2  # Cached while the token holds.
    probe_part.state = 2
    assert acme_client.get("/probe/state-2/").content == b"state 2"
    assert acme_client.get("/probe/state-1/").status_code == 404
    acme_client.get("/admin/")
    assert site.urlconf() is not urlconf and probe_part.admins_registered == 3
    # Without a tenant's state, as ROOT_URLCONF builds it: the static pieces only. (Built here:
    # lowcode.urls itself was built when first imported, before this test registered its part.)
    root = types.ModuleType("probe_root_urls")
    root.urlpatterns = site.urlpatterns(admin.site, per_tenant=False)
    assert reverse("probe-static", urlconf=root) == "/probe/static/"
    with pytest.raises(NoReverseMatch):
        reverse("probe-state", urlconf=root)


def test_the_site_keeps_every_route_and_name(expense, acme_client):
    urlconf = site.urlconf()
    names = {"home": "/", "login": "/accounts/login/", "admin:index": "/admin/", "set_language": "/i18n/setlang/",
             "api-schema": "/api/schema/", "api-docs": "/api/docs/", "api-me": "/api/v1/me/",
             "meta-entity-list": "/api/v1/meta/entities/", "rbac-explain": "/api/v1/rbac/explain/",
             "data-expense-list": "/api/v1/data/expense/", "admin:data_expense_changelist": "/admin/data/expense/"}
    assert {name: reverse(name, urlconf=urlconf) for name in names} == names
    assert acme_client.get("/favicon.ico").status_code == 301
    assert acme_client.get("/api/v1/nothing-here/").json()["code"] == "not_found"  # JSON, not HTML.
    response = acme_client.get("/accounts/login/")
    assert response.status_code == 200 and response.wsgi_request.urlconf is urlconf
    # The tenant's admin holds every app's static ModelAdmins, with the parts' mixins, and the entities'.
    user_admin = resolve("/admin/auth/user/", urlconf=urlconf).func.model_admin
    assert isinstance(user_admin, RuntimeProtectionMixin) and isinstance(user_admin, type(admin.site._registry[get_user_model()]))
    expense_admin = resolve("/admin/data/expense/", urlconf=urlconf).func.model_admin
    assert expense_admin.model is runtime.get_model("expense") and expense_admin.admin_site is user_admin.admin_site


def test_an_api_request_builds_no_admin_and_the_admin_is_built_on_first_use(expense, acme, globex, acme_client):
    site.forget([acme.schema_name])
    assert acme_client.get("/api/v1/data/expense/").status_code in (401, 403)  # Signed out: answered all the same.
    urlconf = site.urlconf()
    admin_urls = next(pattern for pattern in urlconf.urlpatterns if str(pattern.pattern) == "admin/").urlconf_module
    assert isinstance(admin_urls, site.TenantAdminURLs) and "urlpatterns" not in vars(admin_urls)
    # Reversed from another tenant's context, the URLconf's admin is still acme's own.
    connection.set_tenant(globex)
    assert reverse("admin:data_expense_changelist", urlconf=urlconf) == "/admin/data/expense/"
    assert connection.schema_name == "globex"
    connection.set_tenant(acme)
    expense_admin = resolve("/admin/data/expense/", urlconf=urlconf).func.model_admin
    assert expense_admin.model is runtime.get_model("expense")
    assert acme_client.get("/admin/data/expense/").status_code == 302  # To the sign-in page.
