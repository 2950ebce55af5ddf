"""A run's acknowledged user message, kept with the run until it is in the transcript (issue 16).

A run is acknowledged once its row is stored, but its user message joins the
transcript only when the run starts executing, behind the session's previous
run. ``message`` and ``message_meta`` hold that message meanwhile (NULL once it
is in the transcript, or for runs without one), so a gateway killed in between
can still put it in the transcript when it marks the run as interrupted.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["upgrade"]


def upgrade(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE runs ADD COLUMN message TEXT"))
    conn.execute(text("ALTER TABLE runs ADD COLUMN message_meta TEXT"))
