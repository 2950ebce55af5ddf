"""``agenthub gateway``: run the gateway in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

import click
from pydantic import ValidationError

from ..config import GatewaySettings, env_layer, merge_layers, validation_messages
from ..core.allocator import cap_arenas
from ..log import announce, configure
from .options import CliError, flag_layer, settings_options, shared, shared_options
from .workers import WORKER_READY

__all__ = ["gateway", "settings_layers"]

log = logging.getLogger(__name__)


def settings_layers(
    ctx: click.Context, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The config file's, the environment's and the command line's settings (a bad one is a clean error)."""
    sh = shared(ctx)
    base = sh.config_file()
    try:
        env = env_layer()
    except (ValueError, ValidationError) as exc:  # e.g. AGENTHUB_LIMITS='{not json'
        raise CliError(f"invalid environment setting: {exc}", 2) from None
    flags = flag_layer(ctx, params)
    return base, env, flags


def _browser_host(host: str) -> str:
    """Where a browser on this machine reaches a gateway bound to ``host`` (a wildcard is not an address)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def validate_layers(layers: dict[str, dict[str, Any]]) -> GatewaySettings:
    merged, _ = merge_layers(layers)
    try:
        return GatewaySettings.model_validate(merged)
    except ValidationError as exc:
        raise CliError("invalid config: " + "; ".join(validation_messages(exc)), 2) from None


@click.command(context_settings={"show_default": True})
@settings_options
@shared_options("data_dir", "config", "token", "token_file", "password", "password_file")
# Set by the supervisor of --workers N on each worker it starts (cli.workers); not for operators.
@click.option("--worker-index", "worker_index", type=int, hidden=True)
@click.option("--worker-of", "worker_of", type=int, hidden=True)
@click.pass_context
def gateway(ctx: click.Context, /, **params: Any) -> int:
    """Run the gateway in the foreground (Ctrl+C stops it).

    Settings come from, lowest first: defaults, --config FILE, overrides stored with
    config.patch, the environment (AGENTHUB_...), and these flags. `agenthub config show`
    prints the result and where each value came from.
    """
    from ..app import ConfigError, Gateway
    from ..core.store import StoreOpenError

    worker: int | None = params.pop("worker_index", None)
    worker_of: int | None = params.pop("worker_of", None)
    base, env, overrides = settings_layers(ctx, params)
    first = validate_layers({"file": base, "env": env, "flag": overrides})
    configure(first.log_format, first.log_level)
    # Before any thread of the gateway allocates (the database's, the executor's): see core.allocator.
    cap_arenas(first.limits.malloc_arenas)
    workers = first.resolved_workers
    if worker is None and workers > 1:
        if not first.redis_url:
            raise CliError(
                f"--workers {workers} needs --redis-url (AGENTHUB_REDIS_URL): the processes share the bus, presence, "
                "run ownership and caches through Redis; without it the gateway is one process",
                2,
            )
        from .workers import supervise

        return supervise(workers, first, sys.argv[1:])

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with Gateway(base, overrides, env=env, worker=worker, worker_of=worker_of) as gw:
                url = f"{gw.scheme}://{gw.settings.host}:{gw.port}"
                if worker is not None:  # plain text: the supervisor matches it and prints the gateway's ready line
                    print(WORKER_READY.format(index=worker, pid=os.getpid(), url=url), flush=True)
                else:
                    # tests/conftest.py and scripts read "ready on ws://HOST:PORT" from this line (both log formats).
                    announce(f"agenthub gateway ready on {url}")
                for name, port in gw.edge.bound.items() if gw.edge else ():
                    if name != "main":
                        announce(f"agenthub {name} listener on port {port}")
                web = "https" if gw.scheme == "wss" else "http"
                announce(f"Control UI: {web}://{_browser_host(gw.settings.host)}:{gw.port}/")
                await stop.wait()
                log.info("stopping")
        except ConfigError as exc:
            announce(f"agenthub: {exc}", level="error", stream=sys.stderr)
            return 2
        except StoreOpenError as exc:  # the message names the database and what to do; no traceback
            announce(f"agenthub: {exc}", level="error", stream=sys.stderr)
            return 1
        except OSError as exc:
            announce(f"agenthub: cannot start: {exc}", level="error", stream=sys.stderr)
            return 1
        log.info("stopped")
        return 0

    try:
        import uvloop

        return uvloop.run(serve())
    except ImportError:  # pragma: no cover - uvloop is a Linux/macOS dependency
        return asyncio.run(serve())
