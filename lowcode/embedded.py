"""Embedded PostgreSQL and Redis for `make run` and `make test` (PF-1).

Started from the OS packages (Debian's `postgresql` and `redis-server`), with their data
under `.lowcode/`. PostgreSQL refuses to run as root, so when we are root its commands run
as the unprivileged `postgres` user. This module must not import Django: settings read
`database_url()` / `redis_url()` / `secret()` as defaults, before Django is configured.

The cluster has three roles (README, "Audit trail: roles"): `lowcode_admin`, its superuser, used
only here and by tests that play an attacker; `lowcode_owner` (no login), which owns the product's
database and every audit trail; and `lowcode`, the runtime role of DATABASE_URL, which is not a
superuser and reaches the trails only through `audit/sql/guard.sql`. Passwords (scram-sha-256)
are generated once into `.lowcode/secrets/` (mode 0600).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("LOWCODE_HOME", BASE_DIR / ".lowcode"))
PG_PORT = int(os.environ.get("LOWCODE_PG_PORT", "54329"))
REDIS_PORT = int(os.environ.get("LOWCODE_REDIS_PORT", "63790"))
DATABASE_NAME = "lowcode"
DATABASE_USER = "lowcode"  # The runtime role.
OWNER_ROLE = "lowcode_owner"
ADMIN_USER = "lowcode_admin"
GUARD_SQL = BASE_DIR / "audit" / "sql" / "guard.sql"
_USERS = HOME / "run" / "users"  # One empty file per process using the embedded servers.
_uses = 0  # start_missing() calls of this process not yet matched by stop().


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be found, initialised or started."""


def secret(name: str, home: Path = HOME) -> str:
    """The generated secret `name` under `.lowcode/secrets/` (mode 0600), created on first use."""
    folder = home / "secrets"
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        with contextlib.suppress(FileExistsError):  # Another process won the race: read its secret.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def database_url() -> str:
    """The runtime role's URL (with its password) of the embedded product database."""
    return f"postgres://{DATABASE_USER}:{quote(secret('postgres-runtime'), safe='')}@127.0.0.1:{PG_PORT}/{DATABASE_NAME}"


def redis_url(db: int = 0) -> str:
    return f"redis://127.0.0.1:{REDIS_PORT}/{db}"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a server command; on failure raise EmbeddedServiceError with what it printed."""
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode:
        output = (result.stderr or result.stdout).strip()
        raise EmbeddedServiceError(
            f"{Path(cmd[cmd.index('--') + 1] if '--' in cmd else cmd[0]).name} failed (exit {result.returncode}): "
            f"{output}\nLogs: postgres.log beside {HOME / 'pgdata'} (or its relocated target), {HOME / 'log'}/redis.log. "
            f"Another server on the port? Set LOWCODE_PG_PORT / "
            f"LOWCODE_REDIS_PORT, or DATABASE_URL / REDIS_URL.")
    return result


class EmbeddedPostgres:
    """A PostgreSQL cluster in `.lowcode/pgdata`, on 127.0.0.1 only, with passwords (scram-sha-256)."""

    def __init__(self, home: Path = HOME, port: int = PG_PORT):
        self.home = home
        self.port = port
        self.data_dir = home / "pgdata"

    @staticmethod
    def bin_dir() -> Path:
        candidates = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
        )
        if candidates:
            return Path(candidates[-1]).parent
        initdb = shutil.which("initdb")
        if initdb:
            return Path(initdb).parent
        raise EmbeddedServiceError(
            "PostgreSQL server binaries not found. Install Debian's `postgresql` package "
            "(scripts/bootstrap.sh does it when run as root) or set DATABASE_URL."
        )

    @property
    def _as_user(self) -> list[str]:
        """Prefix for commands that must not run as root."""
        if os.geteuid() != 0:
            return []
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            return ["runuser", "-u", name, "--"]
        raise EmbeddedServiceError("Running as root and no `postgres` or `nobody` user exists.")

    def _owner(self) -> str | None:
        return self._as_user[2] if self._as_user else None

    @property
    def server_dir(self) -> Path:
        """The data folder as the server's user reaches it (through the link, if relocated)."""
        return self.data_dir.resolve()

    @property
    def log_file(self) -> Path:
        # Beside the data: a relocated cluster's user cannot write under the checkout.
        return self.server_dir.parent / "postgres.log"

    def _pg(self, tool: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        # From "/": the server's user may not be allowed into the current folder.
        return _run([*self._as_user, str(self.bin_dir() / tool), *args], cwd="/", **kwargs)

    def _prepare_data_dir(self) -> None:
        """Create the data folder, owned by the server's user.

        Every parent must be traversable by that user; when the checkout is not (for
        example under a private home folder) the data lives in /var/lib/lowcode and
        `.lowcode/pgdata` links to it, instead of loosening the parents' permissions.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        owner = self._owner()
        if self.data_dir.exists():
            return
        target = self.data_dir
        if owner and subprocess.run(["runuser", "-u", owner, "--", "test", "-x", str(self.home)]).returncode:
            digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
            target = Path("/var/lib/lowcode") / digest / "pgdata"
            logger.warning("%s is not reachable by %s; PostgreSQL data goes to %s", self.home, owner, target)
        target.mkdir(parents=True, exist_ok=True)
        if target != self.data_dir:
            self.data_dir.symlink_to(target)
        if owner:
            shutil.chown(target, owner)
            target.chmod(0o700)
        self.log_file.touch()
        if owner:
            shutil.chown(self.log_file, owner)

    def is_initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        result = subprocess.run(
            [*self._as_user, str(self.bin_dir() / "pg_ctl"), "status", "-D", str(self.server_dir)],
            capture_output=True, cwd="/",
        )
        return result.returncode == 0

    def is_legacy(self) -> bool:
        """Whether the cluster comes from an earlier version: trust authentication, a superuser app role."""
        hba = self.server_dir / "pg_hba.conf"
        return hba.exists() and re.search(r"^[^#\n]*\strust\s*$", hba.read_text(), re.MULTILINE) is not None

    def _set_aside_legacy(self) -> None:
        """Move an earlier version's stopped cluster aside, so a new one with roles and passwords starts."""
        target = self.server_dir
        aside = target.with_name(f"pgdata-trust-{datetime.now():%Y%m%d-%H%M%S}")
        target.rename(aside)
        if self.data_dir.is_symlink():
            self.data_dir.unlink()
        logger.warning(
            "%s held a PostgreSQL cluster of an earlier Lowcode (trust authentication, the app as superuser). "
            "It was moved to %s and a new cluster is created; start a server on the old one to pg_dump "
            "what you need from it.", self.data_dir, aside)

    def _initdb(self) -> None:
        # The server's user must read the password file: a private copy, removed right after.
        descriptor, name = tempfile.mkstemp(prefix="lowcode-pw-")
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secret("postgres-admin", self.home))
            if self._owner():
                shutil.chown(name, self._owner())
            self._pg("initdb", "-D", str(self.server_dir), "-U", ADMIN_USER, f"--pwfile={name}",
                     "--auth=scram-sha-256", "-E", "UTF8", "--no-locale")
        finally:
            os.unlink(name)

    def start(self, *, fast: bool = False) -> None:
        """Initialise on first use (an earlier version's cluster is set aside first), then start."""
        self._prepare_data_dir()
        if self.is_initialised() and self.is_legacy():
            self._set_aside_legacy()
            self._prepare_data_dir()
        if not self.is_initialised():
            self._initdb()
        options = [f"-p {self.port}", "-h 127.0.0.1", "-k ''"]
        if fast:
            # Test runs only: durability is worth nothing there, speed is.
            options += ["-c synchronous_commit=off", "-c fsync=off", "-c full_page_writes=off"]
        # A new session keeps Ctrl-C in the terminal from reaching the server directly:
        # `lowcode up` stops it in order, after the web server and workers.
        self._pg("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.server_dir),
                 "-l", str(self.log_file), "-o", " ".join(options), start_new_session=True)

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        """Connection string of the cluster's superuser (an earlier version's cluster: the app role, trusted)."""
        from psycopg.conninfo import make_conninfo

        if self.is_legacy():
            return make_conninfo(host="127.0.0.1", port=self.port, user=DATABASE_USER, dbname=dbname)
        return make_conninfo(host="127.0.0.1", port=self.port, user=ADMIN_USER,
                             password=secret("postgres-admin", self.home), dbname=dbname)

    def prepare(self) -> None:
        """Create the roles and the product database, and install the guard in every database.

        Safe to repeat and to run from two processes at once (an advisory lock orders them).
        """
        import psycopg
        from psycopg import sql

        runtime, owner = sql.Identifier(DATABASE_USER), sql.Identifier(OWNER_ROLE)
        try:
            conn = psycopg.connect(self.admin_conninfo(), autocommit=True)
        except psycopg.OperationalError as error:
            raise EmbeddedServiceError(
                f"Cannot log in to the embedded PostgreSQL as {ADMIN_USER}: {error}\nIts password is "
                f"{self.home / 'secrets' / 'postgres-admin'}; if that file was lost, move {self.data_dir} "
                "aside to start with a new cluster.") from error
        with conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('lowcode.embedded.prepare'))")
            if not self.is_legacy():  # There the app role is the bootstrap superuser: left as it is.
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [DATABASE_USER]).fetchone()
                conn.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEROLE CREATEDB PASSWORD {}").format(
                    sql.SQL("ALTER" if exists else "CREATE"), runtime, sql.Literal(secret("postgres-runtime", self.home))))
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [OWNER_ROLE]).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER").format(owner))
            # The owner takes over what the runtime role creates (schemas, audit tables) by membership.
            conn.execute(sql.SQL("GRANT {} TO {}").format(runtime, owner))
            # The audit sealing reads which transactions run in its database (audit/sql/guard.sql).
            conn.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(owner))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE_NAME), owner))
                conn.execute(sql.SQL("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(DATABASE_NAME), runtime))
                with psycopg.connect(self.admin_conninfo(DATABASE_NAME), autocommit=True) as product:
                    product.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(runtime))
            # The installed version is the database's comment, readable from here: no connection to
            # the databases (test runs' among them) that have it already.
            databases = conn.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                                     "WHERE datallowconn AND datname <> 'postgres'").fetchall()
            for name, installed in databases:
                if installed == guard_version():
                    continue
                try:
                    install_guard(self.admin_conninfo(name), name)
                except psycopg.OperationalError:
                    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                        raise  # Not a test database dropped meanwhile.

    def stop(self) -> None:
        if self.is_running():
            self._pg("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.server_dir))


def guard_version() -> str:
    return "lowcode guard " + hashlib.sha256(GUARD_SQL.read_bytes()).hexdigest()[:16]


def install_guard(conninfo: str, database: str) -> None:
    """Run `audit/sql/guard.sql` as a superuser in one database, and note its version on the database.

    The file's psql variables (`:"owner"`, `:'runtime'`) are filled in here.
    """
    import psycopg
    from psycopg import sql

    variables = {"owner": OWNER_ROLE, "runtime": DATABASE_USER}
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        conn.execute(re.sub(r""":(["'])(\w+)\1""", lambda match: (
            sql.Identifier if match[1] == '"' else sql.Literal)(variables[match[2]]).as_string(conn),
            GUARD_SQL.read_text()))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(database),
                                                                   sql.Literal(guard_version())))


class EmbeddedRedis:
    """A Redis server on 127.0.0.1, data under `.lowcode/redis` (a cache and broker only)."""

    def __init__(self, home: Path = HOME, port: int = REDIS_PORT):
        self.home = home
        self.port = port
        self.dir = home / "redis"

    @staticmethod
    def binary() -> str:
        path = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
        )
        if not path:
            raise EmbeddedServiceError(
                "redis-server not found. Install Debian's `redis-server` package "
                "(scripts/bootstrap.sh does it when run as root) or set REDIS_URL."
            )
        return path

    def is_running(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.home / "log").mkdir(parents=True, exist_ok=True)
        _run([self.binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "yes",
              "--save", "", "--appendonly", "no", "--dir", str(self.dir),
              "--pidfile", str(self.dir / "redis.pid"),
              "--logfile", str(self.home / "log" / "redis.log")], start_new_session=True)
        for _ in range(100):
            if self.is_running():
                return
            time.sleep(0.05)
        raise EmbeddedServiceError(f"Redis did not answer on port {self.port}; see .lowcode/log/redis.log")

    def stop(self) -> None:
        import redis

        if self.is_running():
            # Shutdown closes the connection before answering.
            with contextlib.suppress(redis.ConnectionError):
                redis.Redis(host="127.0.0.1", port=self.port).shutdown(nosave=True)


def start_missing(*, fast: bool = False, postgres: bool | None = None,
                  redis: bool | None = None) -> list[EmbeddedPostgres | EmbeddedRedis]:
    """Start the embedded servers that are wanted and not running yet; return the wanted ones.

    A server is wanted unless its URL (DATABASE_URL, REDIS_URL) is set in the environment.
    PostgreSQL's roles, database and guard are checked even when it was running already.
    The calling process registers as a user of the servers until it calls `stop`.
    """
    global _uses
    _uses += 1
    _USERS.mkdir(parents=True, exist_ok=True)
    (_USERS / str(os.getpid())).touch()
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    if postgres if postgres is not None else not os.environ.get("DATABASE_URL"):
        servers.append(EmbeddedPostgres())
    if redis if redis is not None else not os.environ.get("REDIS_URL"):
        servers.append(EmbeddedRedis())
    for server in servers:
        if not server.is_running():
            server.start(**({"fast": fast} if isinstance(server, EmbeddedPostgres) else {}))
        if isinstance(server, EmbeddedPostgres):
            server.prepare()
    return servers


def _other_users() -> list[int]:
    """Return the live processes besides this one that registered in start_missing()."""
    users = []
    for entry in _USERS.glob("*") if _USERS.exists() else []:
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)  # Ended without unregistering (killed).
            continue
        except PermissionError:
            pass  # Alive, run by another user.
        users.append(pid)
    return users


def stop(servers: list[EmbeddedPostgres | EmbeddedRedis]) -> None:
    """Unregister this process; the last user of the servers stops them.

    A `make test` beside a `make run` shares the servers: whichever ends first leaves them up.
    """
    global _uses
    _uses -= 1
    if _uses > 0:
        return  # This process still uses them (`lowcode up` called inside a test run).
    (_USERS / str(os.getpid())).unlink(missing_ok=True)
    others = _other_users()
    if others:
        logger.info("Embedded servers still used by process %s; leaving them running.", ", ".join(map(str, others)))
        return
    for server in reversed(servers):
        server.stop()
