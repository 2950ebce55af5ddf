"""Params of the scheduler's methods: ``cron.*``, ``wake``, ``system-event``, ``set-heartbeats``.

Shapes follow OpenClaw's published schema (``CronAddParams``, ``CronJob``,
``WakeParams``...), with camelCase wire names. agenthub implements three
schedule kinds (``at``, ``every``, ``cron``) and two payload kinds
(``systemEvent``, ``agentTurn``); the others OpenClaw defines (``on-exit``,
``stream``, ``command``, ``script``) are refused with a clear error rather
than accepted and ignored, and so are per-job features agenthub cannot honour
(``trigger``, ``pacing``, ``payload.model``...).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CronAddParams",
    "CronDelivery",
    "CronGetParams",
    "CronListParams",
    "CronPatch",
    "CronPayload",
    "CronRunParams",
    "CronRunsParams",
    "CronSchedule",
    "CronUpdateParams",
    "SetHeartbeatsParams",
    "SystemEventParams",
    "WakeParams",
]

MAX_MESSAGE = 200_000
Id = Annotated[str, Field(min_length=1, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
SessionKey = Annotated[str, Field(min_length=1, max_length=512)]
# What OpenClaw's job shape allows but agenthub does not do: refused, never silently dropped.
UNSUPPORTED_JOB_FIELDS = ("trigger", "pacing", "failureAlert", "declarationKey", "scheduledToolPolicy")
UNSUPPORTED_PAYLOAD_FIELDS = ("model", "fallbacks", "thinking", "toolsAllow", "lightContext")


class _Open(BaseModel):
    """Unknown fields are ignored (clients send optional extras), known ones are validated."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _Wire(BaseModel):
    """A stored shape: unknown fields refused so what is saved is what was meant."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AtSchedule(_Wire):
    kind: Literal["at"]
    at: Annotated[str, Field(min_length=1, max_length=64)]


class EverySchedule(_Wire):
    kind: Literal["every"]
    everyMs: Annotated[int, Field(ge=1, le=8_640_000_000_000_000)]
    anchorMs: Annotated[int, Field(ge=0, le=8_640_000_000_000_000)] | None = None


class CronExprSchedule(_Wire):
    kind: Literal["cron"]
    expr: Annotated[str, Field(min_length=1, max_length=256)]
    tz: Annotated[str, Field(max_length=64)] | None = None
    staggerMs: Annotated[int, Field(ge=0, le=86_400_000)] | None = None


CronSchedule = Annotated[AtSchedule | EverySchedule | CronExprSchedule, Field(discriminator="kind")]


class SystemEventPayload(_Wire):
    kind: Literal["systemEvent"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE)]


class AgentTurnPayload(_Wire):
    kind: Literal["agentTurn"]
    message: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE)]
    timeoutSeconds: Annotated[float, Field(ge=0, le=86_400)] | None = None


CronPayload = Annotated[SystemEventPayload | AgentTurnPayload, Field(discriminator="kind")]


class CronDelivery(_Wire):
    """``announce`` posts the run's reply to ``channel``/``to`` through the gateway's channels."""

    mode: Literal["none", "announce"]
    channel: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    to: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    accountId: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    threadId: str | int | None = None
    bestEffort: bool | None = None


SessionTarget = Annotated[str, Field(pattern=r"^(main|isolated|current|session:.+)$", max_length=600)]


def _refuse(data: Any, fields: tuple[str, ...], where: str) -> None:
    if isinstance(data, dict):
        for name in fields:
            if data.get(name) is not None:
                raise ValueError(f"{where}{name} is not supported by agenthub")


def _check_kind(data: Any, known: tuple[str, ...], what: str) -> None:
    if isinstance(data, dict) and isinstance(data.get("kind"), str) and data["kind"] not in known:
        raise ValueError(f"{what} kind {data['kind']!r} is not supported by agenthub (use {' or '.join(known)})")


def _check_delivery(data: Any) -> None:
    if isinstance(data, dict) and data.get("mode") == "webhook":
        raise ValueError("delivery mode 'webhook' is not supported by agenthub (use announce to a channel)")


class CronAddParams(_Open):
    name: Name
    schedule: CronSchedule
    sessionTarget: SessionTarget
    wakeMode: Literal["next-heartbeat", "now"] = "now"
    payload: CronPayload
    delivery: CronDelivery | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    displayName: Name | None = None
    enabled: bool = True
    deleteAfterRun: bool | None = None
    agentId: Id | None = None
    sessionKey: SessionKey | None = None

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        _refuse(data, UNSUPPORTED_JOB_FIELDS, "")
        if isinstance(data, dict):
            _check_kind(data.get("schedule"), ("at", "every", "cron"), "schedule")
            _check_kind(data.get("payload"), ("systemEvent", "agentTurn"), "payload")
            _refuse(data.get("payload"), UNSUPPORTED_PAYLOAD_FIELDS, "payload.")
            _check_delivery(data.get("delivery"))
        return data


class CronPatch(_Open):
    """``cron.update``'s patch: every field optional; ``payload`` and ``delivery`` merge into the job's."""

    name: Name | None = None
    schedule: CronSchedule | None = None
    sessionTarget: SessionTarget | None = None
    wakeMode: Literal["next-heartbeat", "now"] | None = None
    payload: dict[str, Any] | None = None
    delivery: dict[str, Any] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    displayName: Name | None = None
    enabled: bool | None = None
    deleteAfterRun: bool | None = None
    sessionKey: SessionKey | None = None

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        _refuse(data, UNSUPPORTED_JOB_FIELDS, "patch.")
        if isinstance(data, dict):
            _check_kind(data.get("schedule"), ("at", "every", "cron"), "schedule")
            _check_kind(data.get("payload"), ("systemEvent", "agentTurn"), "payload")
            _refuse(data.get("payload"), UNSUPPORTED_PAYLOAD_FIELDS, "patch.payload.")
            _check_delivery(data.get("delivery"))
        return data


class _JobRef(_Open):
    """OpenClaw accepts the job as ``id`` or ``jobId``."""

    id: Id | None = None
    jobId: Id | None = None

    @property
    def job_id(self) -> str | None:
        return self.id or self.jobId


class CronGetParams(_JobRef):
    pass


class CronUpdateParams(_JobRef):
    patch: CronPatch


class CronRunParams(_JobRef):
    mode: Literal["due", "force", "if-enabled"] = "force"


class CronListParams(_Open):
    includeDisabled: bool = False
    limit: Annotated[int, Field(ge=1, le=200)] = 200
    offset: Annotated[int, Field(ge=0)] = 0
    query: Annotated[str, Field(max_length=200)] | None = None
    enabled: Literal["all", "enabled", "disabled"] | None = None
    scheduleKind: Literal["all", "at", "every", "cron", "on-exit", "stream"] | None = None
    sortBy: Literal["nextRunAtMs", "updatedAtMs", "name"] = "nextRunAtMs"
    sortDir: Literal["asc", "desc"] = "asc"
    agentId: Id | None = None


RunStatusName = Literal["ok", "error", "skipped"]


class CronRunsParams(_JobRef):
    scope: Literal["job", "all"] | None = None
    runId: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0)] = 0
    status: Literal["all", "ok", "error", "skipped"] | None = None
    statuses: Annotated[list[RunStatusName], Field(min_length=1, max_length=3)] | None = None
    sortDir: Literal["asc", "desc"] = "desc"


class WakeParams(_Open):
    mode: Literal["now", "next-heartbeat"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE)]
    sessionKey: SessionKey | None = None
    agentId: Id | None = None


class SystemEventParams(_Open):
    text: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE)]
    sessionKey: SessionKey | None = None
    wake: bool = False


class SetHeartbeatsParams(_Open):
    enabled: bool
