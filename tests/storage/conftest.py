"""Fixtures for the storage tests: a database URL on either engine (SQLite file, real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file in the test's temp dir, or a new PostgreSQL database."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'agenthub.db'}"
