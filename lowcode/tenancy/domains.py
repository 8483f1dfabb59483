"""Which tenant a host name serves, cached in the process and checked against a shared token.

django-tenants reads the Domain and Tenant rows on every request. Here each process keeps the
rows of the host names it served (bounded, least recently used first out) with the token they
were read under: one Redis key that every change of a tenant or domain row replaces (on commit),
in whichever process it happens. A request compares one GET with its entry's token; a change
made anywhere (suspension, deletion, a publish's definition token) shows on the next request.
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from collections import OrderedDict

from django.core.cache import cache
from django.db import connection, transaction
from redis.exceptions import RedisError

from lowcode.tenancy.models import Domain, Tenant

logger = logging.getLogger(__name__)

#: The Redis key of the token (not a cache key: it is shared by every schema).
VERSION_KEY = "lowcode:tenancy:rows-version"
#: Host names kept per process.
MAX_HOSTS = 1024

_tenants: OrderedDict[str, tuple[str, Tenant]] = OrderedDict()  # host name -> (token, tenant row)
_lock = threading.Lock()


def _redis():
    return cache._cache.get_client(write=True)


def _current_token() -> str | None:
    """The shared token; a new one when the key is missing (Redis restarted or flushed), which no
    entry holds, so rows are read again. None when Redis cannot be reached: nothing is cached."""
    try:
        client = _redis()
        token = client.get(VERSION_KEY)
        if token is None:
            client.set(VERSION_KEY, uuid.uuid4().hex, nx=True)
            token = client.get(VERSION_KEY)
    except RedisError as error:
        forget()  # Changes made meanwhile could not replace the token.
        logger.warning("tenant rows read without cache: %s", error)
        return None
    return token.decode() if token is not None else None


def tenant_for_host(hostname: str) -> Tenant:
    """The tenant whose domain is `hostname`, as a copy of its row the caller may change.

    :raises Domain.DoesNotExist: no tenant serves this host name.
    """
    # Inside a transaction this connection may see its own uncommitted changes of tenant rows,
    # which must neither be cached nor hidden by the cache (requests run outside one; tests not).
    cacheable = not connection.in_atomic_block
    token = _current_token() if cacheable else None
    entry = _tenants.get(hostname) if token is not None else None
    if entry is not None and entry[0] == token:
        with _lock:
            if hostname in _tenants:
                _tenants.move_to_end(hostname)
        return _copy(entry[1])
    # The token was read before the rows: a change committed meanwhile leaves an older token.
    tenant = Domain.objects.select_related("tenant").get(domain=hostname).tenant
    if token is not None:
        with _lock:
            _tenants[hostname] = (token, tenant)
            _tenants.move_to_end(hostname)
            while len(_tenants) > MAX_HOSTS:
                _tenants.popitem(last=False)
    return _copy(tenant)


def _copy(tenant: Tenant) -> Tenant:
    """A request's own tenant: code changes its definition tokens in memory (a publish does)."""
    tenant = copy.copy(tenant)
    tenant.definition_versions = dict(tenant.definition_versions)
    tenant.allowed_upload_types = list(tenant.allowed_upload_types)
    return tenant


def tenant_rows_changed() -> None:
    """Tenant or domain rows change in this transaction: forget them in this process now (a
    request of this thread may follow in the transaction), and in every process once committed."""
    forget()
    transaction.on_commit(_replace_token)


def forget() -> None:
    """Drop every cached row of this process."""
    with _lock:
        _tenants.clear()


def _replace_token() -> None:
    forget()
    try:
        _redis().set(VERSION_KEY, uuid.uuid4().hex)
    except RedisError as error:  # Nothing can be cached until Redis is back: no entry is trusted then.
        logger.warning("tenant rows' token not replaced: %s", error)


def on_row_saved_or_deleted(sender, **kwargs) -> None:
    """post_save and post_delete receiver of Tenant and Domain."""
    tenant_rows_changed()
