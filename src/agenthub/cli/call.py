"""``agenthub call METHOD``: one request over a real handshake.

``call agent --expect-final`` streams the reply as text and then prints the final
result (``--json``: every frame, one per line); it exits 1 when the run did not end
``ok``. Methods that take an ``idempotencyKey`` get a fresh one when it is missing.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

import click

from ..protocol import _json
from ..protocol.methods import METHODS
from .options import CliError, shared, shared_options
from .remote import device_identity, make_client, print_json, run_remote

__all__ = ["call", "with_idempotency_key"]


def with_idempotency_key(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with an ``idempotencyKey`` when the method has one and none was given."""
    spec = METHODS.get(method)
    if spec is not None and "idempotencyKey" in spec.params.model_fields and "idempotencyKey" not in params:
        return {**params, "idempotencyKey": uuid.uuid4().hex}
    return params


@click.command()
@click.argument("method")
@click.option("--params", default="{}", show_default=True, help="JSON object of params")
@click.option("--expect-final", is_flag=True, help="agent: stream the reply, then print the final result")
@shared_options("url", "token", "token_file", "password", "password_file", "data_dir", "json", "timeout")
@shared_options("tls_fingerprint", "ca_file")
@click.pass_context
def call(ctx: click.Context, method: str, params: str, expect_final: bool) -> int:
    """Call a gateway METHOD and print the answer (pretty JSON; --json for one line)."""
    sh = shared(ctx)
    try:
        parsed = _json.loads(params)
    except _json.JSONDecodeError:
        raise CliError("--params is not valid JSON", 2) from None
    if not isinstance(parsed, dict):
        raise CliError("--params must be a JSON object", 2)
    body = with_idempotency_key(method, parsed)
    device = device_identity(sh)

    async def go() -> int:
        async with make_client(sh, device=device) as gw:
            if method == "agent" and expect_final:
                return await _stream_agent(gw, body, sh.json, sh.timeout)
            print_json(await gw.call(method, body, timeout=sh.timeout), sh.json)
            return 0

    return run_remote(sh, go)


async def _stream_agent(gw: Any, params: dict[str, Any], raw: bool, timeout: float) -> int:
    """Print the run: raw frames with ``raw``, else the assistant text as it streams and the result."""
    status = None
    streamed = False
    async for item in gw.run_agent(
        params["message"],
        session_key=params.get("sessionKey"),
        idempotency_key=params["idempotencyKey"],
        timeout=max(timeout, 600),
    ):
        kind = item.get("type")
        if raw:
            print_json(item, True)
            if kind == "result":
                status = item.get("status")
            continue
        if kind == "result":
            status = item.get("status")
            if streamed:
                print(flush=True)
            print_json(item, False)
        elif kind == "gap":
            print("\n[some of the reply was lost while reconnecting]", file=sys.stderr, flush=True)
        elif item.get("event") == "agent":
            payload = item.get("payload") or {}
            data = payload.get("data") or {}
            if payload.get("stream") == "assistant" and data.get("delta"):
                print(data["delta"], end="", flush=True)
                streamed = True
    if status != "ok":
        print(f"agenthub: the run ended {status}", file=sys.stderr)
        return 1
    return 0
