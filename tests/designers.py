"""What the designers' admin tests share: a logged-in client on acme and a JSON POST."""

from __future__ import annotations

import json

from django.test import Client


def client_of(user) -> Client:
    """A client on acme's host, logged in as `user`."""
    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(user)
    return client


def post_json(client, url: str, data) -> tuple[int, dict]:
    response = client.post(url, json.dumps(data), content_type="application/json")
    return response.status_code, response.json()
