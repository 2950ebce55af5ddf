"""What every soak client shares: where the gateway is, its credentials, the phase switches, the ledger."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from websockets.exceptions import WebSocketException

from .ledger import Ledger

__all__ = ["HONEST_IP", "Credentials", "Phase", "SoakEnv", "message_for", "retrying"]

HONEST_IP = "127.0.0.1"
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """Everything the soak provisions before the first start (keys and pipelines go in with the CLI)."""

    token: str
    hook_token: str
    alice_key: str  # AgentBox user alice (honest)
    bob_key: str  # AgentBox user bob (honest, probe)
    mallory_key: str  # AgentBox user mallory (hostile, authenticated)
    pipeline: str  # private LangBot pipeline (honest)
    pipeline_key: str
    public_pipeline: str  # public LangBot pipeline (hostile, anonymous)
    myagent_secret: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class Phase:
    """The driver's switches: ``load`` on while clients start new work; ``stop`` when they must finish."""

    load: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Set while the gateway is down between a kill and its restart (clients just retry).
    down: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_load(self) -> bool:
        """Wait until new work may start; False when the soak is stopping."""
        while not self.load.is_set():
            if self.stop.is_set():
                return False
            await asyncio.sleep(0.1)
        return not self.stop.is_set()


@dataclass
class SoakEnv:
    host: str
    port: int
    agentbox_port: int
    myagent_port: int
    creds: Credentials
    ledger: Ledger
    phase: Phase
    seed: int

    @property
    def ws(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    def rng(self, name: str) -> random.Random:
        """A random stream per client, reproducible from the soak's seed."""
        return random.Random(f"{self.seed}:{name}")


def message_for(rng: random.Random, tag: str) -> str:
    """An honest message: mostly short turns, some with arithmetic (a tool call), some long, a few failing."""
    roll = rng.random()
    if roll < 0.35:
        return f"{tag}: hello, how is the soak going?"
    if roll < 0.6:
        return f"{tag}: what is {rng.randint(2, 999)} + {rng.randint(2, 999)} * {rng.randint(2, 9)}?"
    if roll < 0.95:
        return f"{tag}: tell me a long story [long:{rng.randint(20, 90)}]"
    return f"{tag}: this turn fails on purpose [fail]"


async def retrying(
    phase: Phase, attempt: Callable[[], Awaitable[T]], *, first_wait: float = 0.1, max_wait: float = 2.0
) -> T | None:
    """``attempt()`` until it returns, backing off on connection errors; None once the soak stops."""
    wait = first_wait
    while not phase.stop.is_set():
        try:
            return await attempt()
        except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError, WebSocketException):
            await asyncio.sleep(wait)
            wait = min(max_wait, wait * 2)
    return None
