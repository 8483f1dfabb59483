"""Rows cached in each process for as long as a version in Redis stays the same.

A change replaces the version once its transaction commits, in whichever process it happens; a
reader compares one GET with the version its entry was read under, so the change shows on every
process's next use. Entries are only read and stored outside a transaction: inside one the
connection may see its own uncommitted changes, which must neither be cached nor hidden.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def _redis():
    return cache._cache.get_client(write=True)


class VersionedCache:
    """A bounded map (least recently used out first) of this process, checked against a version."""

    def __init__(self, name: str, *, max_entries: int, max_age: float | None = None):
        """
        :param name: names the Redis keys of its versions.
        :param max_age: seconds an entry is kept at most, for changes that cannot replace the version.
        """
        self.name = name
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: OrderedDict[Any, tuple[str, float, Any]] = OrderedDict()  # key -> (version, read at, value)
        self._lock = threading.Lock()

    def _redis_key(self, scope: str) -> str:
        return f"lowcode:versions:{self.name}:{scope}"

    def version(self, scope: str = "") -> str | None:
        """The current version of `scope`; None inside a transaction or without Redis (no caching).

        A missing key (Redis restarted or emptied) gets a new version, which no entry holds.
        """
        if connection.in_atomic_block:
            return None
        try:
            client = _redis()
            version = client.get(self._redis_key(scope))
            if version is None:
                client.set(self._redis_key(scope), uuid.uuid4().hex, nx=True)
                version = client.get(self._redis_key(scope))
        except RedisError as error:
            self.clear()  # Changes made meanwhile could not replace their version.
            logger.warning("%s read without cache: %s", self.name, error)
            return None
        return version.decode() if version is not None else None

    def get(self, key, version: str | None):
        """The value stored under `key` with `version` (read before the value was), else None."""
        entry = self._entries.get(key) if version is not None else None
        if entry is None or entry[0] != version or (self.max_age is not None
                                                    and time.monotonic() - entry[1] > self.max_age):
            return None
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
        return entry[2]

    def put(self, key, version: str | None, value) -> None:
        """Store `value`, read from the database after `version` was read (a change committed in
        between leaves the entry with an older version)."""
        if version is None:
            return
        with self._lock:
            self._entries[key] = (version, time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def changed(self, scope: str = "") -> None:
        """Rows of `scope` change in this transaction: forget this process's entries now (a request of
        this thread may follow inside the transaction) and every process's once committed."""
        self.clear()
        transaction.on_commit(lambda: self._replace(scope))

    def _replace(self, scope: str) -> None:
        self.clear()
        try:
            _redis().set(self._redis_key(scope), uuid.uuid4().hex)
        except RedisError as error:  # No process trusts an entry while Redis is away (version() is None).
            logger.warning("%s: version not replaced: %s", self.name, error)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
