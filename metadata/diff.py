"""Structured differences between two definition bodies (MD-3)."""

from __future__ import annotations

from typing import Any

_IDENTITY_KEYS = ("id", "key")


def _identity(item: Any) -> str | None:
    if isinstance(item, dict):
        for name in _IDENTITY_KEYS:
            if isinstance(item.get(name), str):
                return item[name]
    return None


def _label(item: dict, ident: str) -> str:
    """Name an item in paths by its (current) key when it has one: people know keys, not ids."""
    return item["key"] if isinstance(item.get("key"), str) else ident


def diff(old: Any, new: Any, path: str = "") -> list[dict]:
    """Return the changes from `old` to `new` as {"op", "path", "old", "new"} dicts.

    Lists whose items carry an `id` (or `key`) are matched by it, so moving, renaming or
    editing one item reads as a change of that item rather than of every position; paths
    name items by key (`fields[category].options`).
    """
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for name in sorted(old.keys() | new.keys()):
            sub = f"{path}.{name}" if path else name
            if name not in new:
                changes.append({"op": "removed", "path": sub, "old": old[name], "new": None})
            elif name not in old:
                changes.append({"op": "added", "path": sub, "old": None, "new": new[name]})
            else:
                changes += diff(old[name], new[name], sub)
        return changes
    if isinstance(old, list) and isinstance(new, list) and all(map(_identity, old + new)):
        old_items = {_identity(item): item for item in old}
        new_items = {_identity(item): item for item in new}
        changes = []
        for ident, item in old_items.items():
            if ident not in new_items:
                changes.append({"op": "removed", "path": f"{path}[{_label(item, ident)}]", "old": item, "new": None})
            else:
                changes += diff(item, new_items[ident], f"{path}[{_label(new_items[ident], ident)}]")
        for ident, item in new_items.items():
            if ident not in old_items:
                changes.append({"op": "added", "path": f"{path}[{_label(item, ident)}]", "old": None, "new": item})
        if [_identity(i) for i in old if _identity(i) in new_items] != \
                [_identity(i) for i in new if _identity(i) in old_items]:
            changes.append({"op": "reordered", "path": path, "old": None, "new": None})
        return changes
    if old != new:
        return [{"op": "changed", "path": path, "old": old, "new": new}]
    return []
