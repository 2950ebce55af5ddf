"""Who asked for session events: ``sessions.subscribe`` and ``sessions.messages.subscribe``.

OpenClaw sends ``sessions.changed`` only to connections that called
``sessions.subscribe`` (until they close), when a session is patched, reset,
compacted or deleted and when a run starts or ends in it; events go to exactly
those connections (one encode, like any publication), not to everyone.

``sessions.messages.subscribe`` is acknowledged and bounded per connection, but
agenthub sends no ``session.message`` events: a session's new messages reach
every reader as ``chat`` events, which OpenClaw's clients render.
"""

from __future__ import annotations

from typing import Any

from ..bus import Publication
from ..connection import Connection
from ..node import Node
from ..runs import now_ms

__all__ = ["SessionSubscriptions"]


class SessionSubscriptions:
    """Per-connection subscriptions, dropped when the connection closes."""

    def __init__(self, node: Node, max_sessions_per_conn: int = 256) -> None:
        self.node = node
        self.max_sessions_per_conn = max_sessions_per_conn
        self.changes: set[str] = set()  # conn ids subscribed to sessions.changed
        self.messages: dict[str, set[str]] = {}  # conn id -> session keys
        node.close_listeners.append(self._closed)
        self._unlisten = node.bus.add_listener(self)

    def handle_publication(self, pub: Publication) -> None:
        """A run starting or ending changes its session's row (activity, counts): tell subscribers."""
        if not self.changes or pub.event != "agent" or pub.payload.get("stream") != "lifecycle":
            return
        payload = pub.payload
        phase = payload.get("data", {}).get("phase")
        key = payload.get("sessionKey")
        if not isinstance(key, str) or phase not in ("start", "end", "error"):
            return
        extra: dict[str, Any] = {"phase": phase, "runId": payload.get("runId")}
        if "agentId" in payload:
            extra["agentId"] = payload["agentId"]
        self.sessions_changed("agent.run.started" if phase == "start" else "agent.run.finished", key, **extra)

    def _closed(self, conn: Connection) -> None:
        self.changes.discard(conn.conn_id)
        self.messages.pop(conn.conn_id, None)

    def subscribe_changes(self, conn: Connection) -> None:
        self.changes.add(conn.conn_id)

    def subscribe_messages(self, conn: Connection, key: str) -> bool:
        """False when the connection already follows ``max_sessions_per_conn`` sessions."""
        keys = self.messages.setdefault(conn.conn_id, set())
        if key not in keys and len(keys) >= self.max_sessions_per_conn:
            return False
        keys.add(key)
        return True

    def unsubscribe_messages(self, conn: Connection, key: str) -> None:
        keys = self.messages.get(conn.conn_id)
        if keys is not None:
            keys.discard(key)

    def sessions_changed(self, reason: str, key: str | None = None, **extra: Any) -> None:
        """Tell ``sessions.subscribe`` connections that the session index changed."""
        if not self.changes:
            return
        payload: dict[str, Any] = {"reason": reason, **extra, "ts": now_ms()}
        if key is not None:
            payload["sessionKey"] = key
        self._send(self.changes, "sessions.changed", payload)

    def _send(self, conn_ids: set[str], event: str, payload: dict[str, Any]) -> None:
        pub = Publication("system", 0, "", event, payload)
        for sub in self.node.hub.subscribers():
            conn = getattr(sub, "conn", None)
            if isinstance(conn, Connection) and conn.conn_id in conn_ids:
                sub.deliver(pub)
