"""`agenthub call` and `agenthub protocol schema` as a user runs them: real processes, real gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from agenthub.protocol.methods import METHODS

from ..conftest import GatewayProc, child_env


def agenthub(*args: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agenthub", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(AGENTHUB_DATA_DIR=str(data_dir)),
    )


def test_call_health_agent_and_errors(make_gateway: Any, tmp_path: Path) -> None:
    gw: GatewayProc = make_gateway("--token", "cli-token")
    url = ["--url", gw.url, "--token", "cli-token", "--data-dir", str(tmp_path)]
    health = agenthub("call", "health", *url, "--json", data_dir=tmp_path)
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["ok"] is True
    # The device identity is created once in the data dir and reused.
    key = tmp_path / "identity" / "device.pem"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
    first = key.read_bytes()

    run = agenthub(
        "call",
        "agent",
        *url,
        "--params",
        json.dumps({"message": "what is 7*6"}),
        "--expect-final",
        "--json",
        data_dir=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert lines[0]["type"] == "accepted"
    streams = [f["payload"]["stream"] for f in lines if f.get("event") == "agent"]
    assert streams[0] == "lifecycle" and "tool" in streams and "assistant" in streams
    assert lines[-1]["type"] == "result" and lines[-1]["status"] == "ok" and "42" in lines[-1]["summary"]
    assert key.read_bytes() == first

    unknown = agenthub("call", "no.such", *url, "--json", data_dir=tmp_path)
    assert unknown.returncode == 1
    assert json.loads(unknown.stdout)["error"] == {
        "code": "INVALID_REQUEST",
        "message": "unknown method: no.such",
        "details": None,
    }
    bad_json = agenthub("call", "health", *url, "--params", "{nope", data_dir=tmp_path)
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    wrong = agenthub(
        "call", "health", "--url", gw.url, "--token", "wrong", "--data-dir", str(tmp_path), "--json", data_dir=tmp_path
    )
    assert wrong.returncode == 1
    details = json.loads(wrong.stdout)["error"]["details"]
    assert details["code"] == "AUTH_TOKEN_MISMATCH" and details["authReason"] == "token_mismatch"
    down = agenthub("call", "health", "--url", "ws://127.0.0.1:9", "--data-dir", str(tmp_path), data_dir=tmp_path)
    assert down.returncode == 1 and "cannot reach" in down.stderr


def test_protocol_schema_is_the_models_schema(tmp_path: Path) -> None:
    out = agenthub("protocol", "schema", data_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    schema = json.loads(out.stdout)
    Draft202012Validator.check_schema(schema)
    assert set(schema["methods"]) == set(METHODS)
    frame = Draft202012Validator(schema)
    assert frame.is_valid({"type": "req", "id": "1", "method": "health", "params": {}})
    assert not frame.is_valid({"type": "req", "id": "", "method": "health"})
    assert not frame.is_valid({"type": "res", "id": "1"})
    params = Draft202012Validator({"$ref": schema["methods"]["agent"]["params"], "definitions": schema["definitions"]})
    assert params.is_valid({"message": "hi", "idempotencyKey": "k"})
    assert not params.is_valid({"message": "", "idempotencyKey": "k"})
    assert schema["methods"]["chat.send"]["scope"] == "operator.write"
