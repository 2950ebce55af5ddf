"""Stored config cannot undo the command line's safety; one gateway per data dir; secrets stay out of the DB.

Everything through the real CLI: ``agenthub gateway`` processes, restarts, and
the ``keys``/``pipelines`` commands writing the data dir of a running gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import websockets

from ..conftest import GatewayProc, RawClient
from ._util import Client, collect_run, start_agent

TOKEN = "cfg-safety-token"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agenthub", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


async def test_stored_overrides_cannot_turn_off_the_command_lines_auth(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway("--token", TOKEN)
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        res = await c.ok("config.patch", {"patch": {"host": "0.0.0.0", "security": {"auth_mode": "none"}}})
        assert res["restartRequired"] == ["host"]  # the stored auth_mode "none" changes nothing
        got = await c.ok("config.get")
        assert got["sources"]["host"] == "stored"
        assert got["sources"]["token"] == "flag" and got["config"]["token"] == "__REDACTED__"
        assert got["sources"]["security.auth_mode"] == "default"  # the stored "none" is not applied
        assert any("auth_mode" in w and "ignored" in w for w in got["warnings"])
        assert any(w.startswith("host =") and "stored override" in w for w in got["warnings"])
    log = gw.output()
    assert re.search(r"security setting host changed from \"127.0.0.1\" to \"0.0.0.0\" by connection \S+ from", log)
    assert 'security setting security.auth_mode override set to "none" by connection' in log
    assert TOKEN not in log

    # The next start, with the same --token, still requires it (and says why the host changed).
    gw.restart()
    async with RawClient.open(gw.url) as anon:
        refused = await anon.connect()
        assert refused["error"]["details"]["code"] == "AUTH_TOKEN_MISSING"
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        got = await c.ok("config.get")
        assert got["config"]["host"] == "0.0.0.0" and got["sources"]["host"] == "stored"
        assert c.hello["snapshot"]["authMode"] == "token"
    assert "config: security.auth_mode: the stored override 'none' is ignored" in gw.output()

    # A flag wins over the stored value, and config.get says so.
    gw.args = ["--token", TOKEN, "--host", "127.0.0.1"]
    gw.restart()
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        got = await c.ok("config.get")
        assert got["config"]["host"] == "127.0.0.1" and got["sources"]["host"] == "flag"
        assert any(w.startswith("host: the stored override is not used") for w in got["warnings"])

    # Without a credential the stored public host is refused at start, naming the stored override.
    port = gw.port
    gw.stop()
    out = cli("gateway", "--port", str(port), "--data-dir", str(gw.data_dir))
    assert out.returncode == 2
    assert "refusing to bind 0.0.0.0 without a token" in out.stderr and "stored override" in out.stderr
    assert "config.patch" in out.stderr and "Traceback" not in out.stderr


async def test_a_second_gateway_on_the_same_data_dir_is_refused(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway(config={"demo": {"word_delay_ms": 30}})
    assert gw.proc is not None
    async with Client.open_connected(gw.url) as c:
        rid, accepted = await start_agent(c, "tell me a story [long]", "lock-1")
        second = await asyncio.to_thread(cli, "gateway", "--port", "0", "--data-dir", str(gw.data_dir))
        assert second.returncode != 0
        assert second.stderr.strip() == (
            f"agenthub: data dir {gw.data_dir} is in use by another gateway (pid {gw.proc.pid}): "
            "stop it, or give this one another --data-dir"
        )
        run = await collect_run(c, accepted["runId"], rid, timeout=60)
        # The refused second start did not touch the live run.
        assert run.terminal["state"] == "final" and run.final is not None and run.final["status"] == "ok"
    lock = gw.data_dir / "gateway.lock"
    assert lock.read_text().strip() == str(gw.proc.pid)
    gw.kill()  # the kernel drops the lock with the process: a restart needs no clean-up
    gw.start(0)
    assert gw.proc is not None and lock.read_text().strip() == str(gw.proc.pid)


async def test_keys_and_pipelines_cli_beside_a_running_gateway(make_gateway: Any) -> None:
    """The CLI writes the running gateway's database; the gateway sees each change at once."""
    gw: GatewayProc = make_gateway("--token", TOKEN)
    ab_url = f"{gw.url}/api/v1/gateway/ws"

    async def auth(key: str) -> dict[str, Any]:
        async with websockets.connect(ab_url) as ws:
            await ws.send(json.dumps({"id": "a1", "type": "auth", "payload": {"token": key}, "timestamp": 1}))
            while True:
                frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame.get("id") == "a1":
                    return frame

    created = await asyncio.to_thread(cli, "keys", "create", "--user", "dana", "--data-dir", str(gw.data_dir))
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert (await auth(key))["type"] == "auth.result"
    revoked = await asyncio.to_thread(cli, "keys", "--data-dir", str(gw.data_dir), "revoke", key)
    assert revoked.returncode == 0, revoked.stderr
    refused = await auth(key)
    assert refused["type"] != "auth.result" and "revoked" in json.dumps(refused)

    made = await asyncio.to_thread(cli, "pipelines", "create", "--name", "live", "--data-dir", str(gw.data_dir))
    assert made.returncode == 0, made.stderr
    uuid = made.stdout.splitlines()[0]  # the second line is the private pipeline's key
    out = await asyncio.to_thread(cli, "ws-test", uuid, "--url", gw.url, "--token", TOKEN, "--timeout", "20")
    assert "1/1 connection(s) got a final reply" in out.stdout, out.stdout + out.stderr


async def test_private_data_dir_and_no_secrets_in_the_database(make_gateway: Any, tmp_path: Path) -> None:
    data = tmp_path / "private"
    # A database written by an older version, with a provider key stored in clear by config.patch.
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    from agenthub.storage.sqlite import SqliteStore

    store = SqliteStore(data / "agenthub.db")
    await store.open()
    await store.put_config({"openai": {"api_key": "sk-old-clear", "model": "m-1"}}, 1)
    await store.close()
    os.chmod(data / "agenthub.db", 0o644)

    gw: GatewayProc = make_gateway(data_dir=data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "agenthub.db").stat().st_mode) == 0o600
    assert "removed openai.api_key from the stored config" in gw.output()
    async with Client.open_connected(gw.url) as c:
        assert (await c.ok("config.get"))["config"]["openai"]["model"] == "m-1"
        err = await c.call("config.patch", {"patch": {"anthropic": {"api_key": "sk-new"}}})
        assert err["error"]["code"] == "INVALID_REQUEST"
        assert "secrets are not stored" in err["error"]["message"] and "ANTHROPIC_API_KEY" in err["error"]["message"]
        err = await c.call("config.patch", {"patch": {"token_file": "/etc/passwd"}})
        assert err["error"]["code"] == "INVALID_REQUEST" and "token_file" in err["error"]["message"]
    gw.stop()
    with contextlib.closing(sqlite3.connect(data / "agenthub.db")) as db:
        dump = "\n".join(db.iterdump())
    assert "sk-old-clear" not in dump and "sk-new" not in dump
    for wal in (data / "agenthub.db-wal", data / "agenthub.db-shm"):
        if wal.exists():
            assert stat.S_IMODE(wal.stat().st_mode) & 0o077 == 0


async def test_secrets_from_files_and_environment(make_gateway: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.txt"
    token_file.write_text("from-a-file\n")
    gw: GatewayProc = make_gateway("--token-file", str(token_file), env={"AGENTHUB_LIMITS__TICK_INTERVAL_MS": "1234"})
    async with RawClient.open(gw.url) as anon:
        assert (await anon.connect())["error"]["details"]["code"] == "AUTH_TOKEN_MISSING"
    async with Client.open_connected(gw.url, auth={"token": "from-a-file"}) as c:
        got = await c.ok("config.get")
        assert got["sources"]["token"] == "flag (token_file)"
        assert got["config"]["limits"]["tick_interval_ms"] == 1234
        assert got["sources"]["limits.tick_interval_ms"] == "env"
        assert got["sources"]["demo.word_delay_ms"] == "file"
    res = await asyncio.to_thread(
        cli, "call", "health", "--url", gw.url, "--token-file", str(token_file), "--data-dir", str(tmp_path / "c")
    )
    assert res.returncode == 0, res.stderr
    assert "from-a-file" not in gw.output()


async def test_a_stored_override_shadowing_the_file_is_a_warning(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway(config={"limits": {"run_timeout_s": 100}})
    async with Client.open_connected(gw.url) as c:
        res = await c.ok("config.patch", {"patch": {"limits": {"run_timeout_s": 50}}})
        shadow = "limits.run_timeout_s: the stored override 50 (config.patch) shadows the config file's 100"
        assert shadow in res["warnings"]
        got = await c.ok("config.get")
        assert shadow in got["warnings"] and got["sources"]["limits.run_timeout_s"] == "stored"
    gw.restart()
    assert f"WARNING agenthub.app: config: {shadow}" in gw.output()


def test_secure_dir_tightens_only_a_data_dir_that_is_ours(tmp_path: Path) -> None:
    from agenthub.datadir import secure_dir

    fresh = tmp_path / "a" / "b"
    assert secure_dir(fresh) is not None and stat.S_IMODE(fresh.stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "someone-elses.txt").write_text("x")
    os.chmod(shared, 0o1777)  # like /tmp
    note = secure_dir(shared)
    assert note is not None and "chmod 700" in note and stat.S_IMODE(shared.stat().st_mode) == 0o1777
