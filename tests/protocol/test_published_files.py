"""Files generated from the protocol models and committed: they must match what the code generates now."""

from __future__ import annotations

import json
from pathlib import Path

from agenthub.protocol.schema import protocol_schema

ROOT = Path(__file__).resolve().parents[2]
TS_SCHEMA = ROOT / "clients/ts/schema/protocol.schema.json"


def test_ts_client_schema_is_current() -> None:
    """clients/ts builds its types from this copy; regenerate with
    ``agenthub protocol schema > clients/ts/schema/protocol.schema.json`` (then ``npm run types`` there)."""
    assert json.loads(TS_SCHEMA.read_text()) == protocol_schema()


def test_ts_client_types_cover_every_method_and_event() -> None:
    text = (ROOT / "clients/ts/src/protocol.ts").read_text()
    schema = protocol_schema()
    for method in schema["methods"]:
        assert f'"{method}":' in text, method
    for name in schema["definitions"]:
        assert f"export interface {name} " in text or f"export type {name} " in text, name
