"""Params models for every method, and THE table of methods, roles and scopes.

The table is the single place that says who may call what (default deny: a
method not listed does not exist). Event families have their own scope table,
so a connection only receives what it could have asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .cron import (
    CronAddParams,
    CronGetParams,
    CronListParams,
    CronRunParams,
    CronRunsParams,
    CronUpdateParams,
    SetHeartbeatsParams,
    SystemEventParams,
    WakeParams,
)

__all__ = [
    "ADMIN",
    "APPROVALS",
    "EVENT_SCOPES",
    "METHODS",
    "NODE",
    "PAIRING",
    "READ",
    "SCOPES",
    "WRITE",
    "AgentParams",
    "AgentReplayParams",
    "AgentWaitParams",
    "AuthParams",
    "ChannelRefParams",
    "ChannelsPairingApproveParams",
    "ChannelsPairingDismissParams",
    "ChannelsPairingListParams",
    "ChannelsStatusParams",
    "ChatAbortParams",
    "ChatHistoryParams",
    "ChatSendParams",
    "ClientInfo",
    "ConfigGetParams",
    "ConfigPatchParams",
    "ConfigSetParams",
    "ConnectParams",
    "DeviceIdParams",
    "DeviceParams",
    "DeviceTokenRevokeParams",
    "DeviceTokenRotateParams",
    "EmptyParams",
    "ExecApprovalResolveParams",
    "MethodSpec",
    "NodeDescribeParams",
    "NodeEventParams",
    "NodeInvokeParams",
    "NodeInvokeResultParams",
    "PairRequestParams",
    "SendParams",
    "SessionKeyParams",
    "SessionsListParams",
    "expand_scopes",
]

READ = "operator.read"
WRITE = "operator.write"
ADMIN = "operator.admin"
APPROVALS = "operator.approvals"
PAIRING = "operator.pairing"
SCOPES: tuple[str, ...] = (READ, WRITE, ADMIN, APPROVALS, PAIRING)
# The pseudo-scope every role:"node" connection holds (and no operator can): node-only
# methods and events need it, as in OpenClaw's method table.
NODE = "node"

NonEmpty = Annotated[str, Field(min_length=1, max_length=4096)]
Key = Annotated[str, Field(min_length=1, max_length=512)]


def expand_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """Admin implies every scope; write implies read."""
    held = set(scopes)
    if ADMIN in held:
        held.update(SCOPES)
    if WRITE in held:
        held.add(READ)
    return frozenset(held)


class _Params(BaseModel):
    # Unknown fields are ignored rather than refused: OpenClaw clients send
    # optional fields (agentId, thinking, ...) that agenthub does not use.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientInfo(_Closed):
    id: NonEmpty
    version: NonEmpty
    platform: NonEmpty
    mode: NonEmpty
    displayName: NonEmpty | None = None
    deviceFamily: NonEmpty | None = None
    modelIdentifier: NonEmpty | None = None
    timeZone: Annotated[str, Field(max_length=64)] | None = None
    buildId: Annotated[str, Field(max_length=96)] | None = None
    instanceId: NonEmpty | None = None


class AuthParams(_Closed):
    token: Annotated[str, Field(max_length=4096)] | None = None
    deviceToken: Annotated[str, Field(max_length=4096)] | None = None
    password: Annotated[str, Field(max_length=4096)] | None = None
    bootstrapToken: Annotated[str, Field(max_length=4096)] | None = None


class DeviceParams(_Closed):
    id: NonEmpty
    publicKey: NonEmpty
    signature: NonEmpty
    signedAt: Annotated[int, Field(ge=0)]
    nonce: NonEmpty


class ConnectParams(_Params):
    minProtocol: Annotated[int, Field(ge=1)]
    maxProtocol: Annotated[int, Field(ge=1)]
    client: ClientInfo
    role: Literal["operator", "node"] = "operator"
    scopes: Annotated[list[NonEmpty], Field(max_length=64)] = []
    caps: Annotated[list[NonEmpty], Field(max_length=256)] = []
    commands: Annotated[list[NonEmpty], Field(max_length=1024)] | None = None
    permissions: dict[str, bool] | None = None
    auth: AuthParams | None = None
    device: DeviceParams | None = None
    locale: Annotated[str, Field(max_length=64)] | None = None
    userAgent: Annotated[str, Field(max_length=512)] | None = None


class EmptyParams(_Params):
    pass


class AgentParams(_Params):
    message: Annotated[str, Field(min_length=1, max_length=200_000)]
    idempotencyKey: Key
    sessionKey: Key | None = None
    timeout: Annotated[int, Field(ge=0)] | None = None


class AgentWaitParams(_Params):
    runId: Key
    timeoutMs: Annotated[int, Field(ge=0, le=3_600_000)] = 30_000


class AgentReplayParams(_Params):
    runId: Key
    afterSeq: Annotated[int, Field(ge=0)] = 0
    epoch: Annotated[str, Field(max_length=64)] | None = None


class ChatSendParams(_Params):
    sessionKey: Key
    message: Annotated[str, Field(max_length=200_000)]
    idempotencyKey: Key
    timeoutMs: Annotated[int, Field(ge=0)] | None = None


class ChatHistoryParams(_Params):
    sessionKey: Key
    limit: Annotated[int, Field(ge=1, le=1000)] = 200


class ChatAbortParams(_Params):
    sessionKey: Key
    runId: Key | None = None


class SessionsListParams(_Params):
    limit: Annotated[int, Field(ge=1, le=10_000)] = 500


class SessionKeyParams(_Params):
    key: Key


class SendParams(_Params):
    message: Annotated[str, Field(min_length=1, max_length=200_000)]
    idempotencyKey: Key
    sessionKey: Key | None = None
    to: Key | None = None
    channel: Key | None = None
    accountId: Key | None = None
    threadId: Key | None = None


class ChannelsStatusParams(_Params):
    probe: bool = False
    timeoutMs: Annotated[int, Field(ge=0, le=600_000)] | None = None
    channel: Key | None = None


class ChannelRefParams(_Params):
    """``channels.start|stop|logout``: one account of one channel (the default account when omitted)."""

    channel: Key
    accountId: Annotated[str, Field(max_length=512)] | None = None


class ChannelsPairingListParams(_Params):
    channel: Key | None = None
    accountId: Key | None = None


class ChannelsPairingApproveParams(_Params):
    """OpenClaw's params (``requestId`` from ``channels.pairing.list``), or the sender's ``code``."""

    channel: Key
    accountId: Key | None = None
    requestId: Key | None = None
    code: Annotated[str, Field(min_length=4, max_length=32)] | None = None
    notify: bool = False
    bootstrapCommandOwner: bool = False


class ChannelsPairingDismissParams(_Params):
    channel: Key
    accountId: Key | None = None
    requestId: Key


class ConfigGetParams(_Params):
    pass


class ConfigSetParams(_Params):
    config: dict[str, Any] | None = None
    raw: Annotated[str, Field(max_length=1_000_000)] | None = None
    baseHash: str | None = None


class ConfigPatchParams(_Params):
    patch: dict[str, Any] | None = None
    raw: Annotated[str, Field(max_length=1_000_000)] | None = None
    baseHash: str | None = None


class PairRequestParams(_Params):
    requestId: Key


class DeviceIdParams(_Params):
    deviceId: Key


class DeviceTokenRotateParams(_Params):
    deviceId: Key
    role: Key
    scopes: Annotated[list[NonEmpty], Field(max_length=64)] | None = None


class DeviceTokenRevokeParams(_Params):
    deviceId: Key
    role: Key


class NodeDescribeParams(_Params):
    nodeId: Key


class NodeInvokeParams(_Params):
    nodeId: Key
    command: Key
    params: Any = None
    timeoutMs: Annotated[int, Field(ge=1, le=3_600_000)] | None = None
    idempotencyKey: Key


class NodeInvokeResultParams(_Params):
    id: Key
    nodeId: Key | None = None
    ok: bool
    payload: Any = None
    payloadJSON: Annotated[str, Field(max_length=1_000_000)] | None = None
    error: dict[str, Any] | None = None


class NodeEventParams(_Params):
    event: Key
    payload: Any = None
    payloadJSON: Annotated[str, Field(max_length=1_000_000)] | None = None


class ExecApprovalResolveParams(_Params):
    id: Key
    decision: Literal["allow-once", "allow-always", "deny", "allow", "approve", "reject"]


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A method's params model, the role that may call it, and the scope it needs."""

    params: type[BaseModel]
    scope: str | None
    role: Literal["operator", "node"] = "operator"
    summary: str = ""


METHODS: dict[str, MethodSpec] = {
    "health": MethodSpec(EmptyParams, None, summary="liveness and component health"),
    "status": MethodSpec(EmptyParams, READ, summary="runs, sessions, connections, uptime"),
    "system-presence": MethodSpec(EmptyParams, READ, summary="who is connected"),
    "agent": MethodSpec(AgentParams, WRITE, summary="run one agent turn; two responses"),
    "agent.wait": MethodSpec(AgentWaitParams, WRITE, summary="wait for a run to end"),
    "agent.replay": MethodSpec(AgentReplayParams, READ, summary="missed events of a run"),
    "chat.send": MethodSpec(ChatSendParams, WRITE, summary="send a chat message to a session"),
    "chat.history": MethodSpec(ChatHistoryParams, READ, summary="a session's transcript"),
    "chat.abort": MethodSpec(ChatAbortParams, WRITE, summary="abort a session's run"),
    "send": MethodSpec(SendParams, WRITE, summary="post a message to a session or through a channel"),
    "channels.status": MethodSpec(ChannelsStatusParams, READ, summary="each channel account's state"),
    "channels.start": MethodSpec(ChannelRefParams, ADMIN, summary="start a channel account"),
    "channels.stop": MethodSpec(ChannelRefParams, ADMIN, summary="stop a channel account"),
    "channels.logout": MethodSpec(ChannelRefParams, ADMIN, summary="stop a channel account until started again"),
    "channels.pairing.list": MethodSpec(ChannelsPairingListParams, PAIRING, summary="pending DM pairing requests"),
    "channels.pairing.approve": MethodSpec(
        ChannelsPairingApproveParams, PAIRING, summary="allow a sender by request id or pairing code"
    ),
    "channels.pairing.dismiss": MethodSpec(ChannelsPairingDismissParams, PAIRING, summary="drop a pairing request"),
    "sessions.list": MethodSpec(SessionsListParams, READ, summary="known sessions"),
    "sessions.reset": MethodSpec(SessionKeyParams, ADMIN, summary="clear a session's transcript"),
    "sessions.delete": MethodSpec(SessionKeyParams, ADMIN, summary="delete a session"),
    "config.get": MethodSpec(ConfigGetParams, READ, summary="effective config, secrets redacted"),
    "config.set": MethodSpec(ConfigSetParams, ADMIN, summary="replace the stored config"),
    "config.patch": MethodSpec(ConfigPatchParams, ADMIN, summary="merge-patch the stored config"),
    "device.pair.list": MethodSpec(EmptyParams, PAIRING, summary="pending pairing requests and paired devices"),
    "device.pair.approve": MethodSpec(PairRequestParams, PAIRING, summary="approve a pairing request"),
    "device.pair.reject": MethodSpec(PairRequestParams, PAIRING, summary="reject a pairing request"),
    "device.pair.remove": MethodSpec(DeviceIdParams, PAIRING, summary="unpair a device, closing its sockets"),
    "device.token.rotate": MethodSpec(DeviceTokenRotateParams, PAIRING, summary="issue a new device token"),
    "device.token.revoke": MethodSpec(DeviceTokenRevokeParams, PAIRING, summary="revoke a device token"),
    "node.list": MethodSpec(EmptyParams, READ, summary="connected and paired nodes"),
    "node.describe": MethodSpec(NodeDescribeParams, READ, summary="one node's caps and commands"),
    "node.invoke": MethodSpec(NodeInvokeParams, WRITE, summary="run a declared command on a node"),
    "node.invoke.result": MethodSpec(NodeInvokeResultParams, NODE, "node", summary="a node answers an invoke"),
    "node.event": MethodSpec(NodeEventParams, NODE, "node", summary="a node publishes an event"),
    "exec.approval.resolve": MethodSpec(ExecApprovalResolveParams, APPROVALS, summary="allow or deny a command"),
    # The scheduler (core.scheduler): OpenClaw's names, params and scopes.
    "cron.status": MethodSpec(EmptyParams, READ, summary="scheduler state: enabled, jobs, next wake"),
    "cron.list": MethodSpec(CronListParams, READ, summary="scheduled jobs, one page"),
    "cron.get": MethodSpec(CronGetParams, READ, summary="one scheduled job"),
    "cron.add": MethodSpec(CronAddParams, ADMIN, summary="create a scheduled job"),
    "cron.update": MethodSpec(CronUpdateParams, ADMIN, summary="patch a scheduled job"),
    "cron.remove": MethodSpec(CronGetParams, ADMIN, summary="delete a scheduled job"),
    "cron.run": MethodSpec(CronRunParams, ADMIN, summary="run a job now"),
    "cron.runs": MethodSpec(CronRunsParams, READ, summary="a job's run history"),
    "wake": MethodSpec(WakeParams, WRITE, summary="queue a system event; wake the agent now or at its next heartbeat"),
    "system-event": MethodSpec(SystemEventParams, ADMIN, summary="queue a system event for a session's next turn"),
    "last-heartbeat": MethodSpec(EmptyParams, READ, summary="the last heartbeat event"),
    "set-heartbeats": MethodSpec(SetHeartbeatsParams, ADMIN, summary="pause or resume heartbeat turns"),
}

# Event families and the scope a connection needs to receive them (None: everyone).
EVENT_SCOPES: dict[str, str | None] = {
    "connect.challenge": None,
    "tick": None,
    "shutdown": None,
    "presence": READ,
    "health": READ,
    "agent": READ,
    "chat": READ,
    "device.pair.requested": PAIRING,
    "device.pair.resolved": PAIRING,
    "node.invoke.request": NODE,
    "node.event": READ,
    "exec.approval.requested": APPROVALS,
    "exec.approval.resolved": APPROVALS,
    "cron": READ,
    "heartbeat": READ,
}
