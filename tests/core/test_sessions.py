"""Canonical session keys (core.sessions): one conversation per name, whatever client wrote it."""

from __future__ import annotations

import pytest

from agenthub.core.sessions import (
    MAIN_SESSION_KEY,
    canonical_session_key,
    event_session_fields,
    legacy_to_canonical,
    lifecycle_end,
    parse_session_key,
    session_defaults,
)
from agenthub.storage.migrations.m0008_openclaw_sessions import canonical as migration_canonical


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("main", "agent:main:main"),
        (" Main ", "agent:main:main"),
        ("agent:main:main", "agent:main:main"),
        ("Agent:Main:Main", "agent:main:main"),
        ("notes", "agent:main:notes"),
        ("agent:ops:incident-42", "agent:ops:incident-42"),
        ("agent:main:telegram:direct:123", "agent:main:telegram:direct:123"),
        ("global", "global"),
        ("UNKNOWN", "unknown"),
        # namespaced keys belong to the dialect or channel that made them: verbatim, case kept
        ("myagent:AbC123", "myagent:AbC123"),
        ("agentbox:alice:s1", "agentbox:alice:s1"),
        ("langbot:default:person", "langbot:default:person"),
    ],
)
def test_canonical_keys(raw: str, canonical: str) -> None:
    assert canonical_session_key(raw) == canonical
    assert canonical_session_key(canonical) == canonical  # idempotent


def test_an_agent_scopes_bare_names() -> None:
    assert canonical_session_key("incident-42", "ops") == "agent:ops:incident-42"
    assert canonical_session_key("agent:main:x", "ops") == "agent:main:x"  # an explicit agent wins


@pytest.mark.parametrize("bad", ["", "   ", "agent:", "agent:main", "agent::x", "agent:main:"])
def test_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        canonical_session_key(bad)


def test_parse_and_event_fields() -> None:
    parsed = parse_session_key("agent:main:main")
    assert (parsed.agent_id, parsed.rest, parsed.is_main) == ("main", "main", True)
    assert parse_session_key("myagent:x").agent_id is None
    assert event_session_fields("agent:ops:a") == {"sessionKey": "agent:ops:a", "agentId": "ops"}
    assert event_session_fields("myagent:x") == {"sessionKey": "myagent:x"}


def test_defaults_name_the_main_session() -> None:
    assert session_defaults() == {
        "defaultAgentId": "main",
        "mainKey": "main",
        "mainSessionKey": MAIN_SESSION_KEY,
        "scope": "per-sender",
    }


def test_lifecycle_end_carries_openclaws_fields() -> None:
    assert lifecycle_end(10, 20, aborted=False) == {
        "phase": "end",
        "endedAt": 20,
        "stopReason": "stop",
        "startedAt": 10,
        "aborted": False,
    }
    assert lifecycle_end(None, 20, aborted=True) == {
        "phase": "end",
        "endedAt": 20,
        "stopReason": "aborted",
        "aborted": True,
    }


@pytest.mark.parametrize("key", ["main", "Notes", "agent:main:main", "myagent:x", "global", "agent:ops:a", "x:y"])
def test_the_migration_rule_matches_the_live_rule(key: str) -> None:
    """The storage migration keeps its own frozen copy of the rule; today they agree."""
    assert migration_canonical(key) == legacy_to_canonical(key)
