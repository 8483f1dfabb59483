import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_tenants.utils import tenant_context

from lowcode.tenancy.models import Tenant


def test_up_prepares_demo_tenants_once_and_keeps_users(db, capsys):
    call_command("lowcode", "up", "--no-serve")
    first = capsys.readouterr().out
    assert "Tenants ready: public, acme, globex" in first
    port = os.environ.get("LOWCODE_PORT", "8000")  # The port `up` serves on, in the addresses it prints.
    assert f"http://acme.localhost:{port}/admin/" in first and f"http://globex.localhost:{port}/admin/" in first

    acme = Tenant.objects.get(schema_name="acme")
    with tenant_context(acme):
        get_user_model().objects.create_user("carol", password="correct-horse-battery")

    call_command("lowcode", "up", "--no-serve")
    second = capsys.readouterr().out
    assert "Tenants ready" in second and "Credentials" not in second
    with tenant_context(acme):
        assert get_user_model().objects.filter(username__in=["admin", "carol"]).count() == 2
