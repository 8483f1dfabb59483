"""Test environment, loaded with `-p tests.plugin` before pytest-django configures Django.

It points the suite at its own Redis database (a `make run` beside it keeps database 0) and
its own temporary MEDIA_ROOT, and starts the embedded servers that no DATABASE_URL / REDIS_URL
replaces.
"""

import os
import shutil
import tempfile

from lowcode import embedded

# Under pytest-xdist each worker process loads this plugin: worker gwN gets Redis database 15 - N
# (its Celery worker's broker and its cache apart from the others'), and its own test database
# (pytest-django's `_gwN` suffix). The controller starts the servers before it spawns the workers.
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
_embedded_redis = not os.environ.get("REDIS_URL")
if _embedded_redis:
    os.environ["REDIS_URL"] = embedded.redis_url(db=15 - _worker)
# The run's files (uploads, audit archives and checkpoints) apart from `make run`'s and from an
# earlier run's, whose test database is gone: its audit checkpoints would not match the new trails.
_media_root = None if os.environ.get("MEDIA_ROOT") else tempfile.mkdtemp(prefix="lowcode-test-media-")
if _media_root:
    os.environ["MEDIA_ROOT"] = _media_root
# Playwright's sync API runs an event loop in the main thread; the ORM refuses that without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

_servers = []


def pytest_configure(config):
    _servers.extend(embedded.start_missing(fast=True, redis=_embedded_redis))


def pytest_unconfigure(config):
    embedded.stop(_servers)
    if _media_root:
        shutil.rmtree(_media_root, ignore_errors=True)
