"""The five scenarios. Each takes a started server and the client pool and returns ``Figure`` rows.

Every figure carries the generator's own CPU (the client processes' user+sys
seconds over the measured window, as % of one core) and the server's CPU.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .control import WORD
from .history_seed import HISTORY_COUNT, HISTORY_SESSION, count_history, seed_openclaw
from .procs import TOKEN, ClientPool, Server

__all__ = [
    "SCALED",
    "Figure",
    "Plan",
    "s1_fanout",
    "s2_idle",
    "s2_scaled",
    "s3_across",
    "s3_agent",
    "s4_handshakes",
    "s5_requests",
    "s6_finished_runs",
    "wait_ready",
]

STALLED_LIMIT = 64 * 1024
# The scaled-out stack: `--workers 2` sharing Redis and PostgreSQL (bench.procs.start_cluster).
SCALED = "agenthub --workers 2"
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
    at: str = ""  # shown in the cell when the figure was taken under other terms, e.g. "at 1,412 conns"
    extra: dict[str, Any] = field(default_factory=dict)  # raw numbers for the JSON and the target checks


@dataclass
class Plan:
    """Sizes and windows. Every stack in a scenario gets the same window (``*_seconds``)."""

    quick: bool
    s1_clients: int = 1000
    s1_seconds: float = 10.0
    s1_rounds: int = 5
    s1_half_seconds: float = 5.0
    s1_stalled: int = 10
    s1_stalled_seconds: float = 5.0  # 2 no-stall + 2 stalled rounds share this, half each kind
    s1_fill_ceiling: float = 10.0  # how long a stalled peer may take to fill its buffers before a round
    s1_policy_seconds: float = 6.0
    s2_conns: int = 10_000
    s2_step: int = 1_000  # every stack is measured here first: the count compared across stacks
    s2_hold: float = 8.0
    s2_connect_deadline: float = 20.0  # per step, every stack alike
    s3_runs: int = 200
    s3_rate: float = 50.0
    s3_seconds: float = 5.0
    s4_seconds: float = 4.0
    s4_concurrency: int = 16
    s5_clients: int = 100
    s5_seconds: float = 5.0
    s5_history_seconds: float = 4.0
    s6_runs: int = 10
    s6_words: int = 2_000

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
            s1_fill_ceiling=8,
            s1_policy_seconds=2,
            s2_conns=300,
            s2_step=100,
            s2_hold=2,
            s2_connect_deadline=5,
            s3_runs=20,
            s3_seconds=1,
            s4_seconds=1,
            s4_concurrency=4,
            s5_clients=20,
            s5_seconds=1,
            s5_history_seconds=1,
            s6_runs=4,
            s6_words=500,
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
        if k
    ]
    t0 = time.perf_counter()
    res = pool.all(cmds) if cmds else []
    return {
        "opened": sum(r["opened"] for r in res),
        "failed": sum(r["failed"] for r in res),
        "gave_up": sum(r.get("gave_up", 0) for r in res),
        "seconds": time.perf_counter() - t0,
        "errors": sorted({r["error"] for r in res if r["error"]}),
    }


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


def _fanout_round(server: Server, pool: ClientPool, seconds: float, rate: float, must_every: int = 0) -> dict[str, Any]:
    assert server.control is not None
    pool.all({"cmd": "arm", "mode": "fanout"})
    win = Window(server, pool)
    pub = server.control.call({"cmd": "fanout", "seconds": seconds, "rate": rate, "must_every": must_every})
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


def _rates(rs: list[dict[str, Any]], key: str = "rate") -> str:
    return ", ".join(f"{x[key]:,.0f}" for x in rs)


def s1_fanout(servers: list[Server], pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """Peak fan-out of every stack in interleaved rounds (so load drift on a shared box hits all alike),
    then, for agenthub only, a run paced at half its peak, stalled clients, and the slow-consumer policy."""
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
                    f"median of {len(rs)} x {per_round:g}s rounds ({_rates(rs)}); "
                    f"{sum(x['published'] for x in rs)} published, gaps {sum(x['gaps'] for x in rs)}, "
                    f"reorders {sum(x['reorders'] for x in rs)}"
                ),
                samples_us=lat,
                extra={"rounds": [x["rate"] for x in rs]},
            ),
            Figure(
                "S1 fan-out",
                "p99 latency at peak (ms)",
                server.name,
                pct(lat, 0.99) / 1000,
                "ms",
                LOWER,
                gen_cpu_pct=peak["gen_cpu"],
                note=f"{len(lat)} samples over the {len(rs)} rounds",
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
                note="median of the rounds (" + ", ".join(f"{x['us_per_delivery']:.1f}" for x in rs) + ")",
            ),
        ]
    ours = next((s for s in servers if s.name == "agenthub"), None)
    scaled = next((s for s in servers if s.name == SCALED), None)
    if scaled is not None:  # the scaled-out gateway's latency target is at half its own peak
        figs += _half_peak(scaled, pool, plan, step, peak_by_name[scaled.name])
    for server in servers:
        if server is not ours:
            pool.all({"cmd": "close", "url": server.url})
    if ours is None:
        return figs
    server = ours
    figs += _half_peak(ours, pool, plan, step, peak_by_name[ours.name])
    figs += _stall_rounds(server, pool, plan, step)
    pool.all({"cmd": "close"})
    figs += _policy_check(server, pool, plan, step)
    return figs


def _half_peak(server: Server, pool: ClientPool, plan: Plan, step: Progress, peak: dict[str, Any]) -> list[Figure]:
    """A run paced at half the peak publish rate: the latency target's condition."""
    name = server.name
    half_rate = max(1.0, peak["pub_rate"] / 2)
    step(f"S1 {name}: half peak ({half_rate:.0f} ev/s) {plan.s1_half_seconds:g}s")
    half = _fanout_round(server, pool, plan.s1_half_seconds, half_rate)
    figs = [
        Figure(
            "S1 fan-out",
            f"{label} latency at half peak (ms)",
            name,
            pct(half["lat"], q) / 1000,
            "ms",
            LOWER,
            gen_cpu_pct=half["gen_cpu"],
            server_cpu_pct=half["srv_cpu"],
            samples_us=half["lat"] if label == "p50" else [],
            note=f"paced at {half_rate:.0f} pub/s" if label == "p50" else "",
        )
        for q, label in ((0.5, "p50"), (0.99, "p99"))
    ]
    figs.append(
        Figure(
            "S1 fan-out",
            "max latency at half peak (ms)",
            name,
            half["max"] / 1000,
            "ms",
            LOWER,
            gen_cpu_pct=half["gen_cpu"],
            note=f"{half['published']} published, gaps {half['gaps']}, reorders {half['reorders']}",
        )
    )
    return figs


def _stall_rounds(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """No-stall and stalled rounds, interleaved (load on a shared box drifts by tens of % between runs).

    Before each stalled round the stalled peers are opened and the fan-out runs (unmeasured) until
    the gateway's policy acts on them: droppable deltas skipped or the peer closed 1008. The round
    is then measured with the stall biting; if it never bit, the round still runs and says so.
    """
    assert server.control is not None
    name = server.name
    per = plan.s1_stalled_seconds / 2
    refs: list[dict[str, Any]] = []
    slows: list[dict[str, Any]] = []
    dropped = closed = closed_before = peak_unsent = opened = 0
    fills: list[float] = []
    for r in range(2):
        step(f"S1 {name}: no-stall reference {r + 1}/2, {per:g}s")
        refs.append(_fanout_round(server, pool, per, 0))
        step(f"S1 {name}: {plan.s1_stalled} stalled clients, filling their buffers")
        opened = _open_stalled(server, pool, plan)
        fills.append(_fill_until_bite(server, plan))
        drain(pool, settle=0.25)  # the fill's last events land before the measured round starts
        before = server.control.call({"cmd": "stats", "reset_peak": True})
        step(f"S1 {name}: with {plan.s1_stalled} stalled clients {r + 1}/2, {per:g}s")
        slows.append(_fanout_round(server, pool, per, 0))
        after = server.control.call({"cmd": "stats"})
        dropped += after["marked_dropped"] - before["marked_dropped"]
        closed += after["marked_closed"] - before["marked_closed"]
        closed_before += before["marked_closed"]  # gone before the round: it ran without them
        peak_unsent = max(peak_unsent, after["marked_peak_unsent"])
        pool.workers[0].call({"cmd": "close_stalled"})
        server.control.call({"cmd": "unmark"})
    ref_rate = statistics.median(x["rate"] for x in refs)
    slow_rate = statistics.median(x["rate"] for x in slows)
    bit = dropped > 0 or closed > 0  # the policy acted on stalled peers during the measured rounds
    fill_text = ", ".join("never (ceiling)" if math.isinf(f) else f"{f:.1f}s" for f in fills)
    return [
        Figure(
            "S1 fan-out",
            "delivered events/s, no-stall reference rounds",
            name,
            ref_rate,
            "ev/s",
            gen_cpu_pct=statistics.median(x["gen_cpu"] for x in refs),
            note=f"rounds {_rates(refs)}",
        ),
        Figure(
            "S1 fan-out",
            f"delivered events/s with {opened} stalled clients",
            name,
            slow_rate,
            "ev/s",
            gen_cpu_pct=statistics.median(x["gen_cpu"] for x in slows),
            server_cpu_pct=statistics.median(x["srv_cpu"] for x in slows),
            note=(
                f"rounds {_rates(slows)}; {slow_rate / ref_rate:.0%} of the interleaved no-stall rounds; "
                f"the policy acted on the stalled peers during these rounds: {'yes' if bit else 'no'}; "
                f"live peers: gaps {sum(x['gaps'] for x in slows)}, reorders {sum(x['reorders'] for x in slows)}"
            ),
            extra={"stall_bit": bit, "ref_rate": ref_rate},
        ),
        Figure(
            "S1 fan-out",
            "stalled clients: droppable deltas skipped / closed 1008 (in the measured rounds)",
            name,
            float(dropped),
            "events",
            LOWER,
            at=f"{closed} closed",
            note=(
                f"{opened} peers per round (client receive buffer 4 KiB, server send buffer "
                f"{STALLED_SNDBUF // 1024} KiB, limit {STALLED_LIMIT // 1024} KiB); the policy first acted after "
                f"{fill_text} of unmeasured fan-out; {closed_before} were closed before their round began; "
                f"their unsent bytes peaked at {peak_unsent / 1024:.0f} KiB in the measured rounds"
            ),
            extra={"dropped": dropped, "closed": closed, "closed_before": closed_before, "fill_s": fills},
        ),
    ]


STALLED_SNDBUF = 4096


def _open_stalled(server: Server, pool: ClientPool, plan: Plan) -> int:
    """Open ``s1_stalled`` peers that stop reading, with a 4 KiB receive buffer; the gateway gives them (only)
    a STALLED_LIMIT send limit and a fixed STALLED_SNDBUF kernel send buffer. Returns how many opened."""
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
    server.control.call({"cmd": "mark", "sndbuf": STALLED_SNDBUF, "restore": old_limit})
    return opened


def _fill_until_bite(server: Server, plan: Plan, chunk: float = 0.5, must_every: int = 0) -> float:
    """Fan out (unmeasured) until the policy acted on a stalled peer; seconds it took, inf past the ceiling."""
    assert server.control is not None
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < plan.s1_fill_ceiling:
        server.control.call({"cmd": "fanout", "seconds": chunk, "rate": 0, "must_every": must_every})
        st = server.control.call({"cmd": "stats"})
        if st["marked_dropped"] or st["marked_closed"]:
            return time.perf_counter() - t0
    return math.inf


POLICY_LIVE = 20
POLICY_MUST_EVERY = 50  # one must-deliver event (a lifecycle, tool or final event of a run) per 50


def _policy_check(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """The whole slow-consumer policy at a rate that makes it act within seconds.

    With 20 live readers each peer gets far more bytes per second than among 1,000, and one event in
    50 is must-deliver, like a run's lifecycle and final events among its deltas: stalled peers first
    lose droppable deltas, then are closed 1008 once must-deliver bytes pass their limit. Live peers
    must see neither a gap nor a reorder.
    """
    assert server.control is not None
    step(f"S1 {server.name}: slow-consumer policy check ({POLICY_LIVE} live, {plan.s1_stalled} stalled)")
    open_all(server, pool, POLICY_LIVE)
    opened = _open_stalled(server, pool, plan)
    before = server.control.call({"cmd": "stats", "reset_peak": True})
    res = _fanout_round(server, pool, plan.s1_policy_seconds, 0, must_every=POLICY_MUST_EVERY)
    after = server.control.call({"cmd": "stats"})
    pool.all({"cmd": "close"})
    server.control.call({"cmd": "unmark"})
    dropped = after["marked_dropped"] - before["marked_dropped"]
    closed = after["marked_closed"]
    note = (
        f"{res['published']} published in {plan.s1_policy_seconds:g}s, 1 in {POLICY_MUST_EVERY} must-deliver, "
        f"to {POLICY_LIVE} live + {opened} stalled peers (limit {STALLED_LIMIT // 1024} KiB): stalled peers' "
        f"unsent bytes peaked at {after['marked_peak_unsent'] / 1024:.0f} KiB; live peers: {res['delivered']} "
        f"deltas delivered, gaps {res['gaps']}, reorders {res['reorders']}"
    )
    return [
        Figure(
            "S1 fan-out",
            "policy check: droppable deltas skipped for stalled peers",
            server.name,
            float(dropped),
            "events",
            LOWER,
            gen_cpu_pct=res["gen_cpu"],
            note=note,
        ),
        Figure(
            "S1 fan-out",
            "policy check: stalled peers closed 1008 slow consumer",
            server.name,
            float(closed),
            "peers",
            at=f"of {opened}",
            gen_cpu_pct=res["gen_cpu"],
            extra={"live_gaps": res["gaps"], "live_reorders": res["reorders"]},
        ),
    ]


def _reach_note(target: int, conn: dict[str, Any], deadline: float) -> str:
    """Why a stack stopped short of ``target`` connections, from what the clients saw."""
    opened = conn["opened"]
    if opened >= target:
        return ""
    why = []
    if conn["gave_up"]:
        why.append(f"the {deadline:g}s connect deadline passed with {conn['gave_up']} attempts not started")
    if conn["failed"]:
        why.append(f"{conn['failed']} refused or failed ({'; '.join(conn['errors'])[:160] or 'no error text'})")
    return f"reached {opened:,}/{target:,}: " + ("; ".join(why) or "unknown")


def s2_idle(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """Idle connections: RSS per connection at ``s2_step`` (every stack) and at ``s2_conns``, CPU while idle."""
    name = server.name
    rss0 = _settled_rss(server, 3.0 if plan.quick else 10.0)
    params = {"concurrency": 64, "scopes": IDLE_SCOPES, "device": False, "deadline_s": plan.s2_connect_deadline}
    step(f"S2 {name}: connect {plan.s2_step}")
    first = open_all(server, pool, plan.s2_step, **params)
    time.sleep(0.2 if plan.quick else 1.0)
    rss1 = statistics.median(_rss_samples(server, 3, 0.5))
    n1 = first["opened"]
    figs = [
        Figure(
            "S2 idle",
            f"RSS per idle connection at {plan.s2_step:,} (KiB)",
            name,
            (rss1 - rss0) / max(1, n1) / 1024,
            "KiB",
            LOWER,
            at="" if n1 >= plan.s2_step else f"at {n1:,}",
            note=(
                f"{n1:,}/{plan.s2_step:,} connected in {first['seconds']:.1f}s; RSS {rss0 / 2**20:.0f} -> "
                f"{rss1 / 2**20:.0f} MiB" + (f"; {_reach_note(plan.s2_step, first, plan.s2_connect_deadline)}")
            ).rstrip("; "),
            extra={"opened": n1},
        )
    ]
    step(f"S2 {name}: connect up to {plan.s2_conns}")
    second = open_all(server, pool, plan.s2_conns - n1, **params) if n1 >= plan.s2_step else first | {"opened": 0}
    opened = n1 + second["opened"]
    total = {
        **second,
        "opened": opened,
        "seconds": first["seconds"] + second["seconds"],
        "errors": sorted(set(first["errors"]) | set(second["errors"])),
    }
    if n1 < plan.s2_step:
        total["gave_up"] = first["gave_up"] + plan.s2_conns - plan.s2_step
    step(f"S2 {name}: hold {opened} for {plan.s2_hold:g}s")
    time.sleep(0.2 if plan.quick else 1.0)
    pool.all({"cmd": "arm", "mode": "idle"})
    win = Window(server, pool)
    rss_samples = _rss_samples(server, max(1, int(plan.s2_hold)), plan.s2_hold / max(1, int(plan.s2_hold)))
    _, srv_cpu, gen_cpu = win.close()
    reports = pool.all({"cmd": "collect"})
    still = sum(r["open"] for r in reports)
    ticks = sum(r["frames"] for r in reports)
    pool.all({"cmd": "close"})
    reach = _reach_note(plan.s2_conns, total, plan.s2_connect_deadline)
    at = "" if opened >= plan.s2_conns else f"at {opened:,}"
    note = (
        f"{opened:,}/{plan.s2_conns:,} connected in {total['seconds']:.1f}s, {still:,} still open after "
        f"{plan.s2_hold:g}s, {ticks} frames received while idle; RSS {rss0 / 2**20:.0f} -> "
        f"{max(rss_samples) / 2**20:.0f} MiB" + (f"; {reach}" if reach else "")
    )
    return [
        *figs,
        Figure(
            "S2 idle",
            f"RSS per idle connection at {plan.s2_conns:,} (KiB)",
            name,
            (statistics.median(rss_samples) - rss0) / max(1, opened) / 1024,
            "KiB",
            LOWER,
            gen_cpu_pct=gen_cpu,
            at=at,
            note=note,
            extra={"opened": opened, "still_open": still},
        ),
        Figure(
            "S2 idle",
            f"server CPU while {plan.s2_conns:,} idle (% of a core)",
            name,
            srv_cpu,
            "%",
            LOWER,
            gen_cpu_pct=gen_cpu,
            at=at,
            extra={"opened": opened},
        ),
    ]


def _settled_rss(server: Server, ceiling: float, every: float = 0.5) -> int:
    """RSS once two samples ``every`` apart differ by under 1% (a fresh process is still loading and
    collecting for a while), or the last sample after ``ceiling`` seconds."""
    last = server.rss()
    end = time.monotonic() + ceiling
    while time.monotonic() < end:
        time.sleep(every)
        now = server.rss()
        if abs(now - last) < 0.01 * last:
            return now
        last = now
    return last


def _rss_samples(server: Server, n: int, every: float) -> list[int]:
    out = []
    for _ in range(n):
        time.sleep(every)
        out.append(server.rss())
    return out


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
                f"slowest run {min(rates, default=0):.1f}/s, fastest {max(rates, default=0):.1f}/s "
                f"({len(rates)} runs, from the emit stamps of each run's first and last delta)"
            ),
        ),
        _s3_losses(server.name, gaps, reorders, expected - marked, gen_cpu),
    ]


def _s3_losses(name: str, gaps: int, reorders: int, missing: int, gen_cpu: float | None) -> Figure:
    """S3's "dropped + reordered events" figure (one process, or across processes)."""
    return Figure(
        "S3 agent streaming",
        "dropped + reordered events",
        name,
        float(gaps + reorders + missing),
        "events",
        LOWER,
        gen_cpu_pct=gen_cpu,
        note=f"gaps {gaps}, reorders {reorders}, missing {missing}",
    )


def s3_across(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """S3 on two workers with a port each: runs start on worker A, half the operators read them on B.

    The readers on B receive only events produced on A, through Redis: their emit -> receive
    latency is the cross-process figure. The operators on A (which start the runs) are the
    same-process reference, within the same run.
    """
    urls: list[str] = getattr(server, "urls", [server.url])
    assert len(urls) == 2, "two workers, a port each"
    k = len(pool.workers)
    starters = max(1, k // 2)
    step(f"S3 {server.name}: {plan.s3_runs} runs on worker A, read on worker B")
    pool.all([{"cmd": "open", "url": urls[0] if i < starters else urls[1], "n": 1, "token": TOKEN} for i in range(k)])
    count = int(plan.s3_rate * plan.s3_seconds)
    prefix = f"s3x-{time.time_ns()}"
    shares = [plan.s3_runs // starters + (i < plan.s3_runs % starters) for i in range(starters)]
    cmds = [
        {
            "cmd": "agent",
            "runs": shares[i] if i < starters else 0,
            "message": f"bench {plan.s3_rate:g}/s {count}",
            "prefix": f"{prefix}-{i}",
            "timeout": plan.s3_seconds * 4 + 20,
            "total_runs": plan.s3_runs,
            "count": count,
        }
        for i in range(k)
    ]
    win = Window(server, pool)
    reports = pool.all(cmds)
    _, srv_cpu, gen_cpu = win.close()
    pool.all({"cmd": "close"})
    local, remote = reports[:starters], reports[starters:]
    lat_b, max_b = _latencies(remote)
    lat_a, _ = _latencies(local)
    gaps = sum(r["gaps"] for r in reports)
    reorders = sum(r["reorders"] for r in reports)
    expected = plan.s3_runs * count * k
    marked = sum(r["marked"] for r in reports)
    finals = sum(r["finals"] for r in local)
    note = (
        f"{finals}/{plan.s3_runs} runs final on A; {marked}/{expected} deltas received by {k} operators "
        f"({starters} on A, {k - starters} on B); max on B {max_b / 1000:.1f} ms"
    )
    name = server.name
    return [
        Figure(
            "S3 agent streaming",
            "gateway-added latency p50, produced on A, received on B (ms)",
            name,
            pct(lat_b, 0.5) / 1000,
            "ms",
            LOWER,
            gen_cpu_pct=gen_cpu,
            server_cpu_pct=srv_cpu,
            samples_us=lat_b,
        ),
        Figure(
            "S3 agent streaming",
            "gateway-added latency p99, produced on A, received on B (ms)",
            name,
            pct(lat_b, 0.99) / 1000,
            "ms",
            LOWER,
            gen_cpu_pct=gen_cpu,
            note=note,
        ),
        Figure(
            "S3 agent streaming",
            "gateway-added latency p99 (ms)",
            name,
            pct(lat_a, 0.99) / 1000,
            "ms",
            LOWER,
            gen_cpu_pct=gen_cpu,
            note="operators on A, the runs' own worker (through Redis too: every process delivers from it)",
        ),
        _s3_losses(name, gaps, reorders, expected - marked, gen_cpu),
    ]


def s2_scaled(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """RSS per idle connection of the scaled-out gateway (both workers' RSS) at ``s2_step`` connections."""
    name = server.name
    rss0 = _settled_rss(server, 3.0 if plan.quick else 10.0)
    params = {"concurrency": 64, "scopes": IDLE_SCOPES, "device": False, "deadline_s": plan.s2_connect_deadline}
    step(f"S2 {name}: connect {plan.s2_step}")
    first = open_all(server, pool, plan.s2_step, **params)
    time.sleep(0.2 if plan.quick else 1.0)
    rss1 = statistics.median(_rss_samples(server, 3, 0.5))
    pool.all({"cmd": "close"})
    n1 = first["opened"]
    return [
        Figure(
            "S2 idle",
            f"RSS per idle connection at {plan.s2_step:,} (KiB)",
            name,
            (rss1 - rss0) / max(1, n1) / 1024,
            "KiB",
            LOWER,
            at="" if n1 >= plan.s2_step else f"at {n1:,}",
            note=f"{n1:,}/{plan.s2_step:,} connected over both workers; RSS of both {rss0 / 2**20:.0f} -> "
            f"{rss1 / 2**20:.0f} MiB",
            extra={"opened": n1},
        )
    ]


def s4_handshakes(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    figs = _s4(server, pool, plan, step, device=True)
    return figs + _s4(server, pool, plan, step, device=False)


def _s4(server: Server, pool: ClientPool, plan: Plan, step: Progress, *, device: bool) -> list[Figure]:
    kind = "token + signed device" if device else "token only, no device"
    seconds = plan.s4_seconds
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
    late = sum(r["late"] for r in res)
    lat, _ = _latencies(res)
    note = (
        f"{done} completed inside the {seconds:g}s window, {late} after it (not counted), {failed} failed; "
        f"connect->hello-ok p50 {pct(lat, 0.5) / 1000:.1f} ms, p99 {pct(lat, 0.99) / 1000:.1f} ms"
    )
    errs = sorted({r["error"] for r in res if r["error"]})
    if failed and errs:
        note += f"; {errs[0][:100]}"
    return [
        Figure(
            "S4 handshakes",
            f"connect+hello-ok+close per second ({kind})",
            server.name,
            done / seconds,
            "/s",
            gen_cpu_pct=gen_cpu,
            server_cpu_pct=srv_cpu,
            note=note,
            samples_us=lat,
            extra={"done": done, "failed": failed, "late": late},
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
    calls: list[tuple[str, dict[str, Any], float]] = [("health", {}, plan.s5_seconds)]
    if name in (
        "agenthub",
        SCALED,
        "openclaw",
    ):  # baselines (a) and (b) answer every request with a canned {"ok": true}
        calls.append(("chat.history", {"sessionKey": HISTORY_SESSION, "limit": 200}, plan.s5_history_seconds))
        shown = seeded if name == "openclaw" else count_history(server.url, TOKEN)
        if shown != HISTORY_COUNT:  # an empty transcript is cheap to serve: that would not be S5
            raise RuntimeError(f"S5 {name}: chat.history shows {shown} of the {HISTORY_COUNT} seeded messages")
    for method, params, seconds in calls:
        step(f"S5 {name}: {method} {seconds:g}s")
        win = Window(server, pool)
        res = pool.all({"cmd": "rpc", "method": method, "params": params, "seconds": seconds})
        _, srv_cpu, gen_cpu = win.close()
        n = sum(r["frames"] for r in res)
        errors = sum(r["errors"] for r in res)
        late = sum(r["late"] for r in res)
        lat, lat_max = _latencies(res)
        note = (
            f"{conn['opened']} clients, {n} answers inside the {seconds:g}s window, {late} after it (not counted), "
            f"{errors} error replies"
        )
        err_text = sorted({r["error"] for r in res if r["error"]})
        if errors and err_text:
            note += f" (first: {err_text[0][:120]})"
        if method == "chat.history":
            note += f"; the session holds {HISTORY_COUNT} messages (checked with one chat.history first)"
        figs += [
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
                extra={"answers": n, "errors": errors, "late": late},
            ),
            Figure("S5 requests", f"{method} error replies", name, float(errors), "replies", LOWER),
            Figure(
                "S5 requests",
                f"{method} p50 round trip (ms)",
                name,
                pct(lat, 0.5) / 1000,
                "ms",
                LOWER,
                gen_cpu_pct=gen_cpu,
            ),
            Figure(
                "S5 requests",
                f"{method} p99 round trip (ms)",
                name,
                pct(lat, 0.99) / 1000,
                "ms",
                LOWER,
                gen_cpu_pct=gen_cpu,
                note=f"max {lat_max / 1000:.1f} ms",
            ),
        ]
    pool.all({"cmd": "close"})
    return figs


def s6_finished_runs(server: Server, pool: ClientPool, plan: Plan, step: Progress) -> list[Figure]:
    """Memory a finished run leaves behind: RSS growth over ``s6_runs`` long runs, divided by their number.

    One operator connection starts the runs together, each in its own session (each streams an
    ``s6_words``-word answer, one word per delta), and reads every event. A first run warms the
    process up and is not counted.
    """
    w = pool.workers[0]
    step(f"S6 {server.name}: {plan.s6_runs} runs of {plan.s6_words} words")
    w.call({"cmd": "open", "url": server.url, "n": 1, "token": TOKEN})
    prefix = f"s6-{time.time_ns()}"

    def runs(n: int, tag: str) -> dict[str, Any]:
        return w.call(
            {
                "cmd": "agent",
                "runs": n,
                "message": f"words {plan.s6_words}",
                "prefix": f"{prefix}-{tag}",
                "timeout": 120,
                "total_runs": 0,
                "count": 0,
            }
        )

    runs(1, "warm")
    time.sleep(0.5)
    rss0 = statistics.median(_rss_samples(server, 3, 0.2))
    win = Window(server, pool)
    res = runs(plan.s6_runs, "n")
    _, srv_cpu, gen_cpu = win.close()
    time.sleep(0.5)
    rss1 = statistics.median(_rss_samples(server, 3, 0.2))
    w.call({"cmd": "close"})
    answer_kib = plan.s6_words * len(WORD) / 1024
    per_run = (rss1 - rss0) / plan.s6_runs / 1024
    return [
        Figure(
            "S6 finished runs",
            f"RSS per finished run, {plan.s6_words:,}-word answers (KiB)",
            server.name,
            per_run,
            "KiB",
            LOWER,
            gen_cpu_pct=gen_cpu,
            server_cpu_pct=srv_cpu,
            note=(
                f"{res['finals']}/{plan.s6_runs} runs final ({','.join(res['statuses'])}), "
                f"{res['frames']} frames read; "
                f"RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB; each answer is {answer_kib:.1f} KiB of text, so "
                f"a run keeps {per_run / answer_kib:.1f}x its answer"
            ),
            extra={"rss0": rss0, "rss1": rss1, "finals": res["finals"]},
        )
    ]
