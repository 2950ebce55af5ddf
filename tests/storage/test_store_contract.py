"""The whole ``Store`` contract on both engines: a SQLite file and a real PostgreSQL server.

Each PostgreSQL test gets a database of its own (``pg_url``), as each SQLite
test gets a file of its own, so both start from an empty, freshly migrated store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agenthub.storage.sql import SqlStore
from tests.core.store_contract import StoreContract, StoreFactory


class TestSqlStoreContract(StoreContract):
    @pytest.fixture(params=["sqlite", "postgresql"])
    def store_factory(self, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
        if request.param == "postgresql":
            url: str = request.getfixturevalue("pg_url")
            return lambda: SqlStore(url, pool_size=4)
        # a nested, not yet existing directory: open() must create it
        return lambda: SqlStore(tmp_path / "state" / "agenthub.db")
