"""Models of results and event payloads: what the gateway answers and pushes, for the published schema.

The handlers build their answers as plain dicts (the hot path never pays for a
model); these models describe them for ``agenthub protocol schema``, the
AsyncAPI document and the TypeScript types, and the tests hold the gateway to
them (``tests/protocol/test_results.py`` validates live frames against the
generated schema). Each model lists the fields a client may rely on and allows
more (``extra="allow"``): OpenClaw's shapes carry many optional fields, and a
client must ignore what it does not know.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

__all__ = [
    "EVENT_PAYLOADS",
    "RESULTS",
    "AgentAccepted",
    "AgentEventPayload",
    "ChatEventPayload",
    "HelloOk",
    "RunResult",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- connect -----------------------------------------------------------------------------------
class ServerInfo(_Open):
    version: str
    connId: str


class Features(_Open):
    methods: list[str] = Field(description="every method this gateway serves")
    events: list[str] = Field(default_factory=list, description="every event family it may push")


class HelloOk(_Open):
    """The ``connect`` result: the session is open."""

    type: Literal["hello-ok"]
    protocol: int
    server: ServerInfo
    features: Features
    snapshot: dict[str, Any]
    auth: dict[str, Any] | None = None
    policy: dict[str, Any]


# -- results -----------------------------------------------------------------------------------
class HealthResult(_Open):
    ok: bool
    ts: int
    defaultAgentId: str | None = None
    provider: str | None = None
    connections: int | None = None


class AgentAccepted(_Open):
    """The first ``agent`` response: the run is queued (the final result follows under the same id)."""

    runId: str
    status: Literal["accepted"]
    acceptedAt: int


RunStatusName = Literal["queued", "running", "ok", "error", "aborted", "timeout"]


class RunResult(_Open):
    """A run's outcome: the final ``agent`` response and ``agent.wait``'s answer."""

    runId: str
    status: RunStatusName
    summary: str
    error: str | None = None
    stopReason: str | None = None
    startedAt: int | None = None
    endedAt: int | None = None
    result: dict[str, Any] | None = Field(default=None, description="OpenClaw's {payloads: [{text}], ...}")


class ReplayedEvent(_Open):
    event: Literal["agent", "chat"]
    payload: dict[str, Any]


class AgentReplayResult(_Open):
    runId: str
    epoch: str = Field(description="the stream's epoch: a different one means the history was lost")
    lastSeq: int
    done: bool
    events: list[ReplayedEvent]


class ChatSendResult(_Open):
    runId: str
    status: str


class ChatAbortResult(_Open):
    ok: bool
    aborted: bool
    runIds: list[str]


class ChatHistoryResult(_Open):
    sessionKey: str
    messages: list[dict[str, Any]]


class SessionRow(_Open):
    key: str


class SessionsListResult(_Open):
    ts: int
    count: int
    sessions: list[SessionRow]


class PresenceEntry(_Open):
    ts: int
    host: str | None = None
    ip: str | None = None
    mode: str | None = None
    roles: list[str] = []
    scopes: list[str] = []
    instanceId: str | None = None


class NodeListResult(_Open):
    ts: int
    nodes: list[dict[str, Any]]


class ModelsListResult(_Open):
    models: list[dict[str, Any]]


class AgentsListResult(_Open):
    defaultId: str
    agents: list[dict[str, Any]]


class ConfigGetResult(_Open):
    config: dict[str, Any] = Field(description="the effective settings, secrets as __REDACTED__")
    sources: dict[str, str] = Field(description="setting path -> default | file | stored | env | flag")
    warnings: list[str]


class OkResult(_Open):
    ok: bool


# -- event payloads ----------------------------------------------------------------------------
class ConnectChallenge(_Open):
    nonce: str
    ts: int


class TickEvent(_Open):
    ts: int


class ShutdownEvent(_Open):
    reason: str
    restartExpectedMs: int | None = None


class PresenceEvent(_Open):
    presence: list[PresenceEntry]


class AgentEventPayload(_Open):
    """One step of a run: ``seq`` 1..n per run without a gap (``agent.replay`` resumes from one)."""

    runId: str
    seq: int = Field(ge=1)
    stream: str = Field(description="lifecycle | assistant | thinking | tool | ...")
    ts: int
    data: dict[str, Any]
    sessionKey: str | None = None


class ChatEventPayload(_Open):
    """A chat-level view of a run: ``delta`` (throttled), then ``final``, ``aborted`` or ``error``."""

    runId: str
    sessionKey: str
    state: Literal["delta", "final", "aborted", "error"]
    seq: int = Field(description="the seq of the agent event this derives from")
    message: dict[str, Any] | None = None
    errorMessage: str | None = None


class SystemPresenceResult(RootModel[list[PresenceEntry]]):
    """``system-presence``: who is connected (the ``presence`` event's list)."""


class SessionsChangedEvent(_Open):
    reason: str
    ts: int
    sessionKey: str | None = None


class DevicePairRequestedEvent(_Open):
    requestId: str
    deviceId: str
    publicKey: str
    ts: int


class DevicePairResolvedEvent(_Open):
    requestId: str
    deviceId: str
    decision: str
    ts: int


class NodeInvokeRequestEvent(_Open):
    id: str
    nodeId: str
    command: str
    paramsJSON: str | None = None
    timeoutMs: int | None = None


class NodePairRequestedEvent(_Open):
    requestId: str
    nodeId: str
    ts: int
    commands: list[str] = []


class NodePairResolvedEvent(_Open):
    requestId: str
    decision: str


class NodeEventPayload(_Open):
    nodeId: str
    event: str
    ts: int


class ApprovalRequestedEvent(_Open):
    id: str
    request: dict[str, Any] = Field(description="{command, nodeId, params, runId}")
    createdAtMs: int
    expiresAtMs: int


class ApprovalResolvedEvent(_Open):
    id: str
    decision: str
    ts: int


class CronEventPayload(_Open):
    """A job changed (``added|updated|removed``) or ran (``started``, ``finished`` with its status)."""

    jobId: str
    action: str


class HeartbeatEventPayload(_Open):
    ts: int


RESULTS: dict[str, type[BaseModel]] = {
    "connect": HelloOk,
    "health": HealthResult,
    "agent": RunResult,  # the final response; the first one is AgentAccepted
    "agent.wait": RunResult,
    "agent.replay": AgentReplayResult,
    "chat.send": ChatSendResult,
    "chat.abort": ChatAbortResult,
    "chat.history": ChatHistoryResult,
    "sessions.list": SessionsListResult,
    "system-presence": SystemPresenceResult,
    "node.list": NodeListResult,
    "models.list": ModelsListResult,
    "agents.list": AgentsListResult,
    "config.get": ConfigGetResult,
    "sessions.reset": OkResult,
}

# Every event family of ``methods.EVENT_SCOPES``, with its payload (``health`` carries a health snapshot).
EVENT_PAYLOADS: dict[str, type[BaseModel]] = {
    "connect.challenge": ConnectChallenge,
    "tick": TickEvent,
    "shutdown": ShutdownEvent,
    "presence": PresenceEvent,
    "sessions.changed": SessionsChangedEvent,
    "health": HealthResult,
    "agent": AgentEventPayload,
    "chat": ChatEventPayload,
    "device.pair.requested": DevicePairRequestedEvent,
    "device.pair.resolved": DevicePairResolvedEvent,
    "node.pair.requested": NodePairRequestedEvent,
    "node.pair.resolved": NodePairResolvedEvent,
    "node.invoke.request": NodeInvokeRequestEvent,
    "node.event": NodeEventPayload,
    "exec.approval.requested": ApprovalRequestedEvent,
    "exec.approval.resolved": ApprovalResolvedEvent,
    "cron": CronEventPayload,
    "heartbeat": HeartbeatEventPayload,
}
