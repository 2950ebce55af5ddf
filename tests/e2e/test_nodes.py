"""Nodes over real sockets: declare commands, be listed, be invoked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from ..conftest import GatewayProc, RawClient
from .test_openclaw_schema import SCHEMA_PATH, assert_valid

NODE_CLIENT = {
    "id": "node-host",
    "version": "1.0.0",
    "platform": "linux",
    "mode": "node",
    "instanceId": "node-1",
    "displayName": "Test Node",
}


async def connect_node(c: RawClient, commands: list[str]) -> None:
    res = await c.connect(
        role="node",
        scopes=[],
        client=NODE_CLIENT,
        caps=["system"],
        commands=commands,
        permissions={"notifications": True},
    )
    assert res["ok"], res


async def invoke_request(node: RawClient) -> dict[str, Any]:
    frame = await node.until(lambda f: f.get("event") == "node.invoke.request")
    payload: dict[str, Any] = frame["payload"]
    return payload


async def test_list_describe_and_invoke(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as node, RawClient.open(gateway.url) as op:
        await connect_node(node, ["echo", "fail"])
        assert (await op.connect())["ok"]
        nodes = (await op.call("node.list"))["payload"]["nodes"]
        entry = next(n for n in nodes if n["nodeId"] == "node-1")
        assert entry["commands"] == ["echo", "fail"] and entry["connected"] is True
        assert entry["platform"] == "linux" and entry["permissions"] == {"notifications": True}
        described = (await op.call("node.describe", {"nodeId": "node-1"}))["payload"]
        assert described["caps"] == ["system"] and described["displayName"] == "Test Node"
        assert (await op.call("node.describe", {"nodeId": "nope"}))["error"]["details"]["reason"].endswith("_NOT_FOUND")
        presence = (await op.call("system-presence"))["payload"]
        entries = presence if isinstance(presence, list) else presence.get("presence", presence)
        mine = next(p for p in entries if p.get("instanceId") == "node-1")
        assert mine["roles"] == ["node"] and mine["platform"] == "linux" and mine["tags"] == ["echo", "fail"]
        assert mine["lastActivityAt"] >= mine["ts"]

        rid = await op.request(
            "node.invoke", {"nodeId": "node-1", "command": "echo", "params": {"x": 1}, "idempotencyKey": "inv-1"}
        )
        req = await invoke_request(node)
        assert req["command"] == "echo" and req["nodeId"] == "node-1" and json.loads(req["paramsJSON"]) == {"x": 1}
        assert req["timeoutMs"] == 30000
        schema = json.loads(SCHEMA_PATH.read_text())
        assert_valid(schema, "NodeInvokeRequestEvent", req)
        assert_valid(schema, "PresenceEntry", mine)
        result = {"id": req["id"], "nodeId": "node-1", "ok": True, "payload": {"echo": {"x": 1}}}
        assert_valid(schema, "NodeInvokeResultParams", result)
        done = await node.call("node.invoke.result", result)
        assert done["ok"]
        res = await op.response(rid)
        assert res["ok"] and res["payload"]["payload"] == {"echo": {"x": 1}}
        # A second answer to the same invoke is refused: it is no longer pending.
        late = await node.call("node.invoke.result", {"id": req["id"], "ok": True})
        assert late["error"]["details"]["reason"].endswith("_NOT_FOUND")

        rid = await op.request("node.invoke", {"nodeId": "node-1", "command": "fail", "idempotencyKey": "inv-2"})
        req = await invoke_request(node)
        await node.call(
            "node.invoke.result", {"id": req["id"], "ok": False, "error": {"code": "E_FAIL", "message": "it broke"}}
        )
        res = await op.response(rid)
        assert res["error"]["code"] == "UNAVAILABLE" and res["error"]["message"] == "it broke"

        res = await op.call("node.invoke", {"nodeId": "node-1", "command": "rm-rf", "idempotencyKey": "inv-3"})
        assert res["error"]["code"] == "INVALID_REQUEST"
        assert res["error"]["details"]["code"] == "COMMAND_NOT_DECLARED"
        res = await op.call("node.invoke", {"nodeId": "ghost", "command": "echo", "idempotencyKey": "inv-4"})
        assert res["error"]["code"] == "UNAVAILABLE"
        # A node may not call operator methods, nor answer invokes that were not sent to it.
        assert (await node.call("node.invoke", {"nodeId": "node-1", "command": "echo", "idempotencyKey": "inv-5"}))[
            "error"
        ]["code"] == "FORBIDDEN"


async def test_invoke_timeout_and_disconnect(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as op:
        assert (await op.connect())["ok"]
        async with RawClient.open(gateway.url) as node:
            await connect_node(node, ["slow"])
            res = await op.call(
                "node.invoke", {"nodeId": "node-1", "command": "slow", "timeoutMs": 300, "idempotencyKey": "t-1"}
            )
            assert res["error"]["code"] == "AGENT_TIMEOUT"
            # The operator's socket keeps serving while an invoke waits.
            rid = await op.request("node.invoke", {"nodeId": "node-1", "command": "slow", "idempotencyKey": "t-2"})
            await invoke_request(node)
            assert (await op.call("health"))["ok"]
        res = await op.response(rid)
        assert res["error"]["code"] == "UNAVAILABLE" and "disconnected" in res["error"]["message"]
        nodes = (await op.call("node.list"))["payload"]["nodes"]
        assert all(n["nodeId"] != "node-1" for n in nodes)


async def test_headless_python_node(gateway: GatewayProc, tmp_path: Any) -> None:
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any awaiting
        [
            sys.executable,
            "-m",
            "agenthub",
            "node",
            "run",
            "--url",
            gateway.url,
            "--data-dir",
            str(tmp_path),
            "--display-name",
            "py-node",
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with RawClient.open(gateway.url) as op:
            assert (await op.connect())["ok"]
            node_id = ""
            for _ in range(100):
                nodes = (await op.call("node.list"))["payload"]["nodes"]
                if nodes:
                    node_id = nodes[0]["nodeId"]
                    assert set(nodes[0]["commands"]) == {"system.info", "system.notify"}
                    break
                await asyncio.sleep(0.1)
            assert node_id, "node did not connect"
            res = await op.call("node.invoke", {"nodeId": node_id, "command": "system.info", "idempotencyKey": "py-1"})
            info = res["payload"]["payload"]
            assert info["cpuCount"] >= 1 and info["memory"]["totalBytes"] > 0 and info["platform"]
            res = await op.call(
                "node.invoke",
                {
                    "nodeId": node_id,
                    "command": "system.notify",
                    "params": {"message": "hello from test"},
                    "idempotencyKey": "py-2",
                },
            )
            assert res["ok"] and res["payload"]["payload"]["delivered"] is True
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert b"hello from test" in out


class NodeToolRuntime:
    """A provider that runs the ``system.run`` node tool and says what it returned."""

    name = "node-tool-test"

    async def run_turn(self, turn: Any) -> Any:
        from agenthub.core.runtime import TextDelta

        tool = next(t for t in turn.tools if t.name.endswith("system_run"))
        try:
            result = await tool.call({"cmd": "ls"})
        except PermissionError as exc:
            result = f"denied: {exc}"
        yield TextDelta(f"node said {result}")


async def test_agent_runs_node_command_after_approval(tmp_path: Any) -> None:
    from agenthub.app import Gateway

    overrides = {"port": 0, "data_dir": str(tmp_path), "log_level": "WARNING"}
    async with Gateway({}, overrides, runtime_factory=lambda s: NodeToolRuntime()) as gw:  # type: ignore[arg-type,return-value]
        url = f"ws://127.0.0.1:{gw.port}"
        async with RawClient.open(url) as node, RawClient.open(url) as op:
            await connect_node(node, ["system.run"])
            assert (await op.connect(scopes=["operator.admin"]))["ok"]
            rid = await op.request("agent", {"message": "list files", "idempotencyKey": "tool-1"})
            ask = await op.until(lambda f: f.get("event") == "exec.approval.requested")
            assert ask["payload"]["request"]["command"] == "system.run"
            assert ask["payload"]["request"]["params"] == {"cmd": "ls"}
            resolved = await op.call("exec.approval.resolve", {"id": ask["payload"]["id"], "decision": "allow-once"})
            assert resolved["ok"], resolved
            req = await invoke_request(node)
            assert json.loads(req["paramsJSON"]) == {"cmd": "ls"}
            await node.call("node.invoke.result", {"id": req["id"], "ok": True, "payload": "a.txt b.txt"})
            final = await op.until(
                lambda f: (
                    f.get("type") == "res"
                    and f.get("id") == rid
                    and f["payload"].get("status") not in (None, "accepted")
                ),
                timeout=20,
            )
            assert final["payload"]["status"] == "ok", final
            text = "".join(
                f["payload"]["data"].get("delta", "")
                for f in op.events
                if f.get("event") == "agent" and f["payload"].get("stream") == "assistant"
            )
            assert "node said a.txt b.txt" in text
