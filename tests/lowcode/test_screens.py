"""Permission screens people can read (issue 12): roles are the one place to grant, operations only of
installed apps, a 403 names what is missing, styled 403/404/500 pages, the language switch in the admin."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import get_resolver
from django_tenants.utils import tenant_context

from lowcode import site, views
from lowcode.tenancy.models import Tenant
from rbac import services as rbac
from rbac.admin import role_sources_text
from rbac.models import Role
from rbac.services.compute import RoleSource
from tests.scenario import client_for, expenses_of


def checkbox(html: str, value: str) -> str:
    """"checked", "unchecked" or "absent": the checkbox of `value` in the page."""
    tag = re.search(rf'<input type="checkbox"[^>]*value="{re.escape(value)}"[^>]*>', html)
    return "absent" if tag is None else "checked" if " checked" in tag.group(0) else "unchecked"


@pytest.fixture
def operator(people, make_user, acme):
    """A tenant admin who is no superuser: staff with the built-in tenant_admin role."""
    user = make_user(acme, "olga", is_staff=True)
    connection.set_tenant(acme)
    rbac.assign_role(user, Role.objects.get(key=Role.TENANT_ADMIN))
    return user


@pytest.fixture
def superuser(people, make_user, acme):
    user = make_user(acme, "root", is_staff=True, is_superuser=True)
    connection.set_tenant(acme)
    return user


def test_admin_403_names_the_missing_entity_operation_on_a_styled_page(people):
    frank = client_for(people["frank"], key=False)  # Finance: views and changes expenses, adds none.
    page = frank.get("/admin/data/expense/add/", HTTP_REFERER="http://acme.localhost/admin/data/expense/")
    html = page.content.decode()
    assert page.status_code == 403
    assert "You need the permission &#x27;Add Expenses&#x27; (data.expense.add)." in html
    assert "Acme" in html and 'href="/admin/"' in html  # The tenant's look and the way home...
    assert 'href="http://acme.localhost/admin/data/expense/"' in html  # ...and back.
    assert 'class="error-page"' in html and "lowcode.css" in html


def test_admin_403_of_a_static_model_names_its_django_permission(people):
    alice = client_for(people["alice"], key=False)
    page = alice.get("/admin/rbac/role/")
    assert page.status_code == 403
    assert "You need the permission &#x27;View roles&#x27; (rbac.view_role)." in page.content.decode()


def test_explain_access_403_names_the_operation(people):
    page = client_for(people["alice"], key=False).get("/admin/rbac/role/explain/")
    assert page.status_code == 403
    assert ("You need the permission &#x27;Manage roles, departments and permissions&#x27; (rbac.manage)."
            in page.content.decode())


def test_api_403_keeps_its_format_and_names_the_missing_operation(people):
    alice = client_for(people["alice"])
    record = expenses_of(people["alice"]).first()
    response = alice.delete(f"/api/v1/data/expense/{record.pk}/")
    assert response.status_code == 403
    assert response.json() == {"detail": "You need the permission 'Delete Expenses' (data.expense.delete).",
                               "code": "permission_denied"}


def test_api_403_in_chinese(people):
    alice = client_for(people["alice"])
    record = expenses_of(people["alice"]).first()
    detail = alice.delete(f"/api/v1/data/expense/{record.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()["detail"]
    assert detail.startswith("您需要权限“删除") and detail.endswith("（data.expense.delete）。")


def test_every_site_answers_errors_with_the_project_handlers(acme):
    connection.set_tenant(acme)
    for urlconf in (site.urlconf(), "lowcode.urls", "lowcode.urls_public"):
        resolver = get_resolver(urlconf)
        assert [resolver.resolve_error_handler(status) for status in (403, 404, 500)] == list(views.ERROR_HANDLERS)


def test_a_refusal_under_the_api_outside_drf_answers_json():
    request = RequestFactory().get("/api/v1/data/expense/")
    response = views.permission_denied(request, PermissionDenied("You need the permission 'X' (x.y)."))
    assert response.status_code == 403
    assert json.loads(response.content) == {"detail": "You need the permission 'X' (x.y).", "code": "permission_denied"}


def test_a_form_without_its_csrf_token_gets_the_styled_403_saying_what_to_do(acme):
    client = Client(HTTP_HOST="acme.localhost", enforce_csrf_checks=True)
    page = client.post("/accounts/login/", {"username": "nobody", "password": "x"})
    assert page.status_code == 403 and 'class="error-page"' in page.content.decode()
    assert "Reload the page, then send it again." in page.content.decode()


def test_404_pages_in_the_tenants_look_and_json_under_the_api(people):
    alice = client_for(people["alice"], key=False)
    page = alice.get("/no-such-page/")
    html = page.content.decode()
    assert page.status_code == 404 and "Page not found" in html and "Acme" in html and 'href="/"' in html
    admin_page = alice.get("/admin/data/expense/999999/change/")
    assert admin_page.status_code == 404 and 'class="error-page"' in admin_page.content.decode()
    assert 'href="/admin/"' in admin_page.content.decode()
    assert alice.get("/api/v1/no-such-thing/").json()["code"] == "not_found"


def test_500_page_in_the_tenants_look_and_json_under_the_api(acme):
    request = RequestFactory().get("/admin/data/expense/", HTTP_HOST="acme.localhost")
    request.tenant, request.user = acme, AnonymousUser()
    page = views.server_error(request)
    assert page.status_code == 500
    assert "Something went wrong on our side" in page.content.decode() and "Acme" in page.content.decode()
    api = views.server_error(RequestFactory().get("/api/v1/data/expense/", HTTP_HOST="acme.localhost"))
    assert api.status_code == 500 and api["Content-Type"] == "application/json"


@pytest.fixture
def reports_operation():
    """An operation of an app that is not installed here ("reports")."""
    from rbac.registries import OperationType, operation_type_registry

    operation = operation_type_registry.register(OperationType("reports.run", "Run reports", app_label="reports"))
    yield operation.type
    operation_type_registry.unregister(operation.type)


def test_role_page_lists_entity_actions_and_operations_of_installed_apps_only(operator, reports_operation):
    client = client_for(operator, key=False)
    member = Role.objects.get(key=Role.MEMBER)
    page = client.get(f"/admin/rbac/role/{member.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    # Entity actions as a grid of published entities, the role's own checked.
    assert checkbox(html, "data.expense.add") == "checked" and checkbox(html, "data.expense.delete") == "unchecked"
    assert checkbox(html, "data.project.import") == "unchecked"
    # Operations of installed apps, under the app's name; none of apps that do not exist yet.
    assert "rbac.manage" in html and "Roles and permissions" in html and "audit.view" in html
    assert "pages.page.view" in html and "workflows.task.act" in html and "plugins.manage" in html
    assert reports_operation not in html
    # No raw Django permission list for tenant staff.
    assert 'name="permissions"' not in html and "Can add log entry" not in html and "access attempt" not in html


def test_operations_of_apps_not_installed_are_not_offered_but_kept(operator, reports_operation):
    client = client_for(operator, key=False)
    admin_role = Role.objects.get(key=Role.TENANT_ADMIN)
    admin_role.operations = [*admin_role.operations, reports_operation]
    admin_role.save(update_fields=["operations"])
    page = client.get(f"/admin/rbac/role/{admin_role.pk}/change/")
    assert reports_operation not in page.content.decode()
    form = page.context["adminform"].form
    data = {"key": admin_role.key, "name": admin_role.name, "description": admin_role.description,
            "users": [user.pk for user in admin_role.users.all()], "operations": ["audit.view"],
            "entity_actions": form.initial["entity_actions"]}
    for inline in page.context["inline_admin_formsets"]:
        data.update({f"{inline.formset.prefix}-TOTAL_FORMS": "0", f"{inline.formset.prefix}-INITIAL_FORMS": "0"})
    response = client.post(f"/admin/rbac/role/{admin_role.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    admin_role.refresh_from_db()
    assert "audit.view" in admin_role.operations and reports_operation in admin_role.operations
    assert "rbac.manage" not in admin_role.operations and "pages.page.view" not in admin_role.operations


def test_superusers_keep_an_advanced_view_of_other_django_permissions(superuser):
    client = client_for(superuser, key=False)
    builder = Role.objects.get(key=Role.BUILDER)
    html = client.get(f"/admin/rbac/role/{builder.pk}/change/").content.decode()
    assert 'name="permissions"' in html and "Advanced" in html
    assert "Can view expense" not in html  # Entity actions are the grid's, not the advanced list's.


def test_saving_a_role_writes_entity_actions_and_keeps_other_permissions(operator):
    client = client_for(operator, key=False)
    builder = Role.objects.get(key=Role.BUILDER)
    others = set(builder.permissions.exclude(content_type__app_label="data"))
    assert others  # The builder's design permissions, which this form does not show.
    page = client.get(f"/admin/rbac/role/{builder.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if name in form.fields and value is not None}
    data.update({"key": builder.key, "name": builder.name, "description": builder.description,
                 "parents": [role.pk for role in builder.parents.all()], "users": [user.pk for user in builder.users.all()],
                 "operations": builder.operations, "entity_actions": ["data.expense.view", "data.project.export"]})
    for prefix in (inline.formset.prefix for inline in page.context["inline_admin_formsets"]):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client.post(f"/admin/rbac/role/{builder.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entity_perms = set(builder.permissions.filter(content_type__app_label="data").values_list("codename", flat=True))
    assert entity_perms == {"view_expense", "export_project"}
    assert set(builder.permissions.exclude(content_type__app_label="data")) == others


def test_user_page_shows_roles_read_only_and_no_raw_permissions(operator, people):
    client = client_for(operator, key=False)
    alice = people["alice"]
    html = client.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    member = Role.objects.get(key=Role.MEMBER)
    assert f'href="/admin/rbac/role/{member.pk}/change/"' in html and "directly" in html
    assert 'name="groups"' not in html and 'name="user_permissions"' not in html
    assert "Can add log entry" not in html
    assert client.get("/admin/auth/group/").status_code == 404  # Groups mirror roles: not a second place to grant.
    listing = client.get("/admin/auth/user/").content.decode()
    assert ">alice</a>" in listing and "AnonymousUser" not in listing


def test_how_a_user_holds_a_role_in_words():
    sources = (RoleSource("direct"), RoleSource("member", "Sales"), RoleSource("manager", "Finance"),
               RoleSource("inherited", "manager"))
    assert role_sources_text(sources) == ("directly, as member of Sales, as manager of Finance, "
                                          "inherited from manager")


def test_superusers_see_direct_user_permissions_as_advanced(superuser, people):
    html = client_for(superuser, key=False).get(f"/admin/auth/user/{people['alice'].pk}/change/").content.decode()
    assert 'name="user_permissions"' in html and 'name="groups"' not in html


def test_api_key_help_text_is_a_sentence_with_examples(superuser):
    html = client_for(superuser, key=False).get("/admin/apikeys/apikey/add/").content.decode()
    assert "expense:read reads expenses" in html and "*:write" in html
    assert ":read or :write (" in html or "then :read or :write" in html


def test_language_switch_in_the_admin_header_posts_to_setlang(superuser):
    client = client_for(superuser, key=False)
    html = client.get("/admin/").content.decode()
    header = html.split('id="user-tools"')[1].split("</header>")[0]
    assert 'action="/i18n/setlang/"' in header and 'value="zh-hans"' in header and "简体中文" in header
    switched = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    assert switched.status_code == 302 and switched["Location"] == "/admin/"
    assert "站点管理" in client.get("/admin/").content.decode() or "首页" in client.get("/admin/").content.decode()


def test_one_breadcrumb_scheme_across_admin_pages():
    """Custom admin pages take their breadcrumbs from one include (Home > app > model > record > page)."""
    base = Path(settings.BASE_DIR)
    include = base / "templates" / "admin" / "includes" / "breadcrumbs.html"
    own = [path for app in ("templates", "rbac", "audit", "dynamic_models", "files", "metadata", "lowcode")
           for path in (base / app).rglob("*.html") if path != include]
    assert own
    assert [path.name for path in own if 'class="breadcrumbs"' in path.read_text()] == []
    overriding = [path for path in own if "{% block breadcrumbs %}" in path.read_text()]
    assert len(overriding) >= 8
    assert [path.name for path in overriding if "admin/includes/breadcrumbs.html" not in path.read_text()] == []


def test_breadcrumbs_of_a_record_page(people):
    record = expenses_of(people["alice"]).first()
    html = client_for(people["alice"], key=False).get(f"/admin/data/expense/{record.pk}/history/").content.decode()
    crumbs = html.split('<div class="breadcrumbs">')[1].split("</div>")[0]
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", crumbs)).split())
    assert text == f"Home › Data › Expenses › {record} › History"


def test_platform_site_has_the_language_switch_and_its_error_pages(db):
    with tenant_context(Tenant.objects.get(schema_name="public")):
        root = get_user_model().objects.create_superuser("root", "root@example.com", "correct-horse-battery")
    client = Client(HTTP_HOST="localhost")
    client.force_login(root)
    index = client.get("/admin/").content.decode()
    assert 'action="/i18n/setlang/"' in index and "简体中文" in index
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404 and 'class="error-page"' in missing.content.decode()
