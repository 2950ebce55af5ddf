"""RunManager without a socket: numbering, launch after the response, timeouts, the message cap."""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agenthub.core.bus import MemoryBus, Publication
from agenthub.core.runs import FINISHED_RUN_OVERHEAD, RunManager, RunStatus
from agenthub.core.runtime import AgentEvent, TextDelta, Thinking, ToolCallResult, ToolCallStart, Turn
from agenthub.protocol.errors import RpcError
from agenthub.storage.sqlite import SqliteStore


class Script:
    """A provider that yields what the test scripted, with pauses, then optionally hangs."""

    name = "script"

    def __init__(self, events: list[AgentEvent | float], *, hang: bool = False, raise_timeout: bool = False) -> None:
        self.events = events
        self.hang = hang
        self.raise_timeout = raise_timeout

    async def run_turn(self, turn: Turn) -> AsyncIterator[AgentEvent]:
        for ev in self.events:
            if isinstance(ev, float):
                await asyncio.sleep(ev)
            else:
                yield ev
        if self.raise_timeout:
            raise TimeoutError  # e.g. asyncio.wait_for inside a provider: not the run's own limit
        if self.hang:
            await asyncio.Event().wait()


class Recorder:
    def __init__(self) -> None:
        self.pubs: list[Publication] = []

    def handle_publication(self, pub: Publication) -> None:
        self.pubs.append(pub)

    def run(self, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(p.event, p.payload) for p in self.pubs if p.payload.get("runId") == run_id]


World = tuple[RunManager, Recorder, SqliteStore]


@pytest.fixture
async def world() -> AsyncIterator[Callable[..., World]]:
    stores: list[SqliteStore] = []
    managers: list[RunManager] = []

    def make(runtime: Any, **kw: Any) -> World:
        store = SqliteStore(":memory:")
        stores.append(store)
        bus = MemoryBus()
        rec = Recorder()
        bus.add_listener(rec)
        runs = RunManager(bus, store, lambda: runtime, **kw)
        managers.append(runs)
        return runs, rec, store

    yield make
    for runs in managers:
        await runs.shutdown()
    for store in stores:
        await store.close()


async def opened(w: World) -> World:
    await w[2].open()
    return w


def numbering(events: list[tuple[str, dict[str, Any]]]) -> None:
    agent = [p["seq"] for e, p in events if e == "agent"]
    assert agent == list(range(1, len(agent) + 1))
    last = 0
    for event, payload in events:
        if event == "agent":
            last = payload["seq"]
        else:
            assert payload["seq"] == last, events


async def test_agent_events_are_numbered_without_gaps_and_chat_events_carry_their_source(
    world: Callable[..., World],
) -> None:
    script = Script(
        [
            Thinking("hmm "),
            TextDelta("one "),
            0.05,
            TextDelta("two "),
            ToolCallStart("t1", "calc", {}),
            0.0,
            ToolCallResult("t1", "calc", 2**80),
            TextDelta("three"),
        ]
    )
    runs, rec, _ = await opened(world(script, chat_delta_interval_ms=1000))
    run = await runs.start("r1", "s", "hi", "test")
    await run.done.wait()
    events = rec.run("r1")
    numbering(events)
    kinds = [(e, p.get("stream") or p.get("state")) for e, p in events]
    # the delta pending when the tool starts goes out before the tool event, with the last text's seq
    i = kinds.index(("agent", "tool"))
    assert kinds[i - 1] == ("chat", "delta") and events[i - 1][1]["message"]["content"][0]["text"] == "one two "
    assert kinds[-2:] == [("agent", "lifecycle"), ("chat", "final")]
    # a result orjson cannot encode is published as text, so no client loses the event
    result = next(p for e, p in events if e == "agent" and p["data"].get("phase") == "result")
    assert result["data"]["result"] == str(2**80)


async def test_nothing_is_published_before_launch(world: Callable[..., World]) -> None:
    runs, rec, store = await opened(world(Script([TextDelta("x")])))
    run = await runs.start("r2", "s", "hi", "test", launch=False)
    reply = await runs.reply("r3", "s", "answer", "test", launch=False)
    await asyncio.sleep(0.05)
    assert rec.pubs == [] and run.task is None
    assert (await store.get_run("r3")) is not None, "a reply's outcome is stored before it is published"
    runs.launch(reply)
    runs.launch(run)
    runs.launch(run)  # the second launch is a no-op
    await run.done.wait()
    assert [p["data"]["phase"] for e, p in rec.run("r2") if e == "agent" and p["stream"] == "lifecycle"] == [
        "start",
        "end",
    ]
    assert [p["state"] for e, p in rec.run("r3") if e == "chat"] == ["final"]


async def test_a_run_past_its_own_timeout_ends_as_timed_out_with_its_partial_text(world: Callable[..., World]) -> None:
    runs, rec, store = await opened(world(Script([TextDelta("partial "), TextDelta("answer")], hang=True)))
    run = await runs.start("t1", "s", "go", "test", timeout_s=0.2)
    async with asyncio.timeout(10):
        await run.done.wait()
    assert run.status is RunStatus.TIMEOUT and run.error == "run timed out after 0.2s"
    assert run.result() | {"startedAt": 0, "endedAt": 0} == {
        "runId": "t1",
        "status": "timeout",
        "summary": "partial answer",
        "error": "run timed out after 0.2s",
        "stopReason": "timeout",
        "startedAt": 0,
        "endedAt": 0,
    }
    events = rec.run("t1")
    numbering(events)
    (_, lifecycle), (_, chat) = events[-2:]
    assert lifecycle["data"] | {"endedAt": 0} == {
        "phase": "error",
        "endedAt": 0,
        "error": "run timed out after 0.2s",
        "stopReason": "timeout",
    }
    assert chat["state"] == "error" and chat["errorKind"] == "timeout" and chat["stopReason"] == "timeout"
    assert chat["message"]["content"][0]["text"] == "partial answer"
    stored = await store.get_run("t1")
    assert stored is not None and stored.status == "timeout"
    history = await store.history("agent:main:s", 10)  # runs name sessions by their canonical key
    assert [(m.role, m.text, m.meta) for m in history] == [
        ("user", "go", {}),
        ("assistant", "partial answer", {"timedOut": True}),
    ]


async def test_the_gateway_limit_caps_what_a_caller_asks_for(world: Callable[..., World]) -> None:
    runs, _, _ = await opened(world(Script([], hang=True), run_timeout_s=0.2))
    assert runs.timeout_for(None) == runs.timeout_for(0) == 0.2
    assert runs.timeout_for(600) == 0.2 and runs.timeout_for(0.1) == 0.1
    run = await runs.start("t2", "s", "go", "test", timeout_s=600)
    async with asyncio.timeout(10):
        await run.done.wait()
    assert run.status is RunStatus.TIMEOUT and run.error == "run timed out after 0.2s"


async def test_a_providers_own_timeout_error_is_a_failure_not_the_runs_timeout(world: Callable[..., World]) -> None:
    runs, rec, _ = await opened(world(Script([TextDelta("x")], raise_timeout=True)))
    run = await runs.start("t3", "s", "go", "test", timeout_s=30)
    await run.done.wait()
    assert run.status is RunStatus.ERROR and run.error == "TimeoutError"
    assert rec.run("t3")[-1][1]["state"] == "error" and "errorKind" not in rec.run("t3")[-1][1]


async def test_a_message_past_the_cap_is_refused_before_anything_is_recorded(world: Callable[..., World]) -> None:
    runs, rec, store = await opened(world(Script([]), max_message_chars=10))
    with pytest.raises(RpcError) as info:
        await runs.start("m1", "s", "x" * 11, "test")
    assert info.value.details == {"reason": "MESSAGE_TOO_LONG", "maxChars": 10}
    assert runs.get("m1") is None and await store.get_run("m1") is None and rec.pubs == []
    run = await runs.start("m2", "s", "x" * 10, "test")
    await run.done.wait()
    assert run.status is RunStatus.OK


async def test_a_finished_run_keeps_only_what_retries_and_waits_need(world: Callable[..., World]) -> None:
    runs, _, _ = await opened(world(Script([Thinking("long thoughts"), TextDelta("answer")])))
    run = await runs.start("f1", "s", "a long question " * 100, "test", message_meta={"big": "x" * 1000})
    await run.done.wait()
    assert run.text == "answer" and run.result()["summary"] == "answer"
    assert run.message == "" and run.thinking == "" and run.message_meta == {}


async def test_a_run_aborted_before_its_task_ran_still_ends(world: Callable[..., World]) -> None:
    """Cancelling a task before its first step skips ``_drive`` entirely: the run must end all the same."""
    runs, rec, _ = await opened(world(Script([TextDelta("never")])))
    run = await runs.start("r1", "s", "hi", "test")
    assert await runs.abort("s") == ["r1"]  # same loop step: the task has not run yet
    async with asyncio.timeout(10):
        await run.done.wait()
    assert run.status is RunStatus.ABORTED and runs.get("r1") is run and not runs.active("s")
    assert [p["state"] for e, p in rec.run("r1") if e == "chat"] == ["aborted"]


class FailingStore(SqliteStore):
    """A real store whose run writes fail on demand (as on a full disk)."""

    fail_put_run = False

    async def put_run(self, run: Any) -> None:
        if self.fail_put_run:
            raise OSError(28, "No space left on device")
        await super().put_run(run)


async def test_a_run_the_store_refuses_is_not_kept(world: Callable[..., World]) -> None:
    store = FailingStore(":memory:")
    await store.open()
    try:
        runs = RunManager(MemoryBus(), store, lambda: Script([TextDelta("x")]))
        store.fail_put_run = True
        with pytest.raises(OSError):
            await runs.start("r1", "s", "hi", "test")
        assert runs.get("r1") is None and not runs.active()  # a retry starts afresh instead of waiting forever
    finally:
        await store.close()


async def test_an_outcome_that_cannot_be_stored_still_ends_the_run(world: Callable[..., World]) -> None:
    store = FailingStore(":memory:")
    await store.open()
    bus = MemoryBus()
    rec = Recorder()
    bus.add_listener(rec)
    started = asyncio.Event()

    class Started:
        def handle_publication(self, pub: Publication) -> None:
            if pub.event == "agent" and pub.payload["stream"] == "lifecycle":
                started.set()

    bus.add_listener(Started())
    runs = RunManager(bus, store, lambda: Script([TextDelta("hello"), 0.05]))
    try:
        run = await runs.start("r1", "s", "hi", "test")
        async with asyncio.timeout(10):
            await started.wait()
        store.fail_put_run = True  # the disk fills during the run
        async with asyncio.timeout(10):
            await run.done.wait()
        assert run.status is RunStatus.ERROR and "could not be stored" in (run.error or "")
        chat = [p for e, p in rec.run("r1") if e == "chat"]
        assert chat[-1]["state"] == "error" and "No space left" in chat[-1]["errorMessage"]
    finally:
        await runs.shutdown()
        await store.close()


async def test_the_stored_answer_keeps_its_thinking_and_tool_calls(world: Callable[..., World]) -> None:
    script = Script(
        [
            Thinking("I should "),
            Thinking("use the calculator."),
            ToolCallStart("t1", "calculator", {"expression": "12*7"}),
            ToolCallResult("t1", "calculator", {"value": 84}),
            ToolCallStart("t2", "lookup", {"q": "x"}),
            ToolCallResult("t2", "lookup", "no such thing", is_error=True),
            TextDelta("84"),
        ]
    )
    runs, _, store = await opened(world(script))
    run = await runs.start("b1", "s", "what is 12*7", "test")
    await run.done.wait()
    answer = (await store.history(run.session_key, 10))[-1]
    assert answer.role == "assistant" and answer.text == "84"
    assert answer.meta == {
        "thinking": "I should use the calculator.",
        "tools": [
            {
                "id": "t1",
                "name": "calculator",
                "args": {"expression": "12*7"},
                "result": {"value": 84},
                "isError": False,
            },
            {"id": "t2", "name": "lookup", "args": {"q": "x"}, "result": "no such thing", "isError": True},
        ],
    }
    assert run.blocks is None  # a finished run drops what only its answer needed


async def test_stored_blocks_are_bounded_and_say_what_was_cut(world: Callable[..., World]) -> None:
    script = Script(
        [
            Thinking("t" * 500),
            ToolCallStart("a", "big", {"text": "x" * 50}),
            ToolCallResult("a", "big", "r" * 500),
            ToolCallStart("b", "late", {}),
            ToolCallResult("b", "late", 1),
            TextDelta("done"),
            0.0,
        ]
    )
    runs, _, store = await opened(world(script, transcript_blocks_chars=100))
    run = await runs.start("b2", "s", "go", "test")
    await run.done.wait()
    meta = (await store.history(run.session_key, 10))[-1].meta
    assert meta["thinking"] == "t" * 100 + "…" and meta["thinkingTruncated"] is True
    [big] = meta["tools"]
    assert big["args"] == {"text": "x" * 50} and big["truncated"] is True
    assert isinstance(big["result"], str) and big["result"].startswith('"rrr') and big["result"].endswith("…")
    assert len(big["result"]) <= 100 and meta["toolsOmitted"] == 1

    runs, _, store = await opened(world(script, transcript_blocks_chars=0))
    run = await runs.start("b3", "s", "go", "test")
    await run.done.wait()
    assert (await store.history(run.session_key, 10))[-1].meta == {}


async def test_an_aborted_answer_keeps_its_blocks_with_the_aborted_flag(world: Callable[..., World]) -> None:
    script = Script([Thinking("hm"), ToolCallStart("t", "slow", {}), TextDelta("partial")], hang=True)
    runs, _, store = await opened(world(script))
    answering = asyncio.Event()

    class Watch:
        def handle_publication(self, pub: Publication) -> None:
            if pub.event == "agent" and pub.payload.get("stream") == "assistant":
                answering.set()

    runs.bus.add_listener(Watch())
    run = await runs.start("b4", "s", "go", "test")
    async with asyncio.timeout(10):
        await answering.wait()
    assert await runs.abort("s", "b4") == ["b4"]
    await run.done.wait()
    answer = (await store.history(run.session_key, 10))[-1]
    assert answer.text == "partial"
    assert answer.meta == {"aborted": True, "thinking": "hm", "tools": [{"id": "t", "name": "slow", "args": {}}]}


async def test_finished_runs_are_bounded_in_bytes_not_only_in_count(world: Callable[..., World]) -> None:
    # 100 answers of 256 KiB: 25 MiB if every finished run were kept (the count bound alone, 1000, keeps them all).
    answer = "x" * (256 * 1024)
    runs, _, store = await opened(world(Script([TextDelta(answer[:10]), TextDelta(answer[10:])])))
    for n in range(100):
        run = await runs.start(f"long{n}", f"s{n % 4}", "a long answer please", "test")
        await run.done.wait()
        assert run.text == answer
    held = sum(sys.getsizeof(r.text) + FINISHED_RUN_OVERHEAD for r in runs.finished.values())
    assert held <= runs.finished_runs_bytes == 16 * 1024 * 1024
    assert held == runs.finished_bytes()
    assert 32 <= len(runs.finished) < 100
    # The newest are kept (retries, agent.wait); the oldest went, and are read from the store.
    assert runs.get("long99") is not None and runs.get("long0") is None
    stored = await store.get_run("long0")
    assert stored is not None and stored.status == "ok"


async def test_the_finished_runs_overhead_is_counted_honestly(world: Callable[..., World]) -> None:
    runs, _, _ = await opened(world(Script([TextDelta("an "), TextDelta("answer")])))
    for n in range(20):  # warm up what every run shares (interned names, caches)
        await (await runs.start(f"warm{n}", "s", "hi", "test")).done.wait()
    n_runs = 200
    tracemalloc.start()
    try:
        for n in range(n_runs):
            await (await runs.start(f"r{n}", f"s{n % 8}", "hi", "test")).done.wait()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
        runs.finished.clear()
        gc.collect()
        freed = kept - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_run = freed / n_runs  # the warm-up runs were allocated before tracing: freeing them counts nothing
    assert FINISHED_RUN_OVERHEAD / 2 <= per_run <= FINISHED_RUN_OVERHEAD, per_run
