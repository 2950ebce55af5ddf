"""Real servers and file systems the suite sets up itself: PostgreSQL and Redis (one each per session), small or
read-only mounts.

A pytest plugin (``pytest_plugins`` in ``tests/conftest.py``), so every test
directory shares one server. The server runs from Debian's binaries
(``/usr/lib/postgresql/<version>/bin``) in a temp dir on a free loopback port,
with durability off (tests never survive a power cut), and is stopped at the
end of the session. Each test that asks for ``pg_url`` gets a database of its
own, so tests never see each other's rows.

initdb refuses to run as root, so as root the server runs as the ``postgres``
OS user (``runuser``), in a temp dir that user owns.

Redis runs the same way from Debian's ``redis-server`` (``make redis`` installs it), without
persistence, on a free loopback port in a temp dir; each test that asks for ``redis_url`` gets a
database number of its own (the server has 10,000), and ``redis_server`` gives a test a server of
its own that it may stop and restart.

A full disk and a read-only data dir are real too: a small tmpfs, and a
read-only bind mount (root ignores file modes, so ``chmod`` proves nothing).
Mounting needs root; where it is refused the test that needs it is skipped.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "MAKE_TARGET",
    "REDIS_TARGET",
    "PostgresServer",
    "RedisServer",
    "fill_disk",
    "find_pg_bin",
    "mount_read_only",
    "mount_tmpfs",
    "pg_url",
    "postgres",
    "redis_server",
    "redis_session",
    "redis_url",
    "require_pg_bin",
    "require_redis_server",
]

# The Makefile target that installs the server: named in every failure message.
MAKE_TARGET = "make postgres"
_PG_GLOB = "/usr/lib/postgresql/*/bin/initdb"
_SUPERUSER = "postgres"


def find_pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob(_PG_GLOB), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def require_pg_bin() -> Path:
    """``find_pg_bin()``, or fail the test (never skip it) with the make target that installs PostgreSQL."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.fail(
            f"PostgreSQL is not installed (no {_PG_GLOB}); run `{MAKE_TARGET}` (which `make test` runs) to install it",
            pytrace=False,
        )
    return bin_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster; ``start()`` and ``stop()`` it, ``create_database()`` per test."""

    bin_dir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="agenthub-pg-")))
    port: int = 0
    host: str = "127.0.0.1"
    _options: str = ""
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self) -> list[str]:
        """The command prefix that runs a binary as the cluster's owner (``postgres`` when we are root)."""
        return ["runuser", "-u", _SUPERUSER, "--"] if os.geteuid() == 0 else []

    def _run(self, *cmd: str) -> str:
        done = subprocess.run(
            [*self._as_owner(), *cmd], capture_output=True, text=True, timeout=120, cwd=self.root, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, _SUPERUSER, _SUPERUSER)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        log = self.root / "server.log"
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = _free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    f"-c listen_addresses={self.host}",
                    f"-c unix_socket_directories={self.root}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c shared_buffers=32MB",
                    "-c max_connections=200",
                ]
            )
            self._options = options
            try:
                self.start_server()
                return self
            except RuntimeError:
                if attempt == 2:
                    raise RuntimeError("PostgreSQL did not start:\n" + log.read_text(errors="replace")) from None
        raise AssertionError("unreachable")

    def start_server(self) -> None:
        """Start the (initialised) cluster on ``port``; again after ``stop_server()``, on the same port."""
        log = self.root / "server.log"
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-o", self._options, "start"
        )

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data: ``fast`` ends every session first (``immediate`` is a crash,
        which with ``synchronous_commit=off`` may lose the last commits)."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        """Stop the server and delete everything it had."""
        with contextlib.suppress(Exception):
            self.stop_server("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser; returns psql's unaligned output."""
        return self._run(
            str(self.bin_dir / "psql"),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            _SUPERUSER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        )

    def url(self, database: str, user: str = _SUPERUSER, password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql+asyncpg://{auth}@{self.host}:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(RuntimeError):
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole test session; fails (never skips) when it is not installed."""
    server = PostgresServer(require_pg_bin())
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped after the test."""
    name = postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


REDIS_TARGET = "make redis"
_REDIS_DBS = 10_000


def require_redis_server() -> Path:
    """``redis-server``'s path, or fail the test (never skip it) with the make target that installs it."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        pytest.fail(
            f"redis-server is not installed; run `{REDIS_TARGET}` (which `make test` runs) to install it", pytrace=False
        )
    return Path(found)


@dataclass
class RedisServer:
    """A throwaway Redis without persistence; ``stop_server()``/``start_server()`` keep its port (a restart
    loses its data, as a real restart without persistence does)."""

    binary: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="agenthub-redis-")))
    port: int = 0
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    _dbs: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def start(self) -> RedisServer:
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = _free_port()
            try:
                self.start_server()
                return self
            except RuntimeError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def start_server(self) -> None:
        log = self.root / "redis.log"
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                str(_REDIS_DBS),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.02)
        self.stop_server()
        raise RuntimeError("redis-server did not start:\n" + (log.read_text(errors="replace") if log.exists() else ""))

    def ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop_server(self) -> None:
        """Kill the server now (its data is gone: no persistence)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: int | None = None) -> str:
        """A URL with a database of its own (``db`` None: the next unused number)."""
        number = next(self._dbs) % _REDIS_DBS if db is None else db
        return f"redis://{self.host}:{self.port}/{number}"


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """One real Redis for the whole test session; fails (never skips) when it is not installed."""
    server = RedisServer(require_redis_server())
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_session: RedisServer) -> str:
    """A URL of the session's Redis with a database number no other test uses."""
    return redis_session.url()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop and restart."""
    server = RedisServer(require_redis_server())
    try:
        yield server.start()
    finally:
        server.stop()


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {done.stderr.decode(errors='replace').strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def mount_tmpfs(path: Path, size: str, *, owner: str | None = None) -> Iterator[Path]:
    """A small tmpfs at ``path`` (a disk that really fills up); unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        if owner is not None:
            shutil.chown(path, owner, owner)
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def mount_read_only(path: Path) -> Iterator[Path]:
    """``path`` made read-only in place (a read-only bind mount: even root gets EROFS); restored after."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,ro,bind", str(path))
        yield path
    finally:
        _umount(path)


def fill_disk(directory: Path, name: str = "filler") -> Path:
    """Write to ``directory/name`` until the file system is full; delete the file to give the space back."""
    filler = directory / name
    block = b"\0" * 65536
    with filler.open("wb", buffering=0) as f:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                f.write(block)
        with contextlib.suppress(OSError):  # the last partial block, byte by byte in 4 KiB steps
            while True:
                f.write(block[:4096])
    return filler
