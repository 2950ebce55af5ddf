"""LangBot dialect, sans-I/O: frame decoding and run-event translation."""

from __future__ import annotations

import json

import pytest

from agenthub.core.store import MessageRecord
from agenthub.dialects import langbot as lb


def test_decode_message_keeps_the_whole_chain() -> None:
    chain = [{"type": "Plain", "text": "hi "}, {"type": "At", "target": 1}, {"type": "Plain", "text": "there"}]
    cmd = lb.decode(json.dumps({"type": "message", "message": chain}))
    assert cmd == lb.UserMessage(chain, "hi there")
    assert lb.decode(b'{"type": "ping"}') == lb.Ping()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("{", "invalid JSON"),
        ("3", "JSON object"),
        ('{"type": "hello"}', "unknown message type"),
        ('{"type": "message", "message": []}', "non-empty"),
        ('{"type": "message", "message": [1]}', "string 'type'"),
        ('{"type": "message", "message": [{"type": "Plain"}]}', "string 'text'"),
        ('{"type": "message", "message": [{"type": "Plain", "text": "  "}]}', "no Plain text"),
    ],
)
def test_decode_rejects_bad_frames(frame: str, error: str) -> None:
    with pytest.raises(lb.LangBotInputError, match=error):
        lb.decode(frame)


def test_translate_streams_cumulative_chunks_then_final() -> None:
    chunk = lb.translate("agent", {"stream": "assistant", "ts": 0, "data": {"text": "Hel", "delta": "l"}}, 7)
    assert chunk is not None
    data = json.loads(chunk)["data"]
    assert data["id"] == 7 and data["content"] == "Hel" and data["is_final"] is False
    final = lb.translate(
        "chat", {"state": "final", "message": {"content": [{"type": "text", "text": "Hello"}], "timestamp": 1}}, 7
    )
    assert final is not None and json.loads(final)["data"]["is_final"] is True
    error = lb.translate("chat", {"state": "error", "errorMessage": "boom"}, 7)
    assert error is not None and json.loads(error) == {"type": "error", "data": {"message": "boom"}}
    assert lb.translate("agent", {"stream": "thinking", "data": {}}, 7) is None
    assert lb.translate("chat", {"state": "delta", "message": {}}, 7) is None


def test_history_entry_echoes_the_chain_as_sent() -> None:
    chain = [{"type": "Plain", "text": "x"}, {"type": "Image", "url": "u"}]
    entry = lb.history_entry(MessageRecord("k", "user", "x", 0, None, {"message_chain": chain}, 3))
    assert entry["message_chain"] == chain and entry["id"] == 3
    plain = lb.history_entry(MessageRecord("k", "assistant", "y", 0))
    assert plain["message_chain"] == [{"type": "Plain", "text": "y"}]
    assert lb.session_key("p", "group") == "langbot:p:group"
