"""A gateway with one deliberate fault: ``python -m soak.faults FAULT <agenthub gateway options>``.

``python -m soak --fault FAULT`` starts every gateway incarnation through this
launcher, to show that the check named beside each fault catches it (the
product has no fault switch: the fault is patched in here, in the launcher's
process only, before ``agenthub gateway`` runs). Each fault is a small,
plausible bug, or the undoing of one of issue 16's fixes:

- ``lose-message``: every 7th user message is not written to the transcript;
- ``lose-outcome``: a run's ``aborted`` outcome is never stored;
- ``duplicate-event``: ``agent.replay`` and MyAgent's reconnect return one event too many (off by one);
- ``slow-parser``: the demo's quadratic arithmetic scan, on the event loop (issue 16 item 2 undone);
- ``leak``: every connection keeps 64 KiB forever;
- ``traceback``: a bug in LangBot's socket clean-up (every 5th close raises).
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["FAULTS"]


def lose_message() -> None:
    from agenthub.storage.sql import SqlStore

    original = SqlStore.append_message
    counter = itertools.count(1)

    async def append_message(self: Any, message: Any) -> Any:
        if message.role == "user" and next(counter) % 7 == 0:
            return None
        return await original(self, message)

    SqlStore.append_message = append_message  # type: ignore[method-assign,assignment]


def lose_outcome() -> None:
    from agenthub.storage.sql import SqlStore

    original = SqlStore.put_run

    async def put_run(self: Any, run: Any) -> Any:
        if run.status == "aborted":
            return None
        return await original(self, run)

    SqlStore.put_run = put_run  # type: ignore[method-assign]


def duplicate_event() -> None:
    from agenthub.core.bus import MemoryBus

    original = MemoryBus.history

    def history(self: Any, stream: str, after_seq: int, epoch: str | None = None) -> Any:
        return original(self, stream, max(0, after_seq - 1), epoch)

    MemoryBus.history = history  # type: ignore[method-assign]


def slow_parser() -> None:
    from agenthub.agents import demo

    num, op = r"\d+(?:\.\d+)?", r"(?:\*\*|//|[-+*/%])"
    quadratic = re.compile(rf"[-+(\s]*{num}(?:[\s)]*{op}[\s(+-]*{num})+[\s)]*")  # before the fix (9ad20c2^)
    demo._expressions = lambda text: [m.group() for m in quadratic.finditer(text)]
    demo.INLINE_ANALYSIS_CHARS = sys.maxsize


def leak() -> None:
    from agenthub.core.connection import Connection

    kept: list[bytes] = []
    original = Connection.__init__

    def init(self: Any, *args: Any, **kw: Any) -> None:
        original(self, *args, **kw)
        kept.append(b"x" * 65536)

    Connection.__init__ = init  # type: ignore[method-assign]


def traceback() -> None:
    from agenthub.web.langbot import LangBotHub

    original = LangBotHub.remove
    counter = itertools.count(1)

    def remove(self: Any, sock: Any) -> None:
        original(self, sock)
        if next(counter) % 5 == 0:
            raise KeyError("injected fault: LangBot clean-up")

    LangBotHub.remove = remove  # type: ignore[method-assign]


FAULTS: dict[str, Callable[[], None]] = {
    "lose-message": lose_message,
    "lose-outcome": lose_outcome,
    "duplicate-event": duplicate_event,
    "slow-parser": slow_parser,
    "leak": leak,
    "traceback": traceback,
}


def main() -> None:
    fault = sys.argv[1]
    FAULTS[fault]()
    from agenthub.cli.main import main as agenthub

    sys.exit(agenthub(["gateway", *sys.argv[2:]]))


if __name__ == "__main__":
    main()
