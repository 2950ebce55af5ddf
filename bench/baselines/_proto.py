"""The least a baseline server must speak so the same clients can drive it.

It sends ``connect.challenge``, answers any ``connect`` with a small hello-ok and
every other request with ``{"ok": true}``. It checks no token and no signature:
a baseline measures the transport, not the gateway's work.
"""

from __future__ import annotations

import json
import secrets
import time

__all__ = ["challenge", "event_frame", "reply"]


def challenge() -> str:
    nonce = secrets.token_urlsafe(16)
    return json.dumps(
        {"type": "event", "event": "connect.challenge", "payload": {"nonce": nonce, "ts": time.time_ns() // 1_000_000}}
    )


def reply(text: str | bytes) -> str | None:
    """The response to one client frame, or None."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "req":
        return None
    if msg.get("method") == "connect":
        payload = {"type": "hello-ok", "protocol": 3, "policy": {"tickIntervalMs": 15000}}
    else:
        payload = {"ok": True}
    return json.dumps({"type": "res", "id": msg.get("id"), "ok": True, "payload": payload}, separators=(",", ":"))


def event_frame(payload: dict[str, object], seq: int) -> str:
    return json.dumps({"type": "event", "event": "agent", "payload": payload, "seq": seq}, separators=(",", ":"))
