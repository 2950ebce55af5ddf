"""``node.pair.list|approve|reject``: pairing requests of nodes (``openclaw nodes pending|approve``).

A node pairs like any device (``core.pairing``); these methods show and settle
the requests whose role is ``node``, with what each node declared (commands,
caps). Approving a node needs more than ``operator.pairing`` when its commands
reach further, as in OpenClaw: ordinary commands also need ``operator.write``,
and commands that run programs or read the node's files need ``operator.admin``.
The node itself keeps retrying its connect (see ``pairing_required_details``) and
gets in on its next attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol.errors import ErrorCode, RpcError, not_found
from ..protocol.methods import ADMIN, PAIRING, WRITE, EmptyParams, PairRequestParams
from .pairing import PairingService, PairRequest, node_request_view
from .rpc import Call, Dispatcher

__all__ = ["ADMIN_NODE_COMMANDS", "register_node_pairing_handlers", "required_approval_scopes"]

# Node commands whose approval takes operator.admin (OpenClaw's node-pairing-authz).
ADMIN_NODE_COMMANDS = frozenset(
    {
        "system.run",
        "system.run.prepare",
        "system.which",
        "browser.proxy",
        "browser.proxy.upload.v1",
        "fs.listDir",
        "system.execApprovals.get",
        "system.execApprovals.set",
    }
)


def required_approval_scopes(commands: list[str]) -> list[str]:
    """The scopes an operator needs to approve a node declaring ``commands``."""
    if not commands:
        return [PAIRING]
    if any(c in ADMIN_NODE_COMMANDS for c in commands):
        return [PAIRING, ADMIN]
    return [PAIRING, WRITE]


def _node_request(pairing: PairingService, request_id: str) -> PairRequest:
    req = pairing.pending.get(request_id)
    if req is None or req.role != "node":
        raise not_found("unknown pairing request", "PAIRING_REQUEST_NOT_FOUND", requestId=request_id)
    return req


def register_node_pairing_handlers(dispatcher: Dispatcher, pairing: PairingService, clock: Callable[[], int]) -> None:
    def scopes_of(call: Call) -> frozenset[str]:
        principal = call.conn.principal
        return principal.scopes if principal is not None else frozenset()

    async def pair_list(call: Call, p: EmptyParams) -> Any:
        listing = await pairing.list(clock())
        pending = [node_request_view(r) for r in pairing.pending.values() if r.role == "node"]
        for entry in pending:
            entry["requiredApproveScopes"] = required_approval_scopes(entry["commands"])
        paired = [
            {**view, "nodeId": view["deviceId"], "approvedAtMs": view["createdAtMs"]}
            for view in listing["paired"]
            if view["role"] == "node"
        ]
        return {"pending": pending, "paired": paired}

    async def pair_approve(call: Call, p: PairRequestParams) -> Any:
        req = _node_request(pairing, p.requestId)
        held = scopes_of(call)
        required = required_approval_scopes(req.commands)
        missing = next((s for s in required if s not in held), None)
        if missing is not None:
            raise RpcError(
                ErrorCode.FORBIDDEN,
                f"missing scope: {missing}",
                details={"code": "MISSING_SCOPE", "missingScope": missing, "requiredScopes": required},
            )
        approved = await pairing.approve(p.requestId, held, clock())
        node = {**approved["device"], "nodeId": req.device_id, "commands": list(req.commands), "caps": list(req.caps)}
        pairing.publish(
            "node.pair.resolved",
            {"requestId": p.requestId, "nodeId": req.device_id, "decision": "approved", "ts": clock()},
        )
        return {"requestId": p.requestId, "node": node}

    async def pair_reject(call: Call, p: PairRequestParams) -> Any:
        req = _node_request(pairing, p.requestId)
        await pairing.reject(p.requestId, clock())
        pairing.publish(
            "node.pair.resolved",
            {"requestId": p.requestId, "nodeId": req.device_id, "decision": "rejected", "ts": clock()},
        )
        return {"requestId": p.requestId, "nodeId": req.device_id}

    dispatcher.register("node.pair.list", pair_list)
    dispatcher.register("node.pair.approve", pair_approve)
    dispatcher.register("node.pair.reject", pair_reject)
