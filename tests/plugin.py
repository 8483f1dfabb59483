"""Test environment, loaded with `-p tests.plugin` before pytest-django configures Django.

It points the suite at its own Redis database (a `make run` beside it keeps database 0) and
its own temporary MEDIA_ROOT, and starts the embedded servers that no DATABASE_URL / REDIS_URL
replaces.
"""

import os
import shutil
import tempfile

from lowcode import embedded

# Under pytest-xdist each worker process loads this plugin too, with the controller's environment:
# the LOWCODE_TEST_* markers say which settings are the test run's own to set again per worker.
# Worker gwN gets Redis database 15 - N (its cache and its Celery worker's broker apart from the
# others'), its own MEDIA_ROOT and PLUGINS_ROOT, and its own test database (pytest-django's `_gwN`
# suffix). The controller starts the servers before it spawns the workers.
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
_embedded_redis = os.environ.get("LOWCODE_TEST_REDIS") == "own" or not os.environ.get("REDIS_URL")
if _embedded_redis:
    os.environ["LOWCODE_TEST_REDIS"] = "own"
    os.environ["REDIS_URL"] = embedded.redis_url(db=15 - _worker)
# The run's files (uploads, audit archives and checkpoints, installed plugins) apart from `make
# run`'s and from an earlier run's, whose test database is gone: its audit checkpoints would not
# match the new trails.
_own_media = os.environ.get("LOWCODE_TEST_MEDIA") == "own" or not os.environ.get("MEDIA_ROOT")
_media_root = tempfile.mkdtemp(prefix="lowcode-test-media-") if _own_media else None
if _media_root:
    os.environ["LOWCODE_TEST_MEDIA"] = "own"
    os.environ["MEDIA_ROOT"] = _media_root
    os.environ["PLUGINS_ROOT"] = os.path.join(_media_root, "plugins")
# Playwright's sync API runs an event loop in the main thread; the ORM refuses that without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

_servers = []


def pytest_configure(config):
    _servers.extend(embedded.start_missing(fast=True, redis=_embedded_redis))


def pytest_unconfigure(config):
    embedded.stop(_servers)
    if _media_root:
        shutil.rmtree(_media_root, ignore_errors=True)
