"""The behaviour every ``Store`` implementation must have, as a reusable test mixin.

Use it by subclassing in a ``Test*`` class and providing a ``store_factory``
fixture: a zero-argument callable returning a new, *unopened* store::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self, tmp_path: Path) -> StoreFactory:
            return lambda: MyStore(tmp_path / "db")

The mixin opens the store before each test and closes it after, so each test
starts from an empty store. Persistence across restarts is not part of the
contract (an in-memory store is a valid ``Store``); backends test that themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agenthub.core.store import (
    ApiKeyRecord,
    DeviceRecord,
    MessageRecord,
    RunRecord,
    SessionRecord,
    Store,
    StoreValueError,
)
from agenthub.protocol.errors import ErrorCode

__all__ = ["StoreContract", "StoreFactory", "make_api_key", "make_device", "make_run", "msg"]

StoreFactory = Callable[[], Store]

UNICODE_META: dict[str, Any] = {
    "lang": "日本語",
    "emoji": "🦜🚀",
    "accents": "café naïve Ærøskøbing",
    "rtl": "مرحبا",
    "escapes": 'quote " backslash \\ newline \n tab \t nul-free',
    "nested": {"list": [1, 2.5, None, True, False, "ß"], "empty": {}, "deep": {"x": [[]]}},
    "big": 2**53,
}


def make_run(run_id: str = "run-1", **overrides: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "run_id": run_id,
        "session_key": "main",
        "status": "queued",
        "created_ms": 1_000,
    }
    fields.update(overrides)
    return RunRecord(**fields)


def make_device(device_id: str = "dev-1", **overrides: Any) -> DeviceRecord:
    fields: dict[str, Any] = {
        "device_id": device_id,
        "public_key": "pk-" + device_id,
        "role": "operator",
        "scopes": ["operator.read", "operator.write"],
        "display_name": "Laptop",
        "platform": "linux",
        "client_id": "cli",
        "created_ms": 1_000,
        "last_seen_ms": 2_000,
    }
    fields.update(overrides)
    return DeviceRecord(**fields)


def make_api_key(key_id: str = "k1", **overrides: Any) -> ApiKeyRecord:
    fields: dict[str, Any] = {
        "key_id": key_id,
        "user_id": "alice",
        "key_hash": "sha256-of-" + key_id,
        "scopes": ["tasks"],
        "created_ms": 1_000,
    }
    fields.update(overrides)
    return ApiKeyRecord(**fields)


def msg(
    session_key: str,
    text: str,
    ts_ms: int,
    *,
    role: str = "user",
    run_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> MessageRecord:
    return MessageRecord(session_key=session_key, role=role, text=text, ts_ms=ts_ms, run_id=run_id, meta=meta or {})


class StoreContract:
    """Async tests any ``Store`` must pass; requires a ``store_factory`` fixture."""

    @pytest.fixture
    async def store(self, store_factory: StoreFactory) -> AsyncIterator[Store]:
        store = store_factory()
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    # sessions

    async def test_get_unknown_session_is_none(self, store: Store) -> None:
        assert await store.get_session("nope") is None

    async def test_ensure_session_creates(self, store: Store) -> None:
        created = await store.ensure_session("main", 1_000)
        assert created == SessionRecord(key="main", created_ms=1_000, updated_ms=1_000, message_count=0)
        assert await store.get_session("main") == created

    async def test_ensure_session_returns_existing_without_bumping(self, store: Store) -> None:
        await store.ensure_session("main", 1_000)
        await store.append_message(msg("main", "hi", 1_500, run_id="r1"))
        again = await store.ensure_session("main", 9_999)
        assert again == SessionRecord(key="main", created_ms=1_000, updated_ms=1_500, message_count=1, last_run_id="r1")
        assert await store.get_session("main") == again

    async def test_list_sessions_empty(self, store: Store) -> None:
        assert await store.list_sessions(10) == []

    async def test_list_sessions_most_recent_first_with_limit(self, store: Store) -> None:
        for i, key in enumerate(["a", "b", "c", "d"]):
            await store.ensure_session(key, 1_000 + i)
        await store.append_message(msg("b", "bump", 5_000))
        listed = await store.list_sessions(10)
        assert [s.key for s in listed] == ["b", "d", "c", "a"]
        limited = await store.list_sessions(2)
        assert [s.key for s in limited] == ["b", "d"]
        assert await store.list_sessions(0) == []

    async def test_reset_unknown_session(self, store: Store) -> None:
        assert await store.reset_session("nope", 1_000) is False
        assert await store.get_session("nope") is None

    async def test_reset_session_clears_transcript_keeps_session(self, store: Store) -> None:
        for i in range(3):
            await store.append_message(msg("main", f"m{i}", 1_000 + i))
        await store.append_message(msg("other", "keep me", 1_100))
        assert await store.reset_session("main", 2_000) is True
        session = await store.get_session("main")
        assert session is not None
        assert (session.created_ms, session.updated_ms, session.message_count) == (1_000, 2_000, 0)
        assert await store.history("main", 10) == []
        assert [m.text for m in await store.history("other", 10)] == ["keep me"]
        # the session stays usable
        await store.append_message(msg("main", "fresh", 3_000))
        assert [m.text for m in await store.history("main", 10)] == ["fresh"]
        session = await store.get_session("main")
        assert session is not None and session.message_count == 1

    async def test_delete_unknown_session(self, store: Store) -> None:
        assert await store.delete_session("nope") is False

    async def test_delete_session_removes_session_and_transcript(self, store: Store) -> None:
        await store.append_message(msg("main", "bye", 1_000))
        await store.append_message(msg("other", "stay", 1_001))
        assert await store.delete_session("main") is True
        assert await store.get_session("main") is None
        assert await store.history("main", 10) == []
        assert [s.key for s in await store.list_sessions(10)] == ["other"]
        assert [m.text for m in await store.history("other", 10)] == ["stay"]
        assert await store.delete_session("main") is False
        # the key can be reused from scratch
        recreated = await store.ensure_session("main", 5_000)
        assert (recreated.created_ms, recreated.message_count) == (5_000, 0)
        assert await store.history("main", 10) == []

    # transcripts

    async def test_append_creates_missing_session(self, store: Store) -> None:
        await store.append_message(msg("new", "hello", 1_234))
        session = await store.get_session("new")
        assert session == SessionRecord(key="new", created_ms=1_234, updated_ms=1_234, message_count=1)

    async def test_append_bumps_session(self, store: Store) -> None:
        await store.ensure_session("main", 1_000)
        await store.append_message(msg("main", "one", 2_000, run_id="r1"))
        await store.append_message(msg("main", "two", 3_000, role="assistant", run_id="r2"))
        session = await store.get_session("main")
        assert session == SessionRecord(
            key="main", created_ms=1_000, updated_ms=3_000, message_count=2, last_run_id="r2"
        )

    async def test_append_returns_increasing_ids(self, store: Store) -> None:
        ids = [await store.append_message(msg("s" + str(i % 2), f"m{i}", 1_000 + i)) for i in range(6)]
        assert all(isinstance(i, int) for i in ids)
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)

    async def test_history_unknown_session_and_zero_limit(self, store: Store) -> None:
        assert await store.history("nope", 10) == []
        await store.append_message(msg("main", "x", 1_000))
        assert await store.history("main", 0) == []

    async def test_history_returns_last_n_chronologically(self, store: Store) -> None:
        for i in range(10):
            await store.append_message(msg("main", f"m{i}", 1_000 + i))
            await store.append_message(msg("noise", f"n{i}", 1_000 + i))
        last3 = await store.history("main", 3)
        assert [m.text for m in last3] == ["m7", "m8", "m9"]
        everything = await store.history("main", 100)
        assert [m.text for m in everything] == [f"m{i}" for i in range(10)]
        assert all(m.session_key == "main" for m in everything)

    async def test_history_orders_by_insertion_even_with_equal_timestamps(self, store: Store) -> None:
        for i in range(5):
            await store.append_message(msg("main", f"m{i}", 1_000))
        assert [m.text for m in await store.history("main", 5)] == [f"m{i}" for i in range(5)]

    async def test_message_round_trip(self, store: Store) -> None:
        original = MessageRecord(
            session_key="main",
            role="assistant",
            text="Grüße 👋 — «multi\nline»",
            ts_ms=1_700_000_000_123,
            run_id="run-ü",
            meta=UNICODE_META,
        )
        new_id = await store.append_message(original)
        (loaded,) = await store.history("main", 1)
        assert loaded.id == new_id
        assert loaded == MessageRecord(
            session_key="main",
            role="assistant",
            text="Grüße 👋 — «multi\nline»",
            ts_ms=1_700_000_000_123,
            run_id="run-ü",
            meta=UNICODE_META,
            id=new_id,
        )

    async def test_message_defaults_round_trip(self, store: Store) -> None:
        await store.append_message(msg("main", "", 1))
        (loaded,) = await store.history("main", 1)
        assert (loaded.text, loaded.run_id, loaded.meta) == ("", None, {})

    @pytest.mark.parametrize("where", ["text", "session_key", "run_id"])
    async def test_transcript_refuses_nul_alike_on_every_engine(self, store: Store, where: str) -> None:
        """PostgreSQL text cannot hold NUL, so no engine's transcript takes it: a typed INVALID_REQUEST."""
        await store.append_message(msg("main", "before", 1_000))
        bad = {"text": "a\x00b", "session_key": "main", "run_id": None} | {where: "a\x00b"}
        with pytest.raises(StoreValueError) as err:
            await store.append_message(msg(bad["session_key"], bad["text"], 2_000, run_id=bad["run_id"]))
        assert err.value.code is ErrorCode.INVALID_REQUEST and "NUL" in err.value.message
        with pytest.raises(StoreValueError):
            await store.ensure_session("a\x00b", 2_000)
        assert [m.text for m in await store.history("main", 10)] == ["before"]
        assert [s.key for s in await store.list_sessions(10)] == ["main"]
        # JSON meta escapes NUL, so it stays storable
        await store.append_message(msg("main", "after", 3_000, meta={"nul": "x\x00y"}))
        assert (await store.history("main", 1))[0].meta == {"nul": "x\x00y"}

    # runs

    async def test_get_unknown_run_is_none(self, store: Store) -> None:
        assert await store.get_run("nope") is None

    async def test_put_and_get_run(self, store: Store) -> None:
        run = make_run(
            "r1",
            status="ok",
            started_ms=1_100,
            ended_ms=1_900,
            summary="done ✓",
            origin="ws:cli",
        )
        await store.put_run(run)
        assert await store.get_run("r1") == run

    async def test_put_run_upserts_every_field(self, store: Store) -> None:
        await store.put_run(make_run("r1", status="error", ended_ms=5, error="boom", summary="s"))
        replacement = make_run("r1", status="running", started_ms=7, origin="http")
        await store.put_run(replacement)
        assert await store.get_run("r1") == replacement
        assert await store.count_runs_by_status() == {"running": 1}

    async def test_fail_interrupted_runs(self, store: Store) -> None:
        await store.put_run(make_run("queued", status="queued"))
        await store.put_run(make_run("running", status="running", started_ms=1_100))
        finished = make_run("ok", status="ok", started_ms=1_100, ended_ms=1_200)
        failed = make_run("err", status="error", ended_ms=1_300, error="earlier")
        aborted = make_run("aborted", status="aborted", ended_ms=1_400)
        for run in (finished, failed, aborted):
            await store.put_run(run)

        assert await store.fail_interrupted_runs("gateway restarted", 9_000) == 2

        for run_id in ("queued", "running"):
            interrupted = await store.get_run(run_id)
            assert interrupted is not None
            assert (interrupted.status, interrupted.error, interrupted.ended_ms) == (
                "error",
                "gateway restarted",
                9_000,
            )
        running = await store.get_run("running")
        assert running is not None and running.started_ms == 1_100
        assert await store.get_run("ok") == finished
        assert await store.get_run("err") == failed
        assert await store.get_run("aborted") == aborted
        assert await store.fail_interrupted_runs("again", 10_000) == 0

    async def test_put_and_get_run_with_its_pending_message(self, store: Store) -> None:
        run = make_run("r1", message="hello ✓ \n", message_meta=dict(UNICODE_META))
        await store.put_run(run)
        assert await store.get_run("r1") == run
        run.message = run.message_meta = None  # what put_run stores once the message is in the transcript
        await store.put_run(run)
        assert await store.get_run("r1") == run

    async def test_fail_interrupted_runs_keeps_their_acknowledged_messages(self, store: Store) -> None:
        """A run killed before its message reached the transcript: the restart puts it there, once."""
        await store.append_message(msg("s", "earlier", 500))
        assert [m.text for m in await store.history("s", 10)] == ["earlier"]  # a cached transcript, if any
        await store.put_run(make_run("queued", session_key="s", message="behind", message_meta={"via": "ui"}))
        await store.put_run(make_run("no-text", session_key="s", status="running", started_ms=1_100))
        # Killed between appending its message and clearing it from the run: not appended twice.
        await store.append_message(msg("s", "both", 1_050, run_id="both"))
        await store.put_run(make_run("both", session_key="s", created_ms=1_050, message="both"))
        await store.put_run(make_run("done", session_key="s", status="ok", ended_ms=2, message="never pending"))

        assert await store.fail_interrupted_runs("gateway restarted", 9_000) == 3

        history = await store.history("s", 10)
        assert [(m.role, m.text, m.run_id, m.ts_ms, m.meta) for m in history] == [
            ("user", "earlier", None, 500, {}),
            ("user", "both", "both", 1_050, {}),
            ("user", "behind", "queued", 1_000, {"via": "ui"}),
        ]
        session = await store.get_session("s")
        assert session is not None and session.message_count == 3
        for run_id in ("queued", "no-text", "both"):
            failed = await store.get_run(run_id)
            assert failed is not None
            assert (failed.status, failed.error, failed.message, failed.message_meta) == (
                "error",
                "gateway restarted",
                None,
                None,
            )
        assert await store.fail_interrupted_runs("again", 10_000) == 0
        assert len(await store.history("s", 10)) == 3

    async def test_fail_run_ends_one_run_and_keeps_its_message(self, store: Store) -> None:
        assert [m.text for m in await store.history("s", 10)] == []
        await store.put_run(make_run("orphan", session_key="s", message="lost?"))
        await store.put_run(make_run("other", session_key="s", message="still queued"))
        failed = await store.fail_run("orphan", "its gateway process died", 5_000)
        assert failed == make_run(
            "orphan", session_key="s", status="error", ended_ms=5_000, error="its gateway process died"
        )
        assert [(m.text, m.run_id) for m in await store.history("s", 10)] == [("lost?", "orphan")]
        assert await store.fail_run("orphan", "twice", 6_000) is None
        assert await store.fail_run("unknown", "never", 6_000) is None
        other = await store.get_run("other")
        assert other is not None and (other.status, other.message) == ("queued", "still queued")

    async def test_count_runs_by_status(self, store: Store) -> None:
        assert await store.count_runs_by_status() == {}
        for i, status in enumerate(["ok", "ok", "error", "running", "ok"]):
            await store.put_run(make_run(f"r{i}", status=status))
        assert await store.count_runs_by_status() == {"ok": 3, "error": 1, "running": 1}

    async def test_count_runs_by_status_of_one_owner(self, store: Store) -> None:
        for i, (status, owner) in enumerate([("ok", "alice"), ("error", "alice"), ("ok", "bob"), ("ok", None)]):
            await store.put_run(make_run(f"r{i}", status=status, owner=owner))
        assert await store.count_runs_by_status("alice") == {"ok": 1, "error": 1}
        assert await store.count_runs_by_status("bob") == {"ok": 1}
        assert await store.count_runs_by_status("carol") == {}
        assert await store.count_runs_by_status() == {"ok": 3, "error": 1}

    # devices

    async def test_get_unknown_device_and_empty_list(self, store: Store) -> None:
        assert await store.get_device("nope") is None
        assert await store.list_devices() == []

    async def test_put_and_get_device(self, store: Store) -> None:
        device = make_device(
            "d1",
            scopes=["z.last", "a.first", "ünïcode"],
            display_name="Zoë's phone 📱",
            token_hash="h",
            token_issued_ms=3_000,
        )
        await store.put_device(device)
        assert await store.get_device("d1") == device

    async def test_device_optional_fields_and_empty_scopes(self, store: Store) -> None:
        device = make_device("d1", scopes=[], display_name=None, platform=None, client_id=None)
        await store.put_device(device)
        assert await store.get_device("d1") == device

    async def test_put_device_upserts(self, store: Store) -> None:
        await store.put_device(make_device("d1", token_hash="old", token_issued_ms=1))
        replacement = make_device(
            "d1", scopes=["node"], role="node", status="revoked", last_seen_ms=9_000, token_hash=None
        )
        await store.put_device(replacement)
        assert await store.get_device("d1") == replacement
        assert await store.list_devices() == [replacement]

    async def test_put_devices_upserts_a_batch(self, store: Store) -> None:
        await store.put_devices([])
        await store.put_device(make_device("d1", token_hash="old"))
        batch = [make_device("d1", token_hash="new", last_seen_ms=5_000), make_device("d2", created_ms=1_001)]
        await store.put_devices(batch)
        assert await store.list_devices() == batch

    async def test_list_devices(self, store: Store) -> None:
        devices = [make_device(f"d{i}", created_ms=1_000 + i) for i in range(3)]
        for device in reversed(devices):
            await store.put_device(device)
        listed = await store.list_devices()
        assert sorted(listed, key=lambda d: d.device_id) == devices

    # user API keys

    async def test_get_unknown_api_key_and_empty_list(self, store: Store) -> None:
        assert await store.get_api_key("nope") is None
        assert await store.list_api_keys() == []
        assert await store.revoke_api_key("nope", 5_000) is False

    async def test_put_and_get_api_key(self, store: Store) -> None:
        key = make_api_key("k1", user_id="zoë", scopes=["tasks", "admin", "ünïcode"])
        await store.put_api_key(key)
        assert await store.get_api_key("k1") == key

    async def test_put_api_key_upserts(self, store: Store) -> None:
        await store.put_api_key(make_api_key("k1"))
        replacement = make_api_key("k1", user_id="bob", key_hash="other", scopes=[], created_ms=2_000)
        await store.put_api_key(replacement)
        assert await store.list_api_keys() == [replacement]

    async def test_revoke_api_key_once_and_keep_it_listed(self, store: Store) -> None:
        older, newer = make_api_key("k2", created_ms=1_000), make_api_key("k1", created_ms=2_000)
        await store.put_api_key(newer)
        await store.put_api_key(older)
        assert await store.revoke_api_key("k1", 5_000) is True
        assert await store.revoke_api_key("k1", 6_000) is False  # already revoked: the first time stays
        revoked = make_api_key("k1", created_ms=2_000, revoked_ms=5_000)
        assert await store.get_api_key("k1") == revoked
        assert await store.list_api_keys() == [older, revoked]  # oldest first, revoked ones included

    # concurrency

    async def test_concurrent_appends_lose_nothing(self, store: Store) -> None:
        n = 50
        ids = await asyncio.gather(
            *(store.append_message(msg("main", f"m{i}", 1_000 + i, meta={"i": i})) for i in range(n))
        )
        assert len(set(ids)) == n
        session = await store.get_session("main")
        assert session is not None and session.message_count == n
        history = await store.history("main", n * 2)
        assert [m.id for m in history] == sorted(ids)
        assert sorted(m.meta["i"] for m in history) == list(range(n))

    async def test_concurrent_mixed_operations(self, store: Store) -> None:
        """Racing creators of one session agree on it; reads run alongside writes."""
        created = await asyncio.gather(*(store.ensure_session("race", 1_000 + i) for i in range(20)))
        assert len({(s.key, s.created_ms) for s in created}) == 1

        async def writer(i: int) -> None:
            await store.append_message(msg(f"s{i % 5}", f"m{i}", 2_000 + i))
            await store.put_run(make_run(f"r{i}", session_key=f"s{i % 5}", status="ok"))

        async def reader(i: int) -> None:
            await store.history(f"s{i % 5}", 10)
            await store.list_sessions(10)

        await asyncio.gather(*(writer(i) for i in range(40)), *(reader(i) for i in range(40)))
        sessions = {s.key: s.message_count for s in await store.list_sessions(100)}
        assert sessions == {"race": 0, **{f"s{k}": 8 for k in range(5)}}
        assert await store.count_runs_by_status() == {"ok": 40}

    # idempotency

    # per-session metadata, trimming and counting (OpenClaw's sessions.patch, sessions.compact, status)

    async def test_session_meta_round_trip(self, store: Store) -> None:
        await store.append_message(msg("a", "hi", 1))
        assert await store.get_session_meta(["a"]) == {}
        await store.put_session_meta("a", {"label": "Ops", "archivedAt": 5, "nested": {"x": [1]}}, 10)
        await store.put_session_meta("a", {"label": "Ops 2"}, 11)  # replaces, not merges
        assert await store.get_session_meta(["a", "b"]) == {"a": {"label": "Ops 2"}}
        assert await store.get_session_meta() == {"a": {"label": "Ops 2"}}
        assert await store.get_session_meta([]) == {}

    async def test_deleting_a_session_drops_its_meta(self, store: Store) -> None:
        await store.append_message(msg("a", "hi", 1))
        await store.put_session_meta("a", {"label": "x"}, 2)
        await store.reset_session("a", 3)
        assert await store.get_session_meta(["a"]) == {"a": {"label": "x"}}  # a reset keeps it
        assert await store.delete_session("a")
        assert await store.get_session_meta() == {}

    async def test_trim_session_keeps_the_newest(self, store: Store) -> None:
        for i in range(5):
            await store.append_message(msg("a", f"m{i}", i))
        await store.append_message(msg("b", "other", 9))
        assert await store.trim_session("a", 2) == 3
        assert [m.text for m in await store.history("a", 10)] == ["m3", "m4"]
        session = await store.get_session("a")
        assert session is not None and session.message_count == 2
        assert await store.trim_session("a", 2) == 0
        assert await store.trim_session("nope", 2) == 0
        assert [m.text for m in await store.history("b", 10)] == ["other"]

    async def test_count_sessions(self, store: Store) -> None:
        assert await store.count_sessions() == 0
        await store.append_message(msg("a", "hi", 1))
        await store.ensure_session("b", 2)
        assert await store.count_sessions() == 2

    async def test_get_unknown_idempotent(self, store: Store) -> None:
        assert await store.get_idempotent("nope", 0) is None

    async def test_idempotent_round_trip(self, store: Store) -> None:
        response = {"ok": True, "payload": {"runId": "r1", "text": "héllo 🌍", "n": [1, 2, 3]}}
        await store.put_idempotent("k1", "chat.send", response, 1_000)
        assert await store.get_idempotent("k1", 0) == ("chat.send", response)

    @pytest.mark.parametrize("response", [None, 0, "text", [1, "two"], {"a": None}])
    async def test_idempotent_any_json_response(self, store: Store, response: Any) -> None:
        await store.put_idempotent("k", "m", response, 1_000)
        assert await store.get_idempotent("k", 1_000) == ("m", response)

    async def test_idempotent_ttl_boundary(self, store: Store) -> None:
        await store.put_idempotent("k1", "m", {"v": 1}, 1_000)
        assert await store.get_idempotent("k1", 999) == ("m", {"v": 1})
        assert await store.get_idempotent("k1", 1_000) == ("m", {"v": 1})
        assert await store.get_idempotent("k1", 1_001) is None

    async def test_put_idempotent_replaces(self, store: Store) -> None:
        await store.put_idempotent("k1", "old.method", {"v": 1}, 1_000)
        await store.put_idempotent("k1", "new.method", {"v": 2}, 2_000)
        assert await store.get_idempotent("k1", 2_000) == ("new.method", {"v": 2})

    async def test_purge_idempotent(self, store: Store) -> None:
        for i, ts in enumerate([1_000, 1_999, 2_000, 3_000]):
            await store.put_idempotent(f"k{i}", "m", i, ts)
        assert await store.purge_idempotent(2_000) == 2
        assert await store.get_idempotent("k0", 0) is None
        assert await store.get_idempotent("k1", 0) is None
        assert await store.get_idempotent("k2", 0) == ("m", 2)
        assert await store.get_idempotent("k3", 0) == ("m", 3)
        assert await store.purge_idempotent(2_000) == 0

    # config

    async def test_config_empty_by_default(self, store: Store) -> None:
        assert await store.get_config() == {}

    async def test_config_round_trip_and_replace(self, store: Store) -> None:
        first = {"agents": {"default": {"model": "gpt", "temperature": 0.5}}, "name": "ハブ", "x": [1, None]}
        await store.put_config(first, 1_000)
        assert await store.get_config() == first
        second = {"name": "other"}
        await store.put_config(second, 2_000)
        assert await store.get_config() == second  # replaced, not merged
        await store.put_config({}, 3_000)
        assert await store.get_config() == {}
