"""A database that will not open stops ``agenthub gateway`` with one clear paragraph, not a traceback.

Each case runs the real command in a subprocess against a real broken
database: a corrupted file, a read-only data dir (a read-only bind mount, since
root ignores file modes), a full disk (a small tmpfs), a data dir that cannot
be created, and PostgreSQL URLs that cannot work. Each must exit non-zero and
print a message naming the database (a file, or the URL without its password)
and what to do.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from agenthub.storage.sql import SqlStore
from tests._servers import PostgresServer, fill_disk, mount_read_only, mount_tmpfs

PASSWORD = "s3cret-never-printed"


def _gateway(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``agenthub gateway`` until it exits (a gateway that starts instead times out: a failure)."""
    env = {k: v for k, v in os.environ.items() if k != "AGENTHUB_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "agenthub", "gateway", "--port", "0", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


def _assert_clear(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit code 1, no traceback, and the last line of stderr is the message; returns it."""
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("agenthub: cannot open the database "), output
    for part in expected:
        assert part in message, message
    assert PASSWORD not in output
    return message


def _make_database(path: Path) -> None:
    async def create() -> None:
        store = SqlStore(path)
        await store.open()
        await store.ensure_session("main", 1)
        await store.close()

    asyncio.run(create())


# SQLite


def test_garbage_file(tmp_path: Path) -> None:
    db = tmp_path / "agenthub.db"
    db.write_bytes(os.urandom(8192))
    message = _assert_clear(
        _gateway(tmp_path), f"database {db}:", "not a SQLite database or is corrupted", "Move it aside"
    )
    assert f"sqlite3 {db} .recover" in message


def test_corrupted_pages(tmp_path: Path) -> None:
    """A real database whose schema page was overwritten: SQLite's "malformed" rather than "not a database"."""
    db = tmp_path / "agenthub.db"
    _make_database(db)
    with db.open("r+b") as f:
        f.seek(100)  # past the 100-byte header: the schema table's b-tree page
        f.write(b"\xff" * 3000)
    _assert_clear(_gateway(tmp_path), f"database {db}:", "corrupted", "malformed", "restore it from a backup")


def test_read_only_data_dir_without_a_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with mount_read_only(data):
        done = _gateway(data)
    _assert_clear(done, f"database {data / 'agenthub.db'}:", "cannot be created or written", "--data-dir")


def test_read_only_data_dir_with_a_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _make_database(data / "agenthub.db")
    with mount_read_only(data):
        done = _gateway(data)
    _assert_clear(done, f"database {data / 'agenthub.db'}:", "cannot be created or written", "read-write")


def test_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    data = tmp_path / "file" / "data"
    _assert_clear(_gateway(data), f"database {data / 'agenthub.db'}:", "directory cannot be created", "--data-dir")


def test_full_disk_at_start(tmp_path: Path) -> None:
    data = tmp_path / "small"
    with mount_tmpfs(data, "256k"):
        fill_disk(data)
        done = _gateway(data)
    _assert_clear(done, f"database {data / 'agenthub.db'}:", "disk is full", "Free space")


# PostgreSQL


def test_no_server_at_the_url(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://agent:{PASSWORD}@127.0.0.1:1/agenthub"
    _assert_clear(
        _gateway(tmp_path, "--database-url", url),
        "database postgresql+asyncpg://agent:***@127.0.0.1:1/agenthub:",
        "no database server answers at 127.0.0.1:1",
        "PostgreSQL is running",
    )
    assert not (tmp_path / "agenthub.db").exists()  # never falls back to SQLite


def test_no_such_database(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.url("missing_db", password=PASSWORD)
    _assert_clear(
        _gateway(tmp_path, "--database-url", url),
        postgres.url("missing_db", password="***"),
        "no such database",
        "createdb missing_db",
    )


def test_unknown_user(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.url("postgres", user="nobody_here", password=PASSWORD)
    _assert_clear(_gateway(tmp_path, "--database-url", url), "refused the credentials", "nobody_here")


def test_unsupported_driver(tmp_path: Path) -> None:
    url = f"mysql+aiomysql://agent:{PASSWORD}@127.0.0.1/agenthub"
    _assert_clear(_gateway(tmp_path, "--database-url", url), "driver for mysql+aiomysql is not installed")
