"""Clients of the scenario's people, shared by the permission tests (scenario.md).

The `people` fixture (tests/conftest.py) runs `lowcode seed_demo`, which builds acme's people:
alice and bob (member, Sales), mia (manager of Sales), frank (finance), bea (builder); members see their own expenses with the IBAN masked and the
status read-only, mia sees Sales's, frank sees all with the IBAN and may export.
"""

from __future__ import annotations

from django.test import Client

from dynamic_models import runtime
from lowcode.apikeys import services as apikeys


def client_for(user, *, key: bool = True) -> Client:
    """A client of acme as `user`: with an API key of theirs, or logged in (key=False)."""
    client = Client(HTTP_HOST="acme.localhost")
    if key:
        _key, secret = apikeys.create_key(user, name=f"{user.username}-key", scopes=["*:write"])
        client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    else:
        client.force_login(user)
    return client


def expenses_of(user):
    return runtime.get_model("expense").objects.filter(submitted_by=user)


def listed(client, query: str = "") -> list[dict]:
    response = client.get(f"/api/v1/data/expense/?page_size=100{query}")
    assert response.status_code == 200, response.json()
    return response.json()["results"]


PASSWORD = "correct-horse-battery"


def seed_acme_for_the_browser(tenant, *usernames: str) -> dict:
    """acme (committed, for a live server) seeded with the scenario; the named people's passwords
    set to PASSWORD. globex is left alone: browser tests commit, and only acme is cleaned after."""
    from django.contrib.auth import get_user_model
    from django_tenants.utils import tenant_context

    from dynamic_models.seed import DEMO, EXAMPLES_DIR, _seed_tenant
    from metadata.bundles import load_bundle

    bundle_name, make_records = DEMO["acme"]
    with tenant_context(tenant):
        _seed_tenant("acme", load_bundle((EXAMPLES_DIR / bundle_name).read_bytes()), make_records)
        people = {user.username: user for user in get_user_model().objects.filter(username__in=usernames)}
        for user in people.values():
            user.set_password(PASSWORD)
            user.save()
    return people


def log_in(page, base: str, username: str) -> None:
    """Sign `username` in on the admin's login page (Playwright page)."""
    from playwright.sync_api import expect

    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_have_text("Acme administration")
