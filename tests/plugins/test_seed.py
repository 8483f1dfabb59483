"""`lowcode seed_demo` registers the example publisher key, installs fx-tools and enables it in
acme only; running it again changes nothing."""

from decimal import Decimal

import pytest
from django.core.management import call_command

from plugins.models import Activation, Plugin, PublisherKey

from .test_lifecycle import fx_in

pytestmark = pytest.mark.django_db


def test_seed_demo_installs_fx_tools_and_enables_it_in_acme_only(acme, globex):
    call_command("lowcode", "seed_demo")
    call_command("lowcode", "seed_demo")
    assert PublisherKey.objects.count() == 1
    assert list(Plugin.objects.values_list("name", "version")) == [("fx-tools", "1.0.0")]
    assert list(Activation.objects.values_list("tenant__schema_name", flat=True)) == ["acme"]
    acme.refresh_from_db()
    assert fx_in(acme) == Decimal("108.00") and fx_in(globex) == "unknown"
