"""MyAgent dialect, sans-I/O: decoding, run-event translation and signed state."""

from __future__ import annotations

import json

import pytest

from agenthub.dialects import myagent as ma

KEY = b"k" * 32


def test_decode_each_client_event() -> None:
    assert isinstance(ma.decode('{"event": "user.create_session", "content": "create_session"}'), ma.CreateSession)
    assert ma.decode(json.dumps({"event": "user.message", "session_id": "s", "content": "hi"})) == ma.UserMessage(
        "s", "hi"
    )
    assert ma.decode(json.dumps({"event": "user.ack", "content": {"last_seq": 4}})) == ma.Ack(None, 4, None)
    assert ma.decode(json.dumps({"event": "user.reconnect", "session_id": "s", "last_seq": 2})) == ma.Reconnect(
        "s", 2, None
    )
    assert ma.decode(
        json.dumps({"event": "user.reconnect", "session_id": "s", "content": {"last_event_id": "s.e.3"}})
    ) == ma.Reconnect("s", None, "s.e.3")
    solve = ma.decode(
        json.dumps({"event": "user.solve_tasks", "session_id": "s", "content": {"tasks": [{"id": 1}], "question": "q"}})
    )
    assert solve == ma.SolveTasks("s", [{"id": 1}], "q", None)
    response = ma.decode(
        json.dumps({"event": "user.response", "session_id": "s", "step_id": "x", "content": {"confirmed": False}})
    )
    assert isinstance(response, ma.UserResponse) and response.confirmed is False


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("nope", "invalid JSON"),
        ("[]", "JSON object"),
        ("{}", "'event' is required"),
        ('{"event": "user.dance"}', "unknown event"),
        ('{"event": "user.message", "session_id": "s"}', "'content'"),
        ('{"event": "user.message", "content": "x"}', "'session_id'"),
        ('{"event": "user.ack", "content": {}}', "last_event_id or content.last_seq"),
        ('{"event": "user.ack", "content": {"last_seq": -1}}', "non-negative"),
        ('{"event": "user.reconnect_with_state"}', "signed_state"),
        ('{"event": "user.solve_tasks", "session_id": "s", "content": {"tasks": []}}', "tasks"),
        ('{"event": "user.response", "step_id": "x", "content": {}}', "confirmed"),
    ],
)
def test_decode_rejects_bad_frames(frame: str, error: str) -> None:
    with pytest.raises(ma.MyAgentInputError, match=error):
        ma.decode(frame)


def test_translate_run_events() -> None:
    start = ma.translate("agent", {"runId": "r", "stream": "lifecycle", "data": {"phase": "start"}})
    assert start is not None and start["event"] == "agent.thinking"
    tool = ma.translate(
        "agent",
        {
            "runId": "r",
            "stream": "tool",
            "data": {"phase": "start", "name": "calc", "args": {"x": 1}, "toolCallId": "t"},
        },
    )
    assert tool is not None and tool["metadata"]["tool_args"] == {"x": 1}
    result = ma.translate(
        "agent", {"runId": "r", "stream": "tool", "data": {"phase": "result", "name": "calc", "result": {"v": 2}}}
    )
    assert result is not None and result["content"] == '{"v":2}'
    final = ma.translate(
        "chat", {"runId": "r", "state": "final", "message": {"content": [{"type": "text", "text": "done"}]}}
    )
    assert final is not None and (final["event"], final["content"]) == ("agent.final_answer", "done")
    error = ma.translate("chat", {"runId": "r", "state": "error", "errorMessage": "bad"})
    assert error is not None and (error["event"], error["content"]) == ("agent.error", "bad")
    assert ma.translate("agent", {"stream": "assistant", "data": {}}) is None


def _state(expires_ms: int = 2_000) -> dict[str, object]:
    return {"version": 1, "session_id": "s", "created_ms": 1, "step": 2, "messages": [], "expires_ms": expires_ms}


def test_signed_state_round_trip_and_refusals() -> None:
    signed = ma.sign_state(_state(), KEY)
    assert ma.verify_state(signed, KEY, 1_000)["step"] == 2
    tampered = {**signed, "state": {**_state(), "step": 9}}
    with pytest.raises(ma.StateError, match="signature"):
        ma.verify_state(tampered, KEY, 1_000)
    with pytest.raises(ma.StateError, match="signature"):
        ma.verify_state(signed, b"other", 1_000)
    with pytest.raises(ma.StateError, match="expired"):
        ma.verify_state(signed, KEY, 3_000)
    with pytest.raises(ma.StateError, match="state, signature"):
        ma.verify_state({"state": "x"}, KEY, 0)


def test_event_ids_parse_back_to_positions() -> None:
    assert ma.parse_event_id("sess_ab.EpOcHxYz.12") == ("sess_ab", "EpOcHxYz", 12)
    assert ma.parse_event_id("conn.abc.x") is None
