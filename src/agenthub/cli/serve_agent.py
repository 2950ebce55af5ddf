"""The MyAgent commands: serve a module's ``create_agent()``, or run the seed's server script unchanged.

``agenthub serve-agent FILE`` (also ``agenthub myagent server FILE``) is the
seed's ``python -m myagent.cli.server server FILE --port 8080`` (and its
``myagent-ws server ...``); ``agenthub myagent run SCRIPT`` is the seed's
``python my_agent_server.py``. Both load the user's file with
``agenthub.myagent.compat`` installed, so its ``import myagent ...`` lines work
unchanged, without a ``myagent`` package in site-packages.
"""

from __future__ import annotations

import asyncio
import importlib.util
import runpy
import signal
import sys
from pathlib import Path
from typing import Any

import click

from ..log import configure
from .options import CliError, shared, shared_options

__all__ = ["load_factory", "myagent", "serve_agent"]


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
            f"agenthub serve-agent ready on {gw.scheme if gw else 'ws'}://{host}:{server.port} "
            f"(gateway {gw.scheme if gw else 'ws'}://127.0.0.1:{gw.port if gw else 0})",
            flush=True,
        )
        await stop.wait()
        await server.shutdown()
        return 0

    return asyncio.run(serve())


def load_factory(path: str) -> Any:
    """Import ``path`` as a module (seed-style ``import myagent`` lines work) and return its ``create_agent``."""
    from ..myagent import compat

    compat.install()
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    factory = getattr(module, "create_agent", None)
    if not callable(factory):
        raise ValueError(f"{path} does not define create_agent()")
    return factory


@click.group("myagent")
def myagent() -> None:
    """Run seed 003's MyAgent server files unchanged (their `import myagent` lines resolve to agenthub)."""


myagent.add_command(serve_agent, "server")


@myagent.command("run")
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.option("--host", help="listen here, whatever the script says")
@click.option("--port", type=int, help="listen on this port, whatever the script says")
@click.option("--provider", type=click.Choice(["demo", "openai", "anthropic"]), help="agent provider")
@click.option("--dev", is_flag=True, default=None, help="allow an ephemeral state key")
@shared_options("data_dir")
@click.pass_context
def run(ctx: click.Context, script: str, host: str | None, port: int | None, provider: str | None, dev: bool) -> int:
    """Run SCRIPT as `python SCRIPT` would, with `import myagent` served by agenthub.

    The seed's `python my_agent_server.py`: its AgentWebSocketServer starts an
    agenthub gateway. SIGTERM stops it like Ctrl+C.
    """
    from ..myagent import compat

    sh = shared(ctx)
    compat.install(
        host=host,
        port=port,
        provider=provider,
        dev=dev,
        data_dir=str(sh.data_dir) if sh.get("data_dir") else None,
    )
    configure("text", "INFO")
    # asyncio.run turns SIGINT into a clean cancel of the script's main(); SIGTERM takes the same path.
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    sys.argv = [script]
    try:
        runpy.run_path(script, run_name="__main__")
    except KeyboardInterrupt:
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
