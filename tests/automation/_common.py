"""Shared by the automation tests: OpenClaw's schema validator and event predicates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).parents[1] / "npm/node_modules/@openclaw/gateway-protocol/protocol.schema.json"

Pred = Callable[[dict[str, Any]], bool]


def load_schema() -> dict[str, Any]:
    if not SCHEMA_PATH.exists():
        pytest.fail(f"{SCHEMA_PATH} missing: run `make test` (it installs tests/npm)")
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def assert_valid(schema: dict[str, Any], name: str, instance: Any) -> None:
    validator = Draft202012Validator({"$ref": f"#/definitions/{name}", "definitions": schema["definitions"]})
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def cron_event(action: str, job_id: str, exclude: set[str] | frozenset[str] = frozenset()) -> Pred:
    """A ``cron`` event of this action for this job whose runId is not in ``exclude``."""

    def pred(f: dict[str, Any]) -> bool:
        p = f.get("payload") or {}
        return (
            f.get("event") == "cron"
            and p.get("action") == action
            and p.get("jobId") == job_id
            and p.get("runId") not in exclude
        )

    return pred


def run_events(events: list[dict[str, Any]], run_id: str, kind: str) -> list[dict[str, Any]]:
    return [f["payload"] for f in events if f.get("event") == kind and f["payload"].get("runId") == run_id]
