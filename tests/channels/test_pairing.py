"""DM pairing rules (PairingService) over both stores: in memory and the SQL tables of migration 0005."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect

from agenthub.channels.pairing import CODE_ALPHABET, PairingService
from agenthub.core.dm_access import MemoryPairingStore, PairingStore
from agenthub.storage.channels import SqlChannelStore, _allowed, _requests
from agenthub.storage.sqlite import SqliteStore

HOUR = 3_600_000


@pytest.fixture(params=["memory", "sql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PairingStore]:
    if request.param == "memory":
        yield MemoryPairingStore()
        return
    sqlite = SqliteStore(tmp_path / "agenthub.db")
    await sqlite.open()
    try:
        yield SqlChannelStore(sqlite.engine)
    finally:
        await sqlite.close()


async def test_one_code_per_sender_and_a_cap_per_account(store: PairingStore) -> None:
    service = PairingService(store, ttl_ms=HOUR, max_pending=3)
    code = await service.request("telegram", "default", "501", 1_000, {"senderName": "Ada"})
    assert code is not None and re.fullmatch(f"[{CODE_ALPHABET}]{{8}}", code)
    assert not set(code) & set("01OI")
    assert await service.request("telegram", "default", "501", 2_000) is None  # pending: no second code
    assert await service.request("telegram", "default", "502", 3_000)
    assert await service.request("telegram", "default", "503", 4_000)
    assert await service.request("telegram", "default", "504", 5_000) is None  # 3 pending is the cap
    assert await service.request("telegram", "work", "504", 5_000)  # another account has its own cap
    pending = await service.pending("telegram", "default", 6_000)
    assert [r.sender_id for r in pending] == ["501", "502", "503"]
    assert pending[0].meta == {"senderName": "Ada"} and pending[0].last_seen_ms == 2_000
    assert code not in {r.code_hash for r in pending}  # only the hash is kept


async def test_requests_expire(store: PairingStore) -> None:
    service = PairingService(store, ttl_ms=HOUR)
    code = await service.request("slack", "default", "U1", 0)
    assert code is not None
    assert await service.find("slack", "default", HOUR - 1, code=code) is not None
    assert await service.find("slack", "default", HOUR + 1, code=code) is None
    assert await service.request("slack", "default", "U1", HOUR + 1) is not None  # a new request, a new code


async def test_approve_by_code_or_id_once(store: PairingStore) -> None:
    service = PairingService(store)
    code = await service.request("telegram", "default", "501", 1_000)
    other = await service.request("telegram", "default", "502", 1_000)
    assert code is not None and other is not None
    assert not await service.is_approved("telegram", "default", "501")
    assert await service.find("telegram", "default", 2_000, code="AAAAAAAA") is None
    found = await service.find("telegram", None, 2_000, code=code.lower())  # codes are case-insensitive
    assert found is not None and found.sender_id == "501"
    assert await service.approve(found, 2_000)
    assert not await service.approve(found, 2_001)  # taken already
    assert await service.is_approved("telegram", "default", "501")
    assert not await service.is_approved("telegram", "work", "501")  # approvals are per account
    by_id = (await service.pending("telegram", "default", 3_000))[0]
    assert await service.find("telegram", "default", 3_000, request_id=by_id.request_id) == by_id
    assert await service.dismiss(by_id)
    assert not await service.is_approved("telegram", "default", "502")
    # A new service on the same store (a restart) still knows who was approved.
    assert await PairingService(store).is_approved("telegram", "default", "501")


async def test_sql_tables_mirror_the_migration(tmp_path: Path) -> None:
    sqlite = SqliteStore(tmp_path / "agenthub.db")
    await sqlite.open()

    def columns(conn: Connection) -> dict[str, set[str]]:
        inspector = inspect(conn)
        return {t.name: {c["name"] for c in inspector.get_columns(t.name)} for t in (_requests, _allowed)}

    try:
        async with sqlite.engine.connect() as conn:
            actual = await conn.run_sync(columns)
        assert actual == {t.name: {c.name for c in t.columns} for t in (_requests, _allowed)}
    finally:
        await sqlite.close()
