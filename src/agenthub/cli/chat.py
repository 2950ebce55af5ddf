"""``agenthub chat``: an interactive terminal chat with a gateway session.

Replies stream word by word, thinking is shown dimmed and tool calls as one
summary line each. Ctrl+C aborts the running reply; a second Ctrl+C (or one at
the prompt, or Ctrl+D) quits. Commands: ``/sessions``, ``/session KEY``,
``/reset``, ``/history``, ``/help``, ``/quit``; any other ``/word`` is refused
(``//text`` sends ``/text`` as a message).

On a terminal the prompt is prompt_toolkit's: line editing, and a history kept in
the data dir (``chat_history``, 0600). Piped input is read line by line without
threads (``loop.add_reader``), so the signal handler and the stream share one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..protocol import _json
from .options import shared, shared_options
from .remote import device_identity, make_client, run_remote

__all__ = ["COMMANDS", "ChatApp", "chat"]

COMMANDS = ("/sessions", "/session", "/reset", "/history", "/help", "/quit", "/exit")
HELP = (
    "Commands: /sessions lists sessions, /session KEY switches, /reset clears this session, "
    "/history shows its transcript, /quit leaves (//text sends /text). Ctrl+C stops a reply; twice quits."
)
PROMPT = "you> "


@click.command()
@click.option("--session", default="main", show_default=True, help="session key")
@shared_options("url", "token", "token_file", "password", "password_file", "data_dir", "timeout")
@shared_options("tls_fingerprint", "ca_file")
@click.pass_context
def chat(ctx: click.Context, session: str) -> int:
    """Chat with a gateway session in the terminal."""
    sh = shared(ctx)
    device = device_identity(sh)
    console = Console(highlight=False)
    history = sh.data_dir / "chat_history"

    async def go() -> int:
        async with make_client(sh, device=device, client_mode="cli", display_name="agenthub chat") as gw:
            return await ChatApp(gw, session, console, history).main()

    return run_remote(sh, go, json_errors=False)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else _json.dumps_str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ChatApp:
    """One terminal session: reads lines, runs turns, renders their events."""

    def __init__(self, gw: Any, session_key: str, console: Console, history: Path | None = None) -> None:
        self.gw = gw
        self.history = history
        self._prompt: Any = None
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
    def _prompt_session(self) -> Any:
        """prompt_toolkit's prompt with a file history, when stdin and stdout are a terminal."""
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            return None
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        history: Any = InMemoryHistory()
        if self.history is not None:
            with contextlib.suppress(OSError):
                self.history.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.history, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
                history = FileHistory(str(self.history))
        return PromptSession(history=history)

    async def read_line(self) -> str | None:
        """The next input line, or None at end of input (Ctrl+D, or Ctrl+C at the prompt)."""
        if self._prompt is None:
            self.console.print("[bold green]you>[/] ", end="")
            return await self.lines.get()
        try:
            line: str = await self._prompt.prompt_async(PROMPT, handle_sigint=False)
        except (EOFError, KeyboardInterrupt):
            return None
        return line

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        self._prompt = self._prompt_session()
        if self._prompt is None:
            loop.add_reader(sys.stdin.fileno(), self._readable)
        loop.add_signal_handler(signal.SIGINT, self.on_sigint)
        self.console.print(f"[bold]agenthub chat[/] — session [cyan]{escape(self.session_key)}[/]. {HELP}")
        try:
            while not self.quit.is_set():
                line = await self.read_line()
                if line is None:
                    break
                text = line.strip()
                if not text:
                    continue
                if text.startswith("//"):
                    text = text[1:]
                elif text.startswith("/"):
                    await self.command(text)
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
            if self._prompt is None:
                loop.remove_reader(sys.stdin.fileno())
            loop.remove_signal_handler(signal.SIGINT)
        self.console.print("\nbye")
        return 0

    async def command(self, text: str) -> bool:
        """Run a slash command; an unknown one is refused (False), never sent to the agent."""
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
        elif name == "/session":
            self.console.print("[yellow]usage: /session KEY[/]")
            return False
        else:
            self.console.print(f"[yellow]unknown command {escape(name)}: {HELP}[/]")
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
