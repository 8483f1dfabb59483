"""Test environment, loaded with `-p tests.plugin` before pytest-django configures Django.

It points the suite at its own Redis database (a `make run` beside it keeps database 0)
and starts the embedded servers that no DATABASE_URL / REDIS_URL replaces.
"""

import os

from lowcode import embedded

_embedded_redis = not os.environ.get("REDIS_URL")
if _embedded_redis:
    os.environ["REDIS_URL"] = embedded.redis_url(db=15)
# Playwright's sync API runs an event loop in the main thread; the ORM refuses that without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

_servers = []


def pytest_configure(config):
    _servers.extend(embedded.start_missing(fast=True, redis=_embedded_redis))


def pytest_unconfigure(config):
    embedded.stop(_servers)
