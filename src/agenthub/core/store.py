"""The Store protocol: everything the gateway keeps across restarts.

``storage.sqlite.SqliteStore`` is the default implementation; the core only
ever sees this interface, so PostgreSQL is a URL away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ApiKeyRecord", "DeviceRecord", "MessageRecord", "RunRecord", "SessionRecord", "Store"]


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

    async def fail_interrupted_runs(self, reason: str, now_ms: int) -> int: ...

    async def count_runs_by_status(self) -> dict[str, int]: ...

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
