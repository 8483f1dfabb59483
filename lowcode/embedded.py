"""Embedded PostgreSQL and Redis for `make run` and `make test` (PF-1).

Started from the OS packages (Debian's `postgresql` and `redis-server`), with their data
under `.lowcode/`. PostgreSQL refuses to run as root, so when we are root its commands run
as the unprivileged `postgres` user. This module must not import Django: settings read
`database_url()` / `redis_url()` as defaults, before Django is configured.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("LOWCODE_HOME", BASE_DIR / ".lowcode"))
PG_PORT = int(os.environ.get("LOWCODE_PG_PORT", "54329"))
REDIS_PORT = int(os.environ.get("LOWCODE_REDIS_PORT", "63790"))
DATABASE_NAME = "lowcode"
DATABASE_USER = "lowcode"
_USERS = HOME / "run" / "users"  # One empty file per process using the embedded servers.
_uses = 0  # start_missing() calls of this process not yet matched by stop().


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be found, initialised or started."""


def database_url() -> str:
    return f"postgres://{DATABASE_USER}@127.0.0.1:{PG_PORT}/{DATABASE_NAME}"


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
    """A PostgreSQL cluster in `.lowcode/pgdata`, listening on 127.0.0.1 only (trust auth)."""

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

    def start(self, *, fast: bool = False) -> None:
        """Initialise on first use, start, and create the application database."""
        self._prepare_data_dir()
        if not self.is_initialised():
            self._pg("initdb", "-D", str(self.server_dir), "-U", DATABASE_USER, "--auth=trust",
                     "-E", "UTF8", "--no-locale")
        options = [f"-p {self.port}", "-h 127.0.0.1", "-k ''", "-c synchronous_commit=off"]
        if fast:
            # Test runs only: durability is worth nothing there, speed is.
            options += ["-c fsync=off", "-c full_page_writes=off"]
        # A new session keeps Ctrl-C in the terminal from reaching the server directly:
        # `lowcode up` stops it in order, after the web server and workers.
        self._pg("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.server_dir),
                 "-l", str(self.log_file), "-o", " ".join(options), start_new_session=True)
        self._create_database()

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=DATABASE_USER,
                             dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        if self.is_running():
            self._pg("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.server_dir))


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
