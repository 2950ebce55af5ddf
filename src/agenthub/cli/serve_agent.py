"""``agenthub serve-agent FILE``: serve a module's ``create_agent()`` over the MyAgent protocol.

The seed's ``myagent-ws server examples/weather_agent.py --port 8080``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import sys
from pathlib import Path
from typing import Any

import click

from ..log import configure
from .options import CliError, shared, shared_options

__all__ = ["load_factory", "serve_agent"]


@click.command("serve-agent")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", default="localhost", show_default=True, help="MyAgent bind address")
@click.option("--port", default=8080, show_default=True, type=int, help="MyAgent port")
@click.option("--secret", envvar="AGENTHUB_MYAGENT_SECRET", show_envvar=True, help="state signing key")
@click.option("--dev", is_flag=True, help="allow an ephemeral state key")
@click.option("--provider", type=click.Choice(["demo", "openai", "anthropic"]), help="agent provider")
@click.option("--gateway-port", type=int, default=0, help="native gateway port [default: any free one]")
@shared_options("data_dir")
@click.pass_context
def serve_agent(
    ctx: click.Context,
    file: str,
    host: str,
    port: int,
    secret: str | None,
    dev: bool,
    provider: str | None,
    gateway_port: int,
) -> int:
    """Serve FILE's create_agent() over the MyAgent protocol (seed 003).

    The seed's `myagent-ws server examples/weather_agent.py --port 8080`.
    """
    from ..app import ConfigError
    from ..myagent import AgentWebSocketServer

    sh = shared(ctx)
    configure("text", "INFO")
    try:
        factory = load_factory(file)
    except (OSError, ValueError, SyntaxError, ImportError) as exc:
        raise CliError(str(exc), 2) from None
    server = AgentWebSocketServer(
        factory,
        host,
        port,
        secret,
        data_dir=str(sh.data_dir) if sh.get("data_dir") else None,
        provider=provider,
        dev=dev,
        gateway_port=gateway_port,
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
            f"agenthub serve-agent ready on ws://{host}:{server.port} (gateway ws://127.0.0.1:{gw.port if gw else 0})",
            flush=True,
        )
        await stop.wait()
        await server.shutdown()
        return 0

    return asyncio.run(serve())


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
