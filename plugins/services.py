"""The plugin lifecycle (PL-2), one service for the platform admin, the tenant admin, the
`lowcode plugin` command and the API: install -> enable (per tenant) -> disable -> upgrade ->
uninstall, plus the publisher keys packages are checked against.

Install and upgrade verify the package (packages.verify), its platform range and its
dependencies, extract it under LOWCODE_HOME/plugins/ and load it with a health check before
anything is recorded: a refusal names its reason (a ValidationError's code) and leaves
nothing installed. An upgrade keeps the old copy until the new one passes, and goes back to
it otherwise. Every step is idempotent; tenant steps are audited in the tenant's trail,
platform steps in PluginEvent.

Enabling or disabling gives the tenant row a new `plugins` token (`Tenant.definition_versions`,
which django-tenants loads on every request): `visible_plugins()` compares it with the token
its cached answer was read at, so every process sees the change on its next request.
"""

from __future__ import annotations

import functools
import logging
import shutil
import threading
import tomllib
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, get_tenant_model, tenant_context
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from audit import services as audit
from metadata.services import _bump_definition_version
from plugins import audit_actions, loader, packages, signals
from plugins.extension_points import extension_point_registry
from plugins.models import Activation, Plugin, PluginEvent, PublisherKey
from plugins.packages import refuse

logger = logging.getLogger(__name__)

#: The key of the enabled plugins' token in `Tenant.definition_versions`.
TOKEN_KIND = "plugins"  # noqa: S105 (a key, not a secret)


@functools.cache
def platform_version() -> str:
    """The product's version (pyproject.toml), which manifests' `platform` ranges are checked against."""
    return tomllib.loads((Path(settings.BASE_DIR) / "pyproject.toml").read_text())["project"]["version"]


def plugins_home() -> Path:
    """Where installed plugins' verified copies are extracted, one folder per plugin and version."""
    return Path(settings.PLUGINS_ROOT) / "installed"


def data_dir(name: str) -> Path:
    """Where a plugin keeps its files; kept when it is uninstalled unless purged."""
    return Path(settings.PLUGINS_ROOT) / "data" / name


def _event(action: str, plugin: str = "", version: str = "", *, actor: str = "", result: str = "ok",
           **detail) -> None:
    PluginEvent.objects.create(action=action, plugin=plugin, version=version, actor=actor, result=result,
                               detail=detail)


# --- publisher keys --------------------------------------------------------------------------


def register_key(name: str, public_key: str, *, actor: str = "") -> PublisherKey:
    """Register a publisher's public key (base64 of the raw 32 bytes); again: the same row."""
    packages.load_public_key(public_key)
    public_key = public_key.strip()
    key, created = PublisherKey.objects.get_or_create(public_key=public_key, defaults={
        "name": name, "key_id": packages.key_id(public_key)})
    if created:
        _event("key.registered", actor=actor, key_id=key.key_id, publisher=name)
    return key


def revoke_key(key_id: str, *, actor: str = "") -> PublisherKey:
    """Revoke a key: packages signed with it are refused from now on (installed ones stay)."""
    key = PublisherKey.objects.filter(key_id=key_id).first()
    if key is None:
        raise refuse("unknown_key", _("No publisher key %(key)s is registered."), key=key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        _event("key.revoked", actor=actor, key_id=key_id)
    return key


def _usable_key(key_id: str) -> str:
    key = PublisherKey.objects.filter(key_id=key_id).first()
    if key is None:
        raise refuse("unknown_key", _("The package is signed with key %(key)s, which is not a registered "
                                      "publisher key."), key=key_id)
    if key.revoked_at is not None:
        raise refuse("revoked_key", _("The package is signed with key %(key)s (%(publisher)s), which was "
                                      "revoked."), key=key_id, publisher=key.name)
    return key.public_key


def verify(data: bytes) -> packages.Package:
    """Verify a package against the registered keys (what install checks first)."""
    return packages.verify(data, _usable_key)


# --- install, upgrade, uninstall -------------------------------------------------------------


def _check_compatible(package: packages.Package, *, replacing: Plugin | None = None) -> None:
    manifest = package.manifest
    if Version(platform_version()) not in SpecifierSet(manifest["platform"], prereleases=True):
        raise refuse("incompatible_platform", _("%(name)s %(version)s needs platform %(range)s; this is "
                                                "%(platform)s."), name=package.name, version=package.version,
                     range=manifest["platform"], platform=platform_version())
    unknown = sorted(set(manifest["entry_points"]) - set(extension_point_registry.get_types()))
    if unknown:
        raise refuse("unknown_extension_point", _("%(name)s contributes to %(points)s, which this platform does "
                                                  "not have."), name=package.name, points=", ".join(unknown))
    installed = {plugin.name: plugin for plugin in Plugin.objects.all()}
    for dependency, wanted in sorted(manifest.get("dependencies", {}).items()):
        if dependency not in installed:
            raise refuse("missing_dependency", _("%(name)s needs the plugin %(dependency)s %(range)s, which is not "
                                                 "installed."), name=package.name, dependency=dependency,
                         range=wanted)
        if Version(installed[dependency].version) not in SpecifierSet(wanted, prereleases=True):
            raise refuse("incompatible_dependency", _("%(name)s needs %(dependency)s %(range)s; %(installed)s is "
                                                      "installed."), name=package.name, dependency=dependency,
                         range=wanted, installed=installed[dependency].version)
    for other in installed.values():
        if other.name != package.name and other.manifest["module"] == manifest["module"]:
            raise refuse("module_conflict", _("The module %(module)s is already the plugin %(other)s's."),
                         module=manifest["module"], other=other.name)
        wanted = other.dependencies.get(package.name)
        if replacing is not None and wanted and Version(package.version) not in SpecifierSet(wanted, prereleases=True):
            raise refuse("breaks_dependent", _("%(other)s needs %(name)s %(range)s, which %(version)s is not."),
                         other=other.name, name=package.name, range=wanted, version=package.version)
    if replacing is None and loader.loaded(package.name) is None:
        import importlib.util

        if importlib.util.find_spec(manifest["module"]) is not None:
            raise refuse("module_conflict", _("The module %(module)s exists already on this platform."),
                         module=manifest["module"])


def _stage(package: packages.Package, key: PublisherKey) -> Plugin:
    """Extract a verified package into a new folder of its own: an unsaved Plugin pointing at it."""
    target = plugins_home() / package.name / f"{package.version}-{uuid.uuid4().hex[:8]}"
    packages.extract(package, target)
    manifest = package.manifest
    return Plugin(name=package.name, version=package.version, description=manifest["description"],
                  author=manifest["author"], manifest=manifest, checksums=package.checksums, path=str(target),
                  publisher_key=key)


def _try_load(candidate: Plugin) -> None:
    """Load and health-check a staged plugin; on failure leave nothing of it (loaded or on disk)."""
    try:
        loader.load(candidate)
        loader.health_check(candidate)
    except ValidationError:
        loader.unload(candidate.name)
        shutil.rmtree(candidate.path, ignore_errors=True)
        raise


def _refused(action: str, error: ValidationError, actor: str) -> None:
    logger.warning("plugin %s refused: %s", action, error.messages[0])
    _event(action, actor=actor, result="refused", code=error.error_list[0].code, reason=error.messages[0])


def install(data: bytes, *, actor: str = "") -> Plugin:
    """Install a package platform-wide (enabled nowhere yet); the same package again: the same row.

    :raises ValidationError: the reason it is refused (its code names the rule); nothing is installed.
    """
    try:
        package = verify(data)
        existing = Plugin.objects.filter(name=package.name).first()
        if existing is not None:
            if existing.checksums == package.checksums:
                return existing
            raise refuse("already_installed", _("%(name)s %(installed)s is installed: upgrade it instead."),
                         name=package.name, installed=existing.version)
        _check_compatible(package)
        candidate = _stage(package, PublisherKey.objects.get(key_id=package.key_id))
        _try_load(candidate)
    except ValidationError as error:
        _refused("install", error, actor)
        raise
    candidate.save()
    _event("install", candidate.name, candidate.version, actor=actor, key_id=package.key_id)
    return candidate


def upgrade(data: bytes, *, actor: str = "") -> Plugin:
    """Replace an installed plugin's version with a newer one, keeping the old copy until the new one
    loads and passes its health check; on failure the old version is loaded again (rolled back).

    :raises ValidationError: the reason it is refused or rolled back; the old version stays.
    """
    try:
        package = verify(data)
        current = Plugin.objects.filter(name=package.name).first()
        if current is None:
            raise refuse("not_installed", _("%(name)s is not installed: install it first."), name=package.name)
        if current.checksums == package.checksums:
            return current
        if Version(package.version) <= Version(current.version):
            raise refuse("not_newer", _("%(name)s %(version)s is not newer than the installed %(installed)s."),
                         name=package.name, version=package.version, installed=current.version)
        _check_compatible(package, replacing=current)
        candidate = _stage(package, PublisherKey.objects.get(key_id=package.key_id))
        try:
            _try_load(candidate)
        except ValidationError:
            loader.load(current)  # Rolled back: the old version serves again.
            _event("upgrade", package.name, package.version, actor=actor, result="rolled_back",
                   previous=current.version)
            raise
    except ValidationError as error:
        _refused("upgrade", error, actor)
        raise
    old_path, previous = current.path, current.version
    for field in ("version", "description", "author", "manifest", "checksums", "path", "publisher_key"):
        setattr(current, field, getattr(candidate, field))
    with transaction.atomic():
        current.save()
        _bump_enabled_tenants(current)
    transaction.on_commit(lambda: shutil.rmtree(old_path, ignore_errors=True))
    _event("upgrade", current.name, current.version, actor=actor, previous=previous)
    return current


def uninstall(name: str, *, purge: bool = False, actor: str = "") -> None:
    """Uninstall a plugin everywhere (disabling it in every tenant); again: nothing to do.

    :param purge: also delete its data folder (kept otherwise, for a later install).
    :raises ValidationError: code required_by, while another installed plugin depends on it.
    """
    plugin = Plugin.objects.filter(name=name).first()
    if plugin is None:
        return
    dependents = sorted(other.name for other in Plugin.objects.exclude(pk=plugin.pk) if name in other.dependencies)
    if dependents:
        error = refuse("required_by", _("%(name)s cannot be uninstalled: %(dependents)s depend on it."),
                       name=name, dependents=", ".join(dependents))
        _refused("uninstall", error, actor)
        raise error
    with transaction.atomic():
        _bump_enabled_tenants(plugin)
        path, version = plugin.path, plugin.version
        plugin.delete()
        _event("uninstall", name, version, actor=actor, purged=purge)

    def remove_files():
        loader.unload(name)
        shutil.rmtree(Path(path).parent if Path(path).parent.parent == plugins_home() else path, ignore_errors=True)
        if purge:
            shutil.rmtree(data_dir(name), ignore_errors=True)

    transaction.on_commit(remove_files)


def _bump_enabled_tenants(plugin: Plugin) -> None:
    for tenant in get_tenant_model().objects.filter(plugin_activations__plugin=plugin):
        with tenant_context(tenant):
            _bump_definition_version(TOKEN_KIND)


# --- enable and disable per tenant -----------------------------------------------------------


def _installed(name: str) -> Plugin:
    plugin = Plugin.objects.filter(name=name).first()
    if plugin is None:
        raise refuse("not_installed", _("No plugin %(name)s is installed."), name=name)
    return plugin


@transaction.atomic
def enable(tenant, name: str, *, user=None) -> bool:
    """Enable an installed plugin in `tenant` (its dependencies must be enabled there); return
    whether it changed (False: it was enabled already)."""
    plugin = _installed(name)
    enabled = set(Activation.objects.filter(tenant=tenant).values_list("plugin__name", flat=True))
    if name in enabled:
        return False
    missing = sorted(set(plugin.dependencies) - enabled)
    if missing:
        raise refuse("dependency_disabled", _("Enable %(dependencies)s first: %(name)s depends on it."),
                     dependencies=", ".join(missing), name=name)
    Activation.objects.create(tenant=tenant, plugin=plugin)
    _tenant_step(tenant, audit_actions.ENABLE, plugin, user, signals.plugin_enabled)
    return True


@transaction.atomic
def disable(tenant, name: str, *, user=None) -> bool:
    """Disable a plugin in `tenant` (not while an enabled plugin there depends on it); its data
    stays. Return whether it changed (False: it was not enabled)."""
    plugin = _installed(name)
    activations = Activation.objects.filter(tenant=tenant).select_related("plugin")
    if not any(activation.plugin_id == plugin.pk for activation in activations):
        return False
    dependents = sorted(activation.plugin.name for activation in activations if name in activation.plugin.dependencies)
    if dependents:
        raise refuse("required_by", _("%(name)s cannot be disabled: %(dependents)s depend on it here."),
                     name=name, dependents=", ".join(dependents))
    Activation.objects.filter(tenant=tenant, plugin=plugin).delete()
    _tenant_step(tenant, audit_actions.DISABLE, plugin, user, signals.plugin_disabled)
    return True


def _tenant_step(tenant, action, plugin: Plugin, user, signal) -> None:
    with tenant_context(tenant):
        _bump_definition_version(TOKEN_KIND)
        audit.record(action, target_type="plugins.plugin", target_id=plugin.name, target_repr=str(plugin),
                     actor=user, data={"version": plugin.version})

    def send():
        with tenant_context(tenant):
            signal.send(sender=Plugin, plugin=plugin, tenant=tenant)

    transaction.on_commit(send)
    if getattr(connection, "tenant", None) is not tenant and connection.schema_name == tenant.schema_name:
        connection.tenant.definition_versions = tenant.definition_versions


def tenant_plugins(tenant) -> list[tuple[Plugin, bool]]:
    """Every installed plugin and whether `tenant` enables it."""
    enabled = set(Activation.objects.filter(tenant=tenant).values_list("plugin_id", flat=True))
    return [(plugin, plugin.pk in enabled) for plugin in Plugin.objects.all()]


# --- what the connection's tenant sees -------------------------------------------------------


_enabled: dict[str, tuple[object, frozenset[str]]] = {}
_computing = threading.local()


def visible_plugins() -> frozenset[str]:
    """The plugins the connection's tenant enables, loaded into this process (none on the public
    schema: plugins extend tenants). Cached per schema against the tenant row's token, so no
    query unless it changed."""
    schema = connection.schema_name
    if schema == get_public_schema_name():
        return frozenset()
    if getattr(_computing, "active", False):  # A plugin's code asks a registry while it loads.
        return frozenset()
    tenant = getattr(connection, "tenant", None)
    tokens = getattr(tenant, "definition_versions", None) if getattr(tenant, "schema_name", None) == schema else None
    token = tokens.get(TOKEN_KIND) if tokens is not None else None
    cached = _enabled.get(schema)
    # Without the tenant row (a bare schema_context), the last answer read for the schema.
    if cached is not None and (tokens is None or cached[0] == token):
        return cached[1]
    _computing.active = True
    try:
        names = set()
        for activation in Activation.objects.filter(tenant__schema_name=schema).select_related("plugin"):
            try:
                loader.load(activation.plugin)
            except ValidationError:
                logger.exception("plugin %s could not be loaded", activation.plugin)
                continue
            names.add(activation.plugin.name)
    finally:
        _computing.active = False
    names = frozenset(names)
    if tokens is not None:
        _enabled[schema] = (token, names)
    return names
