"""The OpenAPI schema and Swagger UI describe the tenant's data model: not for anonymous visitors."""

from django.db import connection

from lowcode.apikeys import services as apikeys


def test_anonymous_visitors_get_no_schema_and_are_sent_to_sign_in_from_the_docs(tenant, acme_client):
    schema = acme_client.get("/api/schema/?format=json")
    assert schema.status_code == 401
    assert "expense" not in schema.content.decode()
    docs = acme_client.get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"].startswith("/admin/login/?next=/api/docs/")


def test_a_signed_in_user_and_an_api_key_get_both(tenant, make_user, acme_client, client):
    user = make_user(tenant, "reader")
    acme_client.force_login(user)
    assert acme_client.get("/api/schema/?format=json").status_code == 200
    assert acme_client.get("/api/docs/").status_code == 200
    acme_client.logout()
    connection.set_tenant(tenant)
    _key, secret = apikeys.create_key(user, name="docs", scopes=["*:read"])
    assert acme_client.get("/api/schema/?format=json", HTTP_AUTHORIZATION=f"Api-Key {secret}").status_code == 200
