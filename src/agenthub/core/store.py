"""The Store protocol: everything the gateway keeps across restarts, and its errors.

``storage.sql.SqlStore`` implements it on SQLite (the default) and PostgreSQL;
the core only ever sees this interface.

Errors a store raises on purpose, so that callers can tell what to do::

    StoreError
    ├── StoreOpenError          cannot open at start: a message for the operator, exit
    ├── StoreUnavailableError   a call failed for a reason that may pass: UNAVAILABLE, retryable
    │   └── StoreFullError      ... because the disk (or the server's) is full
    └── StoreValueError         a value the database cannot hold: INVALID_REQUEST

The last three are also ``RpcError``s, so a method whose store call fails this
way answers with that error frame, not with "internal error".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..protocol.errors import AgentHubError, ErrorCode, RpcError

__all__ = [
    "ApiKeyRecord",
    "DeviceRecord",
    "MessageRecord",
    "RunRecord",
    "SessionRecord",
    "Store",
    "StoreError",
    "StoreFullError",
    "StoreOpenError",
    "StoreUnavailableError",
    "StoreValueError",
]


class StoreError(AgentHubError):
    """The database failed in a way the store recognised; the subclass says how."""


class StoreOpenError(StoreError):
    """The database cannot be opened at start.

    ``str(err)`` is one paragraph for the operator: which database (a file, or a
    URL without its password), what is wrong, and what to do about it.
    """


class StoreUnavailableError(StoreError, RpcError):
    """A call failed for a reason that may pass (server unreachable, disk full): retry later.

    The message goes to clients, so it names no file or host; the store logs those.
    """

    def __init__(self, message: str) -> None:
        RpcError.__init__(self, ErrorCode.UNAVAILABLE, message, retryable=True)


class StoreFullError(StoreUnavailableError):
    """A write failed for lack of space (SQLite ``SQLITE_FULL``, PostgreSQL ``53100``)."""


class StoreValueError(StoreError, RpcError):
    """A value the database cannot hold (PostgreSQL text cannot contain NUL): the request is at fault."""

    def __init__(self, message: str) -> None:
        RpcError.__init__(self, ErrorCode.INVALID_REQUEST, message)


@dataclass(slots=True)
class SessionRecord:
    key: str
    created_ms: int
    updated_ms: int
    message_count: int = 0
    last_run_id: str | None = None


@dataclass(slots=True)
class MessageRecord:
    session_key: str
    role: str
    text: str
    ts_ms: int
    run_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(slots=True)
class RunRecord:
    run_id: str
    session_key: str
    status: str
    created_ms: int
    started_ms: int | None = None
    ended_ms: int | None = None
    error: str | None = None
    summary: str | None = None
    origin: str = ""
    owner: str | None = None
    # The acknowledged user message while it is not yet in the transcript (and its meta):
    # what a restart stores for a run it finds interrupted, so no acknowledged message is lost.
    message: str | None = None
    message_meta: dict[str, Any] | None = None


@dataclass(slots=True)
class DeviceRecord:
    device_id: str
    public_key: str
    role: str
    scopes: list[str]
    display_name: str | None
    platform: str | None
    client_id: str | None
    created_ms: int
    last_seen_ms: int
    status: str = "paired"
    token_hash: str | None = None
    token_issued_ms: int | None = None


@dataclass(slots=True)
class ApiKeyRecord:
    """A user API key (AgentBox ``ab_<key_id>_<secret>``); only the SHA-256 of the whole key is kept."""

    key_id: str
    user_id: str
    key_hash: str
    scopes: list[str]
    created_ms: int
    revoked_ms: int | None = None


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # sessions and transcripts
    async def ensure_session(self, key: str, now_ms: int) -> SessionRecord: ...

    async def get_session(self, key: str) -> SessionRecord | None: ...

    async def list_sessions(self, limit: int) -> list[SessionRecord]: ...

    async def count_sessions(self) -> int: ...

    async def reset_session(self, key: str, now_ms: int) -> bool: ...

    async def delete_session(self, key: str) -> bool: ...

    async def trim_session(self, key: str, keep: int) -> int:
        """Keep only the newest ``keep`` (>= 1) messages; returns how many were deleted (sessions.compact)."""
        ...

    async def append_message(self, msg: MessageRecord) -> int: ...

    async def history(self, session_key: str, limit: int) -> list[MessageRecord]: ...

    # per-session metadata set by sessions.patch (label, archived, overrides); deleted with the session
    async def get_session_meta(self, keys: Sequence[str] | None = None) -> dict[str, dict[str, Any]]: ...

    async def put_session_meta(self, key: str, meta: dict[str, Any], now_ms: int) -> None: ...

    # runs
    async def put_run(self, run: RunRecord) -> None: ...

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def fail_interrupted_runs(self, reason: str, now_ms: int) -> int:
        """Mark runs a previous process left queued/running as errors, storing their pending messages."""
        ...

    async def fail_run(self, run_id: str, reason: str, now_ms: int) -> RunRecord | None:
        """Mark one queued/running run as an error, storing its pending message; None if it had ended."""
        ...

    async def count_runs_by_status(self, owner: str | None = None) -> dict[str, int]:
        """Runs by status; with ``owner``, only that user's (AgentBox stats)."""
        ...

    # devices
    async def get_device(self, device_id: str) -> DeviceRecord | None: ...

    async def put_device(self, device: DeviceRecord) -> None: ...

    async def put_devices(self, batch: Sequence[DeviceRecord]) -> None:
        """Upsert every record of ``batch`` in one transaction."""
        ...

    async def list_devices(self) -> list[DeviceRecord]: ...

    # user API keys
    async def put_api_key(self, key: ApiKeyRecord) -> None: ...

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_api_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_api_key(self, key_id: str, now_ms: int) -> bool: ...

    # idempotency
    async def get_idempotent(self, key: str, not_before_ms: int) -> tuple[str, Any] | None: ...

    async def put_idempotent(self, key: str, method: str, response: Any, now_ms: int) -> None: ...

    async def purge_idempotent(self, before_ms: int) -> int: ...

    # config overrides (config.set / config.patch)
    async def get_config(self) -> dict[str, Any]: ...

    async def put_config(self, config: dict[str, Any], now_ms: int) -> None: ...
