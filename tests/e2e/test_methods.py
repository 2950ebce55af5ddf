"""The gateway API method by method, end to end: scopes, sessions, config, slash commands, HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agenthub import __version__
from agenthub.core.api import DEFAULT_SESSION, HELP_TEXT

from ..conftest import GatewayProc, connect_params
from ._util import (
    TERMINAL_CHAT,
    Client,
    assert_contiguous,
    assert_run_numbering,
    collect_run,
    expected_answer,
    shared_gateway,
    start_agent,
)

pytestmark = pytest.mark.timeout(60)

READ, WRITE, ADMIN = "operator.read", "operator.write", "operator.admin"
# OpenClaw's closed set of operator scopes; admin implies all of them.
SCOPES = (
    ADMIN,
    "operator.approvals",
    "operator.pairing",
    "operator.questions",
    READ,
    "operator.sessions.read",
    "operator.sessions.write",
    "operator.talk",
    "operator.talk.secrets",
    WRITE,
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    """One default gateway for the tests below (each uses its own sessions and keys)."""
    yield from shared_gateway(tmp_path_factory, "methods")


def history_texts(history: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"][0]["text"]) for m in history["messages"]]


def assert_error(res: dict[str, Any], code: str, message: str | None = None, **details: Any) -> dict[str, Any]:
    assert res["type"] == "res" and res["ok"] is False, res
    err: dict[str, Any] = res["error"]
    assert err["code"] == code, err
    if message is not None:
        assert message in err["message"], err
    for key, value in details.items():
        assert err["details"][key] == value, err
    return err


# -- scopes --------------------------------------------------------------------------------


async def test_scopes_default_and_enforced(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url, scopes=[]) as c:
        assert c.hello["auth"] == {"role": "operator", "scopes": [READ, WRITE]}
        assert (await c.ok("health"))["ok"] is True
        sent = await c.ok("chat.send", {"sessionKey": "sc", "message": "hi", "idempotencyKey": "sc-1"})
        assert sent == {"runId": "sc-1", "status": "started"}
        await collect_run(c, "sc-1")
        assert_error(
            await c.call("sessions.reset", {"key": "sc"}),
            "FORBIDDEN",
            "missing scope: operator.admin",
            missingScope=ADMIN,
        )
        assert_error(await c.call("config.patch", {"patch": {}}), "FORBIDDEN", missingScope=ADMIN)

    async with Client.open_connected(shared.url, scopes=[READ]) as c:
        assert c.hello["auth"]["scopes"] == [READ]
        health = await c.ok("health")
        assert health["ok"] is True and health["provider"] == "demo"
        assert (await c.ok("status"))["version"] == __version__
        assert len(history_texts(await c.ok("chat.history", {"sessionKey": "sc"}))) == 2
        for method, params in (
            ("chat.send", {"sessionKey": "sc", "message": "hi", "idempotencyKey": "sc-2"}),
            ("agent", {"message": "hi", "idempotencyKey": "sc-3"}),
            ("chat.abort", {"sessionKey": "sc"}),
        ):
            assert_error(await c.call(method, params), "FORBIDDEN", "missing scope: operator.write", missingScope=WRITE)
        assert_error(await c.call("sessions.reset", {"key": "sc"}), "FORBIDDEN", missingScope=ADMIN)

    async with Client.open_connected(shared.url, scopes=[ADMIN]) as c:
        assert c.hello["auth"]["scopes"] == sorted(SCOPES)
        assert (await c.ok("sessions.reset", {"key": "sc"}))["ok"] is True


# -- health, status, presence ----------------------------------------------------------------


async def test_health_status_and_presence(gateway: GatewayProc) -> None:
    alpha = connect_params()["client"] | {"id": "alpha", "displayName": "Alpha"}
    beta = connect_params()["client"] | {"id": "beta", "instanceId": "beta-1"}
    async with (
        Client.open_connected(gateway.url, client=alpha) as a,
        Client.open_connected(gateway.url, client=beta, scopes=[READ]) as b,
    ):
        health = await a.ok("health")
        assert health["ok"] is True and health["connections"] == 2 and health["defaultAgentId"] == "main"
        assert isinstance(health["ts"], int) and health["heartbeatSeconds"] == 15

        rid, _ = await start_agent(a, "what is 1+1", "st-1", session="st")
        run = await collect_run(a, "st-1", rid)
        status = await b.ok("status")
        assert status["version"] == __version__ and status["provider"] == "demo"
        assert status["connections"] == 2 and status["uptimeMs"] >= 0
        assert status["runs"]["active"] == []
        assert status["runs"]["totals"]["ok"] == 1 and status["runs"]["totals"]["queued"] == 1
        # The outcome is stored before the final event and response go out (core/runs.py ``_end``).
        assert status["runs"]["stored"] == {"ok": 1}, status["runs"]["stored"]
        assert run.final is not None and run.final["status"] == "ok"

        presence = await b.ok("system-presence")
        by_host = {p["host"]: p for p in presence}
        assert set(by_host) == {"Alpha", "beta"}
        assert by_host["Alpha"]["scopes"] == sorted(SCOPES)
        assert by_host["beta"]["scopes"] == [READ]
        assert by_host["beta"]["instanceId"] == "beta-1"
        assert by_host["Alpha"]["instanceId"] != "beta-1"
        for entry in presence:
            assert entry["ip"] == "127.0.0.1" and entry["roles"] == ["operator"] and entry["mode"] == "test"


async def test_run_outcome_is_stored_before_the_final_event_is_published(gateway: GatewayProc) -> None:
    """Record before publish, made to show: while another process holds SQLite's write lock the run
    cannot store its outcome, so no terminal event may reach a client until the lock is released.

    A client that reacts to ``chat`` final (``status``, ``chat.history``, a restart) must find the
    outcome stored. Publishing first and storing after passes most of the time without the lock, since
    the write takes a millisecond; with the lock it fails every time.
    """
    message = "tell me about the weather"
    answer = await expected_answer(message)
    async with Client.open_connected(gateway.url) as c:
        rid, _ = await start_agent(c, message, "rbp-1", session="rbp")
        # The run is stored as running before lifecycle start, and streams without writing until it ends.
        await c.until(lambda f: f.get("event") == "agent" and f["payload"]["stream"] == "lifecycle")
        db = sqlite3.connect(gateway.data_dir / "agenthub.db", isolation_level=None, timeout=10)
        try:
            db.execute("BEGIN IMMEDIATE")  # the write lock (WAL: readers go on)
            deltas: list[str] = []

            def whole_answer(f: dict[str, Any]) -> bool:
                p = f.get("payload") or {}
                if f.get("event") == "agent" and p.get("runId") == "rbp-1" and p.get("stream") == "assistant":
                    deltas.append(p["data"]["delta"])
                return "".join(deltas) == answer

            await c.until(whole_answer)
            # The provider is done and the run is ending. Give a broken order ample time to publish: the
            # gateway waits on SQLite's busy timeout (5 s), so one second of lock is safe for a correct one.
            with contextlib.suppress(TimeoutError):
                await c.until(lambda f: f.get("event") == "chat" and f["payload"]["state"] in TERMINAL_CHAT, 1.0)
            ended = [f for f in c.events if f.get("event") == "chat" and f["payload"]["state"] in TERMINAL_CHAT]
            assert ended == [], "the outcome was published while it could not be stored"
            status = await c.ok("status")
            assert [r["runId"] for r in status["runs"]["active"]] == ["rbp-1"], status["runs"]
        finally:
            db.execute("ROLLBACK")
            db.close()
        run = await collect_run(c, "rbp-1", rid)
        assert run.final is not None and run.final["status"] == "ok"
        assert (await c.ok("status"))["runs"]["stored"] == {"ok": 1}


async def test_presence_is_broadcast_on_connect_and_disconnect(gateway: GatewayProc) -> None:
    async with Client.open_connected(gateway.url) as a:
        own = await a.until(lambda f: f.get("event") == "presence")
        version = own["stateVersion"]["presence"]
        assert [p["host"] for p in own["payload"]["presence"]] == ["test"]
        assert a.hello["snapshot"]["stateVersion"]["presence"] == version - 1

        other = connect_params()["client"] | {"id": "other"}
        async with Client.open_connected(gateway.url, client=other):
            joined = await a.until(lambda f: f.get("event") == "presence" and f is not own)
        left = await a.until(lambda f: f.get("event") == "presence" and f not in (own, joined))

        assert joined["stateVersion"] == {"presence": version + 1, "health": 0}
        assert sorted(p["host"] for p in joined["payload"]["presence"]) == ["other", "test"]
        assert left["stateVersion"] == {"presence": version + 2, "health": 0}
        assert [p["host"] for p in left["payload"]["presence"]] == ["test"]
        assert_contiguous(a.event_seqs())


# -- sessions and send -----------------------------------------------------------------------


async def test_sessions_list_reset_delete(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        for key in ("s-one", "s-two"):
            rid, _ = await start_agent(c, f"hello {key}", f"run-{key}", session=key)
            await collect_run(c, f"run-{key}", rid)
        # Bare names are scoped to the one agent, as OpenClaw does: "s-one" is agent:main:s-one.
        one, two = "agent:main:s-one", "agent:main:s-two"
        sessions = {s["key"]: s for s in (await c.ok("sessions.list"))["sessions"]}
        assert {one, two} <= set(sessions)
        assert sessions[one]["messageCount"] == 2 and sessions[one]["active"] is False
        assert sessions[one]["createdAt"] <= sessions[one]["updatedAt"]

        reset = await c.ok("sessions.reset", {"key": "s-one"})
        assert (reset["ok"], reset["key"], reset["abortedRunIds"]) == (True, one, [])
        assert (await c.ok("chat.history", {"sessionKey": "s-one"}))["messages"] == []
        sessions = {s["key"]: s for s in (await c.ok("sessions.list"))["sessions"]}
        assert sessions[one]["messageCount"] == 0
        assert sessions[two]["messageCount"] == 2

        deleted = await c.ok("sessions.delete", {"key": "s-two"})
        assert deleted == {"ok": True, "key": two, "deleted": True, "abortedRunIds": []}
        keys = [s["key"] for s in (await c.ok("sessions.list"))["sessions"]]
        assert one in keys and two not in keys
        assert (await c.ok("chat.history", {"sessionKey": "s-two"}))["messages"] == []
        gone = await c.call("sessions.delete", {"key": "s-two"})
        assert_error(gone, "INVALID_REQUEST", "unknown session: agent:main:s-two")
        assert gone["error"]["details"]["reason"] == "SESSION_NOT_FOUND"
        assert_error(
            await c.call("sessions.reset", {"key": "nope"}), "INVALID_REQUEST", "unknown session: agent:main:nope"
        )


async def test_sessions_reset_aborts_the_running_run(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        rid, _ = await start_agent(c, "[long] busy", "busy-1", session="busy")
        await c.until(lambda f: f.get("event") == "agent" and f["payload"]["stream"] == "assistant")
        listed = {s["key"]: s for s in (await c.ok("sessions.list"))["sessions"]}
        assert listed["agent:main:busy"]["active"] is True and listed["agent:main:busy"]["hasActiveRun"] is True
        reset = await c.ok("sessions.reset", {"key": "busy"})
        assert (reset["key"], reset["abortedRunIds"]) == ("agent:main:busy", ["busy-1"])
        run = await collect_run(c, "busy-1", rid)
        assert run.terminal["state"] == "aborted"
        assert run.final is not None and run.final["status"] == "aborted"


async def test_send_appends_to_history_once(shared: GatewayProc) -> None:
    params = {"message": "Deploy finished.", "idempotencyKey": "send-1", "sessionKey": "ops"}
    async with Client.open_connected(shared.url) as c:
        first = await c.ok("send", params)
        assert first == {
            "runId": "send-1",
            "messageId": first["messageId"],
            "sessionKey": "agent:main:ops",
            "channel": "webchat",
        }
        run = await collect_run(c, "send-1")
        assert run.terminal["state"] == "final"
        assert run.terminal["message"]["content"][0]["text"] == "Deploy finished."
        assert await c.ok("send", params) == first
        assert await c.ok("send", params | {"message": "a different text"}) == first
        history = await c.ok("chat.history", {"sessionKey": "ops"})
        assert history_texts(history) == [("assistant", "Deploy finished.")]
        assert history["messages"][0]["meta"] == {"source": "send"}
        await asyncio.sleep(0.1)
        finals = [f for f in c.events if f.get("event") == "chat" and f["payload"]["state"] == "final"]
        assert len(finals) == 1
        to = await c.ok("send", {"message": "to main", "idempotencyKey": "send-2"})
        assert to["sessionKey"] == "agent:main:main"


# -- config ----------------------------------------------------------------------------------


async def test_config_get_redacts_secrets(make_gateway: Any) -> None:
    token, api_key = "tok-very-secret-4711", "sk-secret-0815"
    gw: GatewayProc = make_gateway("--token", token, env={"OPENAI_API_KEY": api_key})
    async with Client.open(gw.url) as anon:
        refused = await anon.connect()
        assert refused["error"]["details"]["code"] == "AUTH_TOKEN_MISSING"
    async with Client.open_connected(gw.url, auth={"token": token}) as c:
        config = (await c.ok("config.get"))["config"]
        assert config["token"] == "__REDACTED__"
        assert config["openai"]["api_key"] == "__REDACTED__"
        assert config["anthropic"]["api_key"] is None
        assert config["limits"]["max_buffered_bytes"] == 4 * 1024 * 1024
        # echoing the redacted config back keeps the secrets (and sets nothing new)
        patched = await c.ok("config.patch", {"patch": {"openai": {"api_key": "__REDACTED__", "model": "m-2"}}})
        assert patched["config"]["openai"] == config["openai"] | {"model": "m-2"}
        rid, _ = await start_agent(c, "hello", "sec-1")
        await collect_run(c, "sec-1", rid)
        dumped = json.dumps(c.frames)
    gw.stop()
    for secret in (token, api_key):
        assert secret not in dumped
        assert secret not in gw.output()
    assert "auth=token" in gw.output()


async def test_config_patch_persists_and_applies(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        before = (await c.ok("config.get"))["config"]
        assert before["limits"]["chat_delta_interval_ms"] == 150
        res = await c.ok("config.patch", {"patch": {"limits": {"chat_delta_interval_ms": 0}}})
        assert res["ok"] is True and res["restartRequired"] == []
        assert res["config"]["limits"]["chat_delta_interval_ms"] == 0
        assert res["config"] == before | {"limits": before["limits"] | {"chat_delta_interval_ms": 0}}
        health = await c.until(lambda f: f.get("event") == "health")
        assert health["stateVersion"]["health"] == c.hello["snapshot"]["stateVersion"]["health"] + 1

    shared.restart()

    async with Client.open_connected(shared.url) as c:
        assert (await c.ok("config.get"))["config"]["limits"]["chat_delta_interval_ms"] == 0
        rid, _ = await start_agent(c, "hello again", "cfg-1")
        run = await collect_run(c, "cfg-1", rid)
        # with no interval every text delta is followed by its chat delta
        deltas = [p for p in run.chat if p["state"] == "delta"]
        assert len(deltas) == len(run.streams("assistant"))
        restart = await c.ok("config.patch", {"raw": json.dumps({"log_level": "DEBUG"})})
        assert restart["restartRequired"] == ["log_level"]
        # null removes an override (RFC 7386): back to the defaults for the other tests
        reverted = await c.ok("config.patch", {"patch": {"limits": None, "log_level": None}})
        assert reverted["config"] == before | {"port": shared.port}  # restart() passes the bound --port


async def test_config_rejects_invalid_values_and_the_token(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        before = await c.ok("config.get")
        err = assert_error(
            await c.call("config.patch", {"patch": {"limits": {"max_payload": "x"}}}),
            "INVALID_REQUEST",
            "limits.max_payload",
        )
        assert err["message"].startswith("invalid config: limits.max_payload:")
        assert_error(
            await c.call("config.patch", {"patch": {"limits": {"max_payload": 10}}}),
            "INVALID_REQUEST",
            "limits.max_payload",
        )
        assert_error(
            await c.call("config.patch", {"patch": {"limits": {"no_such_limit": 1}}}),
            "INVALID_REQUEST",
            "limits.no_such_limit",
        )
        assert_error(await c.call("config.set", {"config": {"token": "abc"}}), "INVALID_REQUEST", "token")
        assert_error(await c.call("config.patch", {"patch": {"token": "abc"}}), "INVALID_REQUEST", "token")
        assert_error(await c.call("config.patch", {}), "INVALID_REQUEST", "invalid params: patch")
        assert_error(await c.call("config.set", {"raw": "{not json"}), "INVALID_REQUEST", "invalid params: raw")
        assert await c.ok("config.get") == before


# -- errors ----------------------------------------------------------------------------------


async def test_unknown_method_and_bad_params(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        err = assert_error(await c.call("no.such.method"), "INVALID_REQUEST")
        assert err["message"] == "unknown method: no.such.method"
        err = assert_error(await c.call("agent", {"idempotencyKey": "k"}), "INVALID_REQUEST")
        assert err["message"] == "invalid params: message: Field required"
        assert_error(
            await c.call("agent", {"message": "", "idempotencyKey": "k"}), "INVALID_REQUEST", "invalid params: message:"
        )
        assert_error(
            await c.call("chat.history", {"sessionKey": "x", "limit": 0}), "INVALID_REQUEST", "invalid params: limit:"
        )
        assert_error(
            await c.call("agent.wait", {"runId": "x", "timeoutMs": "soon"}),
            "INVALID_REQUEST",
            "invalid params: timeoutMs:",
        )
        assert_error(
            await c.call("chat.send", {"sessionKey": "x", "message": "  ", "idempotencyKey": "blank"}),
            "INVALID_REQUEST",
            "invalid params: message: must not be empty",
        )
        assert_error(await c.call("chat.abort", []), "INVALID_REQUEST", "invalid params:")
        # the connection survives all of it
        assert (await c.ok("health"))["ok"] is True


# -- slash commands, failures, scheduling ----------------------------------------------------


async def test_slash_commands(gateway: GatewayProc) -> None:
    session = "slash"

    async def command(c: Client, text: str, key: str) -> str:
        assert await c.ok("chat.send", {"sessionKey": session, "message": text, "idempotencyKey": key}) == {
            "runId": key,
            "status": "started",
        }
        run = await collect_run(c, key)
        assert [(p["stream"], p["data"].get("phase")) for p in run.agent] == [
            ("lifecycle", "start"),
            ("assistant", None),
            ("lifecycle", "end"),
        ]
        assert run.terminal["state"] == "final" and run.terminal["sessionKey"] == f"agent:main:{session}"
        reply: str = run.terminal["message"]["content"][0]["text"]
        assert run.streams("assistant")[0]["text"] == reply
        return reply

    async with Client.open_connected(gateway.url) as c:
        assert await c.ok("chat.send", {"sessionKey": session, "message": "hello", "idempotencyKey": "t1"})
        first = await collect_run(c, "t1")

        assert await command(c, "/help", "h1") == HELP_TEXT
        status = await command(c, "/status", "h2")
        assert status == (
            f"agenthub {__version__}; provider demo; session agent:main:slash: 2 message(s), 0 active run(s); "
            "1 connection(s)."
        )
        context = await command(c, "  /context   list ", "h3")
        chars = len("hello") + len(first.text)
        assert context.splitlines() == [
            f"2 message(s), {chars} character(s) in context for agent:main:slash.",
            "- user: hello",
            f"- assistant: {first.text[:60]}",
        ]
        assert await command(c, "/reset", "h4") == "Session reset."
        assert (await c.ok("chat.history", {"sessionKey": session}))["messages"] == []
        assert (await command(c, "/context list", "h5")).startswith("0 message(s), 0 character(s)")
        assert await command(c, "/stop", "h6") == "Stopped 0 run(s)."
        # an unknown command is an ordinary message for the agent
        assert await c.ok("chat.send", {"sessionKey": session, "message": "/dance", "idempotencyKey": "h7"})
        run = await collect_run(c, "h7")
        assert run.text.startswith('You said: "/dance".')
        assert history_texts(await c.ok("chat.history", {"sessionKey": session}))[0] == ("user", "/dance")


async def test_failed_run_reports_error_everywhere(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        rid, _ = await start_agent(c, "[fail] please", "fail-1")
        run = await collect_run(c, "fail-1", rid)
        waited = await c.ok("agent.wait", {"runId": "fail-1", "timeoutMs": 100})
    assert_run_numbering(run.frames)
    streams = [p["stream"] for p in run.agent]
    assert streams[0] == "lifecycle" and "thinking" in streams and "assistant" not in streams
    assert run.agent[-1]["data"] == {
        "phase": "error",
        "endedAt": run.agent[-1]["data"]["endedAt"],
        "error": "demo failure requested",
    }
    assert run.terminal == {
        "runId": "fail-1",
        "sessionKey": "agent:main:main",
        "agentId": "main",
        "state": "error",
        "errorMessage": "demo failure requested",
        "seq": run.run_seqs[-1],
    }
    assert not [p for p in run.chat if p["state"] == "final"]
    assert run.final is not None
    assert run.final["status"] == "error" and run.final["error"] == "demo failure requested"
    assert waited["status"] == "error" and waited["error"] == "demo failure requested"


def lifecycle_index(c: Client, run_id: str, phase: str) -> int:
    for i, f in enumerate(c.frames):
        p = f.get("payload") or {}
        if (
            f.get("event") == "agent"
            and p.get("runId") == run_id
            and p.get("stream") == "lifecycle"
            and p["data"]["phase"] == phase
        ):
            return i
    raise AssertionError(f"no lifecycle {phase} for {run_id}")


async def test_runs_of_a_session_are_serialized_sessions_run_concurrently(shared: GatewayProc) -> None:
    async with Client.open_connected(shared.url) as c:
        r1, _ = await start_agent(c, "first in line", "q-1", session="queue")
        r2, _ = await start_agent(c, "second in line", "q-2", session="queue")
        r3, _ = await start_agent(c, "meanwhile elsewhere", "q-3", session="other")
        runs = [await collect_run(c, run_id, rid) for run_id, rid in (("q-1", r1), ("q-2", r2), ("q-3", r3))]
        for run in runs:
            assert run.final is not None and run.final["status"] == "ok"
        assert runs[1].final is not None and runs[0].final is not None
        assert runs[1].final["startedAt"] >= runs[0].final["endedAt"]
        history = await c.ok("chat.history", {"sessionKey": "queue"})

    # same session: q-2 starts only after q-1 ended
    assert lifecycle_index(c, "q-2", "start") > lifecycle_index(c, "q-1", "end")
    # the second turn saw the first one as context: the transcript is in order
    assert [r for r, _ in history_texts(history)] == ["user", "assistant", "user", "assistant"]
    assert history_texts(history)[2] == ("user", "second in line")
    # other session: q-3 streams while q-1 is still streaming
    start3, end1 = lifecycle_index(c, "q-3", "start"), lifecycle_index(c, "q-1", "end")
    assert start3 < end1
    between = [f["payload"]["runId"] for f in c.frames[start3:end1] if f.get("event") == "agent"]
    assert "q-1" in between and "q-3" in between


# -- HTTP ------------------------------------------------------------------------------------


def sample(body: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    assert m, f"{name} not in /metrics:\n{body}"
    return float(m.group(1))


async def test_healthz_and_metrics(gateway: GatewayProc) -> None:
    async with httpx.AsyncClient(base_url=gateway.http) as http, Client.open_connected(gateway.url) as c:
        health = await http.get("/healthz")
        assert health.status_code == 200
        assert health.headers["content-type"].startswith("application/json")
        assert health.json() == {"ok": True, "version": __version__, "connections": 1}

        before = (await http.get("/metrics")).text
        assert sample(before, "agenthub_connections") == 1
        assert sample(before, "agenthub_frames_out_total") >= 2
        ok_before = sample(before, 'agenthub_runs_total{state="ok"}')

        rid, _ = await start_agent(c, "count me", "metric-1")
        run = await collect_run(c, "metric-1", rid)
        await asyncio.sleep(0.05)
        after_resp = await http.get("/metrics")
        assert after_resp.status_code == 200
        after = after_resp.text
        assert sample(after, 'agenthub_runs_total{state="ok"}') == ok_before + 1
        frames_sent = len([f for f in c.frames if f.get("type") in ("res", "event")])
        assert sample(after, "agenthub_frames_out_total") >= frames_sent - 1  # the challenge counts as well
        assert (
            sample(after, "agenthub_frames_out_total")
            > sample(before, "agenthub_frames_out_total") + len(run.frames) - 1
        )
        assert sample(after, "agenthub_runs_active") == 0
        assert sample(after, "agenthub_queue_drops_total") == 0

        # The run (no sessionKey: the default session) read its transcript; two chat.history calls are
        # then answered from memory.
        for _ in range(2):
            assert (await c.ok("chat.history", {"sessionKey": DEFAULT_SESSION}))["messages"]
        cached = (await http.get("/metrics")).text
        hits = sample(after, "agenthub_transcript_cache_hits_total")
        assert sample(cached, "agenthub_transcript_cache_hits_total") >= hits + 2
        assert sample(cached, "agenthub_transcript_cache_misses_total") >= 1
        assert sample(cached, "agenthub_transcript_cache_sessions") >= 1
        assert sample(cached, "agenthub_transcript_cache_bytes") > 0
