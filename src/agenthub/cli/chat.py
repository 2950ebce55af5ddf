"""``agenthub chat``: an interactive terminal chat with a gateway session.

Replies stream word by word, thinking is shown dimmed and tool calls as one
summary line each. Ctrl+C aborts the running reply; a second Ctrl+C (or one at
the prompt) quits. Commands: ``/sessions``, ``/session KEY``, ``/reset``,
``/history``, ``/help``, ``/quit``.

Input is read from the terminal without threads (``loop.add_reader``), so the
signal handler and the stream run on one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..protocol import _json

__all__ = ["ChatApp", "add_parser"]

HELP = (
    "Commands: /sessions lists sessions, /session KEY switches, /reset clears this session, "
    "/history shows its transcript, /quit leaves. Ctrl+C stops a reply; twice quits."
)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("chat", help="interactive chat with a gateway session")
    p.add_argument("--session", default="main", help="session key (default: main)")
    p.add_argument("--url", default=os.environ.get("AGENTHUB_URL", "ws://127.0.0.1:18789"))
    p.add_argument("--token", default=None, help="gateway token (or AGENTHUB_GATEWAY_TOKEN)")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("AGENTHUB_DATA_DIR", "~/.agenthub"),
        help="where the device identity is kept",
    )
    p.set_defaults(func=run)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else _json.dumps_str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ChatApp:
    """One terminal session: reads lines, runs turns, renders their events."""

    def __init__(self, gw: Any, session_key: str, console: Console) -> None:
        self.gw = gw
        self.session_key = session_key
        self.console = console
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.run_id: str | None = None
        self.run_task: asyncio.Task[None] | None = None
        self.interrupts = 0
        self.quit = asyncio.Event()
        self._buf = b""
        self._thinking = False

    # -- input ------------------------------------------------------------------
    def _readable(self) -> None:
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except OSError:
            data = b""
        if not data:
            self.lines.put_nowait(None)
            return
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self.lines.put_nowait(line.decode(errors="replace").rstrip("\r"))

    def on_sigint(self) -> None:
        if self.run_task is not None and not self.run_task.done():
            self.interrupts += 1
            if self.interrupts == 1:
                self.console.print("\n[yellow]Stopping the reply… (Ctrl+C again quits)[/]")
                if self.run_id is not None:
                    asyncio.get_running_loop().create_task(self._abort(self.run_id))
                return
        self.quit.set()
        self.lines.put_nowait(None)

    async def _abort(self, run_id: str) -> None:
        try:
            await self.gw.abort(run_id, session_key=self.session_key)
        except Exception as exc:  # shown, never fatal
            self.console.print(f"[red]abort failed: {escape(str(exc))}[/]")

    # -- main loop --------------------------------------------------------------
    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), self._readable)
        loop.add_signal_handler(signal.SIGINT, self.on_sigint)
        self.console.print(f"[bold]agenthub chat[/] — session [cyan]{escape(self.session_key)}[/]. {HELP}")
        try:
            while not self.quit.is_set():
                self.console.print("[bold green]you>[/] ", end="")
                line = await self.lines.get()
                if line is None:
                    break
                text = line.strip()
                if not text:
                    continue
                if text.startswith("/") and await self.command(text):
                    continue
                self.interrupts = 0
                self.run_task = loop.create_task(self.turn(text))
                done, _ = await asyncio.wait(
                    {self.run_task, loop.create_task(self.quit.wait())}, return_when=asyncio.FIRST_COMPLETED
                )
                if self.run_task not in done:
                    self.run_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self.run_task
                self.run_task = None
                self.run_id = None
        finally:
            loop.remove_reader(sys.stdin.fileno())
            loop.remove_signal_handler(signal.SIGINT)
        self.console.print("\nbye")
        return 0

    async def command(self, text: str) -> bool:
        """Run a slash command; False means "send it to the gateway as a message"."""
        name, _, arg = text.partition(" ")
        if name in ("/quit", "/exit"):
            self.quit.set()
        elif name == "/help":
            self.console.print(HELP)
        elif name == "/sessions":
            res = await self.gw.call("sessions.list", {})
            table = Table("session", "messages", "active")
            for s in res["sessions"]:
                mark = " *" if s["key"] == self.session_key else ""
                table.add_row(escape(s["key"]) + mark, str(s["messageCount"]), "yes" if s["active"] else "")
            self.console.print(table)
        elif name == "/session" and arg.strip():
            self.session_key = arg.strip()
            self.console.print(f"session [cyan]{escape(self.session_key)}[/]")
        elif name == "/reset":
            from ..client import NotFoundError

            with contextlib.suppress(NotFoundError):
                await self.gw.call("sessions.reset", {"key": self.session_key})
            self.console.print(f"session [cyan]{escape(self.session_key)}[/] reset")
        elif name == "/history":
            res = await self.gw.call("chat.history", {"sessionKey": self.session_key, "limit": 50})
            for m in res["messages"]:
                body = "".join(c.get("text", "") for c in m["content"])
                style = "green" if m["role"] == "user" else "white"
                self.console.print(f"[{style}]{m['role']}:[/] {escape(body)}")
            if not res["messages"]:
                self.console.print("[dim](empty)[/]")
        else:
            return False
        return True

    async def turn(self, message: str) -> None:
        out = self.console
        self._thinking = False
        try:
            async for item in self.gw.run_agent(message, session_key=self.session_key):
                kind = item.get("type")
                if kind == "accepted":
                    self.run_id = item["runId"]
                elif kind == "gap":
                    out.print("\n[yellow]Some of the reply was lost while reconnecting.[/]")
                elif kind == "result":
                    status = item.get("status")
                    if status == "aborted":
                        out.print("\n[yellow]⏹ aborted[/]")
                    elif status not in ("ok", None):
                        out.print(f"\n[red]✗ {escape(str(item.get('error') or status))}[/]")
                    else:
                        out.print()
                else:
                    self.render(item)
        except Exception as exc:
            out.print(f"\n[red]error: {escape(str(exc))}[/]")

    def render(self, frame: dict[str, Any]) -> None:
        if frame.get("event") != "agent":
            return
        p = frame["payload"]
        data = p.get("data") or {}
        stream = p.get("stream")
        out = self.console
        if stream == "thinking":
            if not self._thinking:
                out.print("[dim]thinking: [/]", end="")
                self._thinking = True
            out.print(data.get("delta", ""), style="dim", end="", markup=False, highlight=False)
        elif stream == "tool":
            self._end_thinking()
            if data.get("phase") == "start":
                out.print(
                    f"[magenta]⚙ {escape(str(data.get('name')))}({escape(_short(data.get('args', {})))})[/]", end=""
                )
            else:
                mark = "[red]✗[/]" if data.get("isError") else "→"
                out.print(f" {mark} {escape(_short(data.get('result')))}")
        elif stream == "assistant":
            self._end_thinking()
            out.print(data.get("delta", ""), end="", markup=False, highlight=False)

    def _end_thinking(self) -> None:
        if self._thinking:
            self.console.print()
            self._thinking = False


def run(args: argparse.Namespace) -> int:
    from ..client import DeviceIdentity, GatewayClient, GatewayError

    token = args.token or os.environ.get("AGENTHUB_GATEWAY_TOKEN")
    device = DeviceIdentity.load_or_create(Path(args.data_dir).expanduser() / "identity" / "device.pem")
    console = Console(highlight=False)

    async def go() -> int:
        async with GatewayClient(
            args.url, token=token, device=device, client_mode="cli", display_name="agenthub chat"
        ) as gw:
            return await ChatApp(gw, args.session, console).main()

    try:
        return asyncio.run(go())
    except GatewayError as exc:
        console.print(f"[red]agenthub: {escape(exc.message)}[/]")
        return 1
    except OSError as exc:
        console.print(f"[red]agenthub: cannot reach {escape(args.url)}: {escape(str(exc))}[/]")
        return 1
