"""A real gateway whose store fails one call on purpose, to test what a handler bug looks like on the wire.

``python -m tests.e2e._fault_gateway --port P --data-dir D --config C`` takes the
options ``GatewayProc`` passes and prints the same ready line as ``agenthub
gateway``. It embeds ``agenthub.app.Gateway`` through its public ``store``
hook (no fault switch in the product): the store is the real SQLite one,
wrapped so that ``list_sessions`` raises, which makes ``sessions.list`` hit the
dispatcher's last-resort handler (``core/rpc.py``: UNAVAILABLE "internal error",
traceback to the log).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from agenthub.app import Gateway
from agenthub.config import load_file
from agenthub.core.store import SessionRecord
from agenthub.log import configure
from agenthub.storage.sqlite import SqliteStore

FAULT = "injected fault: list_sessions is broken in this test gateway"


class FaultyStore:
    """The real store, except ``list_sessions``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list_sessions(self, limit: int) -> list[SessionRecord]:
        raise RuntimeError(FAULT)


async def main(args: argparse.Namespace) -> None:
    base = load_file(Path(args.config)) if args.config else {}
    overrides = {"host": "127.0.0.1", "port": args.port, "data_dir": args.data_dir}
    store = FaultyStore(SqliteStore(str(Path(args.data_dir) / "agenthub.db")))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with Gateway(base, overrides, store=store) as gw:  # type: ignore[arg-type]
        print(f"agenthub gateway ready on ws://127.0.0.1:{gw.port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--config", default=None)
    configure()
    asyncio.run(main(parser.parse_args()))
