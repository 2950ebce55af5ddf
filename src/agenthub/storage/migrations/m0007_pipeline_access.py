"""LangBot pipeline access: ``public`` and a per-pipeline key (issue 16, item 1).

A pipeline is private unless created ``--public``: its socket then needs the
gateway's secret or the pipeline's own key, stored here only as its SHA-256
(``key_hash``, NULL for pipelines without a key). Existing pipelines, the
``default`` one included, become private; the gateway decides at run time
whether ``default`` is public (``security.langbot_default_public``, by default
only when the gateway has no auth).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["upgrade"]


def upgrade(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE pipelines ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE"))
    conn.execute(text("ALTER TABLE pipelines ADD COLUMN key_hash VARCHAR"))
