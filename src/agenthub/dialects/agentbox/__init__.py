"""The AgentBox dialect (seed 002): per-user API keys, task and session streams, system events.

Split by concern: ``frames`` (envelope, payload models, errors), ``keys`` (API
keys under the auth limiter), ``events`` (core run events -> AgentBox events,
encoded once), ``tasks`` (the operations both the socket and REST expose),
``stats`` (the ``stats`` system topic), ``connection`` (one socket) and ``hub``
(fan-out by user, stats timer). The aiohttp routes live in ``web/agentbox.py``.

Nothing here is a copy of core state: a task IS a core run (``task_id`` = run
id) owned by a user, a follow-up turn is another run in the same core session,
and AgentBox sessions are core sessions keyed ``agentbox:<user_id>:<session_id>``.

Extensions of the seed (documented in the README): the ``session`` channel,
the ``stats`` system topic, and the ``create_task`` and ``stats`` requests.
"""

from __future__ import annotations

from .connection import MAX_AUTH_FAILURES, AgentBoxSession, ChannelSub
from .events import SYSTEM_EVENT, SYSTEM_TOPICS, TASK_STATUS, Prepared, prepare, session_key, task_topic
from .frames import (
    AgentBoxError,
    Code,
    CreateAgent,
    CreateAlert,
    CreateBatch,
    CreateSession,
    CreateTask,
    Envelope,
    decode,
    encode,
    parse,
)
from .hub import AgentBoxHub
from .keys import User, authenticate_key, checked_key, hash_key, new_api_key
from .stats import TASK_STATES, snapshot
from .tasks import Tasks

__all__ = [
    "MAX_AUTH_FAILURES",
    "SYSTEM_EVENT",
    "SYSTEM_TOPICS",
    "TASK_STATES",
    "TASK_STATUS",
    "AgentBoxError",
    "AgentBoxHub",
    "AgentBoxSession",
    "ChannelSub",
    "Code",
    "CreateAgent",
    "CreateAlert",
    "CreateBatch",
    "CreateSession",
    "CreateTask",
    "Envelope",
    "Prepared",
    "Tasks",
    "User",
    "authenticate_key",
    "checked_key",
    "decode",
    "encode",
    "hash_key",
    "new_api_key",
    "parse",
    "prepare",
    "session_key",
    "snapshot",
    "task_topic",
]
