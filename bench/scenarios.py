"""The five scenarios. Each takes a started server and the client pool and returns ``Figure`` rows.

Every figure carries the generator's own CPU (the client processes' user+sys
seconds over the measured window, as % of one core) and the server's CPU.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .history_seed import HISTORY_SESSION, seed_openclaw
from .procs import TOKEN, ClientPool, Server

__all__ = ["Figure", "Plan", "s1_fanout", "s2_idle", "s3_agent", "s4_handshakes", "s5_requests", "wait_ready"]

STALLED_LIMIT = 64 * 1024
RATE = "rate"
HIGHER = "higher"
LOWER = "lower"


@dataclass
class Figure:
    scenario: str
    metric: str
    stack: str
    value: float
    unit: str
    better: str = HIGHER
    gen_cpu_pct: float | None = None  # load generator CPU, % of one core
    server_cpu_pct: float | None = None
    note: str = ""
    samples_us: list[int] = field(default_factory=list, repr=False)


@dataclass
class Plan:
    quick: bool
    s1_clients: int = 1000
    s1_seconds: float = 10.0
    s1_rounds: int = 5
    s1_half_seconds: float = 5.0
    s1_stalled: int = 10
    s1_stalled_seconds: float = 5.0
    s1_policy_seconds: float = 6.0
    s2_conns: int = 10_000
    s2_hold: float = 30.0
    s2_hold_other: float = 5.0
    s2_connect_deadline: float = 120.0
    s2_connect_deadline_other: float = 15.0
    s2_connect_deadline_openclaw: float = 10.0  # it handshakes at a few hundred per second: 10 s says enough
    s3_runs: int = 200
    s3_rate: float = 50.0
    s3_seconds: float = 5.0
    s4_seconds: float = 5.0
    s4_concurrency: int = 16
    s5_clients: int = 100
    s5_seconds: float = 10.0
    s5_seconds_other: float = 2.0
    s5_history_seconds: float = 5.0
    s4_seconds_other: float = 2.0

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if not quick:
            return cls(quick=False)
        return cls(
            quick=True,
            s1_clients=100,
            s1_seconds=2,
            s1_rounds=2,
            s1_half_seconds=1,
            s1_stalled=2,
            s1_stalled_seconds=2,
            s1_policy_seconds=1,
            s2_conns=300,
            s2_hold=2,
            s2_hold_other=1,
            s2_connect_deadline=10,
            s2_connect_deadline_other=5,
            s2_connect_deadline_openclaw=5,
            s3_runs=20,
            s3_seconds=1,
            s4_seconds=1,
            s4_concurrency=4,
            s5_clients=20,
            s5_seconds=1,
            s5_seconds_other=1,
            s5_history_seconds=1,
            s4_seconds_other=1,
        )


Progress = Callable[[str], None]


def pct(sorted_vals: list[int], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    return float(sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))])


class Window:
    """CPU of server and generator over one measured window."""

    def __init__(self, server: Server, pool: ClientPool) -> None:
        self.server, self.pool = server, pool
        self.t0 = time.perf_counter()
        self.s0, self.c0 = server.cpu(), pool.cpu()

    def close(self) -> tuple[float, float, float]:
        """(seconds, server % of a core, generator % of a core)."""
        dt = max(1e-9, time.perf_counter() - self.t0)
        return dt, 100 * (self.server.cpu() - self.s0) / dt, 100 * (self.pool.cpu() - self.c0) / dt


def wait_ready(server: Server, pool: ClientPool, timeout: float = 120) -> None:
    """OpenClaw answers UNAVAILABLE while its sidecars start: probe until one handshake succeeds."""
    deadline = time.monotonic() + timeout
    w = pool.workers[0]
    while True:
        r = w.call({"cmd": "open", "url": server.url, "n": 1, "token": TOKEN})
        w.call({"cmd": "close"})
        if r["opened"] == 1:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} never accepted a connect: {r['error']}")
        time.sleep(0.5)


# S2 clients hold a scope that gets ticks but not presence/agent/chat events (operator.read would):
# with N readers, every connect re-sends the (200-entry) presence list to all N, a connect-storm cost
# rather than an idle one. They send the token without a device identity, so the ramp is not paced by
# the per-connect device-record write that S4 measures. Both gateways get the same connect params.
IDLE_SCOPES = ["operator.approvals"]


def open_all(
    server: Server, pool: ClientPool, n: int, concurrency: int = 32, stall: int = 0, **extra: Any
) -> dict[str, Any]:
    cmds = [
        {
            "cmd": "open",
            "url": server.url,
            "n": k,
            "token": TOKEN,
            "concurrency": concurrency,
            "stall": stall if i == 0 else 0,
            **extra,
        }
        for i, k in enumerate(pool.split(n))
    ]
    t0 = time.perf_counter()
    res = pool.all(cmds)
    opened = sum(r["opened"] for r in res)
    errors = {r["error"] for r in res if r["error"]}
    return {"opened": opened, "seconds": time.perf_counter() - t0, "errors": errors}


def drain(pool: ClientPool, settle: float = 0.5, limit: float = 5.0) -> list[dict[str, Any]]:
    """Collect until the clients' frame counts stop moving (the server's queue has drained)."""
    end = time.monotonic() + limit
    last = -1
    while True:
        reports = pool.all({"cmd": "collect"})
        total = sum(r["frames"] for r in reports)
        if total == last or time.monotonic() > end:
            return reports
        last = total
        time.sleep(settle)


def _latencies(reports: list[dict[str, Any]]) -> tuple[list[int], int]:
    lat = sorted(v for r in reports for v in r["lat_us"])
    return lat, max((r.get("lat_max_us", 0) for r in reports), default=0)


def _fanout_round(server: Server, pool: ClientPool, seconds: float, rate: float) -> dict[str, Any]:
    assert server.control is not None
    pool.all({"cmd": "arm", "mode": "fanout"})
    win = Window(server, pool)
    pub = server.control.call({"cmd": "fanout", "seconds": seconds, "rate": rate})
    reports = drain(pool, settle=0.25 if seconds < 2 else 0.5)
    dt, srv_cpu, gen_cpu = win.close()
    delivered = sum(r["marked"] for r in reports)
    last = max(r["last_ns"] for r in reports) if reports else 0
    span = max(1e-9, (last - pub["t0_ns"]) / 1e9)
    lat, lat_max = _latencies(reports)
    return {
        "published": pub["published"],
        "delivered": delivered,
        "rate": delivered / span,
        "pub_rate": pub["published"] / seconds,
        "lat": lat,
        "max": lat_max,
        "gaps": sum(r["gaps"] for r in reports),
        "reorders": sum(r["reorders"] for r in reports),
        "srv_cpu": srv_cpu,
        "gen_cpu": gen_cpu,
        "closes": [r["closes"] for r in reports],
        "us_per_delivery": srv_cpu / 100 * dt / max(1, delivered) * 1e6,
    }


def s1_fanout(servers: list[Server], pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """Peak fan-out of every stack in interleaved rounds (so load drift on a shared box hits all alike),
    then, for agenthub only, a run paced at half its peak and a run with stalled clients."""
    for server in servers:
        step(f"S1 {server.name}: connect {plan.s1_clients}")
        conn = open_all(server, pool, plan.s1_clients)
        if conn["opened"] < plan.s1_clients:
            raise RuntimeError(f"S1 {server.name}: only {conn['opened']}/{plan.s1_clients} connected: {conn['errors']}")
    rounds: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
    per_round = plan.s1_seconds / plan.s1_rounds
    for r in range(plan.s1_rounds):
        for server in servers:
            step(f"S1 peak round {r + 1}/{plan.s1_rounds}: {server.name} {per_round:g}s")
            rounds[server.name].append(_fanout_round(server, pool, per_round, 0))
    figs: list[Figure] = []
    peak_by_name: dict[str, dict[str, Any]] = {}
    for server in servers:
        rs = rounds[server.name]
        med = sorted(rs, key=lambda x: x["rate"])[len(rs) // 2]
        lat = sorted(v for x in rs for v in x["lat"])
        peak = peak_by_name[server.name] = {
            "rate": med["rate"],
            "pub_rate": statistics.median(x["pub_rate"] for x in rs),
            "gen_cpu": statistics.median(x["gen_cpu"] for x in rs),
            "srv_cpu": statistics.median(x["srv_cpu"] for x in rs),
        }
        rates = ", ".join(f"{x['rate']:,.0f}" for x in rs)
        figs += [
            Figure(
                "S1 fan-out",
                f"delivered events/s ({plan.s1_clients} clients, peak)",
                server.name,
                peak["rate"],
                "ev/s",
                gen_cpu_pct=peak["gen_cpu"],
                server_cpu_pct=peak["srv_cpu"],
                note=(
                    f"median of {len(rs)} x {per_round:g}s rounds ({rates}); "
                    f"{sum(x['published'] for x in rs)} published, gaps {sum(x['gaps'] for x in rs)}, "
                    f"reorders {sum(x['reorders'] for x in rs)}"
                ),
                samples_us=lat,
            ),
            Figure(
                "S1 fan-out",
                "p99 latency at peak (ms)",
                server.name,
                pct(lat, 0.99) / 1000,
                "ms",
                LOWER,
                gen_cpu_pct=peak["gen_cpu"],
            ),
            # Rates split 2 cores between server and generator as the scheduler pleases; CPU per delivery does not.
            Figure(
                "S1 fan-out",
                "server CPU per delivered event (us)",
                server.name,
                statistics.median(x["us_per_delivery"] for x in rs),
                "us",
                LOWER,
                gen_cpu_pct=peak["gen_cpu"],
                note="server CPU-seconds over the round / events delivered, median of the rounds",
            ),
        ]
    ours = next((s for s in servers if s.name == "agenthub"), None)
    for server in servers:
        if server is not ours:
            pool.all({"cmd": "close", "url": server.url})
    if ours is None:
        return figs
    server, name, peak = ours, ours.name, peak_by_name[ours.name]
    half_rate = max(1.0, peak["pub_rate"] / 2)
    step(f"S1 {name}: half peak ({half_rate:.0f} ev/s) {plan.s1_half_seconds:g}s")
    half = _fanout_round(server, pool, plan.s1_half_seconds, half_rate)
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        figs.append(
            Figure(
                "S1 fan-out",
                f"{label} latency at half peak, {half_rate:.0f} pub/s (ms)",
                name,
                pct(half["lat"], q) / 1000,
                "ms",
                LOWER,
                gen_cpu_pct=half["gen_cpu"],
                server_cpu_pct=half["srv_cpu"],
                samples_us=half["lat"] if label == "p50" else [],
            )
        )
    figs.append(
        Figure(
            "S1 fan-out",
            "max latency at half peak (ms)",
            name,
            half["max"] / 1000,
            "ms",
            LOWER,
            gen_cpu_pct=half["gen_cpu"],
            note=f"gaps {half['gaps']}, reorders {half['reorders']}",
        )
    )
    # Stalled peers, interleaved with no-stall rounds (load on a shared box drifts by tens of % between
    # consecutive runs). 10 s of fan-out sends each peer only ~100-300 KB, which kernel buffers swallow, so
    # the stalled peers get a 4 KiB receive buffer and a 64 KiB max_buffered_bytes (set for new connections
    # only); past half of it droppable deltas are skipped, past all of it the peer is closed 1008.
    assert server.control is not None
    refs: list[dict[str, Any]] = []
    slows: list[dict[str, Any]] = []
    dropped = closed = max_unsent = opened = 0
    per = plan.s1_stalled_seconds / 2
    for r in range(2):
        step(f"S1 {name}: no-stall reference {r + 1}/2, {per:g}s")
        refs.append(_fanout_round(server, pool, per, 0))
        step(f"S1 {name}: with {plan.s1_stalled} stalled clients {r + 1}/2, {per:g}s")
        opened = _open_stalled(server, pool, plan)
        before = server.control.call({"cmd": "stats"})
        slows.append(_fanout_round(server, pool, per, 0))
        after = server.control.call({"cmd": "stats"})
        closed += before["connections"] - after["connections"]
        dropped += after["dropped_open"] + after["dropped_closed"] - before["dropped_open"] - before["dropped_closed"]
        max_unsent = max(max_unsent, after["max_buffered"])
        pool.workers[0].call({"cmd": "close_stalled"})
    ref_rate = statistics.median(x["rate"] for x in refs)
    slow_rate = statistics.median(x["rate"] for x in slows)
    figs.append(
        Figure(
            "S1 fan-out",
            "delivered events/s, no-stall reference rounds",
            name,
            ref_rate,
            "ev/s",
            gen_cpu_pct=statistics.median(x["gen_cpu"] for x in refs),
            note=", ".join(f"{x['rate']:,.0f}" for x in refs),
        )
    )
    figs.append(
        Figure(
            "S1 fan-out",
            f"delivered events/s with {opened} stalled clients",
            name,
            slow_rate,
            "ev/s",
            gen_cpu_pct=statistics.median(x["gen_cpu"] for x in slows),
            server_cpu_pct=statistics.median(x["srv_cpu"] for x in slows),
            note=(
                f"rounds {', '.join(f'{x[RATE]:,.0f}' for x in slows)}; "
                f"{slow_rate / ref_rate:.0%} of the interleaved no-stall rounds; "
                f"stalled peers (limit {STALLED_LIMIT // 1024} KiB): {dropped} droppable deltas skipped, "
                f"{closed} closed 1008 slow consumer, max unsent {max_unsent // 1024} KiB; live peers: gaps "
                f"{sum(x['gaps'] for x in slows)}, reorders {sum(x['reorders'] for x in slows)}"
            ),
        )
    )
    pool.all({"cmd": "close"})
    figs.append(_policy_check(server, pool, plan, step))
    return figs


def _open_stalled(server: Server, pool: ClientPool, plan: Plan) -> int:
    """Open ``s1_stalled`` peers that stop reading (4 KiB receive buffer) under the STALLED_LIMIT send buffer
    (set for these connections only); returns how many opened."""
    assert server.control is not None
    old_limit = server.control.call({"cmd": "limit", "max_buffered_bytes": STALLED_LIMIT})["old"]
    cmd = {
        "cmd": "open",
        "url": server.url,
        "n": plan.s1_stalled,
        "token": TOKEN,
        "stall": plan.s1_stalled,
        "rcvbuf": 4096,
    }
    opened = int(pool.workers[0].call(cmd)["opened"])
    server.control.call({"cmd": "limit", "max_buffered_bytes": old_limit})
    return opened


def _policy_check(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> Figure:
    """With 1,000 readers each peer gets too few bytes to fill kernel buffers; with 20 it gets ~1 MB/s,
    so stalled peers reach the limit: show what the gateway did with them, and that live peers lost nothing."""
    assert server.control is not None
    step(f"S1 {server.name}: slow-consumer policy check (20 live, {plan.s1_stalled} stalled)")
    open_all(server, pool, 20)
    _open_stalled(server, pool, plan)
    before = server.control.call({"cmd": "stats"})
    res = _fanout_round(server, pool, plan.s1_policy_seconds, 0)
    after = server.control.call({"cmd": "stats"})
    pool.all({"cmd": "close"})
    dropped = after["dropped_open"] + after["dropped_closed"] - before["dropped_open"] - before["dropped_closed"]
    return Figure(
        "S1 fan-out",
        "slow-consumer policy check: droppable deltas skipped for stalled peers",
        server.name,
        float(dropped),
        "events",
        LOWER,
        gen_cpu_pct=res["gen_cpu"],
        note=(
            f"{res['published']} published in {plan.s1_policy_seconds:g}s to 20 live + {plan.s1_stalled} "
            f"stalled peers (limit {STALLED_LIMIT // 1024} KiB): stalled peers' unsent bytes peaked at "
            f"{after['max_buffered'] // 1024} KiB, {before['connections'] - after['connections']} closed 1008 "
            f"(only droppable events were pending); live peers: {res['delivered']} delivered, gaps "
            f"{res['gaps']}, reorders {res['reorders']}"
        ),
    )


def s2_idle(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    name = server.name
    time.sleep(0.2 if plan.quick else 1.0)
    rss0 = server.rss()
    step(f"S2 {name}: connect {plan.s2_conns}")
    deadline = {"agenthub": plan.s2_connect_deadline, "openclaw": plan.s2_connect_deadline_openclaw}.get(
        name, plan.s2_connect_deadline_other
    )
    conn = open_all(server, pool, plan.s2_conns, concurrency=64, scopes=IDLE_SCOPES, device=False, deadline_s=deadline)
    opened = conn["opened"]
    hold = plan.s2_hold if name == "agenthub" else plan.s2_hold_other
    step(f"S2 {name}: hold {opened} for {hold:g}s")
    time.sleep(0.2 if plan.quick else 1.0)
    pool.all({"cmd": "arm", "mode": "idle"})
    win = Window(server, pool)
    rss_samples = []
    end = time.monotonic() + hold
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        rss_samples.append(server.rss())
    _, srv_cpu, gen_cpu = win.close()
    reports = pool.all({"cmd": "collect"})
    still = sum(r["open"] for r in reports)
    ticks = sum(r["frames"] for r in reports)
    pool.all({"cmd": "close"})
    per_conn = (statistics.median(rss_samples) - rss0) / max(1, opened) / 1024
    note = (
        f"{opened}/{plan.s2_conns} connected in {conn['seconds']:.1f}s, {still} still open after {hold:g}s, "
        f"{ticks} frames received while idle; RSS {rss0 / 2**20:.0f} -> {max(rss_samples) / 2**20:.0f} MiB"
    )
    if conn["errors"]:
        note += f"; errors: {sorted(conn['errors'])[0][:120]}"
    return [
        Figure(
            "S2 idle", "RSS per idle connection (KiB)", name, per_conn, "KiB", LOWER, gen_cpu_pct=gen_cpu, note=note
        ),
        Figure(
            "S2 idle", f"server CPU while {opened} idle (% of a core)", name, srv_cpu, "%", LOWER, gen_cpu_pct=gen_cpu
        ),
    ]


def s3_agent(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """Each worker holds one connection and starts its share of the runs (every operator gets every run's events)."""
    step(f"S3 {server.name}: {plan.s3_runs} runs x {plan.s3_rate:g} deltas/s")
    open_all(server, pool, len(pool.workers))
    count = int(plan.s3_rate * plan.s3_seconds)
    prefix = f"s3-{time.time_ns()}"
    cmds = [
        {
            "cmd": "agent",
            "runs": k,
            "message": f"bench {plan.s3_rate:g}/s {count}",
            "prefix": f"{prefix}-{i}",
            "timeout": plan.s3_seconds * 4 + 20,
            "total_runs": plan.s3_runs,
            "count": count,
        }
        for i, k in enumerate(pool.split(plan.s3_runs))
    ]
    win = Window(server, pool)
    reports = pool.all(cmds)
    _, srv_cpu, gen_cpu = win.close()
    pool.all({"cmd": "close"})
    lat, lat_max = _latencies(reports)
    gaps = sum(r["gaps"] for r in reports)
    reorders = sum(r["reorders"] for r in reports)
    finals = sum(r["finals"] for r in reports)
    expected = plan.s3_runs * count * len(pool.workers)
    marked = sum(r["marked"] for r in reports)
    rates = reports[0].get("emit_rates", []) if reports else []
    note = (
        f"{finals}/{plan.s3_runs} runs final ({','.join(sorted({s for r in reports for s in r['statuses']}))}); "
        f"{marked}/{expected} deltas received (each of {len(pool.workers)} operators gets every run), "
        f"max {lat_max / 1000:.1f} ms"
    )
    return [
        Figure(
            "S3 agent streaming",
            "gateway-added latency p50 (ms)",
            server.name,
            pct(lat, 0.5) / 1000,
            "ms",
            LOWER,
            gen_cpu_pct=gen_cpu,
            server_cpu_pct=srv_cpu,
            samples_us=lat,
        ),
        Figure(
            "S3 agent streaming",
            "gateway-added latency p99 (ms)",
            server.name,
            pct(lat, 0.99) / 1000,
            "ms",
            LOWER,
            gen_cpu_pct=gen_cpu,
            note=note,
        ),
        Figure(
            "S3 agent streaming",
            f"provider deltas/s achieved per run (paced at {plan.s3_rate:g}), median",
            server.name,
            statistics.median(rates) if rates else 0.0,
            "/s",
            gen_cpu_pct=gen_cpu,
            note=(
                f"slowest run {min(rates, default=0):.1f}/s; emit stamps of each run's first and last delta. "
                "The provider runs in the gateway's event loop: below the paced rate, the loop was saturated "
                "and deltas left the provider late, a delay the emit->receive latency above does not see"
            ),
        ),
        Figure(
            "S3 agent streaming",
            "dropped + reordered events",
            server.name,
            float(gaps + reorders + (expected - marked)),
            "events",
            LOWER,
            gen_cpu_pct=gen_cpu,
            note=f"gaps {gaps}, reorders {reorders}, missing {expected - marked}",
        ),
    ]


def s4_handshakes(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    figs = _s4(server, pool, plan, step, device=True)
    return figs + _s4(server, pool, plan, step, device=False)


def _s4(server: Server, pool: ClientPool, plan: Plan, step: Progress, *, device: bool) -> list[Figure]:
    kind = "token + signed device" if device else "token only, no device"
    seconds = plan.s4_seconds if server.name == "agenthub" else plan.s4_seconds_other
    step(f"S4 {server.name}: handshakes ({kind}) {seconds:g}s")
    win = Window(server, pool)
    res = pool.all(
        {
            "cmd": "handshakes",
            "url": server.url,
            "seconds": seconds,
            "token": TOKEN,
            "concurrency": plan.s4_concurrency,
            "device": device,
        }
    )
    _dt, srv_cpu, gen_cpu = win.close()
    done = sum(r["done"] for r in res)
    failed = sum(r["failed"] for r in res)
    span = max(r["seconds"] for r in res)
    lat, _ = _latencies(res)
    note = (
        f"{done} ok, {failed} failed; connect->hello-ok p50 {pct(lat, 0.5) / 1000:.1f} ms, "
        f"p99 {pct(lat, 0.99) / 1000:.1f} ms"
    )
    errs = {r["error"] for r in res if r["error"]}
    if failed and errs:
        note += f"; {sorted(errs)[0][:100]}"
    return [
        Figure(
            "S4 handshakes",
            f"connect+hello-ok+close per second ({kind})",
            server.name,
            done / span,
            "/s",
            gen_cpu_pct=gen_cpu,
            server_cpu_pct=srv_cpu,
            note=note,
            samples_us=lat,
        )
    ]


def s5_requests(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    name = server.name
    seeded = 0
    if name == "openclaw":  # agenthub's gateway_proc seeds its own store at start
        step(f"S5 {name}: seeding {HISTORY_SESSION}")
        seeded = seed_openclaw(server.url, TOKEN)
    conn = open_all(server, pool, plan.s5_clients)
    figs = []
    calls: list[tuple[str, dict[str, Any]]] = [("health", {})]
    if name in ("agenthub", "openclaw"):  # baselines (a) and (b) answer every request with a canned {"ok": true}
        calls.append(("chat.history", {"sessionKey": HISTORY_SESSION, "limit": 200}))
    for method, params in calls:
        seconds = plan.s5_seconds if method == "health" else plan.s5_history_seconds
        if name != "agenthub":
            seconds = plan.s5_seconds_other
        step(f"S5 {name}: {method} {seconds:g}s")
        win = Window(server, pool)
        res = pool.all({"cmd": "rpc", "method": method, "params": params, "seconds": seconds})
        _, srv_cpu, gen_cpu = win.close()
        n = sum(r["frames"] for r in res)
        lat, lat_max = _latencies(res)
        note = f"{conn['opened']} clients, {n} responses"
        if name == "agenthub" and method == "chat.history":
            note += " (200-message session)"
        if name == "openclaw" and method == "chat.history":
            note += f" ({seeded}-message session, seeded through chat.inject)"
        figs.append(
            Figure(
                "S5 requests",
                f"{method} requests/s",
                name,
                n / seconds,
                "req/s",
                gen_cpu_pct=gen_cpu,
                server_cpu_pct=srv_cpu,
                note=note,
                samples_us=lat,
            )
        )
        figs.append(
            Figure(
                "S5 requests",
                f"{method} p50 round trip (ms)",
                name,
                pct(lat, 0.5) / 1000,
                "ms",
                LOWER,
                gen_cpu_pct=gen_cpu,
            )
        )
        figs.append(
            Figure(
                "S5 requests",
                f"{method} p99 round trip (ms)",
                name,
                pct(lat, 0.99) / 1000,
                "ms",
                LOWER,
                gen_cpu_pct=gen_cpu,
                note=f"max {lat_max / 1000:.1f} ms",
            )
        )
    pool.all({"cmd": "close"})
    return figs
