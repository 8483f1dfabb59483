"""The permission cache: each user's `Effective` per process, under the tenant's permission version.

`effective(user)` computes what a user may do once and caches it per process under a
tenant-wide version number kept in the Django cache (`rbac:version`, its keys are per schema);
every service that changes roles, grants, scopes, column rules, departments or memberships
calls `bump()`.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name

from rbac.services.compute import EMPTY, Effective, compute

VERSION_KEY = "rbac:version"
_LOCAL_MAX = 10_000
_local: dict[tuple[str, object], tuple[int, Effective]] = {}


def _seed() -> int:
    # A lost counter restarts above every value it can have had: stale caches stay stale.
    return int(time.time() * 1000)


def version(request=None) -> int:
    """Return the tenant's permission version; a request remembers it (one cache read per request)."""
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's.
    if request is not None:
        cached = getattr(request, "_rbac_version", None)
        if cached is not None:
            return cached
    current = cache.get(VERSION_KEY)
    if current is None:
        cache.add(VERSION_KEY, _seed(), timeout=None)
        current = cache.get(VERSION_KEY) or 0
    if request is not None:
        request._rbac_version = current
    return current


def _bump_now() -> None:
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # No counter yet (or the cache lost it).
        cache.add(VERSION_KEY, _seed(), timeout=None)


def bump() -> None:
    """Invalidate every cached `Effective` of the tenant, in this process and in every other.

    Bumped now, so this transaction sees its changes, and again on commit, so that no other
    process keeps what it computed from the data before the commit.
    """
    schema_name = connection.schema_name
    for key in [key for key in list(_local) if key[0] == schema_name]:
        _local.pop(key, None)
    _bump_now()
    transaction.on_commit(_bump_now)


def clear_local_cache() -> None:
    """Forget this process's cached permissions (tests; a fresh process starts like this)."""
    _local.clear()


def effective(user, request=None) -> Effective:
    """Return the user's effective permissions in the current tenant, cached (RB-7).

    Cached per process under (schema, user id) with the tenant's version: a repeated call
    costs no database query; with `request`, no cache read either after the first.
    """
    if user is None or getattr(user, "pk", None) is None or not user.is_authenticated:
        return EMPTY
    schema_name = connection.schema_name
    if schema_name == get_public_schema_name():
        return EMPTY
    current = version(request)
    key = (schema_name, user.pk)
    hit = _local.get(key)
    if hit is not None and hit[0] == current:
        return hit[1]
    computed = compute(user)
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[key] = (current, computed)
    return computed
