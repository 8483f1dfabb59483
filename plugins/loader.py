"""Importing installed plugins into this process, and taking them out again.

A plugin's code is imported from its extracted copy under LOWCODE_HOME (checked against the
signed checksums first), never from an upload. Each process loads a plugin the first time a
tenant that enables it is served (services.visible_plugins), and loads the new version after
an upgrade; its contributions join the registries tagged with its name.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from plugins import packages
from plugins.extension_points import extension_point_registry


@dataclass
class LoadedPlugin:
    name: str
    version: str
    path: str
    module: str
    undo: list[Callable[[], None]] = field(default_factory=list)


_loaded: dict[str, LoadedPlugin] = {}
_lock = threading.RLock()


def resolve(path: str):
    """The object an entry point `package.module:name` names (importing the module)."""
    module, _colon, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def loaded(name: str) -> LoadedPlugin | None:
    return _loaded.get(name)


def load(plugin) -> LoadedPlugin:
    """Import `plugin` (a models.Plugin or one being installed) and register its contributions,
    replacing another version loaded before; a no-op when this version is loaded already.

    :raises ValidationError: the copy does not match its checksums, or the code fails to import
        or register (nothing of it stays registered).
    """
    with _lock:
        current = _loaded.get(plugin.name)
        if current is not None and (current.version, current.path) == (plugin.version, plugin.path):
            return current
        if current is not None:
            unload(plugin.name)
        packages.verify_copy(Path(plugin.path), plugin.checksums)
        module = plugin.manifest["module"]
        entry = LoadedPlugin(plugin.name, plugin.version, plugin.path, module)
        sys.path.insert(0, plugin.path)
        _loaded[plugin.name] = entry
        try:
            for point_name, paths in plugin.manifest["entry_points"].items():
                point = extension_point_registry.get(point_name)
                for path in paths:
                    entry.undo.append(point.add(plugin, resolve(path)))
        except Exception as error:
            unload(plugin.name)
            raise ValidationError(_("The plugin's code failed to load: %(error)s") % {"error": error},
                                  code="load_failed") from error
        return entry


def unload(name: str) -> None:
    """Take a plugin's contributions out of the registries and forget its modules."""
    with _lock:
        entry = _loaded.pop(name, None)
        if entry is None:
            return
        for undo in reversed(entry.undo):
            undo()
        for module_name in [key for key in sys.modules if key == entry.module or key.startswith(entry.module + ".")]:
            del sys.modules[module_name]
        if entry.path in sys.path:
            sys.path.remove(entry.path)
        importlib.invalidate_caches()


def health_check(plugin) -> None:
    """Run the manifest's `health_check` (a function taking no argument) of a loaded plugin.

    :raises ValidationError: code health_check_failed, when it raises or returns False.
    """
    path = plugin.manifest.get("health_check")
    if not path:
        return
    try:
        healthy = resolve(path)() is not False
    except Exception as error:
        raise ValidationError(_("The health check of %(name)s %(version)s failed: %(error)s") % {
            "name": plugin.name, "version": plugin.version, "error": error}, code="health_check_failed") from error
    if not healthy:
        raise ValidationError(_("The health check of %(name)s %(version)s failed.") % {
            "name": plugin.name, "version": plugin.version}, code="health_check_failed")
