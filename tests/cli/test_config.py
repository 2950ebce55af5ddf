"""``agenthub config schema|show|validate|reference`` and ``agenthub doctor``, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

from agenthub.config import GatewaySettings, reference_markdown

from ..conftest import GatewayProc
from .test_main import agenthub

ROOT = Path(__file__).resolve().parents[2]


def test_config_schema_is_the_models() -> None:
    out = agenthub("config", "schema")
    assert out.returncode == 0, out.stderr
    schema = json.loads(out.stdout)
    Draft202012Validator.check_schema(schema)
    assert schema == json.loads(json.dumps(GatewaySettings.model_json_schema()))
    assert {"host", "port", "limits", "security", "token_file"} <= set(schema["properties"])


def test_config_show_names_the_source_of_each_value(tmp_path: Path) -> None:
    cfg = tmp_path / "agenthub.toml"
    cfg.write_text('provider = "openai"\n[limits]\nmax_payload = 2048\ntick_interval_ms = 999\n')
    env = {
        "AGENTHUB_LIMITS__TICK_INTERVAL_MS": "5000",  # env beats the file
        "OPENAI_API_KEY": "sk-show-secret",  # an older name, still honoured
        "AGENTHUB_SECURITY__ALLOWED_ORIGINS": '["https://ui.example"]',
    }
    res = agenthub(
        "config", "show", "--json", "--config", str(cfg), "--data-dir", str(tmp_path / "d"), "--port", "4000", env=env
    )
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert "sk-show-secret" not in res.stdout and shown["config"]["openai"]["api_key"] == "__REDACTED__"
    src = shown["sources"]
    assert src["port"] == "flag" and shown["config"]["port"] == 4000
    assert src["limits.max_payload"] == "file" and shown["config"]["limits"]["max_payload"] == 2048
    assert src["limits.tick_interval_ms"] == "env" and shown["config"]["limits"]["tick_interval_ms"] == 5000
    assert src["openai.api_key"] == "env" and src["provider"] == "file"
    assert src["security.allowed_origins"] == "env"
    assert shown["config"]["security"]["allowed_origins"] == ["https://ui.example"]
    assert src["host"] == "default" and src["data_dir"] == "flag"
    table = agenthub("config", "show", "--config", str(cfg), "--data-dir", str(tmp_path / "d"), env=env)
    assert table.returncode == 0 and "limits.max_payload" in table.stdout and "file" in table.stdout
    # Nothing was created by looking.
    assert not (tmp_path / "d").exists()


def test_config_validate_lists_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"limits": {"max_payload": 10, "nope": 1}, "provider": "x"}))
    res = agenthub("config", "validate", "--config", str(bad))
    assert res.returncode == 1
    for part in ("limits.max_payload", "limits.nope", "provider"):
        assert part in res.stderr
    assert "Traceback" not in res.stderr
    env_bad = agenthub("config", "validate", env={"AGENTHUB_PORT": "99999"})
    assert env_bad.returncode == 1 and "port" in env_bad.stderr
    public = agenthub("config", "validate", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert public.returncode == 1 and "without a token" in public.stderr
    good = agenthub("config", "validate", "--host", "0.0.0.0", "--token", "t", "--data-dir", str(tmp_path))
    assert good.returncode == 0 and "config ok" in good.stdout


def test_committed_config_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "config.md").read_text()
    assert committed == reference_markdown(), (
        "docs/config.md is stale: run `agenthub config reference -o docs/config.md`"
    )
    for path in ("limits.max_payload", "security.auth_mode", "openai.api_key_file", "database_url"):
        assert f"`{path}`" in committed
    check = agenthub("config", "reference", "-o", str(ROOT / "docs" / "config.md"), "--check")
    assert check.returncode == 0, check.stderr


def test_config_show_reads_the_stored_overrides(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway()

    async def patch() -> None:
        from ..e2e._util import Client

        async with Client.open_connected(gw.url) as c:
            await c.ok("config.patch", {"patch": {"limits": {"run_timeout_s": 77}}})

    asyncio.run(patch())
    res = agenthub("config", "show", "--json", "--data-dir", str(gw.data_dir))
    shown = json.loads(res.stdout)
    assert shown["sources"]["limits.run_timeout_s"] == "stored" and shown["config"]["limits"]["run_timeout_s"] == 77


# -- doctor ----------------------------------------------------------------------------------

MODELS = {
    "object": "list",
    "data": [{"id": "gpt-4o-mini", "object": "model", "created": 1686935002, "owned_by": "openai"}],
}
UNAUTHORIZED = {
    "error": {
        "message": (
            "Incorrect API key provided: sk-wrong. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        ),
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


@pytest.fixture
async def openai_models() -> AsyncIterator[str]:
    """A local server answering ``GET /v1/models`` as OpenAI does (and 401 for a wrong key)."""

    async def models(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer sk-good":
            return web.json_response(UNAUTHORIZED, status=401)
        return web.json_response(MODELS)

    app = web.Application()
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_doctor_checks_a_running_gateway_and_the_provider(make_gateway: Any, openai_models: str) -> None:
    gw: GatewayProc = make_gateway()
    assert gw.proc is not None
    args = ["doctor", "--json", "--data-dir", str(gw.data_dir), "--port", str(gw.port), "--provider", "openai"]
    env = {"OPENAI_BASE_URL": openai_models, "OPENAI_API_KEY": "sk-good"}
    res = await asyncio.to_thread(agenthub, *args, env=env)
    report = json.loads(res.stdout)
    assert res.returncode == 0 and report["ok"], res.stdout
    by_name = {c["name"]: c for c in report["checks"]}
    assert f"pid {gw.proc.pid}" in by_name["gateway"]["detail"]
    assert by_name["main port"]["status"] == "ok" and "held by the gateway" in by_name["main port"]["detail"]
    assert by_name["database"]["status"] == "ok" and by_name["provider"]["status"] == "ok"

    wrong = await asyncio.to_thread(agenthub, *args, env={**env, "OPENAI_API_KEY": "sk-wrong"})
    report = json.loads(wrong.stdout)
    assert wrong.returncode == 1 and not report["ok"]
    provider = next(c for c in report["checks"] if c["name"] == "provider")
    assert provider["status"] == "fail" and "refused (HTTP 401)" in provider["detail"]
    assert "sk-wrong" not in wrong.stdout


def test_doctor_reports_what_to_fix(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cert = tmp_path / "missing.pem"
        res = agenthub(
            "doctor",
            "--data-dir",
            str(tmp_path / "d"),
            "--port",
            str(port),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(cert),
            "--provider",
            "anthropic",
            env={"COLUMNS": "200"},
        )
    assert res.returncode == 1
    out = res.stdout
    assert "FAIL" in out and f"127.0.0.1:{port}" in out and "choose another port" in out
    assert "missing.pem" in out and "ANTHROPIC_API_KEY" in out
    assert "will be created" in out  # the data dir does not exist yet, which is fine


def test_provider_keys_from_files(tmp_path: Path) -> None:
    key = tmp_path / "openai.key"
    key.write_text("sk-in-a-file\n")
    res = agenthub("config", "show", "--json", "--data-dir", str(tmp_path / "d"), "--openai-api-key-file", str(key))
    shown = json.loads(res.stdout)
    assert res.returncode == 0 and "sk-in-a-file" not in res.stdout
    assert shown["config"]["openai"]["api_key"] == "__REDACTED__"
    assert shown["sources"]["openai.api_key"] == "flag (api_key_file)"
    res = agenthub(
        "config", "show", "--json", "--data-dir", str(tmp_path / "d"), env={"ANTHROPIC_API_KEY_FILE": str(key)}
    )
    assert json.loads(res.stdout)["sources"]["anthropic.api_key"] == "env (api_key_file)"
