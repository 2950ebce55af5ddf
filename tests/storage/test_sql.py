"""SqlStore on both engines (a SQLite file, a real PostgreSQL): what the ``Store`` contract leaves out.

Restart survival, the lifecycle, the pipelines table and the CLI commands that
write the database directly (``agenthub keys``, ``agenthub pipelines``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agenthub.core.store import SessionRecord
from agenthub.storage.migrations import discover
from agenthub.storage.pipelines import SqlitePipelines
from agenthub.storage.sql import SqlStore
from tests.core.store_contract import make_device, make_run, msg

LATEST = discover()[-1].version  # versions may skip numbers


# restart


async def test_data_survives_restart(db_url: str) -> None:
    first = SqlStore(db_url)
    await first.open()
    ids = [await first.append_message(msg("main", f"m{i}", 1_000 + i, meta={"i": i, "ü": "✓"})) for i in range(3)]
    await first.put_run(make_run("r1", status="running"))
    await first.put_device(make_device("d1"))
    await first.put_idempotent("k1", "chat.send", {"ok": True}, 5_000)
    await first.put_config({"name": "hub"}, 5_000)
    await first.close()

    second = SqlStore(db_url)
    await second.open()
    try:
        assert second.schema_version == LATEST
        history = await second.history("main", 10)
        assert [(m.id, m.text, m.meta) for m in history] == [(ids[i], f"m{i}", {"i": i, "ü": "✓"}) for i in range(3)]
        assert await second.get_session("main") == SessionRecord("main", 1_000, 1_002, 3)
        assert await second.get_run("r1") == make_run("r1", status="running")
        assert await second.get_device("d1") == make_device("d1")
        assert await second.get_idempotent("k1", 5_000) == ("chat.send", {"ok": True})
        assert await second.get_config() == {"name": "hub"}
        # what a gateway does at start-up: runs the dead process left running are failed
        assert await second.fail_interrupted_runs("restarted", 9_000) == 1
        # ids keep growing after a restart, even once the transcript was reset
        assert await second.reset_session("main", 9_000)
        assert await second.append_message(msg("main", "after", 9_001)) > max(ids)
    finally:
        await second.close()


async def test_open_and_close_are_idempotent(db_url: str) -> None:
    store = SqlStore(db_url)
    await asyncio.gather(store.open(), store.open())
    engine = store.engine
    await store.open()
    assert store.engine is engine
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="not open"):
        await store.get_session("main")
    await store.open()  # reopening the same object works too
    assert await store.ensure_session("main", 1) == SessionRecord("main", 1, 1, 0)
    await store.close()


# pipelines (LangBot) share the store's engine


async def test_pipelines_on_the_store_engine(db_url: str) -> None:
    store = SqlStore(db_url)
    await store.open()
    try:
        pipelines = SqlitePipelines(store.engine)
        assert [p.uuid for p in await pipelines.list()] == ["default"]  # made by migration 0004
        created = await pipelines.create("support ✓", "demo", 10**13)
        assert await pipelines.get(created.uuid) == created
        assert await pipelines.get("nope") is None
        assert [p.name for p in await pipelines.list()] == ["default", "support ✓"]
        assert await pipelines.delete(created.uuid) is True
        assert await pipelines.delete(created.uuid) is False
        assert [p.uuid for p in await pipelines.list()] == ["default"]
    finally:
        await store.close()


# the CLI commands that write the database directly


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agenthub", *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


async def test_keys_and_pipelines_commands_use_the_database_url(db_url: str, tmp_path: Path) -> None:
    """``--database-url`` and ``AGENTHUB_DATABASE_URL`` reach the same database as the gateway's."""
    flag = ["--data-dir", str(tmp_path / "elsewhere"), "--database-url", db_url]  # the URL wins over the dir
    env = {**os.environ, "AGENTHUB_DATABASE_URL": db_url}

    created = _cli("keys", *flag, "create", "--user", "alice")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    pipeline = _cli("pipelines", "create", "--name", "bot", env=env)
    assert pipeline.returncode == 0, pipeline.stderr

    store = SqlStore(db_url)
    await store.open()
    try:
        (record,) = await store.list_api_keys()
        assert record.user_id == "alice" and key.startswith(f"ab_{record.key_id}_")
        names = [p.name for p in await SqlitePipelines(store.engine).list()]
        assert names == ["default", "bot"]
        revoked = _cli("keys", *flag, "revoke", record.key_id)
        assert revoked.returncode == 0, revoked.stderr
        after = await store.get_api_key(record.key_id)
        assert after is not None and after.revoked_ms is not None
    finally:
        await store.close()
    listed = _cli("keys", "list", env=env)
    assert record.key_id in listed.stdout and "alice" in listed.stdout
    assert not (tmp_path / "elsewhere" / "agenthub.db").exists()


def test_commands_report_a_database_that_will_not_open(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://agent:pw@127.0.0.1:1/agenthub"
    for args in (["keys", "--database-url", url, "list"], ["pipelines", "--database-url", url, "list"]):
        done = _cli(*args)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr and "pw@" not in done.stderr
        assert done.stderr.startswith("agenthub: cannot open the database postgresql+asyncpg://agent:***@127.0.0.1:1/")
