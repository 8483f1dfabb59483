"""The project's one registry pattern (after baserow's core/registry.py).

An owning app declares a base `Instance` subclass and a `Registry` singleton in its
`registries.py`, and registers built-in types from its `AppConfig.ready()`.
"""

from __future__ import annotations

from typing import Generic, TypeVar


class Instance:
    """A registered type, identified by its stable `type` string."""

    type: str = ""


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
        try:
            return self._registry[type_name]
        except KeyError:
            raise NotRegistered(f"{self.name} type {type_name!r} does not exist.") from None

    def is_registered(self, type_name: str) -> bool:
        return type_name in self._registry

    def get_all(self) -> list[T]:
        return list(self._registry.values())

    def get_types(self) -> list[str]:
        return list(self._registry)
