"""OpenClaw's session model: canonical keys, and per-session metadata.

1. ``session_meta`` holds what ``sessions.patch`` sets on a session (label,
   archived, model and thinking overrides, ...) as one JSON object per key.
2. Transcripts written before canonical keys existed are renamed to their
   canonical key (``main`` -> ``agent:main:main``, ``notes`` -> ``agent:main:notes``),
   so a user switching from OpenClaw finds one conversation whichever client
   wrote it. Namespaced keys (``myagent:<id>``, ``agentbox:...``) and keys already
   ``agent:``-scoped are left alone. When two legacy keys fold into one
   (``Main`` and ``main``), their messages are merged (ids keep the order) and the
   session row keeps the earliest creation and the latest update.

The rule is copied here rather than imported from ``core.sessions``: a migration is
a frozen record of one step and must not change when the live rule does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, Text, text

__all__ = ["canonical", "upgrade"]

_metadata = MetaData()

Table(
    "session_meta",
    _metadata,
    Column("key", String, primary_key=True),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("updated_ms", BigInteger, nullable=False),
)


def canonical(key: str) -> str | None:
    """The canonical key for a legacy key, or None to leave the key as it is."""
    lowered = key.strip().lower()
    if not lowered or lowered in ("global", "unknown") or lowered.startswith("agent:") or ":" in key:
        return None
    target = f"agent:main:{lowered}"
    return None if target == key else target


def upgrade(conn: Connection) -> None:
    _metadata.create_all(conn, checkfirst=False)
    rows = [
        tuple(row)
        for row in conn.execute(text("SELECT key, created_ms, updated_ms, message_count, last_run_id FROM sessions"))
    ]
    existing: dict[str, tuple[Any, ...]] = {row[0]: row for row in rows}
    for key, created_ms, updated_ms, count, last_run_id in rows:
        target = canonical(key)
        if target is None:
            continue
        into = existing.get(target)
        if into is None:
            conn.execute(
                text(
                    "INSERT INTO sessions (key, created_ms, updated_ms, message_count, last_run_id) "
                    "VALUES (:key, :created, :updated, :count, :last)"
                ),
                {"key": target, "created": created_ms, "updated": updated_ms, "count": count, "last": last_run_id},
            )
            existing[target] = (target, created_ms, updated_ms, count, last_run_id)
        else:
            newer = updated_ms > into[2]
            merged = (
                target,
                min(created_ms, into[1]),
                max(updated_ms, into[2]),
                count + into[3],
                (last_run_id or into[4]) if newer else (into[4] or last_run_id),
            )
            conn.execute(
                text(
                    "UPDATE sessions SET created_ms = :created, updated_ms = :updated, "
                    "message_count = :count, last_run_id = :last WHERE key = :key"
                ),
                {"key": target, "created": merged[1], "updated": merged[2], "count": merged[3], "last": merged[4]},
            )
            existing[target] = merged
        params = {"old": key, "new": target}
        conn.execute(text("UPDATE messages SET session_key = :new WHERE session_key = :old"), params)
        conn.execute(text("UPDATE runs SET session_key = :new WHERE session_key = :old"), params)
        conn.execute(text("DELETE FROM sessions WHERE key = :old"), {"old": key})
        existing.pop(key, None)
