"""Contributions to other extension points than expression functions exist only in the tenants that
enable their plugin: a form widget, a command (`lowcode plugin run`) and a signal receiver."""

from __future__ import annotations

import json
import sys

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import tenant_context

from forms_engine.widgets import widget_registry
from plugins import services

from .conftest import build

pytestmark = pytest.mark.django_db

PROBE_CODE = b'''
from django.db import connection

from forms_engine.widgets import TextWidget
from lowcode.cli import Subcommand

CALLS = []


class Hello(Subcommand):
    type = "hello"
    help = "Say hello."

    def add_arguments(self, parser):
        parser.add_argument("--name", default="world")

    def handle(self, command, name, **options):
        command.stdout.write(f"hello {name} from {connection.schema_name}")


class ProbeWidget(TextWidget):
    type = "probe_text"


def on_enabled(sender, plugin, tenant, **kwargs):
    CALLS.append((plugin.name, tenant.schema_name))


RECEIVERS = [("plugins.signals.plugin_enabled", on_enabled)]


def check():
    return True
'''


@pytest.fixture
def probe(publisher, fx_package):
    services.install(fx_package)
    return services.install(build(
        manifest={"name": "probe-tools", "module": "probe_tools", "health_check": "probe_tools:check",
                  "permissions": ["commands", "form_widgets", "signal_receivers"],
                  "entry_points": {"commands": ["probe_tools:Hello"], "form_widgets": ["probe_tools:ProbeWidget"],
                                   "signal_receivers": ["probe_tools:RECEIVERS"]}},
        files={"probe_tools/__init__.py": PROBE_CODE}, own_code=False))


def test_a_plugins_widget_command_and_receiver_exist_where_it_is_enabled(probe, acme, globex, capsys,
                                                                         django_capture_on_commit_callbacks):
    assert json.loads(json.dumps(probe.manifest["permissions"])) == ["commands", "form_widgets", "signal_receivers"]
    with django_capture_on_commit_callbacks(execute=True):
        services.enable(acme, "probe-tools")
    calls = sys.modules["probe_tools"].CALLS
    assert calls == [("probe-tools", "acme")]
    with django_capture_on_commit_callbacks(execute=True):
        services.enable(globex, "fx-tools")  # The probe is not enabled in globex: its receiver stays quiet.
        services.enable(acme, "fx-tools")
    assert calls == [("probe-tools", "acme"), ("fx-tools", "acme")]

    with tenant_context(acme):
        assert widget_registry.is_registered("probe_text")
    with tenant_context(globex):
        assert not widget_registry.is_registered("probe_text")

    call_command("lowcode", "plugin", "run", "--tenant", "acme", "hello", "--name", "bea")
    assert "hello bea from acme" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No plugin enabled in globex adds the command 'hello'"):
        call_command("lowcode", "plugin", "run", "--tenant", "globex", "hello")
