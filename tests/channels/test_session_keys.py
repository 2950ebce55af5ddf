"""Channel conversations map to OpenClaw's session keys (its buildAgentPeerSessionKey and channel-routing docs)."""

from __future__ import annotations

import pytest

from agenthub.channels.base import session_key


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("main", "agent:main:main"),
        ("per-peer", "agent:main:direct:42"),
        ("per-channel-peer", "agent:main:telegram:direct:42"),
        ("per-account-channel-peer", "agent:main:telegram:work:direct:42"),
    ],
)
def test_direct_messages_follow_dm_scope(scope: str, expected: str) -> None:
    assert session_key("main", "telegram", "work", "direct", "42", dm_scope=scope, sender_id="42") == expected


def test_groups_channels_and_threads() -> None:
    assert session_key("main", "telegram", "default", "group", "-1001234567890") == (
        "agent:main:telegram:group:-1001234567890"
    )
    # The docs' examples: a Telegram forum topic, a Discord thread.
    assert session_key("main", "telegram", "default", "group", "-1001234567890", thread_id="42") == (
        "agent:main:telegram:group:-1001234567890:topic:42"
    )
    assert session_key("main", "discord", "default", "channel", "123456", thread_id="987654") == (
        "agent:main:discord:channel:123456:thread:987654"
    )
    # Slack ids are upper case on the wire; OpenClaw lowercases peer ids in keys.
    assert session_key("main", "slack", "default", "channel", "C0GENERAL", thread_id="2.000001") == (
        "agent:main:slack:channel:c0general:thread:2.000001"
    )
    assert session_key("main", "slack", "default", "direct", "D042", sender_id="U42", thread_id="1.5") == (
        "agent:main:slack:direct:u42:thread:1.5"
    )
