"""Params models for every method, and THE table of methods, roles and scopes.

The table is the single place that says who may call what (default deny: a
method not listed does not exist). Event families have their own scope table,
so a connection only receives what it could have asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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
QUESTIONS = "operator.questions"
TALK = "operator.talk"
TALK_SECRETS = "operator.talk.secrets"
SESSIONS_READ = "operator.sessions.read"
SESSIONS_WRITE = "operator.sessions.write"
# OpenClaw's closed set of operator scopes (its operator-scopes.ts). Clients ask for
# all of them (the Control UI asks for operator.questions, `openclaw gateway call` for
# the talk scopes): each is accepted and held even where no agenthub method needs it.
SCOPES: tuple[str, ...] = (
    READ,
    WRITE,
    ADMIN,
    APPROVALS,
    PAIRING,
    QUESTIONS,
    TALK,
    TALK_SECRETS,
    SESSIONS_READ,
    SESSIONS_WRITE,
)
OPERATOR_SCOPE_PREFIX = "operator."
# The pseudo-scope every role:"node" connection holds (and no operator can): node-only
# methods and events need it, as in OpenClaw's method table.
NODE = "node"

NonEmpty = Annotated[str, Field(min_length=1, max_length=4096)]
Key = Annotated[str, Field(min_length=1, max_length=512)]


def is_operator_scope(scope: str) -> bool:
    """``operator.*``: a scope an operator may ask for, known to agenthub or not.

    As in OpenClaw, an unknown ``operator.*`` scope is no connect error: it is held by
    exact name and grants nothing beyond itself (admin satisfies any of them).
    """
    return scope.startswith(OPERATOR_SCOPE_PREFIX) and len(scope) > len(OPERATOR_SCOPE_PREFIX)


def expand_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """Admin implies every known scope; write implies read.

    (OpenClaw's write also satisfies ``operator.talk``; no agenthub method or event
    needs talk, so it is not added here and hello-ok lists what was granted.)
    """
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
    agentId: Key | None = None
    sessionId: Key | None = None
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
    agentId: Key | None = None
    message: Annotated[str, Field(max_length=200_000)]
    idempotencyKey: Key
    timeoutMs: Annotated[int, Field(ge=0)] | None = None


class ChatHistoryParams(_Params):
    sessionKey: Key
    agentId: Key | None = None
    inputRunIds: Annotated[list[Key], Field(max_length=50)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 200


class ChatStartupParams(_Params):
    sessionKey: Key
    agentId: Key | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 200


class ChatAbortParams(_Params):
    sessionKey: Key
    agentId: Key | None = None
    runId: Key | None = None


MAX_SESSIONS_LIST = 10_000  # sessions.list covers the most recently updated sessions, this many at most


class SessionsListParams(_Params):
    limit: Annotated[int, Field(ge=1, le=MAX_SESSIONS_LIST)] = 500
    offset: Annotated[int, Field(ge=0, le=MAX_SESSIONS_LIST)] = 0
    activeMinutes: Annotated[int, Field(ge=1)] | None = None
    includeGlobal: bool = True
    includeUnknown: bool = True
    includeLastMessage: bool = False
    includeDerivedTitles: bool = False
    label: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    agentId: Key | None = None
    search: Annotated[str, Field(max_length=512)] | None = None
    # None (OpenClaw's default): active sessions only; True: archived only; "all": both.
    archived: bool | Literal["all"] | None = None
    spawnedBy: Key | None = None


class SessionsSubscribeParams(SessionsListParams):
    """``{}`` only subscribes; any list parameter also returns the first list."""


class SessionKeyParams(_Params):
    key: Key
    agentId: Key | None = None
    expectedSessionId: Key | None = None


class SessionsDeleteParams(SessionKeyParams):
    # OpenClaw's CLI deletes an archived session with only operator.write by asking archivedOnly.
    archivedOnly: bool = False
    deleteTranscript: bool = True


class SessionsMessagesParams(_Params):
    key: Key
    agentId: Key | None = None


class SessionsPreviewParams(_Params):
    keys: Annotated[list[Key], Field(min_length=1, max_length=100)]
    limit: Annotated[int, Field(ge=1, le=100)] = 12
    maxChars: Annotated[int, Field(ge=20, le=20_000)] = 240


class SessionsResolveParams(_Params):
    key: Key | None = None
    sessionId: Key | None = None
    label: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    agentId: Key | None = None
    allowMissing: bool = False


class SessionsPatchParams(BaseModel):
    """The ``sessions.patch`` fields agenthub keeps; any other field is refused by name."""

    model_config = ConfigDict(extra="allow", frozen=True)

    key: Key
    agentId: Key | None = None
    expectedSessionId: Key | None = None
    label: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    icon: Annotated[str, Field(max_length=64)] | None = None
    color: Annotated[str, Field(max_length=64)] | None = None
    category: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    statusNote: Annotated[str, Field(max_length=120)] | None = None
    pinned: bool | None = None
    unread: bool | None = None
    archived: bool | None = None


class SessionsCompactParams(_Params):
    key: Key
    agentId: Key | None = None
    maxLines: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


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


class DeviceRenameParams(_Params):
    deviceId: Key
    label: Annotated[str, Field(min_length=1, max_length=64)]


def _no_double_dash(name: str) -> str:
    if "--" in name:
        raise ValueError("must not contain '--'")
    return name


class NodeSkillParams(_Params):
    name: Annotated[
        str,
        Field(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"),
        AfterValidator(_no_double_dash),
    ]
    description: Annotated[str, Field(min_length=1, max_length=1024)]
    content: Annotated[str, Field(min_length=1, max_length=65_536)]


class NodeSkillsUpdateParams(_Params):
    skills: Annotated[list[NodeSkillParams], Field(max_length=64)]


class NodePluginToolParams(_Params):
    pluginId: NonEmpty
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
    description: Annotated[str, Field(min_length=1, max_length=4096)]
    command: NonEmpty | None = None


class NodePluginToolsUpdateParams(_Params):
    tools: Annotated[list[NodePluginToolParams], Field(max_length=256)]


class NodeRunnerInventoryParams(_Params):
    protocolFeatures: Annotated[list[NonEmpty], Field(max_length=8)]
    workerHost: dict[str, Any] | None = None


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


class ApprovalIdParams(_Params):
    id: Key


class AgentIdentityParams(_Params):
    agentId: Key | None = None
    sessionKey: Key | None = None


class CommandsListParams(_Params):
    sessionKey: Key | None = None
    agentId: Key | None = None
    scope: Literal["text", "native", "both"] | None = None
    includeArgs: bool = False


class ModelsListParams(_Params):
    agentId: Key | None = None
    view: Literal["default", "configured", "provider-config", "all"] | None = None


class LogsTailParams(_Params):
    cursor: Annotated[int, Field(ge=0)] | None = None
    limit: Annotated[int, Field(ge=1, le=5000)] = 500
    maxBytes: Annotated[int, Field(ge=1, le=1_000_000)] = 250_000


class DiagnosticsStabilityParams(_Params):
    limit: Annotated[int, Field(ge=1, le=10_000)] | None = None
    type: Annotated[str, Field(max_length=128)] | None = None
    sinceSeq: Annotated[int, Field(ge=0)] | None = None


class SkillsStatusParams(_Params):
    agentId: Key | None = None
    sessionKey: Key | None = None


class ToolsCatalogParams(_Params):
    agentId: Key | None = None
    includePlugins: bool = False


class UpdateStatusParams(_Params):
    refreshCheckout: bool = False


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
    "chat.startup": MethodSpec(ChatStartupParams, READ, summary="history, row and defaults of a session"),
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
    "sessions.list": MethodSpec(SessionsListParams, READ, summary="known sessions, newest first"),
    "sessions.subscribe": MethodSpec(SessionsSubscribeParams, READ, summary="sessions.changed events (+ a list)"),
    "sessions.messages.subscribe": MethodSpec(SessionsMessagesParams, READ, summary="one session's messages"),
    "sessions.messages.unsubscribe": MethodSpec(SessionsMessagesParams, READ, summary="stop following a session"),
    "sessions.preview": MethodSpec(SessionsPreviewParams, READ, summary="the last messages of some sessions"),
    "sessions.describe": MethodSpec(SessionKeyParams, READ, summary="one session's row"),
    "sessions.resolve": MethodSpec(SessionsResolveParams, READ, summary="a session by key, sessionId or label"),
    "sessions.patch": MethodSpec(SessionsPatchParams, WRITE, summary="label, pin or archive a session"),
    "sessions.reset": MethodSpec(SessionKeyParams, ADMIN, summary="clear a session's transcript"),
    # write is the first gate; deleting a session that is not archived takes admin (OpenClaw's rule)
    "sessions.delete": MethodSpec(SessionsDeleteParams, WRITE, summary="delete a session (admin unless archived)"),
    "sessions.compact": MethodSpec(SessionsCompactParams, ADMIN, summary="keep only a session's newest messages"),
    "config.get": MethodSpec(ConfigGetParams, READ, summary="effective config, secrets redacted"),
    "config.set": MethodSpec(ConfigSetParams, ADMIN, summary="replace the stored config"),
    "config.patch": MethodSpec(ConfigPatchParams, ADMIN, summary="merge-patch the stored config"),
    "device.pair.list": MethodSpec(EmptyParams, PAIRING, summary="pending pairing requests and paired devices"),
    "device.pair.approve": MethodSpec(PairRequestParams, PAIRING, summary="approve a pairing request"),
    "device.pair.reject": MethodSpec(PairRequestParams, PAIRING, summary="reject a pairing request"),
    "device.pair.remove": MethodSpec(DeviceIdParams, PAIRING, summary="unpair a device, closing its sockets"),
    "device.token.rotate": MethodSpec(DeviceTokenRotateParams, PAIRING, summary="issue a new device token"),
    "device.token.revoke": MethodSpec(DeviceTokenRevokeParams, PAIRING, summary="revoke a device token"),
    "device.pair.rename": MethodSpec(DeviceRenameParams, PAIRING, summary="rename a paired device"),
    "node.pair.list": MethodSpec(EmptyParams, PAIRING, summary="nodes waiting for approval, and paired nodes"),
    "node.pair.approve": MethodSpec(PairRequestParams, PAIRING, summary="approve a node's pairing request"),
    "node.pair.reject": MethodSpec(PairRequestParams, PAIRING, summary="reject a node's pairing request"),
    "node.list": MethodSpec(EmptyParams, READ, summary="connected and paired nodes"),
    "node.describe": MethodSpec(NodeDescribeParams, READ, summary="one node's caps and commands"),
    "node.invoke": MethodSpec(NodeInvokeParams, WRITE, summary="run a declared command on a node"),
    "node.invoke.result": MethodSpec(NodeInvokeResultParams, NODE, "node", summary="a node answers an invoke"),
    "node.event": MethodSpec(NodeEventParams, NODE, "node", summary="a node publishes an event"),
    "node.skills.update": MethodSpec(NodeSkillsUpdateParams, NODE, "node", summary="a node's skill catalog"),
    "node.pluginTools.update": MethodSpec(NodePluginToolsUpdateParams, NODE, "node", summary="a node's tool catalog"),
    "node.runnerInventory.update": MethodSpec(
        NodeRunnerInventoryParams, NODE, "node", summary="whether a node offers to host worker sessions"
    ),
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
    "exec.approval.list": MethodSpec(EmptyParams, APPROVALS, summary="approvals waiting for a decision"),
    "exec.approval.get": MethodSpec(ApprovalIdParams, APPROVALS, summary="one pending approval"),
    "plugin.approval.list": MethodSpec(EmptyParams, APPROVALS, summary="pending plugin approvals (always none)"),
    "agents.list": MethodSpec(EmptyParams, READ, summary="the agents (agenthub has one: main)"),
    "agent.identity.get": MethodSpec(AgentIdentityParams, READ, summary="an agent's name"),
    "commands.list": MethodSpec(CommandsListParams, READ, summary="the slash commands chat understands"),
    "models.list": MethodSpec(ModelsListParams, READ, summary="the model agenthub runs"),
    "question.list": MethodSpec(EmptyParams, QUESTIONS, summary="questions agents asked (agenthub's never ask)"),
    "diagnostics.stability": MethodSpec(DiagnosticsStabilityParams, READ, summary="recent diagnostic events (none)"),
    "usage.status": MethodSpec(EmptyParams, READ, summary="provider quota windows (none tracked)"),
    "skills.status": MethodSpec(SkillsStatusParams, READ, summary="the agent's skills (none)"),
    "tools.catalog": MethodSpec(ToolsCatalogParams, READ, summary="the tools a run may call"),
    "config.schema": MethodSpec(EmptyParams, READ, summary="JSON Schema of the settings"),
    "logs.tail": MethodSpec(LogsTailParams, READ, summary="the gateway's recent log lines"),
    "update.status": MethodSpec(UpdateStatusParams, ADMIN, summary="pending self-update (never: none)"),
}

# Event families and the scope a connection needs to receive them (None: everyone).
EVENT_SCOPES: dict[str, str | None] = {
    "connect.challenge": None,
    "tick": None,
    "shutdown": None,
    "presence": READ,
    "sessions.changed": READ,
    "health": READ,
    "agent": READ,
    "chat": READ,
    "device.pair.requested": PAIRING,
    "device.pair.resolved": PAIRING,
    "node.pair.requested": PAIRING,
    "node.pair.resolved": PAIRING,
    "node.invoke.request": NODE,
    "node.event": READ,
    "exec.approval.requested": APPROVALS,
    "exec.approval.resolved": APPROVALS,
    "cron": READ,
    "heartbeat": READ,
}
