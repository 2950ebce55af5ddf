"""``agenthub node run``: a headless node built on the SDK.

It connects with ``role: "node"``, declares its commands, answers
``node.invoke.request`` events with ``node.invoke.result``, and reconnects with
backoff (the SDK's supervisor; the first connect retries here too, including
while its pairing request waits for an operator). A refused credential stops it
with a clear message and exit 1 instead of retrying forever. Built-in commands:
``system.info`` (platform, CPU, memory) and ``system.notify`` (log a message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import click

from ..protocol import _json
from .options import CONNECTION, shared, shared_options
from .remote import device_identity, make_client, run_remote

__all__ = ["COMMANDS", "node", "system_info", "system_notify"]

log = logging.getLogger(__name__)


def _memory() -> dict[str, int]:
    total = avail = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key == "MemTotal":
                    total = int(rest.split()[0]) * 1024
                elif key == "MemAvailable":
                    avail = int(rest.split()[0]) * 1024
    except OSError:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = 0
    return {"totalBytes": total, "availableBytes": avail}


async def system_info(params: dict[str, Any]) -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "platform": sys.platform,
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "cpuCount": os.cpu_count() or 1,
        "loadAverage": list(load),
        "memory": _memory(),
        "ts": int(time.time() * 1000),
    }


async def system_notify(params: dict[str, Any]) -> dict[str, Any]:
    message = str(params.get("message") or params.get("text") or "")[:4000]
    title = str(params.get("title") or "agenthub")[:200]
    print(f"[notify] {title}: {message}", flush=True)
    return {"delivered": True}


COMMANDS: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "system.info": system_info,
    "system.notify": system_notify,
}


@click.group()
@shared_options(*CONNECTION, "data_dir")
def node() -> None:
    """Run a headless node."""


@node.command("run")
@click.option(
    "--command",
    "commands",
    multiple=True,
    type=click.Choice(sorted(COMMANDS)),
    help="serve only these commands (repeatable) [default: all built-ins]",
)
@click.option("--display-name", default=None, help="name shown to operators [default: the host name]")
@shared_options(*CONNECTION, "data_dir")
@click.pass_context
def run(ctx: click.Context, commands: tuple[str, ...], display_name: str | None) -> int:
    """Connect as role node and serve commands until Ctrl+C.

    Waits (with backoff) while its pairing request is pending or the gateway is
    down; stops at once, exit 1, when the gateway refuses its credentials.
    """
    from ..client import AuthError, GatewayError, NotPairedError

    sh = shared(ctx)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = tuple(commands or sorted(COMMANDS))
    device = device_identity(sh, "node.pem")
    client = make_client(
        sh,
        device=device,
        role="node",
        client_id="agenthub-node",
        client_mode="node",
        display_name=display_name or platform.node() or "agenthub-node",
        commands=names,
        caps=("system",),
        heartbeat_interval=0,
    )
    tasks: set[asyncio.Task[None]] = set()

    async def answer(payload: dict[str, Any]) -> None:
        command = str(payload.get("command"))
        reply: dict[str, Any] = {"id": payload.get("id"), "nodeId": payload.get("nodeId"), "ok": True}
        try:
            if command not in names:
                raise LookupError(f"unknown command {command}")
            raw = payload.get("paramsJSON")
            params = _json.loads(raw) if isinstance(raw, str) and raw else {}
            reply["payload"] = await COMMANDS[command](params if isinstance(params, dict) else {})
        except Exception as exc:
            reply = {**reply, "ok": False, "error": {"code": "COMMAND_FAILED", "message": str(exc)[:500]}}
        try:
            await client.call("node.invoke.result", reply)
        except GatewayError as exc:
            log.warning("could not deliver result: %s", exc.message)

    def on_invoke(frame: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(answer(frame.get("payload") or {}))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    client.on("node.invoke.request", on_invoke)

    def refused(exc: GatewayError) -> int:
        hint = "check --token/--password (or AGENTHUB_GATEWAY_TOKEN)"
        print(f"agenthub node: the gateway refused the credentials: {exc.message}; {hint}", file=sys.stderr, flush=True)
        return 1

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        attempt = 0
        while not stop.is_set():
            try:
                await client.connect()
                break
            except NotPairedError as exc:
                rid = (exc.details or {}).get("requestId")
                print(f"agenthub node: waiting for pairing approval (requestId {rid})", flush=True)
            except AuthError as exc:
                return refused(exc)
            except (OSError, GatewayError) as exc:
                print(f"agenthub node: cannot connect: {exc}", file=sys.stderr, flush=True)
            attempt += 1
            delay = min(30.0, 0.5 * 2 ** min(attempt, 6)) * (0.5 + random.random() / 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return 0
        print(f"agenthub node connected to {sh.url} serving {', '.join(names)}", flush=True)
        # Ends on Ctrl+C, or when the SDK's reconnects give up (a revoked token, say).
        closed = loop.create_task(client.closed.wait())
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        stopping.cancel()
        if not stop.is_set():
            err = client.last_error
            if isinstance(err, AuthError):
                return refused(err)
            print(f"agenthub node: disconnected: {err}", file=sys.stderr, flush=True)
            return 1
        await client.close()
        return 0

    return run_remote(sh, go)
