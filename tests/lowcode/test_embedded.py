"""The embedded PostgreSQL's defaults lose nothing (issue 9): passwords, roles, durability, old clusters.

Each test starts a cluster of its own in a temporary home, as a fresh clone's `make run` would.
"""

import shutil
import stat

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from lowcode.embedded import DATABASE_NAME, DATABASE_USER, EmbeddedPostgres, secret
from tests.lowcode.test_health import free_port


@pytest.fixture
def cluster(tmp_path):
    """A stopped, empty EmbeddedPostgres in its own home; stopped and removed afterwards."""
    server = EmbeddedPostgres(home=tmp_path, port=free_port())
    yield server
    server.stop()
    if server.data_dir.is_symlink():  # Relocated: the temporary home is not reachable by `postgres`.
        shutil.rmtree(server.server_dir.parent, ignore_errors=True)


def runtime_conninfo(server: EmbeddedPostgres, password: str) -> str:
    return make_conninfo(host="127.0.0.1", port=server.port, user=DATABASE_USER, password=password,
                         dbname=DATABASE_NAME)


def test_a_new_cluster_asks_for_passwords_and_keeps_commits_durable(cluster):
    cluster.start()
    cluster.prepare()

    password = secret("postgres-runtime", cluster.home)
    for name in ("postgres-runtime", "postgres-admin"):
        assert stat.S_IMODE((cluster.home / "secrets" / name).stat().st_mode) == 0o600
    with psycopg.connect(runtime_conninfo(cluster, password)) as conn:
        user, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert (user, superuser) == (DATABASE_USER, False)
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        assert conn.execute("SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database()"
                            ).fetchone() == ("lowcode_owner",)
        assert conn.execute("SELECT has_function_privilege('lowcode_guard.seal_audit(text)', 'EXECUTE')").fetchone()[0]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(runtime_conninfo(cluster, "guessed"))
    assert not cluster.is_legacy()


def test_a_cluster_of_an_earlier_version_is_set_aside(cluster):
    cluster._prepare_data_dir()
    cluster._pg("initdb", "-D", str(cluster.server_dir), "-U", DATABASE_USER, "--auth=trust", "-E", "UTF8",
                "--no-locale")
    old = cluster.server_dir
    assert cluster.is_legacy()

    cluster.start()
    cluster.prepare()

    assert not cluster.is_legacy()
    (aside,) = old.parent.glob("pgdata-trust-*")
    assert (aside / "PG_VERSION").exists()
    with psycopg.connect(runtime_conninfo(cluster, secret("postgres-runtime", cluster.home))) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
