"""``agenthub serve-agent FILE``: serve a module's ``create_agent()`` over the MyAgent protocol.

The seed's ``myagent-ws server examples/weather_agent.py --port 8080``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ..log import configure

__all__ = ["add_parser", "load_factory"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("serve-agent", help="serve an agent module over MyAgent")
    p.add_argument("file", help="a Python file defining create_agent()")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--secret", help="state signing key (or AGENTHUB_MYAGENT_SECRET)")
    p.add_argument("--dev", action="store_true", help="allow an ephemeral state key")
    p.add_argument("--data-dir", help="state directory (default ~/.agenthub)")
    p.add_argument("--provider", choices=["demo", "openai", "anthropic"])
    p.add_argument("--gateway-port", type=int, default=0, help="native gateway port (default: any free one)")
    p.set_defaults(func=run)


def load_factory(path: str) -> Any:
    """Import ``path`` as a module and return its ``create_agent``."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    factory = getattr(module, "create_agent", None)
    if not callable(factory):
        raise ValueError(f"{path} does not define create_agent()")
    return factory


def run(args: argparse.Namespace) -> int:
    from ..app import ConfigError
    from ..myagent import AgentWebSocketServer

    configure("text", "INFO")
    try:
        factory = load_factory(args.file)
    except (OSError, ValueError, SyntaxError, ImportError) as exc:
        print(f"agenthub: {exc}", file=sys.stderr)
        return 2
    server = AgentWebSocketServer(
        factory,
        args.host,
        args.port,
        args.secret or os.environ.get("AGENTHUB_MYAGENT_SECRET"),
        data_dir=args.data_dir,
        provider=args.provider,
        dev=args.dev,
        gateway_port=args.gateway_port,
    )

    async def serve() -> int:
        loop = asyncio.get_running_loop()
        try:
            await server.start()
        except ConfigError as exc:
            print(f"agenthub: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"agenthub: cannot start: {exc}", file=sys.stderr)
            return 1
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        gw = server.gateway
        print(
            f"agenthub serve-agent ready on ws://{args.host}:{server.port} "
            f"(gateway ws://127.0.0.1:{gw.port if gw else 0})",
            flush=True,
        )
        await stop.wait()
        await server.shutdown()
        return 0

    return asyncio.run(serve())
