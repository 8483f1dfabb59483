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
