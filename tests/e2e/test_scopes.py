"""The scope matrix, walked from the method table in code: every method is refused
without its scope (or role) and allowed with it; unlisted methods do not exist."""

from __future__ import annotations

from typing import Any

from agenthub.protocol.methods import (
    ADMIN,
    APPROVALS,
    EVENT_SCOPES,
    METHODS,
    NODE,
    PAIRING,
    QUESTIONS,
    READ,
    SCOPES,
    SESSIONS_READ,
    SESSIONS_WRITE,
    TALK,
    TALK_SECRETS,
    WRITE,
)

from ..conftest import GatewayProc, RawClient

# The scopes that imply each scope (admin implies all, write implies read).
IMPLIED_BY = {
    READ: {READ, WRITE, ADMIN},
    WRITE: {WRITE, ADMIN},
    ADMIN: {ADMIN},
    APPROVALS: {APPROVALS, ADMIN},
    PAIRING: {PAIRING, ADMIN},
    QUESTIONS: {QUESTIONS, ADMIN},
    TALK: {TALK, ADMIN},
    TALK_SECRETS: {TALK_SECRETS, ADMIN},
    SESSIONS_READ: {SESSIONS_READ, ADMIN},
    SESSIONS_WRITE: {SESSIONS_WRITE, ADMIN},
}


def test_every_method_and_event_declares_a_known_scope() -> None:
    assert set(IMPLIED_BY) == set(SCOPES)
    for name, spec in METHODS.items():
        assert spec.role in ("operator", "node"), name
        if spec.role == "node":
            assert spec.scope == NODE, name
        else:
            assert spec.scope is None or spec.scope in SCOPES, name
    for event, scope in EVENT_SCOPES.items():
        assert scope is None or scope in SCOPES or scope == NODE, event


async def test_scope_matrix(gateway: GatewayProc) -> None:
    operator_methods = {n: s for n, s in METHODS.items() if s.role == "operator"}
    async with RawClient.open(gateway.url) as admin:
        hello = (await admin.connect(scopes=[ADMIN]))["payload"]
        assert set(hello["features"]["methods"]) == set(METHODS)
        assert set(hello["features"]["events"]) == set(EVENT_SCOPES)
        res = await admin.call("no.such.method")
        assert res["error"]["code"] == "INVALID_REQUEST"
    for scope in SCOPES:
        wanted = [n for n, s in operator_methods.items() if s.scope == scope]
        without = sorted(set(SCOPES) - IMPLIED_BY[scope])
        async with RawClient.open(gateway.url) as c:
            assert (await c.connect(scopes=without))["ok"]
            for method in wanted:
                res = await c.call(method, {})
                assert res["ok"] is False and res["error"]["code"] == "FORBIDDEN", (method, res)
                assert res["error"]["details"] == {
                    "code": "MISSING_SCOPE",
                    "missingScope": scope,
                    "requiredScopes": [scope],
                }, method
                assert (await c.call("health"))["ok"]  # keeps the unauthorized streak short
        async with RawClient.open(gateway.url) as c:
            assert (await c.connect(scopes=[scope]))["ok"]
            for method in wanted:
                res = await c.call(method, {})
                assert res["ok"] or res["error"]["code"] != "FORBIDDEN", (method, res)


async def test_roles_are_separate(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as node:
        res = await node.connect(role="node", scopes=[], commands=["system.info"])
        assert res["ok"] and res["payload"]["auth"]["role"] == "node"
        for method, spec in METHODS.items():
            if spec.role == "node":
                continue
            res = await node.call(method, {})
            assert res["error"]["code"] == "FORBIDDEN", (method, res)
            assert res["error"]["details"] == {"requiredRole": "operator"}
            assert (await node.call("node.event", {"event": "ping"}))["ok"]
    async with RawClient.open(gateway.url) as op:
        assert (await op.connect(scopes=[ADMIN]))["ok"]
        for method in ("node.invoke.result", "node.event"):
            res = await op.call(method, {"id": "x", "ok": True, "event": "x"})
            assert res["error"]["code"] == "FORBIDDEN" and res["error"]["details"] == {"requiredRole": "node"}


async def test_unauthorized_flood_closes_the_socket(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as c:
        assert (await c.connect(scopes=[READ]))["ok"]
        for _ in range(10):
            assert (await c.call("config.set", {}))["error"]["code"] == "FORBIDDEN"
        await c.request("config.set", {})
        code, reason = await c.closed()
        assert code == 1008 and reason == "too many unauthorized calls"


async def test_hello_snapshot_shows_presence_only_with_its_scope(gateway: GatewayProc) -> None:
    async with RawClient.open(gateway.url) as reader:
        hello = (await reader.connect(scopes=[READ]))["payload"]
        assert [p["instanceId"] for p in hello["snapshot"]["presence"]] == [hello["server"]["connId"]]
        async with RawClient.open(gateway.url) as other:
            hello = (await other.connect(scopes=[APPROVALS]))["payload"]
            assert hello["snapshot"]["presence"] == []  # neither its own entry nor the reader's
            assert (await other.call("system-presence"))["error"]["code"] == "FORBIDDEN"


MISSING_ADMIN = {"code": "MISSING_SCOPE", "missingScope": ADMIN, "requiredScopes": [ADMIN]}


async def test_slash_commands_need_the_scope_of_the_method_they_stand_for(gateway: GatewayProc) -> None:
    """``chat.send "/reset"`` is ``sessions.reset``: a client refused that method is refused the command."""

    def send(message: str, key: str) -> dict[str, str]:
        return {"sessionKey": "guarded", "message": message, "idempotencyKey": key}

    def final_of(key: str) -> Any:
        return lambda f: f.get("event") == "chat" and f["payload"]["runId"] == key and f["payload"]["state"] == "final"

    async with RawClient.open(gateway.url) as admin, RawClient.open(gateway.url) as writer:
        assert (await admin.connect(scopes=[ADMIN]))["ok"]
        assert (await writer.connect(scopes=[WRITE]))["ok"]
        assert (await admin.call("chat.send", send("remember me", "g-1")))["ok"]
        await admin.until(final_of("g-1"))
        before = (await admin.call("chat.history", {"sessionKey": "guarded"}))["payload"]["messages"]
        assert len(before) == 2
        assert (await writer.call("sessions.reset", {"key": "guarded"}))["error"]["details"] == MISSING_ADMIN

        refused = await writer.call("chat.send", send(" /reset ", "g-2"))
        assert refused["ok"] is False
        assert refused["error"] == {
            "code": "FORBIDDEN",
            "message": f"missing scope: {ADMIN}",
            "details": MISSING_ADMIN,
        }
        assert (await admin.call("chat.history", {"sessionKey": "guarded"}))["payload"]["messages"] == before
        # the commands whose methods a writer may call still work for it
        for i, command in enumerate(("/stop", "/status", "/help", "/context list")):
            res = await writer.call("chat.send", send(command, f"g-w{i}"))
            assert res["ok"], (command, res)
        # the refusal did not spend the key: an admin's /reset with it runs
        done = await admin.call("chat.send", send("/reset", "g-2"))
        assert done["payload"] == {"runId": "g-2", "status": "started"}
        await admin.until(final_of("g-2"))
        assert (await admin.call("chat.history", {"sessionKey": "guarded"}))["payload"]["messages"] == []


async def test_unknown_operator_scopes_are_accepted_and_grant_nothing(gateway: GatewayProc) -> None:
    """OpenClaw's clients ask for scopes agenthub has no method for (the Control UI for
    operator.questions, `openclaw gateway call` for all seven): no connect error."""
    async with RawClient.open(gateway.url) as c:
        res = await c.connect(scopes=[READ, QUESTIONS, TALK_SECRETS, "operator.future.thing"])
        assert res["ok"], res
        assert set(res["payload"]["auth"]["scopes"]) == {READ, QUESTIONS, TALK_SECRETS, "operator.future.thing"}
        denied = await c.call("chat.send", {"sessionKey": "x", "message": "hi", "idempotencyKey": "k"})
        assert denied["error"]["code"] == "FORBIDDEN" and denied["error"]["details"]["missingScope"] == WRITE
    async with RawClient.open(gateway.url) as c:
        res = await c.connect(scopes=[READ, "admin"])
        assert res["error"] == {"code": "INVALID_REQUEST", "message": "unknown scope: admin"}
        assert (await c.closed())[0] == 1008
