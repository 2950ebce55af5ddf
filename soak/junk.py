"""Seeded hostile input: malformed, mistyped, oversized and plausible-but-wrong frames and bodies.

The soak's own generator (the fuzz tests use hypothesis; the soak needs a
steady stream for minutes, reproducible from ``--seed``). Each ``*_frame``
function returns text or bytes to send as one WebSocket message or HTTP body.
"""

from __future__ import annotations

import json
import random
import string
from typing import Any

from agenthub.protocol.methods import METHODS

__all__ = [
    "QUADRATIC_BAIT",
    "agentbox_frame",
    "body",
    "junk_text",
    "junk_value",
    "langbot_frame",
    "myagent_frame",
    "native_frame",
]

# Issue 16 item 2: a message that made the demo's arithmetic scan quadratic (12 s of stall at 40,000).
QUADRATIC_BAIT = "a" + " " * 40_000 + "a"
_ODD = "\x00\x01\u202e\ud7ff\ufeff\U0001f600'\"\\/<>{}[]%$#"
_METHODS = sorted(METHODS)


def junk_value(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value: odd numbers and strings, nesting, wrong types."""
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                2**63,
                -(2**70),
                1e308,
                -0.0,
                rng.randint(-1000, 1000),
                "",
                rng.choice(_ODD) * rng.randint(1, 40),
                "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 30))),
            ]
        )
    if roll < 0.7:
        return [junk_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {junk_key(rng): junk_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def junk_key(rng: random.Random) -> str:
    return rng.choice(["type", "id", "method", "params", "event", "payload", "session_id", "content", "", "\x00", "x"])


def junk_text(rng: random.Random) -> str | bytes:
    """Something that is not a frame of any dialect (or barely is)."""
    roll = rng.random()
    if roll < 0.2:
        return json.dumps(junk_value(rng))
    if roll < 0.35:
        text = json.dumps({junk_key(rng): junk_value(rng) for _ in range(3)})
        return text[: rng.randint(0, len(text))]  # cut short
    if roll < 0.5:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if roll < 0.6:
        depth = rng.randint(100, 3000)
        return "[" * depth + "]" * depth  # deep nesting
    if roll < 0.7:
        return "{" + '"a":' * rng.randint(1, 50)
    return "".join(rng.choice(string.printable + _ODD) for _ in range(rng.randint(0, 120)))


def native_frame(rng: random.Random) -> str | bytes:
    """A request frame with a real method and wrong params, or with a wrong shape."""
    if rng.random() < 0.3:
        return junk_text(rng)
    frame: dict[str, Any] = {
        "type": rng.choice(["req", "req", "req", "res", "event", 7]),
        "id": rng.choice([f"h{rng.randint(0, 10**6)}", "", 5, None]),
        "method": rng.choice([*_METHODS, "connect", "", "x" * 200]),
        "params": junk_value(rng),
    }
    if rng.random() < 0.2:
        frame[junk_key(rng)] = junk_value(rng)
    return json.dumps(frame)


def agentbox_frame(rng: random.Random, task_ids: list[str]) -> str | bytes:
    if rng.random() < 0.3:
        return junk_text(rng)
    kind = rng.choice(["ping", "subscribe", "unsubscribe", "task.action", "auth", "nope", ""])
    payload: Any = junk_value(rng)
    if kind in ("subscribe", "unsubscribe") and rng.random() < 0.6:
        topics = [rng.choice(task_ids)] if task_ids and rng.random() < 0.5 else [f"task-{rng.getrandbits(32):x}"]
        payload = {"channel": rng.choice(["task", "system", "nope"]), "topics": topics}
    if kind == "task.action" and rng.random() < 0.6:
        target = rng.choice(task_ids) if task_ids and rng.random() < 0.5 else "task-0"
        payload = {"task_id": target, "action": rng.choice(["cancel", "append_turn", "explode"]), "data": "x"}
    return json.dumps({"id": f"j{rng.randint(0, 10**6)}", "type": kind, "payload": payload})


def myagent_frame(rng: random.Random) -> str | bytes:
    if rng.random() < 0.3:
        return junk_text(rng)
    event = rng.choice(
        [
            "user.message",
            "user.ack",
            "user.reconnect",
            "user.request_state",
            "user.reconnect_with_state",
            "user.solve_tasks",
            "user.response",
            "user.nope",
            None,
        ]
    )
    frame: dict[str, Any] = {"event": event, "session_id": rng.choice([f"sess_{rng.getrandbits(32):x}", "", 3, None])}
    for _ in range(rng.randint(0, 3)):
        frame[rng.choice(["content", "last_seq", "last_event_id", "signed_state", "step_id", "confirmed"])] = (
            junk_value(rng)
        )
    return json.dumps(frame)


def langbot_frame(rng: random.Random) -> str | bytes:
    if rng.random() < 0.4:
        return junk_text(rng)
    chain: Any = junk_value(rng)
    if rng.random() < 0.5:
        chain = [{"type": rng.choice(["Plain", "Image", "", 5]), "text": junk_value(rng)}]
    return json.dumps({"type": rng.choice(["message", "ping", "pong", "", None]), "message": chain})


def body(rng: random.Random) -> tuple[bytes, str]:
    """An HTTP body and a content type for it (mostly JSON, sometimes lying about it)."""
    roll = rng.random()
    if roll < 0.5:
        data = json.dumps(junk_value(rng)).encode()
    elif roll < 0.7:
        data = json.dumps({"message": junk_value(rng), "prompt": junk_value(rng), "text": junk_value(rng)}).encode()
    elif roll < 0.85:
        raw = junk_text(rng)
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    else:
        data = b"{" * rng.randint(1, 5000)
    ctype = rng.choice(["application/json"] * 6 + ["text/plain", "application/x-www-form-urlencoded", ""])
    return data, ctype
