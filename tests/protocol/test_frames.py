from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agenthub.protocol.errors import FrameError, ProtocolError
from agenthub.protocol.frames import (
    EventFrame,
    RequestFrame,
    decode,
    encode_error,
    encode_event,
    event_prefix,
    finish_event,
)


def test_decode_request() -> None:
    frame = decode('{"type":"req","id":"1","method":"health","params":{}}')
    assert isinstance(frame, RequestFrame) and frame.method == "health"
    assert isinstance(decode('{"type":"event","event":"tick","payload":{"ts":1},"seq":3}'), EventFrame)


@pytest.mark.parametrize(
    ("text", "message", "rid"),
    [
        ("{", "invalid JSON", None),
        ('{"type":"nope"}', "invalid frame: ", None),
        ('{"type":"req","id":"7","method":""}', "invalid frame: req.method", "7"),
        ('{"type":"req","id":"8","method":"x","extra":1}', "invalid frame: req.extra", "8"),
        ("[1,2]", "invalid frame: ", None),
    ],
)
def test_decode_errors(text: str, message: str, rid: str | None) -> None:
    with pytest.raises(FrameError) as info:
        decode(text)
    assert info.value.reason.startswith(message)
    assert info.value.request_id == rid


def test_event_is_encoded_once_and_finished_per_connection() -> None:
    prefix = event_prefix("agent", {"runId": "r", "text": "é"})
    a, b = finish_event(prefix, 1), finish_event(prefix, 42)
    assert json.loads(a) == {"type": "event", "event": "agent", "payload": {"runId": "r", "text": "é"}, "seq": 1}
    assert json.loads(b)["seq"] == 42
    assert encode_event("tick", {"ts": 1}, 5, {"presence": 1, "health": 0}) == finish_event(
        event_prefix("tick", {"ts": 1}, {"presence": 1, "health": 0}), 5
    )
    assert json.loads(encode_error("x", {"code": "NOT_FOUND", "message": "m"}))["ok"] is False


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
            max_leaves=20,
        ).map(json.dumps),
    )
)
def test_decode_only_raises_protocol_errors(data: str | bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(data)
