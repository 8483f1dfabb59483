"""The project's one registry pattern (after baserow's core/registry.py).

An owning app declares a base `Instance` subclass and a `Registry` singleton in its
`registries.py`, and registers built-in types from its `AppConfig.ready()`.

Plugins register more instances, tagged with their name (`Instance.plugin`): such an instance
exists only where `plugin_visibility` says its plugin is enabled (the `plugins` app sets it to
the connection's tenant's enabled plugins), so a plugin disabled in one tenant vanishes there
only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar


class Instance:
    """A registered type, identified by its stable `type` string."""

    type: str = ""
    #: The plugin that contributed it ("" for the product's own types).
    plugin: str = ""


def _every_plugin() -> None:
    return None


#: Returns the names of the plugins whose instances are visible now, or None for all of them
#: (hashable: caches key on it). Replaced by the plugins app (`set_plugin_visibility`), whose
#: function also loads the plugins the connection's tenant enables, so registries ask it first.
plugin_visibility: Callable[[], frozenset[str] | None] = _every_plugin


def set_plugin_visibility(function: Callable[[], frozenset[str] | None]) -> None:
    global plugin_visibility
    plugin_visibility = function


def visibility_key() -> Hashable:
    """What the registries' visible content depends on now, for caches of derived values."""
    return plugin_visibility()


def _visible(instance: Instance, visible: frozenset[str] | None) -> bool:
    return not instance.plugin or visible is None or instance.plugin in visible


def is_visible(instance: Instance) -> bool:
    return _visible(instance, plugin_visibility())


T = TypeVar("T", bound=Instance)


class RegistryError(LookupError):
    pass


class AlreadyRegistered(RegistryError):
    pass


class NotRegistered(RegistryError):
    pass


class Registry(Generic[T]):
    """A named mapping of `type` strings to instances."""

    def __init__(self, name: str):
        self.name = name
        self._registry: dict[str, T] = {}

    def register(self, instance: T) -> T:
        if not instance.type:
            raise ValueError(f"{instance!r} has no `type` and cannot join the {self.name} registry.")
        if instance.type in self._registry:
            raise AlreadyRegistered(f"{self.name} type {instance.type!r} is already registered.")
        self._registry[instance.type] = instance
        return instance

    def unregister(self, type_name: str) -> None:
        if self._registry.pop(type_name, None) is None:
            raise NotRegistered(f"{self.name} type {type_name!r} is not registered.")

    def get(self, type_name: str) -> T:
        visible = plugin_visibility()
        instance = self._registry.get(type_name)
        if instance is None or not _visible(instance, visible):
            raise NotRegistered(f"{self.name} type {type_name!r} does not exist.")
        return instance

    def is_registered(self, type_name: str) -> bool:
        visible = plugin_visibility()
        instance = self._registry.get(type_name)
        return instance is not None and _visible(instance, visible)

    def get_all(self) -> list[T]:
        visible = plugin_visibility()
        return [instance for instance in self._registry.values() if _visible(instance, visible)]

    def get_types(self) -> list[str]:
        return [instance.type for instance in self.get_all()]
