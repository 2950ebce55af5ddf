"""SqlStore on a real PostgreSQL server: what only a server engine has.

A bounded pool (and a retryable error when it stays exhausted), a server that
goes away and comes back, a disk that fills up (a tablespace on a small tmpfs
gives PostgreSQL's own ``53100 disk_full``), text the server cannot hold, and
two stores (as two gateway processes would) writing one database.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agenthub.core.store import MessageRecord, StoreFullError, StoreUnavailableError, StoreValueError
from agenthub.protocol.errors import ErrorCode
from agenthub.storage.sql import SqlStore
from tests._servers import PostgresServer, fill_disk, mount_tmpfs, require_pg_bin
from tests.core.store_contract import make_run, msg

_tablespaces = itertools.count(1)


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[SqlStore]:
    store = SqlStore(pg_url, pool_size=2, pool_timeout_s=0.5)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _connections(postgres: PostgresServer, database: str) -> int:
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND application_name = 'agenthub'"
    return int(postgres.psql(sql).strip())


async def test_the_pool_is_bounded_and_an_exhausted_one_is_retryable(
    store: SqlStore, postgres: PostgresServer, pg_url: str
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    ids = await asyncio.gather(*(store.append_message(msg("main", f"m{i}", i)) for i in range(60)))
    assert len(set(ids)) == 60
    assert 1 <= _connections(postgres, database) <= 2  # pool_size=2, no overflow

    # Both connections taken elsewhere: a call waits pool_timeout_s, then fails retryably.
    async with store.engine.connect() as held_1, store.engine.connect() as held_2:
        assert held_1 is not held_2
        with pytest.raises(StoreUnavailableError, match="database busy") as err:
            await store.get_session("main")
        assert err.value.code is ErrorCode.UNAVAILABLE and err.value.retryable is True
    session = await store.get_session("main")  # connections back: served at once
    assert session is not None and session.message_count == 60


async def test_server_gone_is_retryable_and_the_store_recovers_when_it_returns(tmp_path: Path) -> None:
    """A server of its own (the session's must stay up): stopped mid-use, started again on the same port."""
    server = PostgresServer(require_pg_bin())
    try:
        server.start()
        database = server.create_database("gone")
        store = SqlStore(server.url(database), pool_size=2, pool_timeout_s=2)
        await store.open()
        try:
            await store.append_message(msg("main", "before", 1))
            server.stop_server()
            for _ in range(2):  # the pooled connection dies first, then connecting is refused
                with pytest.raises(StoreUnavailableError, match="database unavailable") as err:
                    await store.append_message(msg("main", "while down", 2))
                assert err.value.retryable is True
            server.start_server()
            await store.append_message(msg("main", "after", 3))
            assert [m.text for m in await store.history("main", 10)] == ["before", "after"]
        finally:
            await store.close()
    finally:
        server.stop()


async def test_full_disk_is_retryable_and_the_store_recovers(
    store: SqlStore, postgres: PostgresServer, pg_url: str
) -> None:
    """The transcript's table on a small tmpfs: a real ``53100 disk_full`` from PostgreSQL when it fills."""
    database = pg_url.rsplit("/", 1)[1]
    space = postgres.root / f"tablespace_{next(_tablespaces)}"
    name = space.name
    with mount_tmpfs(space, "512k", owner="postgres"):
        postgres.psql(f"CREATE TABLESPACE {name} LOCATION '{space}'")
        try:
            postgres.psql(f"ALTER TABLE messages SET TABLESPACE {name}", database)
            filler = fill_disk(space)
            with pytest.raises(StoreFullError, match="disk full") as err:
                await store.append_message(msg("main", "x" * 2000, 1))
            assert err.value.code is ErrorCode.UNAVAILABLE and err.value.retryable is True
            assert await store.get_session("main") is None  # the session upsert was rolled back with it
            await store.put_run(make_run("r1"))  # other tables live elsewhere and still take writes

            filler.unlink()
            await store.append_message(msg("main", "x" * 2000, 2))
            assert [m.ts_ms for m in await store.history("main", 10)] == [2]
        finally:
            postgres.psql("ALTER TABLE messages SET TABLESPACE pg_default", database)
            postgres.psql(f"DROP TABLESPACE {name}")


async def test_text_the_server_cannot_hold_is_an_invalid_request(store: SqlStore) -> None:
    """NUL reaching PostgreSQL outside the transcript's own check (a lookup key) is refused, typed."""
    with pytest.raises(StoreValueError) as err:
        await store.get_session("a\x00b")
    assert err.value.code is ErrorCode.INVALID_REQUEST
    with pytest.raises(StoreValueError):
        await store.put_idempotent("k\x00", "m", {}, 1)
    assert await store.get_session("main") is None  # the connection is still good


async def test_two_stores_write_one_database(pg_url: str) -> None:
    """Two pools (as two gateway processes would have) on one database: no lost update, no error."""
    a, b = SqlStore(pg_url, pool_size=3), SqlStore(pg_url, pool_size=3)
    await asyncio.gather(a.open(), b.open())
    try:
        await asyncio.gather(
            *(a.append_message(MessageRecord("main", "user", f"a{i}", i)) for i in range(40)),
            *(b.append_message(MessageRecord("main", "user", f"b{i}", i)) for i in range(40)),
            *(a.ensure_session(f"s{i % 4}", i) for i in range(20)),
            *(b.ensure_session(f"s{i % 4}", 100 + i) for i in range(20)),
        )
        session = await b.get_session("main")
        assert session is not None and session.message_count == 80
        assert len(await a.history("main", 100)) == 80
        assert len({(s.key, s.created_ms) for s in await a.list_sessions(10) if s.key.startswith("s")}) == 4
    finally:
        await a.close()
        await b.close()


def test_store_names_the_server_without_the_password(pg_url: str) -> None:
    store = SqlStore(pg_url.replace("postgres@", "postgres:topsecret@"))
    assert store.backend == "postgresql"
    assert "topsecret" not in store.url and "topsecret" not in store.display_name
    assert store.display_name.startswith("postgresql+asyncpg://postgres:***@127.0.0.1:")
