"""Session keys: the one place that says which key names which conversation.

OpenClaw scopes every session to an agent: ``agent:<agentId>:<rest>``, and the
bare alias ``main`` (its CLI's and scripts' default) names the default agent's
main session ``agent:main:main``, which its TUI, Control UI and ACP bridge use.
Keys are case-insensitive there, so they are folded to lower case.
agenthub has one agent, ``main``; so that a user switching from OpenClaw keeps
one conversation, whatever client wrote to it, every key a native client sends
goes through ``canonical_session_key`` before it touches a transcript:

- ``main`` -> ``agent:main:main``; any other bare name ``n`` -> ``agent:main:n``;
- ``agent:<id>:<rest>`` is folded to lower case and kept;
- ``global`` and ``unknown`` (OpenClaw's sentinels) stay as they are;
- a namespaced key ``<ns>:<id>`` that is not ``agent:`` belongs to whoever made
  it (a dialect such as ``myagent:<id>``, or a channel) and is used verbatim,
  so every session listed by ``sessions.list`` can be opened with its key.

Transcripts written under a bare key before this rule existed are renamed once by
the storage migration that imports ``legacy_to_canonical``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_AGENT_ID",
    "MAIN_KEY",
    "MAIN_SESSION_KEY",
    "SESSION_SCOPE",
    "ParsedKey",
    "canonical_session_key",
    "event_session_fields",
    "legacy_to_canonical",
    "lifecycle_end",
    "parse_session_key",
    "session_defaults",
]

DEFAULT_AGENT_ID = "main"
MAIN_KEY = "main"
MAIN_SESSION_KEY = f"agent:{DEFAULT_AGENT_ID}:{MAIN_KEY}"
# OpenClaw's ``session.scope`` default: direct chats share the agent's main session per sender.
SESSION_SCOPE = "per-sender"
_SENTINELS = frozenset({"global", "unknown"})


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A canonical key split into its agent and the rest (``agent_id`` None: not agent-scoped)."""

    key: str
    agent_id: str | None
    rest: str

    @property
    def is_main(self) -> bool:
        return self.agent_id is not None and self.rest == MAIN_KEY


def canonical_session_key(key: str, agent_id: str | None = None) -> str:
    """The canonical form of ``key`` (see the module docstring); ``agent_id`` scopes a bare name.

    Raises:
        ValueError: an empty key, or ``agent:`` without an agent id and a name.
    """
    raw = key.strip()
    if not raw:
        raise ValueError("session key must not be empty")
    lowered = raw.lower()
    if lowered in _SENTINELS:
        return lowered
    if lowered.startswith("agent:"):
        _, agent, rest = lowered.split(":", 2) if lowered.count(":") >= 2 else (lowered, "", "")
        if not agent or not rest:
            raise ValueError(f"session key {raw!r} must look like agent:<agentId>:<name>")
        return lowered
    if ":" in raw:
        return raw
    return f"agent:{(agent_id or DEFAULT_AGENT_ID).strip().lower() or DEFAULT_AGENT_ID}:{lowered}"


def parse_session_key(key: str) -> ParsedKey:
    """Split a canonical key; keys that are not agent-scoped have no agent."""
    if key.startswith("agent:") and key.count(":") >= 2:
        _, agent, rest = key.split(":", 2)
        return ParsedKey(key, agent, rest)
    return ParsedKey(key, None, key)


def event_session_fields(key: str) -> dict[str, str]:
    """``sessionKey`` (and ``agentId`` when the key is agent-scoped) for run events, as OpenClaw sends them."""
    parsed = parse_session_key(key)
    if parsed.agent_id is None:
        return {"sessionKey": key}
    return {"sessionKey": key, "agentId": parsed.agent_id}


def lifecycle_end(started_ms: int | None, ended_ms: int, *, aborted: bool) -> dict[str, object]:
    """The data of a run's lifecycle ``end`` event: OpenClaw's clients stop their activity timers on it."""
    data: dict[str, object] = {"phase": "end", "endedAt": ended_ms, "stopReason": "aborted" if aborted else "stop"}
    if started_ms is not None:
        data["startedAt"] = started_ms
    data["aborted"] = aborted
    return data


def legacy_to_canonical(key: str) -> str | None:
    """The canonical key of a key stored before canonical keys, or None when it is already canonical."""
    try:
        canonical = canonical_session_key(key)
    except ValueError:
        return None
    return None if canonical == key else canonical


def session_defaults() -> dict[str, str]:
    """hello-ok ``snapshot.sessionDefaults`` and ``sessions.list`` ``defaults`` (OpenClaw's shape)."""
    return {
        "defaultAgentId": DEFAULT_AGENT_ID,
        "mainKey": MAIN_KEY,
        "mainSessionKey": MAIN_SESSION_KEY,
        "scope": SESSION_SCOPE,
    }
