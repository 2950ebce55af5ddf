"""Agent runs end to end: streaming, abort, idempotency, restarts, observers and replay.

Every test talks to a real gateway subprocess over real sockets (see
``tests/conftest.py``); the demo provider makes the answers deterministic.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..conftest import GatewayProc
from ._util import (
    Client,
    RunLog,
    assert_contiguous,
    assert_cumulative,
    assert_run_numbering,
    collect_run,
    expected_answer,
    shared_gateway,
    start_agent,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    """One default gateway for the tests below (each uses its own sessions and keys)."""
    yield from shared_gateway(tmp_path_factory, "runs")


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    """A gateway whose demo agent takes 50 ms a word: a ``[long]`` answer streams for 10 s."""
    yield from shared_gateway(tmp_path_factory, "slow", {"demo": {"word_delay_ms": 50}})


DROPPABLE_AGENT_STREAMS = ("assistant", "thinking")


def count_events(c: Client, run_id: str, stream: str | None = None) -> int:
    """How many agent/chat events of a run (or agent events of one stream) the client has."""
    return sum(
        1
        for f in c.events
        if f.get("event") in ("agent", "chat")
        and f["payload"].get("runId") == run_id
        and (stream is None or f["payload"].get("stream") == stream)
    )


def user_and_assistant(history: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(m["role"], m["content"][0]["text"], m.get("runId")) for m in history["messages"]]


# -- 1. streaming ----------------------------------------------------------------------


async def test_agent_streams_in_order_with_cumulative_text(shared: GatewayProc) -> None:
    message = "[long] what is 2+2"
    async with Client.open_connected(shared.url) as c:
        before = time.time_ns() // 1_000_000
        rid, accepted = await start_agent(c, message, "stream-1")
        after = time.time_ns() // 1_000_000
        assert set(accepted) == {"runId", "status", "acceptedAt"}
        assert accepted["runId"] == "stream-1"
        assert accepted["status"] == "accepted"
        assert before <= accepted["acceptedAt"] <= after

        run = await collect_run(c, "stream-1", rid)

    payloads = run.payloads
    # "main" is the default agent's main session, agent:main:main, as OpenClaw names it.
    assert all(p["runId"] == "stream-1" and p["sessionKey"] == "agent:main:main" for p in payloads)
    assert all(p["agentId"] == "main" for p in payloads)
    assert_run_numbering(run.frames)  # agent events 1..n, each chat event the seq of its agent event

    agent = run.agent
    kinds = [(p["stream"], p["data"].get("phase")) for p in agent]
    assert kinds[0] == ("lifecycle", "start")
    assert kinds[-1] == ("lifecycle", "end")
    assert [k for k in kinds if k[0] == "lifecycle"] == [("lifecycle", "start"), ("lifecycle", "end")]
    first_thinking = kinds.index(("thinking", None))
    tool_start = kinds.index(("tool", "start"))
    tool_result = kinds.index(("tool", "result"))
    first_assistant = kinds.index(("assistant", None))
    assert 0 < first_thinking < tool_start < tool_result < first_assistant
    assert all(k == ("assistant", None) for k in kinds[first_assistant:-1])
    start, result = agent[tool_start]["data"], agent[tool_result]["data"]
    assert start["name"] == result["name"] == "calculator"
    assert start["args"] == {"expression": "2+2"}
    assert start["toolCallId"] == result["toolCallId"]
    assert result["result"] == 4 and result["isError"] is False
    assert all(isinstance(p["ts"], int) for p in agent)

    text = assert_cumulative(agent)
    assert text.startswith('You said: "[long] what is 2+2". The calculator says 2+2 = 4.')
    assert len(text.split()) == 200

    final = run.terminal
    assert final["state"] == "final" and final["stopReason"] == "stop"
    assert final["message"]["role"] == "assistant"
    assert final["message"]["content"][0]["text"] == text
    # lifecycle end, then chat final, then nothing more of the run
    assert run.frames[-1]["payload"] is final
    assert run.frames[-2]["payload"] is agent[-1]

    # chat deltas: the full text so far plus the new part, at most one per 150 ms
    deltas = [f for f in run.frames if f["event"] == "chat" and f["payload"]["state"] == "delta"]
    assert len(deltas) >= 3, "a 200-word answer at 5 ms a word spans several delta intervals"
    sent = ""
    for frame in deltas:
        p = frame["payload"]
        so_far = p["message"]["content"][0]["text"]
        assert so_far == sent + p["deltaText"] and p["deltaText"]
        # the chat text is exactly the assistant text of the last agent event before it
        i = run.frames.index(frame)
        last_agent = [f for f in run.frames[:i] if f["event"] == "agent" and f["payload"]["stream"] == "assistant"]
        assert so_far == last_agent[-1]["payload"]["data"]["text"]
        sent = so_far
    stamps = [f["payload"]["message"]["timestamp"] for f in deltas]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 140, f"chat deltas closer than the 150 ms interval: {gaps}"
    # in event order: text events always separate two chat deltas (wall-clock-free check)
    positions = [run.frames.index(f) for f in deltas]
    for a, b in itertools.pairwise(positions):
        assert any(f["event"] == "agent" and f["payload"]["stream"] == "assistant" for f in run.frames[a + 1 : b])

    assert run.final is not None
    assert run.final == {
        "runId": "stream-1",
        "status": "ok",
        "summary": text[:500],
        "startedAt": run.final["startedAt"],
        "endedAt": run.final["endedAt"],
        # OpenClaw's CLI prints result.payloads[].text: the whole reply, not the 500-character summary.
        "result": {
            "payloads": [{"text": text, "mediaUrl": None}],
            "meta": {"aborted": False, "durationMs": run.final["endedAt"] - run.final["startedAt"]},
        },
    }
    assert run.final["startedAt"] <= run.final["endedAt"]
    # the final response follows the final chat event
    final_res = next(
        f for f in c.frames if f.get("type") == "res" and f["id"] == rid and f["payload"]["status"] != "accepted"
    )
    assert c.index_of(final_res) > c.index_of(run.frames[-1])
    # a fast client sees every event: the connection seq has no gap
    assert_contiguous(c.event_seqs())


# -- 2. abort ----------------------------------------------------------------------------


async def test_chat_abort_stops_a_running_run(slow: GatewayProc, record_property: Any) -> None:
    message = "[long] tell me a story"
    full = await expected_answer(message)
    async with Client.open_connected(slow.url) as c:
        rid, _ = await start_agent(c, message, "abort-1", session="abort")
        await c.until(lambda f: count_events(c, "abort-1", "assistant") >= 3)
        abort = await c.call("chat.abort", {"sessionKey": "abort"})
        aborted_at = time.monotonic()
        assert abort["payload"] == {"ok": True, "aborted": True, "runIds": ["abort-1"]}
        run = await collect_run(c, "abort-1", rid)
        end = run.terminal
        latency = c.time_of(run.frames[-1]) - aborted_at
        record_property("abort_to_aborted_event_ms", round(latency * 1000, 1))
        print(f"abort -> chat aborted: {latency * 1000:.1f} ms")
        assert latency < 1.0

        assert end["state"] == "aborted" and end["stopReason"] == "aborted"
        partial = end["message"]["content"][0]["text"]
        assert partial and full.startswith(partial) and len(partial) < len(full)
        assert partial == assert_cumulative(run.agent)
        end_data = run.agent[-1]["data"]
        assert end_data == {
            "phase": "end",
            "startedAt": end_data["startedAt"],
            "endedAt": end_data["endedAt"],
            "stopReason": "aborted",
            "aborted": True,
        }
        assert end_data["startedAt"] <= end_data["endedAt"]
        assert run.final is not None and run.final["status"] == "aborted"
        assert run.final["summary"] == partial[:500]

        # nothing more arrives for the run, and a second abort finds nothing to abort
        again = await c.call("chat.abort", {"sessionKey": "abort"})
        assert again["payload"] == {"ok": True, "aborted": False, "runIds": []}
        history = await c.ok("chat.history", {"sessionKey": "abort"})
        assert user_and_assistant(history) == [("user", message, "abort-1"), ("assistant", partial, "abort-1")]
        assert history["messages"][1]["meta"] == {
            "aborted": True,
            "thinking": "Reading the message. No tool is needed, so I will answer directly.",
        }  # the turn's thinking is kept
        waited = await c.ok("agent.wait", {"runId": "abort-1", "timeoutMs": 1000})
        assert waited["status"] == "aborted"
        assert len(run.agent) == len(
            [f for f in c.events if f.get("event") == "agent" and f["payload"]["runId"] == "abort-1"]
        )


async def test_stop_command_aborts_the_running_run(slow: GatewayProc) -> None:
    async with Client.open_connected(slow.url) as c:
        started = await c.ok("chat.send", {"sessionKey": "s", "message": "[long] go on", "idempotencyKey": "long-1"})
        assert started == {"runId": "long-1", "status": "started"}
        await c.until(
            lambda f: (
                f.get("event") == "agent"
                and f["payload"]["runId"] == "long-1"
                and f["payload"]["stream"] == "assistant"
            )
        )
        stop = await c.ok("chat.send", {"sessionKey": "s", "message": " /stop ", "idempotencyKey": "stop-1"})
        assert stop == {"runId": "stop-1", "status": "started"}
        long_run = await collect_run(c, "long-1")
        stop_run = await collect_run(c, "stop-1")
    assert long_run.terminal["state"] == "aborted"
    assert 0 < len(long_run.terminal["message"]["content"][0]["text"]) < len(await expected_answer("[long] go on"))
    assert stop_run.terminal["state"] == "final"
    assert stop_run.terminal["message"]["content"][0]["text"] == "Stopped 1 run(s)."
    assert [p["stream"] for p in stop_run.agent] == ["lifecycle", "assistant", "lifecycle"]
    assert_run_numbering(stop_run.frames)


# -- 3. idempotency ----------------------------------------------------------------------


def final_responses(c: Client, rid: str) -> list[dict[str, Any]]:
    return [f for f in c.frames if f.get("type") == "res" and f.get("id") == rid]


async def test_agent_retry_with_same_key_runs_once(shared: GatewayProc) -> None:
    message = "[long] count the words"
    async with Client.open_connected(shared.url) as c:
        rid1, first = await start_agent(c, message, "idem-1", session="idem")
        await asyncio.sleep(0.002)  # the retry's accept time would differ if it were a new accept
        rid2, second = await start_agent(c, message, "idem-1", session="idem")  # while the first runs
        assert second == first
        run = await collect_run(c, "idem-1", rid1)
        retry_final = (await c.response(rid2))["payload"]
        assert run.final is not None and run.final["status"] == "ok"
        assert retry_final == run.final

        rid3 = await c.request("agent", {"message": message, "idempotencyKey": "idem-1", "sessionKey": "idem"})
        third = await c.response(rid3)
        third_final = await c.response(rid3)
        assert third["payload"] == first, "the first response to a retry is the original accept"
        assert third_final["payload"] == run.final
        for rid in (rid1, rid2, rid3):
            responses = final_responses(c, rid)
            assert [r["payload"]["status"] for r in responses] == ["accepted", "ok"], rid

        history = await c.ok("chat.history", {"sessionKey": "idem"})
    assert run.lifecycle_starts() == 1
    starts = [
        f
        for f in c.events
        if f.get("event") == "agent"
        and f["payload"]["stream"] == "lifecycle"
        and f["payload"]["data"]["phase"] == "start"
        and f["payload"]["runId"] == "idem-1"
    ]
    assert len(starts) == 1
    assert [m[0] for m in user_and_assistant(history)] == ["user", "assistant"]


async def test_chat_send_retry_with_same_key_runs_once(shared: GatewayProc) -> None:
    params = {"sessionKey": "cs", "message": "[long] hello", "idempotencyKey": "cs-1"}
    async with Client.open_connected(shared.url) as c:
        assert await c.ok("chat.send", params) == {"runId": "cs-1", "status": "started"}
        assert await c.ok("chat.send", params) == {"runId": "cs-1", "status": "in_flight"}
        run = await collect_run(c, "cs-1")
        assert run.terminal["state"] == "final"
        assert await c.ok("chat.send", params) == {"runId": "cs-1", "status": "ok"}
        await asyncio.sleep(0.1)
        history = await c.ok("chat.history", {"sessionKey": "cs"})
        starts = [
            f
            for f in c.events
            if f["payload"].get("runId") == "cs-1"
            and f["payload"].get("stream") == "lifecycle"
            and f["payload"]["data"]["phase"] == "start"
        ]
    assert len(starts) == 1
    assert [m[:2] for m in user_and_assistant(history)] == [("user", "[long] hello"), ("assistant", run.text)]


async def test_idempotency_survives_restart(shared: GatewayProc) -> None:
    agent_params = {"message": "what is 3*5", "idempotencyKey": "restart-a", "sessionKey": "ra"}
    chat_params = {"sessionKey": "rs", "message": "hi there", "idempotencyKey": "restart-c"}
    async with Client.open_connected(shared.url) as c:
        rid, accepted = await start_agent(c, agent_params["message"], "restart-a", session="ra")
        run = await collect_run(c, "restart-a", rid)
        assert await c.ok("chat.send", chat_params) == {"runId": "restart-c", "status": "started"}
        await collect_run(c, "restart-c")
        ra_before = await c.ok("chat.history", {"sessionKey": "ra"})
        rs_before = await c.ok("chat.history", {"sessionKey": "rs"})

    shared.restart()

    async with Client.open_connected(shared.url) as c:
        rid = await c.request("agent", agent_params)
        first = await c.response(rid)
        final = await c.response(rid)
        assert first["payload"] == accepted
        assert run.final is not None
        assert final["payload"] == {
            "runId": "restart-a",
            "status": "ok",
            "summary": run.final["summary"],
            # OpenClaw's final: the whole reply, read back from the stored transcript after the restart.
            "result": run.final["result"],
        }
        # the stored outcome, as for agent: "started" would leave the client waiting for events
        assert await c.ok("chat.send", chat_params) == {"runId": "restart-c", "status": "ok"}
        await asyncio.sleep(0.3)  # a wrongly started run would have published by now
        assert [f for f in c.events if f.get("event") in ("agent", "chat")] == []
        assert await c.ok("chat.history", {"sessionKey": "ra"}) == ra_before
        assert await c.ok("chat.history", {"sessionKey": "rs"}) == rs_before


# -- 4. restart and crash ---------------------------------------------------------------


async def test_restart_keeps_history(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        for i, message in enumerate(["hello there", "what is 6*7"]):
            rid, _ = await start_agent(c, message, f"turn-{i}", session="keep")
            await collect_run(c, f"turn-{i}", rid)
        before = await c.ok("chat.history", {"sessionKey": "keep"})
        sessions_before = await c.ok("sessions.list")
    assert [m[:2] for m in user_and_assistant(before)][0::2] == [("user", "hello there"), ("user", "what is 6*7")]
    assert len(before["messages"]) == 4
    assert "6*7 = 42" in before["messages"][3]["content"][0]["text"]

    shared.restart()

    async with Client.open_connected(shared.url) as c:
        assert await c.ok("chat.history", {"sessionKey": "keep"}) == before
        after = await c.ok("sessions.list")
        assert {**after, "ts": 0} == {**sessions_before, "ts": 0}  # ts: when the list was read
        waited = await c.ok("agent.wait", {"runId": "turn-1", "timeoutMs": 100})
        assert waited["status"] == "ok" and "6*7 = 42" in waited["summary"]


async def test_crash_mid_run_leaves_run_in_error(slow: GatewayProc) -> None:
    gw = slow
    async with Client.open_connected(gw.url) as c:
        await start_agent(c, "[long] crash me", "crash-1", session="crash")
        await c.until(lambda f: f.get("event") == "agent" and f["payload"]["stream"] == "assistant")
        stored = (await c.ok("status"))["runs"]["stored"]
        assert stored["running"] == 1
        port = gw.port
        gw.kill()
        assert (await c.closed())[0] in (None, 1006)
    gw.start(port)
    async with Client.open_connected(gw.url) as c:
        waited = await c.ok("agent.wait", {"runId": "crash-1", "timeoutMs": 100})
        assert waited["runId"] == "crash-1"
        assert waited["status"] == "error"
        assert waited["error"] == "gateway restarted while the run was active"
        status = await c.ok("status")
        expected = {**stored, "error": stored.get("error", 0) + 1}
        del expected["running"]
        assert status["runs"]["stored"] == expected
        assert status["runs"]["active"] == []
        history = await c.ok("chat.history", {"sessionKey": "crash"})
        assert user_and_assistant(history) == [("user", "[long] crash me", "crash-1")]
        unknown = await c.call("agent.wait", {"runId": "never-ran", "timeoutMs": 10})
        assert unknown["ok"] is False and unknown["error"]["details"]["reason"].endswith("_NOT_FOUND")


async def test_crash_keeps_a_message_acknowledged_behind_a_running_turn(slow: GatewayProc) -> None:
    """The second message waits for the session's running turn; a SIGKILL then must not lose it."""
    gw = slow
    async with Client.open_connected(gw.url) as c:
        await start_agent(c, "[long] first, still answering", "queued-1", session="queued-crash")
        await c.until(lambda f: f.get("event") == "agent" and f["payload"]["stream"] == "assistant")
        params = {"sessionKey": "queued-crash", "message": "second, acknowledged", "idempotencyKey": "queued-2"}
        assert await c.ok("chat.send", params) == {"runId": "queued-2", "status": "started"}
        port = gw.port
        gw.kill()
        assert (await c.closed())[0] in (None, 1006)
    gw.start(port)
    async with Client.open_connected(gw.url) as c:
        history = await c.ok("chat.history", {"sessionKey": "queued-crash"})
        assert user_and_assistant(history) == [
            ("user", "[long] first, still answering", "queued-1"),
            ("user", "second, acknowledged", "queued-2"),
        ]
        for run_id in ("queued-1", "queued-2"):
            waited = await c.ok("agent.wait", {"runId": run_id, "timeoutMs": 100})
            assert (waited["status"], waited["error"]) == ("error", "gateway restarted while the run was active")
        retried = await c.ok("chat.send", params)  # the retry reports the stored outcome, and adds nothing
        assert retried["status"] == "error"
        again = await c.ok("chat.history", {"sessionKey": "queued-crash"})
        assert user_and_assistant(again) == user_and_assistant(history)


async def test_graceful_stop_mid_run_fails_the_run_and_tells_clients(slow: GatewayProc) -> None:
    gw = slow
    async with Client.open_connected(gw.url) as c:
        rid, _ = await start_agent(c, "[long] stop me", "stopped-1", session="graceful")
        await c.until(lambda f: f.get("event") == "agent" and f["payload"]["stream"] == "assistant")
        queued = {"sessionKey": "graceful", "message": "waiting my turn", "idempotencyKey": "stopped-2"}
        assert (await c.ok("chat.send", queued))["status"] == "started"
        port = gw.port
        loop = asyncio.get_running_loop()
        stopping = loop.run_in_executor(None, gw.stop)
        run = await collect_run(c, "stopped-1", rid)
        code, reason = await c.closed()
        assert await stopping == 0
    assert any(f.get("event") == "shutdown" for f in c.events)
    assert run.terminal == {
        "runId": "stopped-1",
        "sessionKey": "agent:main:graceful",
        "agentId": "main",
        "state": "error",
        "errorMessage": "gateway stopped during the run",
        "seq": run.terminal["seq"],
    }
    assert run.final is not None and run.final["status"] == "error"
    assert (code, reason) == (1012, "gateway restarting")
    gw.start(port)
    async with Client.open_connected(gw.url) as c:
        waited = await c.ok("agent.wait", {"runId": "stopped-1", "timeoutMs": 100})
        queued_outcome = await c.ok("agent.wait", {"runId": "stopped-2", "timeoutMs": 100})
        history = await c.ok("chat.history", {"sessionKey": "graceful"})
    assert waited["status"] == "error" and waited["error"] == "gateway stopped during the run"
    assert queued_outcome["status"] == "error"
    # The message acknowledged behind the running turn is kept, though its turn never came.
    assert [(role, text, run_id) for role, text, run_id in user_and_assistant(history) if role == "user"] == [
        ("user", "[long] stop me", "stopped-1"),
        ("user", "waiting my turn", "stopped-2"),
    ]


# -- 5. observers ------------------------------------------------------------------------


async def test_every_client_observes_every_run(shared: GatewayProc) -> None:
    async with (
        Client.open_connected(shared.url) as a,
        Client.open_connected(shared.url) as b,
        Client.open_connected(shared.url) as runner,
    ):
        rid, _ = await start_agent(runner, "what is 12*12", "observed-1", session="obs")
        logs = await asyncio.gather(
            collect_run(a, "observed-1"), collect_run(b, "observed-1"), collect_run(runner, "observed-1", rid)
        )
    ref: RunLog = logs[2]
    assert ref.terminal["state"] == "final"
    assert "12*12 = 144" in ref.text
    assert_run_numbering(ref.frames)
    for log in logs[:2]:
        assert [f["event"] for f in log.frames] == [f["event"] for f in ref.frames]
        assert log.payloads == ref.payloads
    for client in (a, b, runner):
        assert_contiguous(client.event_seqs())


# -- 6. replay ---------------------------------------------------------------------------


async def test_replay_after_reconnect_fills_the_gap_exactly(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway(config={"demo": {"word_delay_ms": 15}})
    message = "[long] replay this"
    full = await expected_answer(message)
    async with Client.open_connected(gw.url) as first:
        await start_agent(first, message, "replay-1")
        await first.until(lambda f: count_events(first, "replay-1") >= 12)
        seen = [f for f in first.events if f.get("event") in ("agent", "chat") and f["payload"]["runId"] == "replay-1"]
    assert_run_numbering(seen)
    after = max(f["payload"]["seq"] for f in seen if f["event"] == "agent")
    text_before = assert_cumulative([f["payload"] for f in seen if f["event"] == "agent"])
    await asyncio.sleep(0.2)  # events are published while nobody of ours listens

    async with Client.open_connected(gw.url) as second:
        replay = await second.ok("agent.replay", {"runId": "replay-1", "afterSeq": after})
        assert replay["runId"] == "replay-1" and replay["done"] is False
        assert isinstance(replay["epoch"], str) and replay["epoch"]
        missed = [{"event": e["event"], "payload": e["payload"]} for e in replay["events"]]
        assert len(missed) >= 5, "the sleep must have left events to replay"
        # after agent event N: the chat event derived from N (if any), then agent N+1.. up to lastSeq
        assert [m["payload"]["seq"] for m in missed if m["event"] == "agent"] == list(
            range(after + 1, replay["lastSeq"] + 1)
        )
        assert all(m["payload"]["seq"] >= after for m in missed)
        run = await collect_run(second, "replay-1")
        # events published while the replay was answered arrive live too, identical to the replayed ones
        missed_keys = {(m["event"], m["payload"]["seq"]) for m in missed}
        dup = [f for f in run.frames if (f["event"], f["payload"]["seq"]) in missed_keys]
        assert all({"event": f["event"], "payload": f["payload"]} in missed for f in dup)
        live = [f for f in run.frames if (f["event"], f["payload"]["seq"]) not in missed_keys]

        # what the first client saw, the missed events without what it already had, then the live ones
        seen_keys = {(f["event"], f["payload"]["seq"]) for f in seen}
        fresh = [m for m in missed if (m["event"], m["payload"]["seq"]) not in seen_keys]
        combined = [{"event": f["event"], "payload": f["payload"]} for f in seen] + fresh
        combined += [{"event": f["event"], "payload": f["payload"]} for f in live]
        keys = [(f["event"], f["payload"]["seq"]) for f in combined]
        assert len(keys) == len(set(keys)), "each event exactly once"
        assert_run_numbering(combined)
        text = assert_cumulative([f["payload"] for f in combined if f["event"] == "agent"])
        assert text.startswith(text_before)
        assert text == full == combined[-1]["payload"]["message"]["content"][0]["text"]

        wrong_epoch = await second.call("agent.replay", {"runId": "replay-1", "afterSeq": 0, "epoch": "nope"})
        assert wrong_epoch["error"]["details"] == {"code": "REPLAY_GAP", "reason": "REPLAY_GAP", "runId": "replay-1"}
        assert "epoch changed" in wrong_epoch["error"]["message"]
        last = combined[-1]["payload"]["seq"]
        assert combined[-1]["event"] == "chat" and combined[-2]["payload"]["seq"] == last
        # after the last agent event: only the final chat event derived from it
        tail = await second.ok("agent.replay", {"runId": "replay-1", "afterSeq": last, "epoch": replay["epoch"]})
        assert tail == {
            "runId": "replay-1",
            "epoch": replay["epoch"],
            "lastSeq": last,
            "done": True,
            "events": [combined[-1]],
        }
        # the whole run again: the cumulative texts rebuilt from the deltas the history keeps
        whole = await second.ok("agent.replay", {"runId": "replay-1", "afterSeq": 0})
        assert whole["events"] == combined


async def test_replay_after_a_chat_event_returns_it_once_more(shared: GatewayProc) -> None:
    """A client that saw agent event N and the chat event derived from N, asking after N, gets that chat event again."""
    async with Client.open_connected(shared.url) as c:
        rid, _ = await start_agent(c, "hello replay chat", "replay-chat-1", session="replay-chat")
        run = await collect_run(c, "replay-chat-1", rid)
        chats = [f for f in run.frames if f["event"] == "chat"]
        assert len(chats) >= 2, "a delta and the final"
        for chat in chats:
            n = chat["payload"]["seq"]
            replay = await c.ok("agent.replay", {"runId": "replay-chat-1", "afterSeq": n})
            i = run.frames.index(chat)
            # the chat event derived from N, then everything after it; never agent event N itself
            assert replay["events"] == [{"event": f["event"], "payload": f["payload"]} for f in run.frames[i:]]


async def test_replay_gap_for_unknown_run_and_expired_events(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway(config={"limits": {"history_per_stream": 10}})
    async with Client.open_connected(gw.url) as c:
        unknown = await c.call("agent.replay", {"runId": "no-such-run", "afterSeq": 0})
        assert unknown["ok"] is False
        assert unknown["error"]["code"] == "INVALID_REQUEST"
        assert unknown["error"]["details"] == {"code": "REPLAY_GAP", "reason": "REPLAY_GAP", "runId": "no-such-run"}

        rid, _ = await start_agent(c, "hello replay", "short-1")
        run = await collect_run(c, "short-1", rid)
        assert run.agent[-1]["seq"] > 20
        retained = run.frames[-10:]  # the history keeps the newest 10 events
        first_agent = next(i for i, f in enumerate(retained) if f["event"] == "agent")
        after = retained[first_agent]["payload"]["seq"]
        kept = await c.ok("agent.replay", {"runId": "short-1", "afterSeq": after})
        assert [e["payload"] for e in kept["events"]] == [f["payload"] for f in retained[first_agent + 1 :]]
        for gone_after in (0, after - 2):
            gone = await c.call("agent.replay", {"runId": "short-1", "afterSeq": gone_after})
            assert gone["ok"] is False, gone_after
            assert gone["error"]["details"] == {"code": "REPLAY_GAP", "reason": "REPLAY_GAP", "runId": "short-1"}
            assert "left retained history" in gone["error"]["message"]


async def test_concurrent_retries_on_two_connections_run_once(shared: GatewayProc) -> None:
    """A client retrying on a new socket while the first request is still being accepted."""
    params = {"message": "hello twice", "idempotencyKey": "race-1", "sessionKey": "race"}
    async with Client.open_connected(shared.url) as a, Client.open_connected(shared.url) as b:
        rid_a, rid_b = await asyncio.gather(a.request("agent", params), b.request("agent", params))
        first_a, first_b = await asyncio.gather(a.response(rid_a), b.response(rid_b))
        assert first_a["payload"] == first_b["payload"]
        assert first_a["payload"]["status"] == "accepted"
        run_a, run_b = await asyncio.gather(collect_run(a, "race-1", rid_a), collect_run(b, "race-1", rid_b))
        assert run_a.final == run_b.final and run_a.final is not None and run_a.final["status"] == "ok"
        assert run_a.lifecycle_starts() == 1 and run_b.lifecycle_starts() == 1
        assert run_a.payloads == run_b.payloads
        history = await a.ok("chat.history", {"sessionKey": "race"})
    assert [m[0] for m in user_and_assistant(history)] == ["user", "assistant"]


async def test_chat_send_key_is_not_spent_on_a_refusal_and_retries_report_the_outcome(slow: GatewayProc) -> None:
    async with Client.open_connected(slow.url) as c:
        empty = await c.call("chat.send", {"sessionKey": "outcome", "message": "  ", "idempotencyKey": "out-1"})
        assert empty["ok"] is False and empty["error"]["code"] == "INVALID_REQUEST"
        assert "message" in empty["error"]["message"]
        # The refused request did not burn the key: the same key now starts a run.
        sent = await c.ok("chat.send", {"sessionKey": "outcome", "message": "[long] go", "idempotencyKey": "out-1"})
        assert sent == {"runId": "out-1", "status": "started"}
        await c.until(lambda f: count_events(c, "out-1", "assistant") >= 2)
        await c.ok("chat.abort", {"sessionKey": "outcome"})
        await c.until(
            lambda f: (
                f.get("event") == "chat" and f["payload"]["runId"] == "out-1" and f["payload"]["state"] == "aborted"
            )
        )
        retry = await c.ok("chat.send", {"sessionKey": "outcome", "message": "[long] go", "idempotencyKey": "out-1"})
        assert retry == {"runId": "out-1", "status": "aborted"}


# -- 7. ordering: the res that acknowledges a request comes before the events it causes ---------


@pytest.mark.parametrize("command", ["/status", "/help", "/context list", "/stop", "/reset", "hello"])
async def test_chat_send_answers_before_its_run_publishes(shared: GatewayProc, command: str) -> None:
    key = f"order-{command.strip('/').replace(' ', '-')}"
    async with Client.open_connected(shared.url) as c:
        rid = await c.request("chat.send", {"sessionKey": f"order-{key}", "message": command, "idempotencyKey": key})
        res = await c.response(rid)
        assert res["ok"], res
        run = await collect_run(c, key)
    first_event = c.index_of(run.frames[0])
    assert c.index_of(res) < first_event, "an event of the run came before the res that acknowledges it"
    assert run.agent[0]["data"]["phase"] == "start"
    assert_run_numbering(run.frames)


async def test_agent_and_send_answer_before_their_events(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        rid = await c.request("agent", {"message": "what is 1+1", "idempotencyKey": "order-agent", "sessionKey": "oa"})
        accepted = await c.response(rid)
        run = await collect_run(c, "order-agent", rid)
        assert c.index_of(accepted) < c.index_of(run.frames[0])
        rid = await c.request("send", {"message": "posted", "idempotencyKey": "order-send", "sessionKey": "os"})
        sent = await c.response(rid)
        posted = await collect_run(c, "order-send")
        assert c.index_of(sent) < c.index_of(posted.frames[0])
        assert posted.terminal["message"]["content"][0]["text"] == "posted"


# -- 8. retries after a crash report the stored outcome --------------------------------------


async def test_chat_send_retried_after_a_crash_reports_the_stored_error(slow: GatewayProc) -> None:
    params = {"sessionKey": "crash-retry", "message": "[long] crash during me", "idempotencyKey": "crash-chat-1"}
    async with Client.open_connected(slow.url) as c:
        assert await c.ok("chat.send", params) == {"runId": "crash-chat-1", "status": "started"}
        await c.until(lambda f: f.get("event") == "agent" and f["payload"]["stream"] == "assistant")
        port = slow.port
        slow.kill()
    slow.start(port)
    async with Client.open_connected(slow.url) as c:
        # "started" would promise events that will never come
        assert await c.ok("chat.send", params) == {"runId": "crash-chat-1", "status": "error"}
        waited = await c.ok("agent.wait", {"runId": "crash-chat-1", "timeoutMs": 100})
        assert waited["status"] == "error" and waited["error"] == "gateway restarted while the run was active"
        # a slash command's answer is stored too: its retry reports "ok", not "started"
        status = {"sessionKey": "crash-retry", "message": "/status", "idempotencyKey": "crash-status-1"}
        assert await c.ok("chat.send", status) == {"runId": "crash-status-1", "status": "started"}
        await collect_run(c, "crash-status-1")
    slow.restart()
    async with Client.open_connected(slow.url) as c:
        assert await c.ok("chat.send", status) == {"runId": "crash-status-1", "status": "ok"}


# -- 9. the caller's run timeout -------------------------------------------------------------


async def test_agent_timeout_ends_the_run_as_timed_out_and_keeps_the_partial_text(slow: GatewayProc) -> None:
    async with Client.open_connected(slow.url) as c:
        rid = await c.request(
            "agent", {"message": "[long] take your time", "idempotencyKey": "to-1", "sessionKey": "to", "timeout": 1}
        )
        assert (await c.response(rid))["payload"]["status"] == "accepted"
        run = await collect_run(c, "to-1", rid)
        waited = await c.ok("agent.wait", {"runId": "to-1", "timeoutMs": 100})
        history = await c.ok("chat.history", {"sessionKey": "to"})
    partial = run.text
    assert partial and len(partial.split()) < 200, "a [long] answer takes 10 s here: the run must stop at 1 s"
    assert run.agent[-1]["data"] == {
        "phase": "error",
        "endedAt": run.agent[-1]["data"]["endedAt"],
        "error": "run timed out after 1s",
        "stopReason": "timeout",
    }
    end = run.terminal
    assert end["state"] == "error" and end["errorKind"] == "timeout" and end["stopReason"] == "timeout"
    assert end["errorMessage"] == "run timed out after 1s"
    assert end["message"]["content"][0]["text"] == partial
    assert_run_numbering(run.frames)
    final = run.final
    assert final is not None
    assert final["status"] == "timeout" and final["stopReason"] == "timeout"
    assert final["error"] == "run timed out after 1s" and final["summary"] == partial[:500]
    assert waited["status"] == "timeout" and "endedAt" in waited  # terminal, unlike an expired wait
    assert user_and_assistant(history) == [("user", "[long] take your time", "to-1"), ("assistant", partial, "to-1")]
    meta = history["messages"][1]["meta"]  # "take your time" has the demo check the clock first
    assert meta["timedOut"] is True and meta["thinking"].startswith("Reading the message.")
    assert [t["name"] for t in meta["tools"]] == ["clock"]


async def test_chat_send_timeout_ms_ends_the_run_and_the_stored_outcome_is_timeout(slow: GatewayProc) -> None:
    params = {"sessionKey": "to-chat", "message": "[long] slowly", "idempotencyKey": "to-2", "timeoutMs": 700}
    async with Client.open_connected(slow.url) as c:
        assert await c.ok("chat.send", params) == {"runId": "to-2", "status": "started"}
        run = await collect_run(c, "to-2")
        assert run.terminal["state"] == "error" and run.terminal["errorKind"] == "timeout"
        assert run.terminal["errorMessage"] == "run timed out after 0.7s"
        assert await c.ok("chat.send", params) == {"runId": "to-2", "status": "timeout"}
        # without a limit of its own a run is bounded by limits.run_timeout_s only: it completes
        free = {"sessionKey": "to-chat", "message": "what is 2+3", "idempotencyKey": "to-3", "timeoutMs": 0}
        await c.ok("chat.send", free)
        assert (await collect_run(c, "to-3")).terminal["state"] == "final"
    slow.restart()
    async with Client.open_connected(slow.url) as c:
        assert await c.ok("chat.send", params) == {"runId": "to-2", "status": "timeout"}
        stored = await c.ok("agent.wait", {"runId": "to-2", "timeoutMs": 100})
        assert stored["status"] == "timeout" and stored["stopReason"] == "timeout"


# -- 10. the replay history is bounded in bytes ------------------------------------------------


async def _metric(gw: GatewayProc, name: str) -> float:
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{gw.http}/metrics")).text
    m = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


async def test_history_stays_within_its_byte_bounds_and_replays_cumulative_text(make_gateway: Any) -> None:
    per_stream, total = 128 * 1024, 512 * 1024
    gw: GatewayProc = make_gateway(
        config={
            "demo": {"word_delay_ms": 0},
            "limits": {"history_bytes_per_stream": per_stream, "history_bytes_total": total},
        }
    )
    word = "w" * 2_000  # the answer quotes it, and every later event of the run repeats the text so far
    async with Client.open_connected(gw.url) as c:
        logs = []
        for i in range(12):
            rid, _ = await start_agent(c, f"[long] {word}", f"big-{i}", session=f"big-{i}")
            logs.append(await collect_run(c, f"big-{i}", rid))
            held = await _metric(gw, "agenthub_bus_history_bytes")
            assert held <= total, f"after {i + 1} runs the history holds {held} bytes"
            if i == 0:  # deltas, not the text so far: far less than what was published
                published = sum(len(json.dumps(f["payload"])) for f in logs[0].frames)
                assert held < published / 4, (held, published)
        assert await _metric(gw, "agenthub_bus_evicted_streams_total") > 0
        # the newest run is retained whole: its replay is exactly what was published
        last = logs[-1]
        whole = await c.ok("agent.replay", {"runId": "big-11", "afterSeq": 0})
        assert [{"event": e["event"], "payload": e["payload"]} for e in whole["events"]] == [
            {"event": f["event"], "payload": f["payload"]} for f in last.frames
        ]
        assert assert_cumulative([e["payload"] for e in whole["events"] if e["event"] == "agent"]) == last.text
        # the oldest is gone, and says so
        gone = await c.call("agent.replay", {"runId": "big-0", "afterSeq": 0})
        assert gone["error"]["details"] == {"code": "REPLAY_GAP", "reason": "REPLAY_GAP", "runId": "big-0"}
