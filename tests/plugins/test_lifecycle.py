"""Plugins (issue 18, PL-1 to PL-3): the signed fx-tools installs, is enabled in acme only, works in
expressions and formulas there, vanishes on disable (in another process too, on its next request),
rolls back an upgrade whose health check fails; tampered packages are refused with their reason
and leave nothing installed."""

from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django_tenants.utils import tenant_context

from audit.models import AuditEvent
from lowcode.expressions import ExpressionSyntaxError, compile_expression, function_registry
from plugins import loader, packages, services
from plugins.models import Activation, Plugin, PluginEvent
from tests.second_process import SecondProcess

from .conftest import FX_PACKAGE, build, members_of, zip_of

pytestmark = pytest.mark.django_db


def fx_in(tenant, source: str = "fx(100, 'EUR')"):
    """The value of an fx() expression in `tenant`, or "unknown" when fx does not exist there."""
    with tenant_context(tenant):
        try:
            return compile_expression(source).evaluate({})
        except ExpressionSyntaxError as error:
            assert error.code == "unknown_function" or "fx" in str(error)
            return "unknown"


@pytest.fixture
def installed(publisher, fx_package):
    return services.install(fx_package, actor="test")


def test_fx_tools_installs_and_is_enabled_in_acme_only(installed, acme, globex):
    assert (installed.name, installed.version) == ("fx-tools", "1.0.0")
    assert "expression_functions" in installed.manifest["permissions"]
    assert Path(installed.path).is_relative_to(services.plugins_home())
    assert fx_in(acme) == fx_in(globex) == "unknown"  # Installed is not enabled.

    assert services.enable(acme, "fx-tools") is True
    assert fx_in(acme) == Decimal("108.00")
    assert fx_in(acme, "fx(12.50, 'usd') + fx(1000, 'JPY')") == Decimal("19.2000")
    assert fx_in(acme, "fx(5, 'XYZ')") is None  # An unknown currency is null.
    assert fx_in(globex) == "unknown"
    with tenant_context(globex):
        assert "fx" not in function_registry.get_types()
        with pytest.raises(ExpressionSyntaxError, match="fx"):
            compile_expression("fx(1, 'USD') > 0")
    with tenant_context(acme):
        assert "fx" in function_registry.get_types()


def test_every_step_is_idempotent_and_audited(installed, publisher, fx_package, acme):
    with tenant_context(acme):
        earlier = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    assert services.install(fx_package).pk == installed.pk
    assert services.enable(acme, "fx-tools") is True
    assert services.enable(acme, "fx-tools") is False
    assert services.disable(acme, "fx-tools") is True
    assert services.disable(acme, "fx-tools") is False
    with tenant_context(acme):
        events = list(AuditEvent.objects.filter(target_type="plugins.plugin", seq__gt=earlier).order_by("seq")
                      .values_list("action", "target_id"))
    assert events == [("plugin.enabled", "fx-tools"), ("plugin.disabled", "fx-tools")]
    assert list(PluginEvent.objects.filter(plugin="fx-tools").values_list("action", "result")) == [("install", "ok")]
    assert fx_in(acme) == "unknown"


def test_fx_works_in_a_formula_computed_by_the_database(people, publisher, fx_package, acme):
    from dynamic_models import runtime
    from dynamic_models import services as entities
    from dynamic_models.models import Entity, Field

    services.install(fx_package)
    services.enable(acme, "fx-tools")
    with tenant_context(acme):
        expense = Entity.objects.get(key="expense")
        Field.objects.create(entity=expense, key="amount_usd", type="formula", position=99,
                             options={"expression": "fx(amount, currency)"})
        entities.publish(expense)
        rows = list(runtime.get_model("expense").objects.values_list("amount", "currency", "amount_usd"))
    assert rows and any(currency != "USD" for _amount, currency, _usd in rows)
    for amount, currency, usd in rows:
        assert usd == fx_in(acme, f"fx({amount}, '{currency}')"), (amount, currency)


def test_a_form_condition_with_fx_is_judged_on_the_server(people, publisher, fx_package, acme):
    from forms_engine import conditions, rendering
    from forms_engine import services as forms
    from metadata import services as metadata

    services.install(fx_package)
    services.enable(acme, "fx-tools")
    with tenant_context(acme):
        metadata.save_and_publish("form", "travel_budget", TRAVEL_BUDGET)
        body = forms.get_form("travel_budget").body
        small = conditions.evaluate(body, {"amount": 100, "currency": "EUR"}, user=None, user_values={})
        large = conditions.evaluate(body, {"amount": 1000, "currency": "EUR"}, user=None, user_values={})
        assert "/plugins/static/fx-tools/1.0.0/fx_tools/fx.js" in rendering.media()
    assert "approval" in small.hidden() and "approval" not in large.hidden()
    assert large.fields["approval"].required and Decimal(str(large.data["in_usd"])) == Decimal("1080")


TRAVEL_BUDGET = {
    "label": "Travel budget",
    "schema": {"type": "object", "properties": {
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["USD", "EUR", "JPY"]},
        "in_usd": {"type": "number"},
        "approval": {"type": "string", "maxLength": 100}},
        "required": ["amount", "currency"]},
    "fields": {
        "amount": {"widget": "number", "label": "Amount"},
        "currency": {"widget": "select", "label": "Currency",
                     "options": {"choices": [{"value": "USD"}, {"value": "EUR"}, {"value": "JPY"}]}},
        "in_usd": {"widget": "number", "label": "In US dollars", "value": "fx(amount, currency)"},
        "approval": {"widget": "text", "label": "Approved by", "show_when": "fx(amount, currency) > 1000",
                     "require_when": "fx(amount, currency) > 1000"},
    },
    "layout": {"steps": [{"key": "main", "items": [
        {"field": "amount", "width": 6}, {"field": "currency", "width": 6}, {"field": "in_usd"},
        {"field": "approval"}]}]},
}


def test_the_plugins_static_files_are_served_where_it_is_enabled(installed, acme, acme_client, globex_client,
                                                                  globex):
    services.enable(acme, "fx-tools")
    url = "/plugins/static/fx-tools/1.0.0/fx_tools/fx.js"
    response = acme_client.get(url)
    assert response.status_code == 200 and b"LowcodeExpressions.functions.fx" in b"".join(response.streaming_content)
    assert globex_client.get(url).status_code == 404
    assert acme_client.get("/plugins/static/fx-tools/1.0.0/../manifest.json").status_code == 400  # Outside static/.


# --- upgrade, dependencies, uninstall ----------------------------------------------------------


def test_an_upgrade_whose_health_check_fails_rolls_back(installed, acme):
    services.enable(acme, "fx-tools")
    broken = build(manifest={"version": "1.1.0"},
                   files={"fx_tools/functions.py": (FX_SOURCE + "\n\ndef health_check():\n    return False\n").encode()})
    with pytest.raises(ValidationError) as refused:
        services.upgrade(broken, actor="test")
    assert refused.value.code == "health_check_failed"
    plugin = Plugin.objects.get(name="fx-tools")
    assert plugin.version == "1.0.0" and Path(plugin.path).is_dir()
    assert not list(Path(plugin.path).parent.glob("1.1.0-*"))  # The new copy is gone.
    assert loader.loaded("fx-tools").version == "1.0.0"
    assert fx_in(acme) == Decimal("108.00")
    assert PluginEvent.objects.filter(action="upgrade", result="rolled_back").exists()


FX_SOURCE = (Path(settings.BASE_DIR) / "examples/plugins/fx-tools/fx_tools/functions.py").read_text()


def test_an_upgrade_that_passes_replaces_the_version_everywhere_it_is_enabled(installed, acme,
                                                                             django_capture_on_commit_callbacks):
    services.enable(acme, "fx-tools")
    old_path = installed.path
    newer = build(manifest={"version": "1.1.0"},
                  files={"fx_tools/functions.py": FX_SOURCE.replace('"EUR": Decimal("1.08")', '"EUR": Decimal("1.10")')
                         .replace('Decimal("108.00")', 'Decimal("110.00")').encode()})
    with django_capture_on_commit_callbacks(execute=True):
        plugin = services.upgrade(newer)
    assert plugin.version == "1.1.0" and not Path(old_path).exists()
    acme.refresh_from_db()
    assert fx_in(acme) == Decimal("110.00")
    assert services.upgrade(newer).version == "1.1.0"  # Again: nothing to do.
    with pytest.raises(ValidationError) as refused:
        services.upgrade(FX_PACKAGE.read_bytes())
    assert refused.value.code == "not_newer"


def test_dependencies_are_checked_on_install_enable_disable_and_uninstall(installed, acme):
    extras = build(manifest={"name": "fx-extras", "module": "fx_extras", "dependencies": {"fx-tools": ">=1.0,<2"},
                             "entry_points": {}, "health_check": "fx_extras:check"},
                   files={"fx_extras/__init__.py": b"def check():\n    return True\n"}, own_code=False)
    needs_newer = build(manifest={"name": "fx-extras", "module": "fx_extras", "dependencies": {"fx-tools": ">=2"},
                                  "entry_points": {}, "health_check": "fx_extras:check"},
                        files={"fx_extras/__init__.py": b"def check():\n    return True\n"}, own_code=False)
    assert _refusal(services.install, needs_newer) == "incompatible_dependency"
    services.install(extras)
    assert _refusal(lambda: services.enable(acme, "fx-extras")) == "dependency_disabled"
    services.enable(acme, "fx-tools")
    services.enable(acme, "fx-extras")
    assert _refusal(lambda: services.disable(acme, "fx-tools")) == "required_by"
    assert _refusal(lambda: services.uninstall("fx-tools")) == "required_by"
    services.uninstall("fx-extras")
    services.uninstall("fx-tools")
    assert not Plugin.objects.exists() and not Activation.objects.exists()
    assert fx_in(acme) == "unknown"
    services.uninstall("fx-tools")  # Again: nothing to do.


def test_a_plugin_for_another_platform_version_or_with_missing_parts_is_refused(publisher):
    assert _refusal(services.install, build(manifest={"platform": ">=2"})) == "incompatible_platform"
    assert _refusal(services.install, build(manifest={"entry_points": {"telepathy": ["fx_tools.functions:X"]},
                                                      "permissions": ["telepathy"]})) == "unknown_extension_point"
    assert _refusal(services.install, build(manifest={"permissions": []})) == "undeclared_permission"
    assert _refusal(services.install, build(manifest={"version": "one"})) == "invalid_manifest"
    assert _refusal(services.install, build(manifest={"module": "json", "entry_points": {},
                                                      "health_check": "json:loads"},
                                            files={"json/__init__.py": b""}, own_code=False)) == "module_conflict"
    assert _refusal(services.install, build(files={"evil.py": b"import os"})) == "unexpected_code"
    assert _refusal(services.install, build(files={"lowcode/settings.py": b""})) == "unexpected_path"
    assert not Plugin.objects.exists()


def _refusal(function, *args) -> str:
    with pytest.raises(ValidationError) as refused:
        function(*args)
    return refused.value.code


# --- tampered packages -------------------------------------------------------------------------


def _changed_byte(name: str):
    def tamper(members):
        content = bytearray(members[name])
        content[len(content) // 2] ^= 0x01
        members[name] = bytes(content)
    return tamper


#: How the package is tampered with: (change, the refusal's code, what its message says).
TAMPERINGS = {
    "a byte of manifest.json": (_changed_byte("manifest.json"), "checksum_mismatch", "manifest.json was changed"),
    "a byte of functions.py": (_changed_byte("fx_tools/functions.py"), "checksum_mismatch",
                               "fx_tools/functions.py was changed"),
    "a byte of __init__.py": (_changed_byte("fx_tools/__init__.py"), "checksum_mismatch",
                              "fx_tools/__init__.py was changed"),
    "a byte of fx.js": (_changed_byte("static/fx_tools/fx.js"), "checksum_mismatch", "static/fx_tools/fx.js was"),
    "a file added": (lambda members: members.update({"fx_tools/backdoor.py": b"import os\n"}), "unexpected_file",
                     "fx_tools/backdoor.py is not part of the signed package"),
    "a file removed": (lambda members: members.pop("static/fx_tools/fx.js"), "missing_file",
                       "static/fx_tools/fx.js is signed but missing"),
    "the manifest edited": (lambda members: members.update({"manifest.json": members["manifest.json"].replace(
        b'"version": "1.0.0"', b'"version": "1.0.1"')}), "checksum_mismatch", "manifest.json was changed after signing"),
    "the checksums edited to match": (lambda members: _rehash(members, "fx_tools/__init__.py", b"import os\n"),
                                      "bad_signature", "signature.json was changed"),
    "the signature removed": (lambda members: members.pop("signature.json"), "unsigned", "not signed"),
}


def _rehash(members, name: str, content: bytes) -> None:
    import hashlib

    members[name] = content
    signature = json.loads(members["signature.json"])
    signature["files"][name] = hashlib.sha256(content).hexdigest()
    members["signature.json"] = json.dumps(signature).encode()


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_a_tampered_copy_is_refused_with_its_reason_and_nothing_is_installed(publisher, fx_package, tampering):
    tamper, code, reason = TAMPERINGS[tampering]
    members = members_of(fx_package)
    tamper(members)
    before = set(services.plugins_home().rglob("*")) if services.plugins_home().exists() else set()
    with pytest.raises(ValidationError, match=reason) as refused:
        services.install(zip_of(members))
    assert refused.value.code == code
    _assert_nothing_installed(before)
    assert PluginEvent.objects.get(result="refused").detail["code"] == code


def test_revoked_and_unknown_keys_are_refused(publisher, fx_package):
    stranger = build(key=packages.generate_private_key())
    before = set(services.plugins_home().rglob("*")) if services.plugins_home().exists() else set()
    with pytest.raises(ValidationError, match="not a registered publisher key") as refused:
        services.install(stranger)
    assert refused.value.code == "unknown_key"
    services.revoke_key(publisher.key_id)
    with pytest.raises(ValidationError, match="revoked") as refused:
        services.install(fx_package)
    assert refused.value.code == "revoked_key"
    _assert_nothing_installed(before)


def _assert_nothing_installed(before: set) -> None:
    assert not Plugin.objects.exists()
    assert loader.loaded("fx-tools") is None
    after = set(services.plugins_home().rglob("*")) if services.plugins_home().exists() else set()
    assert not {path for path in after - before if path.is_file()}


def test_a_zip_with_unsafe_paths_is_refused(publisher):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.py", b"")
    with pytest.raises(ValidationError) as refused:
        services.install(buffer.getvalue())
    assert refused.value.code == "unsafe_path"


def test_an_installed_copy_changed_on_disk_is_not_loaded(installed, acme):
    services.enable(acme, "fx-tools")
    loader.unload("fx-tools")
    services._enabled.clear()
    functions = Path(installed.path) / "fx_tools" / "functions.py"
    functions.write_text(functions.read_text() + "\n# changed\n")
    assert fx_in(acme) == "unknown"


# --- the command and the API -------------------------------------------------------------------


def test_the_plugin_command(publisher, acme, tmp_path, capsys):
    key = tmp_path / "publisher.key"
    call_command("lowcode", "plugin", "keygen", "--output", str(key))
    public_key = capsys.readouterr().out.strip()
    call_command("lowcode", "plugin", "add-key", "Tester", public_key)
    package = tmp_path / "fx.zip"
    call_command("lowcode", "plugin", "pack", str(Path(settings.BASE_DIR) / "examples/plugins/fx-tools"),
                 "--key", str(key), "--output", str(package))
    call_command("lowcode", "plugin", "verify", str(package))
    call_command("lowcode", "plugin", "install", str(package))
    call_command("lowcode", "plugin", "enable", "fx-tools", "--tenant", "acme")
    assert fx_in(acme) == Decimal("108.00")
    call_command("lowcode", "plugin", "list", "--tenant", "acme")
    assert "fx-tools" in capsys.readouterr().out
    call_command("lowcode", "plugin", "disable", "fx-tools", "--tenant", "acme")
    tampered = members_of(package.read_bytes())
    tampered["manifest.json"] = tampered["manifest.json"].replace(b"1.0.0", b"1.0.1")
    package.write_bytes(zip_of(tampered))
    with pytest.raises(CommandError, match="checksum_mismatch: manifest.json was changed after signing"):
        call_command("lowcode", "plugin", "verify", str(package))


def test_the_api_starts_and_stops_a_plugin_for_tenant_admins(installed, tenant, make_user):
    from tests.designers import client_of

    acme = tenant
    admin = make_user(acme, "root", is_staff=True, is_superuser=True)
    clerk = make_user(acme, "clerk", is_staff=True)
    client = client_of(admin)
    listing = client.get("/api/v1/plugins/").json()
    assert [(row["name"], row["enabled"]) for row in listing] == [("fx-tools", False)]
    assert client.post("/api/v1/plugins/fx-tools/start/").json()["enabled"] is True
    assert client.post("/api/v1/plugins/fx-tools/start/").json()["enabled"] is True
    acme.refresh_from_db()
    assert fx_in(acme) == Decimal("108.00")
    assert client.post("/api/v1/plugins/fx-tools/stop/").json()["enabled"] is False
    assert client.post("/api/v1/plugins/nothing/start/").status_code == 404
    assert client_of(clerk).post("/api/v1/plugins/fx-tools/start/").status_code == 403
    with tenant_context(acme):
        assert AuditEvent.objects.filter(action="plugin.enabled", actor__username="root").count() == 1


# --- every process, on its next request --------------------------------------------------------

# A second process answering "requests": each loads the tenant row as TenantMainMiddleware does,
# then evaluates fx() there.
SECOND_PROCESS = """
import sys
import django
django.setup()
from django.db import connection
from django_tenants.utils import get_tenant_model
from lowcode.expressions import ExpressionSyntaxError, compile_expression
for line in sys.stdin:
    connection.set_tenant(get_tenant_model().objects.get(schema_name=line.strip()))
    try:
        print(compile_expression("fx(100, 'EUR')").evaluate({}), flush=True)
    except ExpressionSyntaxError:
        print("unknown", flush=True)
"""


def test_enabling_and_disabling_reach_another_process_on_its_next_request(committed_acme, test_database_url):
    from django_tenants.utils import get_tenant_model

    services.register_key("Examples", (FX_PACKAGE.parent / "test-publisher.pub").read_text())
    services.install(FX_PACKAGE.read_bytes())
    with SecondProcess(SECOND_PROCESS, test_database_url) as worker:
        def ask(schema_name):
            return " ".join(worker.ask(schema_name))

        assert ask("acme") == "unknown"
        services.enable(committed_acme, "fx-tools")
        assert ask("acme") == "108.00"
        assert ask("globex") == "unknown"
        assert ask("acme") == "108.00"
        services.disable(get_tenant_model().objects.get(schema_name="acme"), "fx-tools")
        assert ask("acme") == "unknown"


def test_uninstall_keeps_the_plugins_data_unless_purged(installed, publisher, fx_package,
                                                       django_capture_on_commit_callbacks):
    data = services.data_dir("fx-tools")
    data.mkdir(parents=True)
    (data / "rates.json").write_text("{}")
    with django_capture_on_commit_callbacks(execute=True):
        services.uninstall("fx-tools")
    assert (data / "rates.json").exists() and not Path(installed.path).exists()
    assert loader.loaded("fx-tools") is None
    services.install(fx_package)
    with django_capture_on_commit_callbacks(execute=True):
        services.uninstall("fx-tools", purge=True)
    assert not data.exists()
    assert list(PluginEvent.objects.filter(action="uninstall").values_list("detail__purged", flat=True)) == [True, False]
