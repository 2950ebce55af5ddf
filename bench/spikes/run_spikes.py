"""Fan-out spike driver: 1,000 loopback WebSocket clients per server stack, rounds of "broadcast E events".

It:
  1. starts every spike server as a subprocess on its own free loopback port;
  2. starts P client processes (this file with ``--client``); each opens C aiohttp WebSocket connections to
     *every* server (so each server gets P * C clients, and all stacks are received by the same processes);
  3. runs the rounds interleaved (round r: every stack once, in an order rotated by r), so that load from
     other processes on this shared machine spreads over all stacks instead of landing on one. A round:
     arm every client for stack k, have the trigger client send ``go E`` on its first connection to k,
     collect and verify what every client got (deliveries, per-connection sequence order, latencies);
  4. records the server's, the clients' and the whole machine's CPU time around each round; a round during
     which foreign processes used noticeable CPU is re-run (bounded), but its deliveries are still checked.

Delivered events/s = clients * events / (last receipt anywhere - server send stamp of event 0).
Latency = receipt time.time_ns() in the client - time.time_ns() stamped by the server into the event.

Usage:  .venv/bin/python bench/spikes/run_spikes.py [--clients 1000] [--procs 4] [--rounds 5] [--events 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import psutil

HERE = Path(__file__).resolve().parent
ROUND_TIMEOUT_S = 30.0
CONNECT_CONCURRENCY = 64
QUIET_IDLE_SHARE = 0.85  # before each round, wait (bounded) for the machine to be this idle
QUIET_MAX_WAIT_S = 10.0
OTHER_CPU_LIMIT_S = 0.3  # a round during which foreign processes used more CPU than this is re-run...
MAX_RERUNS_PER_ROUND = 2  # ...at most this many times per stack and round...
MAX_RERUNS = 12  # ...and in the whole run
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVERS: list[tuple[str, list[str]]] = [
    ("websockets `broadcast()`", ["spike_websockets.py"]),
    ("Starlette/uvicorn `await send_text()`", ["spike_starlette.py"]),
    ("aiohttp `await send_str()`", ["spike_aiohttp.py", "--mode", "naive"]),
    ("aiohttp encode-once `transport.write()`", ["spike_aiohttp.py", "--mode", "frame"]),
]


def raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --------------------------------------------------------------------------------------------- client side


@dataclass
class RoundState:
    """What one client process received from one server during the current round."""

    conns: int
    events: int
    next_seq: list[int] = field(default_factory=list)
    lat_us: list[int] = field(default_factory=list)
    received: int = 0
    finished: int = 0
    errors: int = 0
    first_sent_ns: int = 0
    last_recv_ns: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.next_seq = [0] * self.conns
        self.lat_us = []
        self.received = self.finished = self.errors = 0
        self.first_sent_ns = self.last_recv_ns = 0
        self.done = asyncio.Event()

    def report(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "finished": self.finished,
            "errors": self.errors,
            "first_sent_ns": self.first_sent_ns,
            "last_recv_ns": self.last_recv_ns,
            "lat_us": self.lat_us,
        }


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def client_main(ports: list[int], conns: int, events: int) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    states = [RoundState(conns, events) for _ in ports]
    for st in states:
        st.reset()

    async def receive(ws: aiohttp.ClientWebSocketResponse, st: RoundState, idx: int) -> None:
        async for msg in ws:
            now = time.time_ns()
            data: str = msg.data
            seq, sent = int(data[0:8]), int(data[9:28])
            st.lat_us.append((now - sent) // 1000)
            if seq != st.next_seq[idx]:
                st.errors += 1
            st.next_seq[idx] = seq + 1
            st.received += 1
            st.last_recv_ns = now
            if seq == 0 and (st.first_sent_ns == 0 or sent < st.first_sent_ns):
                st.first_sent_ns = sent
            if seq + 1 == st.events:
                st.finished += 1
                if st.finished == st.conns:
                    st.done.set()

    async def report_when_done(st: RoundState) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(st.done.wait(), ROUND_TIMEOUT_S)
        emit(st.report())

    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def connect(port: int) -> aiohttp.ClientWebSocketResponse:
            async with sem:
                url = f"http://127.0.0.1:{port}/"
                return await session.ws_connect(url, compress=0, max_msg_size=0)

        sockets: list[list[aiohttp.ClientWebSocketResponse]] = []
        connect_s: list[float] = []
        for port in ports:
            t0 = time.perf_counter()
            sockets.append(list(await asyncio.gather(*(connect(port) for _ in range(conns)))))
            connect_s.append(time.perf_counter() - t0)
        readers = [
            asyncio.create_task(receive(ws, states[k], i))
            for k, per_server in enumerate(sockets)
            for i, ws in enumerate(per_server)
        ]
        emit({"ready": [len(s) for s in sockets], "connect_s": connect_s})
        reporter: asyncio.Task[None] | None = None
        while line := (await stdin.readline()).decode().split():
            cmd, k = line[0], int(line[1]) if len(line) > 1 else -1
            if cmd == "arm":
                states[k].reset()
                reporter = asyncio.create_task(report_when_done(states[k]))
                emit({"armed": k})
            elif cmd == "go":
                await sockets[k][0].send_str(f"go {events}")
            elif cmd == "quit":
                break
        if reporter is not None:
            reporter.cancel()
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for s in sockets for ws in s), return_exceptions=True)


# --------------------------------------------------------------------------------------------- driver side


@dataclass
class RoundResult:
    delivered: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_user_s: float
    server_sys_s: float
    client_cpu_s: float
    box_busy_pct: float
    box_softirq_pct: float
    other_cpu_s: float

    @property
    def server_cpu_s(self) -> float:
        return self.server_user_s + self.server_sys_s

    @property
    def noisy(self) -> bool:
        return self.other_cpu_s > OTHER_CPU_LIMIT_S


@dataclass
class Stack:
    name: str
    server: subprocess.Popen[bytes]
    port: int
    connect_s: float = 0.0
    rounds: list[RoundResult] = field(default_factory=list)  # kept rounds
    discarded: list[RoundResult] = field(default_factory=list)  # re-run because of foreign load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"server did not listen on port {port}")


def read_json(stream: IO[str] | None) -> dict[str, Any]:
    assert stream is not None
    line = stream.readline()
    if not line:
        raise RuntimeError("client process exited unexpectedly")
    result: dict[str, Any] = json.loads(line)
    return result


def send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def cpu_s(procs: list[psutil.Process]) -> tuple[float, float]:
    """(user, system) CPU seconds summed over procs."""
    times = [p.cpu_times() for p in procs]
    return sum(t.user for t in times), sum(t.system for t in times)


def box_ticks() -> list[int]:
    """Machine-wide /proc/stat CPU ticks: user nice system idle iowait irq softirq steal ..."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:]]


def wait_quiet() -> None:
    """Let the previous round drain, then wait (bounded) for other load on the machine to go away."""
    deadline = time.monotonic() + QUIET_MAX_WAIT_S
    while True:
        before = box_ticks()
        time.sleep(0.5)
        delta = [b - a for a, b in zip(before, box_ticks(), strict=True)]
        if delta[3] / max(1, sum(delta)) >= QUIET_IDLE_SHARE or time.monotonic() > deadline:
            return


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure_round(k: int, server: psutil.Process, clients: list[subprocess.Popen[str]]) -> RoundResult:
    """Arm every client for stack k, trigger one burst, and collect what every client got."""
    client_ps = [psutil.Process(c.pid) for c in clients]
    own_ps = psutil.Process()
    for c in clients:
        send(c, f"arm {k}")
    for c in clients:
        read_json(c.stdout)
    srv0, cli0, own0, box0 = cpu_s([server]), cpu_s(client_ps), cpu_s([own_ps]), box_ticks()
    send(clients[0], f"go {k}")
    reports = [read_json(c.stdout) for c in clients]
    srv1, cli1, own1, box1 = cpu_s([server]), cpu_s(client_ps), cpu_s([own_ps]), box_ticks()
    box = [b - a for a, b in zip(box0, box1, strict=True)]
    ours_s = sum(srv1) - sum(srv0) + sum(cli1) - sum(cli0) + sum(own1) - sum(own0)
    # busy = total - idle - iowait - steal; irq + softirq are the (loopback) network stack
    busy_ticks = sum(box[:8]) - box[3] - box[4] - box[7]
    net_ticks = box[5] + box[6]
    lat = sorted(v for r in reports for v in r["lat_us"])
    first_sent = min((r["first_sent_ns"] for r in reports if r["first_sent_ns"]), default=0)
    last_recv = max(r["last_recv_ns"] for r in reports)
    return RoundResult(
        delivered=sum(r["received"] for r in reports),
        errors=sum(r["errors"] for r in reports),
        seconds=(last_recv - first_sent) / 1e9 if first_sent else float("nan"),
        p50_ms=percentile(lat, 0.50) / 1000,
        p99_ms=percentile(lat, 0.99) / 1000,
        server_user_s=srv1[0] - srv0[0],
        server_sys_s=srv1[1] - srv0[1],
        client_cpu_s=sum(cli1) - sum(cli0),
        box_busy_pct=100 * (1 - (box[3] + box[4]) / max(1, sum(box))),
        box_softirq_pct=100 * box[6] / max(1, sum(box)),
        other_cpu_s=max(0.0, (busy_ticks - net_ticks) / CLK_TCK - ours_s),
    )


def run_all(selected: list[tuple[str, list[str]]], args: argparse.Namespace) -> list[Stack]:
    stacks: list[Stack] = []
    clients: list[subprocess.Popen[str]] = []
    try:
        for name, script_args in selected:
            port = free_port()
            cmd = [sys.executable, str(HERE / script_args[0]), *script_args[1:], "--port", str(port)]
            stacks.append(Stack(name, subprocess.Popen(cmd), port))
        for st in stacks:
            wait_for_port(st.port, st.server)
        per_proc = [args.clients // args.procs + (i < args.clients % args.procs) for i in range(args.procs)]
        ports = ",".join(str(st.port) for st in stacks)
        for n in per_proc:
            cmd = [sys.executable, __file__, "--client", "--ports", ports, "--conns", str(n)]
            cmd += ["--events", str(args.events)]
            clients.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        ready = [read_json(c.stdout) for c in clients]
        for k, st in enumerate(stacks):
            connected = sum(r["ready"][k] for r in ready)
            if connected != args.clients:
                raise RuntimeError(f"{st.name}: only {connected}/{args.clients} clients connected")
            st.connect_s = max(r["connect_s"][k] for r in ready)
        server_ps = [psutil.Process(st.server.pid) for st in stacks]
        reruns = 0
        for rnd in range(args.rounds):
            for j in range(len(stacks)):
                k = (j + rnd) % len(stacks)
                st = stacks[k]
                for attempt in range(MAX_RERUNS_PER_ROUND + 1):
                    wait_quiet()
                    r = measure_round(k, server_ps[k], clients)
                    rerun = r.noisy and reruns < MAX_RERUNS and attempt < MAX_RERUNS_PER_ROUND
                    print(
                        f"  round {rnd + 1} {st.name}: {r.delivered} delivered, {r.errors} seq errors, "
                        f"{r.seconds * 1000:.0f} ms, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
                        f"server CPU {r.server_cpu_s:.2f} s, other CPU {r.other_cpu_s:.2f} s"
                        f"{' -> re-run (foreign load)' if rerun else ''}",
                        flush=True,
                    )
                    if not rerun:
                        st.rounds.append(r)
                        break
                    st.discarded.append(r)
                    reruns += 1
        for c in clients:
            send(c, "quit")
        for c in clients:
            c.wait(timeout=10)
        return stacks
    finally:
        for c in clients:
            stop(c)
        for st in stacks:
            stop(st.server)


def render(stacks: list[Stack], args: argparse.Namespace, command: str, wall_s: float) -> str:
    expected = args.clients * args.events
    versions = ", ".join(
        f"{pkg} {metadata.version(pkg)}" for pkg in ("websockets", "aiohttp", "starlette", "uvicorn", "uvloop")
    )
    cpu_model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor() or "unknown",
    )
    lines = [
        "# WebSocket fan-out spike: 1 event -> N loopback clients",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {os.cpu_count()} cores ({cpu_model}), 24 GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}; servers and client processes share these cores",
        f"- Versions: {versions}; every server runs on uvloop, no permessage-deflate, no pings",
        f"- Command: `{command}` (took {wall_s:.0f} s)",
        f"- Load: {args.clients} clients per stack ({args.procs} aiohttp client processes), {args.rounds} "
        f"rounds of {args.events} events of 101 bytes each = {expected:,} deliveries per round; rounds "
        "interleaved across stacks",
        "",
        "Medians over rounds. *Time* = server send stamp of event 0 -> last event received by the last "
        "client; *events/s* = deliveries / time; latency = client receipt - server stamp (wall clock, "
        "includes client-side queueing). Per-process CPU = psutil user+sys seconds per round; *box busy* "
        "= whole-machine non-idle share of both cores over the round (from /proc/stat), *softirq* = the "
        "part spent in the loopback network stack, which per-process CPU does not include; *other procs* "
        "= machine busy time not accounted to this benchmark's processes or the network stack (foreign "
        "load: the machine is shared; before each round the driver waits up to "
        f"{QUIET_MAX_WAIT_S:.0f} s for it to be {QUIET_IDLE_SHARE:.0%} idle, and a round with more than "
        f"{OTHER_CPU_LIMIT_S} s of foreign CPU is re-run, at most {MAX_RERUNS_PER_ROUND} times per stack and "
        f"round and {MAX_RERUNS} times per run; deliveries of re-run rounds are verified too).",
        "",
        "Caveats: the servers and every client process share the same cores, so the box is CPU-saturated "
        "during a round and *events/s* is a whole-system figure; *server CPU µs/delivery* is the cleaner "
        "per-stack cost. On loopback TCP the kernel's receive path runs inside the sender's `send()`, so the "
        "server's sys time includes work a real NIC would take off it. Each server stamps every event with "
        "`time.time_ns()` before fanning it out and yields (`await asyncio.sleep(0)`) once per event; every "
        "client checks it gets sequence numbers 0..N-1 in order on every connection.",
        "",
        "| Stack | Delivered, all rounds | Time/round ms | Delivered events/s | p50 ms | p99 ms "
        "| Server CPU s/round (user + sys) | Server CPU µs/delivery | Clients CPU s/round "
        "| Box busy % (softirq %) | Other procs CPU s/round | Connect all s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    med = statistics.median
    for st in stacks:
        rs, every = st.rounds, st.rounds + st.discarded
        total = sum(r.delivered for r in every)
        errors = sum(r.errors for r in every)
        ok = "OK" if total == expected * len(every) and errors == 0 else f"**FAIL** ({errors} seq errors)"
        noisy = sum(r.noisy for r in rs)
        if st.discarded:
            ok += f", {len(st.discarded)} noisy re-run"
        if noisy:
            ok += f", **{noisy} kept noisy**"

        med_s = med([r.seconds for r in rs])
        lines.append(
            f"| {st.name} | {total:,}/{expected * len(every):,} {ok} | {med_s * 1000:.0f} "
            f"| {expected / med_s:,.0f} | {med([r.p50_ms for r in rs]):.1f} | {med([r.p99_ms for r in rs]):.1f} "
            f"| {med([r.server_cpu_s for r in rs]):.2f} "
            f"({med([r.server_user_s for r in rs]):.2f} + {med([r.server_sys_s for r in rs]):.2f}) "
            f"| {med([r.server_cpu_s for r in rs]) / expected * 1e6:.1f} "
            f"| {med([r.client_cpu_s for r in rs]):.2f} "
            f"| {med([r.box_busy_pct for r in rs]):.0f} ({med([r.box_softirq_pct for r in rs]):.0f}) "
            f"| {med([r.other_cpu_s for r in rs]):.2f} | {st.connect_s:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="clients per server")
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=200, help="events broadcast per round")
    parser.add_argument("--only", default="", help="run only stacks whose name contains this text")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ports", default="", help=argparse.SUPPRESS)
    parser.add_argument("--conns", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_nofile_limit()
    if args.client:
        import uvloop

        uvloop.run(client_main([int(p) for p in args.ports.split(",")], args.conns, args.events))
        return
    command = shlex.join([os.path.relpath(sys.executable), os.path.relpath(__file__), *sys.argv[1:]])
    selected = [s for s in SERVERS if args.only.lower() in s[0].lower()]
    t0 = time.perf_counter()
    stacks = run_all(selected, args)
    report = render(stacks, args, command, time.perf_counter() - t0)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
