"""Property-based fuzz of the dialect decoders (sans-I/O): only their documented exception escapes.

Each dialect's ``decode`` turns one client frame into a command, or raises the
one error type its socket renders as a typed error frame (AgentBox ``error``,
MyAgent ``system.error``, LangBot ``error``). Anything else escaping would be
a 500-style failure at the edge; ``tests/e2e/test_fuzz_dialects.py`` sends the
same kind of frames over real sockets.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agenthub.dialects import agentbox as ab
from agenthub.dialects import langbot as lb
from agenthub.dialects import myagent as ma

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=16,
)


def shaped(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[str]:
    """JSON objects with the dialect's own keys, each with a plausible or a wrong value."""
    return st.fixed_dictionaries({}, optional={k: st.one_of(v, json_values) for k, v in keys.items()}).map(json.dumps)


def frames(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[str | bytes]:
    return st.one_of(shaped(keys), json_values.map(json.dumps), st.text(max_size=120), st.binary(max_size=120))


AGENTBOX = frames(
    {
        "id": st.text(max_size=300),
        "type": st.sampled_from(["auth", "ping", "subscribe", "unsubscribe", "task.action", "", "x" * 65]),
        "payload": st.fixed_dictionaries(
            {},
            optional={
                "token": st.text(max_size=30),
                "channel": st.sampled_from(["task", "system", "nope"]),
                "topics": st.lists(st.text(max_size=10), max_size=3),
                "task_id": st.text(max_size=10),
                "action": st.sampled_from(["cancel", "append_turn", "nope"]),
            },
        ),
        "timestamp": st.integers(),
    }
)
MYAGENT = frames(
    {
        "event": st.sampled_from(
            [
                "user.create_session",
                "user.message",
                "user.ack",
                "user.reconnect",
                "user.request_state",
                "user.reconnect_with_state",
                "user.solve_tasks",
                "user.response",
                "nope",
            ]
        ),
        "session_id": st.text(max_size=12),
        "content": json_values,
        "last_seq": st.integers(-3, 10),
        "last_event_id": st.text(max_size=20),
        "step_id": st.text(max_size=8),
        "signed_state": json_values,
    }
)
LANGBOT = frames(
    {
        "type": st.sampled_from(["message", "ping", "nope"]),
        "message": st.lists(
            st.fixed_dictionaries({}, optional={"type": st.sampled_from(["Plain", "Image", ""]), "text": json_values}),
            max_size=3,
        ),
    }
)


@settings(max_examples=400, deadline=None)
@given(AGENTBOX)
def test_agentbox_decode_raises_only_agentbox_errors(data: str | bytes) -> None:
    try:
        envelope = ab.decode(data)
    except ab.AgentBoxError as exc:
        assert exc.code is ab.Code.BAD_REQUEST and exc.message  # rendered as {"type": "error", payload: {code}}
        return
    assert isinstance(envelope.type, str) and 1 <= len(envelope.type) <= 64


@settings(max_examples=400, deadline=None)
@given(MYAGENT)
def test_myagent_decode_raises_only_input_errors(data: str | bytes) -> None:
    try:
        command = ma.decode(data)
    except ma.MyAgentInputError as exc:
        assert str(exc)  # the system.error content
        return
    assert isinstance(command, ma.Command.__args__)  # type: ignore[attr-defined]


@settings(max_examples=400, deadline=None)
@given(LANGBOT)
def test_langbot_decode_raises_only_input_errors(data: str | bytes) -> None:
    try:
        command = lb.decode(data)
    except lb.LangBotInputError as exc:
        assert str(exc)  # the error frame's message
        return
    assert isinstance(command, lb.Ping) or (isinstance(command, lb.UserMessage) and command.text.strip())
