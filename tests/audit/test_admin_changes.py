"""Settings changed in the admin (static models of the apps: a theme, a webhook endpoint) are audit
events with the fields before and after; secrets show only that they changed."""

from __future__ import annotations

from audit.models import AuditEvent
from tests.scenario import client_for


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_theme_changes_in_the_admin_are_audited(make_user, tenant):
    from pages.models import Theme

    admin_user = make_user(tenant, "admin", is_staff=True, is_superuser=True)
    admin = client_for(admin_user, key=False)
    assert admin.post("/admin/pages/theme/add/", {"brand_colour": "#123456", "mode": "light"}).status_code == 302
    theme = Theme.objects.get()
    assert admin.post(f"/admin/pages/theme/{theme.pk}/change/",
                      {"brand_colour": "#654321", "mode": "light"}).status_code == 302
    created, = events("admin.pages_theme.create")
    changed, = events("admin.pages_theme.update")
    assert created.actor_id == admin_user.pk and created.after["brand_colour"] == "#123456"
    assert changed.before == {"brand_colour": "#123456"} and changed.after == {"brand_colour": "#654321"}
    # Saving without a change records nothing.
    admin.post(f"/admin/pages/theme/{theme.pk}/change/", {"brand_colour": "#654321", "mode": "light"})
    assert len(events("admin.pages_theme.update")) == 1
    assert admin.post(f"/admin/pages/theme/{theme.pk}/delete/", {"post": "yes"}).status_code == 302
    deleted, = events("admin.pages_theme.delete")
    assert deleted.before["brand_colour"] == "#654321" and not Theme.objects.exists()


def test_webhook_endpoint_secrets_are_not_written_to_the_trail(make_user, tenant):
    from workflows.models import WebhookEndpoint

    admin = client_for(make_user(tenant, "admin", is_staff=True, is_superuser=True), key=False)
    data = {"event": "expense.approved", "url": "https://erp.example/hooks", "secret": "s3cret-value", "active": "on"}
    assert admin.post("/admin/workflows/webhookendpoint/add/", data).status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert admin.post(f"/admin/workflows/webhookendpoint/{endpoint.pk}/change/",
                      {**data, "secret": "another-one"}).status_code == 302
    created, = events("admin.workflows_webhookendpoint.create")
    changed, = events("admin.workflows_webhookendpoint.update")
    assert created.after["url"] == "https://erp.example/hooks" and created.after["secret"] == "••••"
    # The secret changed: the event says so without either value.
    assert changed.before == {"secret": "••••"} and changed.after == {"secret": "••••"}
