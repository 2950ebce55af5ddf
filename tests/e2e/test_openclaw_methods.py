"""The methods OpenClaw's own clients call, over a raw socket, checked against OpenClaw's published schema.

Each answer is validated against the definition ``@openclaw/gateway-protocol``
publishes for it where there is one (``SessionRow``, ``AgentsListResult``, ...);
the others are checked for the fields OpenClaw's clients read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agenthub.client.identity import DeviceIdentity

from ..conftest import GatewayProc, signed_device
from ._util import Client, collect_run, start_agent
from .test_openclaw_schema import SCHEMA_PATH, assert_valid

pytestmark = pytest.mark.timeout(90)

ALL_SCOPES = [
    "operator.admin",
    "operator.read",
    "operator.write",
    "operator.approvals",
    "operator.pairing",
    "operator.questions",
    "operator.talk.secrets",
]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if not SCHEMA_PATH.exists():
        pytest.fail(f"{SCHEMA_PATH} missing: run `make test` (it installs tests/npm)")
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


async def test_hello_names_the_main_session_and_capabilities(gateway: GatewayProc, schema: dict[str, Any]) -> None:
    async with Client.open(gateway.url) as c:
        res = await c.connect(scopes=ALL_SCOPES)  # what `openclaw gateway call` asks for
        assert res["ok"], res
        hello = res["payload"]
        assert_valid(schema, "HelloOk", hello)
        assert hello["snapshot"]["sessionDefaults"] == {
            "defaultAgentId": "main",
            "mainKey": "main",
            "mainSessionKey": "agent:main:main",
            "scope": "per-sender",
        }
        # `openclaw models list` refuses a gateway without it
        assert "published-model-catalog" in hello["features"]["capabilities"]
        methods = set(hello["features"]["methods"])
        assert {"sessions.subscribe", "chat.startup", "agents.list", "models.list", "logs.tail"} <= methods
        # the channels and scheduler families are real here, so advertised
        assert {"cron.list", "channels.status", "wake", "last-heartbeat"} <= methods
        # only what works is advertised: agenthub records no token costs and has no approvals policy file
        assert not methods & {"usage.cost", "exec.approvals.get", "exec.approvals.set"}


async def test_main_and_agent_main_main_are_one_session(gateway: GatewayProc, schema: dict[str, Any]) -> None:
    async with Client.open_connected(gateway.url, scopes=ALL_SCOPES) as c:
        rid, _ = await start_agent(c, "what is 2+2", "one-1", session="main")
        first = await collect_run(c, "one-1", rid)
        sent = await c.ok(
            "chat.send", {"sessionKey": "agent:main:main", "message": "and 3+3?", "idempotencyKey": "one-2"}
        )
        assert sent == {"runId": "one-2", "status": "started"}
        second = await collect_run(c, "one-2")
        for run in (first, second):
            for payload in run.payloads:
                assert payload["sessionKey"] == "agent:main:main" and payload["agentId"] == "main"
                if "stream" in payload:
                    assert_valid(
                        schema, "AgentEvent", {k: v for k, v in payload.items() if k not in ("sessionKey", "agentId")}
                    )
                else:
                    assert_valid(schema, "ChatEvent", payload)
        end = first.agent[-1]["data"]
        assert end["phase"] == "end" and end["stopReason"] == "stop" and end["aborted"] is False
        assert end["startedAt"] <= end["endedAt"]
        for key in ("main", "agent:main:main", "MAIN"):
            history = await c.ok("chat.history", {"sessionKey": key})
            assert history["sessionKey"] == "agent:main:main"
            texts = [m["content"][0]["text"] for m in history["messages"] if m["role"] == "user"]
            assert texts == ["what is 2+2", "and 3+3?"]
        # each message carries the transcript identity OpenClaw's Control UI matches its own against
        user = history["messages"][0]
        assert user["__openclaw"] == {"id": user["__openclaw"]["id"], "runId": "one-1", "idempotencyKey": "one-1"}
        assert_valid(schema, "SessionRow", history["sessionInfo"])
        assert history["sessionInfo"]["hasActiveRun"] is False
        assert history["pendingInputs"] == {"items": [], "total": 0}
        bad = await c.call("chat.history", {"sessionKey": "agent:main"})
        assert bad["error"]["code"] == "INVALID_REQUEST" and "agent:<agentId>:<name>" in bad["error"]["message"]


async def test_sessions_list_subscribe_and_describe(gateway: GatewayProc, schema: dict[str, Any]) -> None:
    async with Client.open_connected(gateway.url, scopes=ALL_SCOPES) as c:
        await collect_run(c, "ls-1", (await start_agent(c, "hello", "ls-1", session="notes"))[0])
        listed = await c.ok("sessions.list", {"limit": 10, "includeLastMessage": True})
        assert listed["defaults"]["modelSelectionTarget"] == "session"
        assert listed["defaults"]["mainSessionKey"] == "agent:main:main"
        assert listed["count"] == listed["totalCount"] == 1 and listed["hasMore"] is False
        (row,) = listed["sessions"]
        assert_valid(schema, "SessionRow", row)
        assert row["key"] == "agent:main:notes" and row["agentId"] == "main" and row["kind"] == "direct"
        assert row["sessionId"] and row["displayName"] == "notes" and row["lastMessagePreview"]
        assert (await c.ok("sessions.list", {"spawnedBy": "agent:main:notes"}))["sessions"] == []

        assert await c.ok("sessions.subscribe", {}) == {"subscribed": True}
        both = await c.ok("sessions.subscribe", {"limit": 5})
        assert both["subscribed"] is True and both["list"]["sessions"][0]["key"] == "agent:main:notes"

        described = await c.ok("sessions.describe", {"key": "notes"})
        assert described["session"]["sessionId"] == row["sessionId"]
        assert await c.ok("sessions.describe", {"key": "nothing-here"}) == {"session": None}
        resolved = await c.ok("sessions.resolve", {"sessionId": row["sessionId"]})
        assert resolved == {"ok": True, "key": "agent:main:notes", "agentId": "main"}
        assert await c.ok("sessions.resolve", {"label": "nope", "allowMissing": True}) == {"ok": False}

        preview = await c.ok("sessions.preview", {"keys": ["notes", "missing"], "limit": 1, "maxChars": 20})
        assert [p["status"] for p in preview["previews"]] == ["ok", "missing"]
        assert len(preview["previews"][0]["items"]) == 1 and len(preview["previews"][0]["items"][0]["text"]) <= 20

        # a subscribed connection hears about changes to the index
        patched = await c.ok(
            "sessions.patch", {"key": "notes", "label": "Notes", "expectedSessionId": row["sessionId"]}
        )
        assert patched["entry"]["label"] == "Notes"
        changed = await c.until(lambda f: f.get("event") == "sessions.changed")
        assert changed["payload"]["reason"] == "patch" and changed["payload"]["sessionKey"] == "agent:main:notes"
        stale = await c.call("sessions.patch", {"key": "notes", "archived": True, "expectedSessionId": "not-it"})
        assert stale["error"]["details"]["reason"] == "session-changed"
        refused = await c.call("sessions.patch", {"key": "notes", "model": "gpt-x"})
        assert refused["error"]["code"] == "INVALID_REQUEST" and refused["error"]["details"]["fields"] == ["model"]


async def test_archive_compact_delete(gateway: GatewayProc) -> None:
    async with Client.open_connected(gateway.url, scopes=ALL_SCOPES) as c:
        for i in range(3):
            await collect_run(c, f"ac-{i}", (await start_agent(c, f"turn {i}", f"ac-{i}", session="scratch"))[0])
        row = (await c.ok("sessions.describe", {"key": "scratch"}))["session"]
        assert row["messageCount"] == 6

        no_summary = await c.ok("sessions.compact", {"key": "scratch"})
        assert no_summary["ok"] is True and no_summary["compacted"] is False and "maxLines" in no_summary["reason"]
        compacted = await c.ok("sessions.compact", {"key": "scratch", "maxLines": 2})
        assert compacted == {"ok": True, "key": "agent:main:scratch", "compacted": True, "kept": 2}
        history = await c.ok("chat.history", {"sessionKey": "scratch"})
        assert history["messages"][0]["content"][0]["text"] == "turn 2"

        archived = await c.ok(
            "sessions.patch", {"key": "scratch", "archived": True, "expectedSessionId": row["sessionId"]}
        )
        assert archived["entry"]["archived"] is True
        assert "agent:main:scratch" not in [s["key"] for s in (await c.ok("sessions.list"))["sessions"]]
        only_archived = (await c.ok("sessions.list", {"archived": True}))["sessions"]
        assert [s["key"] for s in only_archived] == ["agent:main:scratch"]

        stale = await c.call("sessions.delete", {"key": "scratch", "expectedSessionId": "not-it"})
        assert stale["error"]["details"]["reason"] == "session-changed"
    # write is enough to delete an archived session (archivedOnly), as OpenClaw's CLI does; others take admin
    async with Client.open_connected(gateway.url, scopes=["operator.write"]) as w:
        await collect_run(w, "ac-live", (await start_agent(w, "live", "ac-live", session="live"))[0])
        denied = await w.call("sessions.delete", {"key": "live"})
        assert denied["error"]["code"] == "FORBIDDEN" and denied["error"]["details"]["missingScope"] == "operator.admin"
        not_archived = await w.call("sessions.delete", {"key": "live", "archivedOnly": True})
        assert not_archived["error"]["details"]["reason"] == "SESSION_NOT_ARCHIVED"
        deleted = await w.ok(
            "sessions.delete", {"key": "scratch", "expectedSessionId": row["sessionId"], "archivedOnly": True}
        )
        assert deleted["deleted"] is True
        assert [s["key"] for s in (await w.ok("sessions.list", {"archived": "all"}))["sessions"]] == ["agent:main:live"]


async def test_chat_startup_and_the_catalog_methods(gateway: GatewayProc, schema: dict[str, Any]) -> None:
    async with Client.open_connected(gateway.url, scopes=ALL_SCOPES) as c:
        fresh = await c.ok("chat.startup", {"sessionKey": "agent:main:main", "limit": 80, "maxBytes": 262144})
        assert fresh["messages"] == [] and "sessionInfo" not in fresh and fresh["defaults"]["model"]
        answers = {
            method: await c.ok(method, params)
            for method, params in (
                ("agents.list", {}),
                ("agent.identity.get", {"agentId": "main"}),
                ("models.list", {"view": "configured"}),
                ("commands.list", {"scope": "text"}),
                ("update.status", {}),
                ("question.list", {}),
                ("tools.catalog", {}),
                ("config.schema", {}),
                ("logs.tail", {"limit": 5}),
            )
        }
        for method, definition in (
            ("agents.list", "AgentsListResult"),
            ("agent.identity.get", "AgentIdentityResult"),
            ("models.list", "ModelsListResult"),
            ("commands.list", "CommandsListResult"),
            ("update.status", "UpdateStatusResult"),
            ("question.list", "QuestionListResult"),
            ("tools.catalog", "ToolsCatalogResult"),
            ("config.schema", "ConfigSchemaResponse"),
            ("logs.tail", "LogsTailResult"),
        ):
            assert_valid(schema, definition, answers[method])
        assert [a["id"] for a in answers["agents.list"]["agents"]] == ["main"]
        assert answers["agents.list"]["defaultId"] == "main" and answers["agents.list"]["mainKey"] == "main"
        (model,) = answers["models.list"]["models"]
        assert (model["provider"], model["available"]) == ("demo", True)
        assert {c["name"] for c in answers["commands.list"]["commands"]} == {
            "stop",
            "reset",
            "status",
            "context",
            "help",
        }
        assert answers["update.status"]["updateAvailable"] is None
        assert {t["id"] for t in answers["tools.catalog"]["groups"][0]["tools"]} >= {"calculator"}
        assert "limits" in answers["config.schema"]["schema"]["properties"]
        assert any("listening on" in json.loads(line)["message"] for line in answers["logs.tail"]["lines"])
        unknown_agent = await c.call("agent.identity.get", {"agentId": "ops"})
        assert unknown_agent["error"]["details"] == {"code": "UNKNOWN_AGENT_ID", "agentId": "ops"}

        assert await c.ok("exec.approval.list") == []
        assert await c.ok("plugin.approval.list") == []
        missing = await c.call("exec.approval.get", {"id": "nope"})
        assert missing["error"]["code"] == "INVALID_REQUEST"
        assert missing["error"]["details"]["reason"] == "APPROVAL_NOT_FOUND"
        assert (await c.ok("diagnostics.stability"))["events"] == []
        assert (await c.ok("usage.status"))["providers"] == []
        assert (await c.ok("skills.status"))["skills"] == []
        status = await c.ok("status")
        assert status["sessions"]["byAgent"][0]["agentId"] == "main" and status["heartbeat"]["defaultAgentId"] == "main"
        assert status["runtimeVersion"] == status["version"]  # and agenthub's own fields stay


async def test_agent_final_carries_result_payloads(gateway: GatewayProc) -> None:
    async with Client.open_connected(gateway.url, scopes=ALL_SCOPES) as c:
        rid, _ = await start_agent(c, "what is 6*7", "final-1")
        run = await collect_run(c, "final-1", rid)
        assert run.final is not None
        assert run.final["result"]["payloads"] == [{"text": run.text, "mediaUrl": None}]
        assert run.final["result"]["meta"]["durationMs"] >= 0 and run.final["result"]["meta"]["aborted"] is False
        # a sessionId selects the session too (OpenClaw's --session-id)
        session_id = (await c.ok("sessions.describe", {"key": "main"}))["session"]["sessionId"]
        rid = await c.request("agent", {"message": "again", "idempotencyKey": "final-2", "sessionId": session_id})
        await collect_run(c, "final-2", rid)
        assert len((await c.ok("chat.history", {"sessionKey": "main"}))["messages"]) == 4
        unknown = await c.call("agent", {"message": "x", "idempotencyKey": "final-3", "sessionId": "nope"})
        assert unknown["error"]["details"]["reason"] == "SESSION_NOT_FOUND"


async def test_node_pairing_methods_and_the_node_catalog(make_gateway: Any, schema: dict[str, Any]) -> None:
    gw = make_gateway("--require-pairing")
    ident = DeviceIdentity.generate()
    async with Client.open_connected(gw.url, scopes=["operator.read", "operator.pairing"]) as op:
        async with Client.open(gw.url) as node:
            params = {
                "role": "node",
                "scopes": [],
                "commands": ["camera.snap", "system.run"],
                "caps": ["camera"],
                "client": {"id": "test", "version": "1.0", "platform": "linux", "mode": "test"},
            }
            refused = await node.connect(**params, device=signed_device(node, ident, scopes=[], role="node"))
        details = refused["error"]["details"]
        # a node is told to keep retrying: OpenClaw's node host then resumes by itself once approved
        assert details["code"] == "PAIRING_REQUIRED" and details["recommendedNextStep"] == "wait_then_retry"
        assert details["pauseReconnect"] is False and details["requestedRole"] == "node"
        rid = details["requestId"]
        requested = await op.until(lambda f: f.get("event") == "node.pair.requested")
        assert requested["payload"]["requestId"] == rid

        listed = await op.ok("node.pair.list")
        (pending,) = listed["pending"]
        assert pending["nodeId"] == ident.device_id and pending["commands"] == ["camera.snap", "system.run"]
        assert pending["requiredApproveScopes"] == ["operator.pairing", "operator.admin"]
        # system.run needs admin to approve, as in OpenClaw
        denied = await op.call("node.pair.approve", {"requestId": rid})
        assert denied["error"]["code"] == "FORBIDDEN" and denied["error"]["details"]["missingScope"] == "operator.admin"
        assert_valid(schema, "MissingScopeErrorDetails", denied["error"]["details"])
        missing = await op.call("node.pair.reject", {"requestId": "nope"})
        assert missing["error"]["details"]["reason"] == "PAIRING_REQUEST_NOT_FOUND"

    async with Client.open_connected(gw.url, scopes=["operator.admin"]) as admin:
        approved = await admin.ok("node.pair.approve", {"requestId": rid})
        assert approved["node"]["nodeId"] == ident.device_id
        async with Client.open(gw.url) as node:
            res = await node.connect(**params, device=signed_device(node, ident, scopes=[], role="node"))
            assert res["ok"], res
            skills = await node.ok(
                "node.skills.update", {"skills": [{"name": "snap", "description": "d", "content": "# snap"}]}
            )
            assert skills["skills"][0]["name"] == "snap"
            tools = await node.ok(
                "node.pluginTools.update",
                {
                    "tools": [
                        {"pluginId": "p", "name": "snap", "description": "d", "command": "camera.snap"},
                        {"pluginId": "p", "name": "sneaky", "description": "d", "command": "not.declared"},
                    ]
                },
            )
            assert [t["name"] for t in tools["tools"]] == ["snap"]  # only declared commands
            inventory = {"protocolFeatures": ["node-worker-supervisor-v6"], "workerHost": {"enabled": False}}
            assert await node.ok("node.runnerInventory.update", inventory) == {"nodeId": ident.device_id}
            bad = await node.call(
                "node.skills.update", {"skills": [{"name": "a--b", "description": "d", "content": "c"}]}
            )
            assert bad["error"]["code"] == "INVALID_REQUEST"
            described = await admin.ok("node.describe", {"nodeId": ident.device_id})
            assert described["skills"] == ["snap"] and described["pluginTools"] == ["snap"]
            paired = (await admin.ok("node.pair.list"))["paired"]
            assert [p["nodeId"] for p in paired] == [ident.device_id]

            renamed = await admin.ok("device.pair.rename", {"deviceId": ident.device_id, "label": "Kitchen"})
            assert renamed == {"deviceId": ident.device_id, "label": "Kitchen"}
            devices = (await admin.ok("device.pair.list"))["paired"]
            assert [d["displayName"] for d in devices if d["deviceId"] == ident.device_id] == ["Kitchen"]
            unknown = await admin.call("device.pair.rename", {"deviceId": "nope", "label": "x"})
            assert unknown["error"]["details"]["reason"] == "DEVICE_NOT_FOUND"


async def test_session_message_subscription_is_per_connection(gateway: GatewayProc) -> None:
    async with Client.open_connected(gateway.url, scopes=ALL_SCOPES) as c:
        sub = await c.ok("sessions.messages.subscribe", {"key": "main", "includeApprovals": True})
        assert sub == {"subscribed": True, "key": "agent:main:main"}
        unsub = await c.ok("sessions.messages.unsubscribe", {"key": "agent:main:main"})
        assert unsub == {"subscribed": False, "key": "agent:main:main"}
        # a connection cannot follow more sessions than the bound
        results = [await c.call("sessions.messages.subscribe", {"key": f"k{i}"}) for i in range(257)]
        assert sum(1 for r in results if r["ok"]) == 256
        assert [r["error"]["details"]["reason"] for r in results if not r["ok"]] == ["SUBSCRIPTION_LIMIT"]


async def test_runs_announce_their_session_to_subscribers_only(gateway: GatewayProc) -> None:
    async with (
        Client.open_connected(gateway.url, scopes=ALL_SCOPES) as subscribed,
        Client.open_connected(gateway.url, scopes=ALL_SCOPES) as other,
    ):
        assert await subscribed.ok("sessions.subscribe", {}) == {"subscribed": True}
        rid, _ = await start_agent(other, "hi", "announce-1", session="announce")
        await collect_run(other, "announce-1", rid)
        started = await subscribed.until(
            lambda f: f.get("event") == "sessions.changed" and f["payload"]["reason"] == "agent.run.started"
        )
        finished = await subscribed.until(
            lambda f: f.get("event") == "sessions.changed" and f["payload"]["reason"] == "agent.run.finished"
        )
        for changed in (started, finished):
            assert changed["payload"]["sessionKey"] == "agent:main:announce"
            assert changed["payload"]["runId"] == "announce-1" and changed["payload"]["agentId"] == "main"
        assert finished["payload"]["phase"] == "end"
        assert not [f for f in other.frames if f.get("event") == "sessions.changed"]
