"""Shared fixtures: a real gateway process on a free loopback port, and raw clients.

The harness also holds every test to two rules it cannot see for itself:

- a gateway that logged a traceback, died, or exited non-zero during a test
  fails that test, unless the test is marked
  ``@pytest.mark.gateway_errors_expected("text the traceback contains", ...)``
  (no argument: any traceback and exit code is allowed);
- every frame a ``RawClient`` received must conform to OpenClaw's published
  protocol schema, less the deviations listed in ``tests/_conformance.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from agenthub.client.identity import DeviceIdentity

from . import _conformance

# Real servers other than the gateway (PostgreSQL), as session fixtures: see tests/_servers.py.
pytest_plugins = ["tests._servers"]

READY = re.compile(rb"ready on wss?://([\d.]+):(\d+)")
TRACEBACK = b"Traceback (most recent call last)"
GATEWAY = [sys.executable, "-m", "agenthub", "gateway"]
# Every gateway process a test started (fixtures included), so the harness can read its log and exit code.
_GATEWAYS: list[GatewayProc] = []
# (raw text, method of the request it answers) of every frame a RawClient received during the current test.
_FRAMES: list[tuple[str | bytes, str | None]] | None = None


ROOT = Path(__file__).resolve().parents[1]
NPM_TARGET = "make tests/npm/node_modules/.installed-stamp"


def _seed_dirs() -> list[Path]:
    """Where the specification's seeds may be: ``AGENTHUB_SEEDS``, else ``../shared/seeds`` beside the
    repository (a clone, CI) or beside the main checkout of this git worktree."""
    if os.environ.get("AGENTHUB_SEEDS"):
        return [Path(os.environ["AGENTHUB_SEEDS"])]
    dirs = [ROOT.parent / "shared" / "seeds"]
    dotgit = ROOT / ".git"
    if dotgit.is_file():  # a linked worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(dotgit.read_text().split(":", 1)[1].strip())
        dirs.append(gitdir.parents[2].parent / "shared" / "seeds")
    return dirs


def seed_text(name: str) -> str:
    """A seed document of the specification; missing, it fails the test (never a silent skip)."""
    for folder in _seed_dirs():
        if (folder / name).exists():
            return (folder / name).read_text(encoding="utf-8")
    tried = ", ".join(str(d) for d in _seed_dirs())
    pytest.fail(
        f"seed document {name} is missing (looked in {tried}): the specification's shared/seeds must sit "
        "beside the repository (../shared/seeds), or AGENTHUB_SEEDS must name the folder",
        pytrace=False,
    )


def require_node_ws() -> str:
    """``node`` and the ``ws`` package the seed's JavaScript clients need; missing, the test fails."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js (Debian package nodejs), then `make test`", pytrace=False)
    if not (ROOT / "tests/npm/node_modules/ws").is_dir():
        pytest.fail(f"tests/npm/node_modules/ws is missing: run `{NPM_TARGET}` (part of `make test`)", pytrace=False)
    return node


def child_env(**extra: str) -> dict[str, str]:
    """A minimal environment for a child process, plus coverage's variables (so ``make coverage``
    measures it too): tests that must not leak the caller's environment use this, not ``{}``."""
    keep = {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}
    return {"PATH": "/usr/bin:/bin", **keep, **extra}


@dataclass(eq=False)
class GatewayProc:
    """A gateway subprocess; ``restart()`` keeps the data dir, like a real restart."""

    data_dir: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    log: list[bytes] = field(default_factory=list)
    # The command before the common options: a test-only launcher may replace ``python -m agenthub gateway``.
    command: list[str] = field(default_factory=lambda: list(GATEWAY))
    # Exits the harness holds against the test: non-zero after SIGTERM, or a death nobody asked for.
    bad_exits: list[str] = field(default_factory=list)
    _drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> GatewayProc:
        cfg = self.data_dir / "test-config.json"
        cfg.write_text(json.dumps(self.config))
        cmd = [
            *self.command,
            "--port",
            str(port if port is not None else self.port),
            "--data-dir",
            str(self.data_dir),
            "--config",
            str(cfg),
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        if self not in _GATEWAYS:
            _GATEWAYS.append(self)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line)
            m = READY.search(line)
            if m:
                self.port = int(m.group(2))
                # Keep reading, or a chatty gateway blocks once the 64 KiB pipe is full.
                self._drain = threading.Thread(target=self._read_rest, args=(self.proc.stdout,), daemon=True)
                self._drain.start()
                return self
        # A refusal to start reaches the test as this exception (tests assert on it): it is not a bad exit
        # for the harness. A gateway still running after the deadline is killed.
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None
        raise RuntimeError("gateway did not start:\n" + b"".join(self.log).decode(errors="replace"))

    def _read_rest(self, stream: Any) -> None:
        for line in iter(stream.readline, b""):
            self.log.append(line)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the gateway and wait; returns its exit code.

        A graceful stop must exit 0: any other code (or a gateway that had
        already died) is recorded in ``bad_exits`` for the harness.
        """
        if self.proc is None:
            return 0
        died = self.proc.poll()
        if died is not None:
            self.bad_exits.append(f"exited by itself with code {died}")
        else:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.bad_exits.append(f"still running 15 s after {signal.Signals(sig).name}: killed")
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None
        code = self.proc.returncode
        if died is None and sig != signal.SIGKILL and code != 0 and not self.bad_exits:
            self.bad_exits.append(f"exit code {code} after {signal.Signals(sig).name}")
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> GatewayProc:
        port = self.port
        self.stop()
        return self.start(port)

    def output(self) -> str:
        return b"".join(self.log).decode(errors="replace")

    def tracebacks(self, since: int = 0) -> list[str]:
        """Each traceback logged from line ``since`` on, with the log line before it (its message)."""
        lines = self.log[since:]
        out = []
        for i, line in enumerate(lines):
            if TRACEBACK not in line:
                continue
            block = lines[max(0, i - 1) : i + 1]
            for nxt in lines[i + 1 :]:  # text format: indented frames, then the exception line
                block.append(nxt)
                if not nxt[:1].isspace():
                    break
            out.append(b"".join(block).decode(errors="replace"))
        return out

    def problems(self, since: int = 0, allowed: tuple[str, ...] | None = None) -> list[str]:
        """Tracebacks (not matching ``allowed``) since log line ``since``, unexpected exits, and a death."""
        if self.proc is not None and self.proc.poll() is not None:
            self.bad_exits.append(f"died with code {self.proc.returncode}")
            self.proc = None
        found = [f"traceback in the gateway log:\n{tb}" for tb in self.tracebacks(since)]
        found += [f"gateway {e}" for e in self.bad_exits]
        self.bad_exits.clear()
        if allowed is None:  # no marker: everything counts
            return found
        if not allowed:  # marked without arguments: anything goes
            return []
        return [p for p in found if not any(a in p for a in allowed)]


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Any]:
    procs: list[GatewayProc] = []

    def factory(
        *args: str,
        env: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        data_dir: Path | None = None,
    ) -> GatewayProc:
        d = data_dir or tmp_path / f"gw{len(procs)}"
        d.mkdir(parents=True, exist_ok=True)
        cfg = {"demo": {"word_delay_ms": 5}}
        cfg.update(config or {})
        gw = GatewayProc(d, list(args), env or {}, cfg)
        procs.append(gw)
        return gw.start()

    yield factory
    for gw in procs:
        with contextlib.suppress(Exception):
            gw.stop()  # before the harness reads the logs: the whole log, and the exit code


def _allowed_errors(item: pytest.Item) -> tuple[str, ...] | None:
    marker = item.get_closest_marker("gateway_errors_expected")
    return None if marker is None else tuple(str(a) for a in marker.args)


@pytest.fixture(autouse=True)
def _harness(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test on a gateway traceback or bad exit, and on a frame that breaks OpenClaw's schema.

    Autouse fixtures are set up first and torn down last, so ``make_gateway``
    has stopped its gateways (full log, exit code) before this looks.
    """
    global _FRAMES
    marks = {id(gw): len(gw.log) for gw in _GATEWAYS}
    frames: list[tuple[str | bytes, str | None]] = []
    _FRAMES = frames
    yield
    _FRAMES = None
    allowed = _allowed_errors(request.node)
    problems: list[str] = []
    for gw in list(_GATEWAYS):
        problems += gw.problems(marks.get(id(gw), 0), allowed)
        if gw.proc is None:
            _GATEWAYS.remove(gw)  # stopped: nothing more to read (start() registers it again)
    if frames:
        try:
            problems += _conformance.check_frames((json.loads(raw), method) for raw, method in frames)
        except FileNotFoundError as exc:
            problems.append(str(exc))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def gateway(make_gateway: Any) -> GatewayProc:
    gw: GatewayProc = make_gateway()
    return gw


def connect_params(**over: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {"id": "test", "version": "1.0.0", "platform": "linux", "mode": "test"},
        "role": "operator",
        "scopes": ["operator.read", "operator.write", "operator.admin"],
    }
    params.update(over)
    return params


def signed_device(
    c: RawClient,
    ident: DeviceIdentity,
    *,
    token: str = "",
    nonce: str | None = None,
    signed_at: int | None = None,
    scopes: list[str] | None = None,
    role: str = "operator",
) -> dict[str, Any]:
    """``connect.params.device`` signed over ``c``'s challenge, for client id/mode "test" on linux."""
    return ident.sign_connect(
        nonce=nonce or c.challenge["payload"]["nonce"],
        signed_at_ms=signed_at if signed_at is not None else int(time.time() * 1000),
        client_id="test",
        client_mode="test",
        role=role,
        scopes=scopes if scopes is not None else ["operator.read", "operator.write", "operator.admin"],
        token=token,
        platform="linux",
    )


class RawClient:
    """A bare WebSocket client speaking frames by hand, for protocol-level tests."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.challenge: dict[str, Any] = {}
        self.hello: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self._n = 0
        self._methods: dict[str, str] = {}  # request id -> method, to check each response's payload

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, **kw: Any) -> AsyncIterator[RawClient]:
        async with websockets.connect(url, max_size=None, **kw) as ws:
            client = cls(ws)
            client.challenge = await client.recv()
            yield client

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            raw = await self.ws.recv()
        data: dict[str, Any] = json.loads(raw)
        if _FRAMES is not None:  # kept as text: a test may edit the dict it gets
            rid = data.get("id") if isinstance(data, dict) and data.get("type") == "res" else None
            _FRAMES.append((raw, self._methods.get(rid) if isinstance(rid, str) else None))
        return data

    async def send(self, obj: Any) -> None:
        if isinstance(obj, dict) and obj.get("type") == "req" and isinstance(obj.get("id"), str):
            self._methods[obj["id"]] = str(obj.get("method"))
        await self.ws.send(obj if isinstance(obj, str | bytes) else json.dumps(obj))

    async def connect(self, **over: Any) -> dict[str, Any]:
        await self.send({"type": "req", "id": "c1", "method": "connect", "params": connect_params(**over)})
        res = await self.response("c1")
        if res["ok"]:
            self.hello = res["payload"]
        return res

    async def request(self, method: str, params: Any = None) -> str:
        self._n += 1
        rid = f"q{self._n}"
        await self.send({"type": "req", "id": rid, "method": method, "params": params or {}})
        return rid

    async def response(self, rid: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if frame.get("type") == "res" and frame.get("id") == rid:
                return frame
            if frame.get("type") == "event":
                self.events.append(frame)

    async def call(self, method: str, params: Any = None, timeout: float = 10) -> dict[str, Any]:
        return await self.response(await self.request(method, params), timeout)

    async def until(self, pred: Any, timeout: float = 10) -> dict[str, Any]:
        """Read until a frame matches ``pred`` (events seen on the way are kept)."""
        while True:
            frame = await self.recv(timeout)
            if frame.get("type") == "event":
                self.events.append(frame)
            if pred(frame):
                return frame

    async def closed(self, timeout: float = 12) -> tuple[int | None, str]:
        """Read until the server closes; returns (code, reason)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code if rcvd else None, rcvd.reason if rcvd else "")
        raise AssertionError("unreachable")
