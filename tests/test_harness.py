"""The test harness's own checks can fail: tracebacks and exits in a gateway log, frames off OpenClaw's schema.

No gateway here: ``GatewayProc`` gets a log by hand, the conformance checker gets frames by hand.
"""

from __future__ import annotations

from pathlib import Path

from . import _conformance
from .conftest import GatewayProc

LOG = [
    b"2026-11-30 10:00:00,000 INFO agenthub.app: listening\n",
    b"2026-11-30 10:00:01,000 ERROR agenthub.core.rpc: method sessions.list failed\n",
    b"Traceback (most recent call last):\n",
    b'  File "rpc.py", line 90, in dispatch\n',
    b"    result = await handler(call, model)\n",
    b"RuntimeError: boom\n",
    b"2026-11-30 10:00:02,000 INFO agenthub.core.node: closing\n",
]


def _gateway(log: list[bytes]) -> GatewayProc:
    gw = GatewayProc(Path("/nonexistent"))
    gw.log = list(log)
    return gw


def test_a_logged_traceback_is_a_problem_unless_the_test_allows_it() -> None:
    [problem] = _gateway(LOG).problems()
    assert "method sessions.list failed" in problem and "RuntimeError: boom" in problem
    assert "closing" not in problem  # the block ends with the exception line
    assert _gateway(LOG).problems(since=6) == []  # only what was logged during the test counts
    assert _gateway(LOG).problems(allowed=("RuntimeError: boom",)) == []
    assert len(_gateway(LOG).problems(allowed=("something else",))) == 1
    assert _gateway(LOG).problems(allowed=()) == []  # marked without texts: anything goes


def test_a_json_log_traceback_is_found_too() -> None:
    line = b'{"level":"error","msg":"x","exc":"Traceback (most recent call last):\\n  File ..."}\n'
    assert len(_gateway([line]).problems()) == 1


def test_an_unexpected_exit_is_a_problem() -> None:
    gw = _gateway([])
    gw.bad_exits.append("exit code 1 after SIGTERM")
    assert gw.problems() == ["gateway exit code 1 after SIGTERM"]
    assert gw.problems() == []  # reported once


def test_conformance_flags_what_breaks_the_schema_and_forgives_the_listed_deviations() -> None:
    tick = {"type": "event", "event": "tick", "payload": {"ts": 1}, "seq": 1}
    assert _conformance.check_frames([(tick, None)]) == []
    bad_tick = {"type": "event", "event": "tick", "payload": {"ts": "now"}, "seq": 1}
    [problem] = _conformance.check_frames([(bad_tick, None)])
    assert problem.startswith("TickEvent at ts:")
    envelope = {"type": "res", "id": "1", "ok": True, "extra": 1}
    assert _conformance.check_frames([(envelope, "health")])[0].startswith("GatewayFrame")
    error = {"type": "res", "id": "1", "ok": False, "error": {"code": "X", "message": ""}}
    assert "message" in _conformance.check_frames([(error, "health")])[0]  # an empty message
    agent = {
        "type": "event",
        "event": "agent",
        "payload": {"runId": "r", "seq": 1, "stream": "assistant", "ts": 1, "data": {}, "sessionKey": "main"},
    }
    assert _conformance.check_frames([(agent, None)]) == []  # sessionKey: a listed deviation
    agent["payload"]["surprise"] = 1  # type: ignore[index]
    assert "'surprise' were unexpected" in _conformance.check_frames([(agent, None)])[0]
    rotate = {"type": "res", "id": "1", "ok": True, "payload": {"deviceId": "d"}}
    assert _conformance.result_definition("device.token.rotate") == "DeviceTokenRotateResult"
    assert "DeviceTokenRotateResult" in _conformance.check_frames([(rotate, "device.token.rotate")])[0]
    hello = {"type": "res", "id": "c1", "ok": True, "payload": {"type": "hello-ok"}}
    assert "HelloOk" in _conformance.check_frames([(hello, "connect")])[0]
