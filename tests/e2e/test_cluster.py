"""Two gateway processes, one Redis, one PostgreSQL (issue 12): real servers, real sockets.

Gateway A and gateway B run on two ports with their own data dirs and share
``--redis-url`` and ``--database-url``; clients connect to either. Each test
waits on the events that prove a state (a terminal chat event, a presence
list, a close frame), with generous ceilings; none times the gateway.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest

from agenthub.client import DeviceIdentity

from ..conftest import GatewayProc, RawClient
from ..conftest import signed_device as signed
from ._util import Client, assert_run_numbering, collect_run, start_agent

pytestmark = pytest.mark.timeout(120)

Pair = tuple[GatewayProc, GatewayProc]
# Short liveness so a killed process is noticed within seconds; slow words so runs can be caught mid-way.
CLUSTER_CONFIG: dict[str, Any] = {"redis": {"node_ttl_ms": 1500}, "demo": {"word_delay_ms": 15}}


@pytest.fixture
def pair(make_gateway: Any, redis_url: str, pg_url: str) -> Callable[..., Pair]:
    def start(*extra: str, config: dict[str, Any] | None = None) -> Pair:
        # --workers 1: with Redis the default is one worker per core; here each gateway is one process.
        args = ("--redis-url", redis_url, "--database-url", pg_url, "--workers", "1", *extra)
        cfg = {**CLUSTER_CONFIG, **(config or {})}
        return make_gateway(*args, config=cfg), make_gateway(*args, config=cfg)

    return start


async def run_seen_from(c: Client, run_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Every agent/chat event of ``run_id`` this client received, through its terminal chat event."""
    log = await collect_run(c, run_id, timeout=timeout)
    return log.frames


async def test_a_run_on_a_streams_to_b_in_order_and_b_aborts_and_waits(pair: Callable[..., Pair]) -> None:
    a, b = pair()
    async with Client.open_connected(a.url) as on_a, Client.open_connected(b.url) as on_b:
        rid, accepted = await start_agent(on_a, "hello cluster [long:40]", "c-one", session="cl")
        assert accepted["status"] == "accepted"
        # agent.wait on B for a run A executes: A, the owner, answers with its result.
        waiter = await on_b.request("agent.wait", {"runId": "c-one", "timeoutMs": 60_000})
        from_a = await run_seen_from(on_a, "c-one")
        from_b = await run_seen_from(on_b, "c-one")
        # B saw exactly what A's own client saw: same events, same order, same payloads, no duplicate.
        assert [(f["event"], f["payload"]) for f in from_b] == [(f["event"], f["payload"]) for f in from_a]
        assert_run_numbering(from_b)
        assert from_b[-1]["payload"]["state"] == "final"
        waited = await on_b.response(waiter, timeout=30)
        assert waited["ok"] and waited["payload"]["status"] == "ok" and waited["payload"]["runId"] == "c-one"
        final = await on_a.response(rid, timeout=30)
        assert final["payload"]["status"] == "ok"

        # Abort from B stops the run executing on A.
        rid2, _ = await start_agent(on_a, "stop me [long:2000]", "c-two", session="cl2")
        await on_b.until(lambda f: f.get("event") == "agent" and f["payload"].get("runId") == "c-two")
        aborted = await on_b.ok("chat.abort", {"sessionKey": "cl2", "runId": "c-two"})
        assert aborted["aborted"] is True and aborted["runIds"] == ["c-two"]
        end_b = (await run_seen_from(on_b, "c-two"))[-1]["payload"]
        assert end_b["state"] == "aborted"
        assert (await on_a.response(rid2, timeout=30))["payload"]["status"] == "aborted"
        # agent.wait on B for a finished run of A: from the shared database.
        assert (await on_b.ok("agent.wait", {"runId": "c-two", "timeoutMs": 1000}))["status"] == "aborted"
        # agent.replay on B reads A's stream from Redis.
        replay = await on_b.ok("agent.replay", {"runId": "c-one", "afterSeq": 0})
        assert [e["payload"] for e in replay["events"]] == [f["payload"] for f in from_a]


async def test_presence_and_status_span_the_processes(pair: Callable[..., Pair]) -> None:
    a, b = pair()
    async with Client.open_connected(a.url) as on_a:
        async with Client.open_connected(
            b.url, client={"id": "test", "version": "9.9.9", "platform": "linux", "mode": "test", "displayName": "on-b"}
        ):
            ev = await on_a.until(
                lambda f: (
                    f.get("event") == "presence" and any(e.get("host") == "on-b" for e in f["payload"]["presence"])
                )
            )
            hosts = [e.get("host") for e in ev["payload"]["presence"]]
            assert "on-b" in hosts and len(hosts) >= 2
            listed = await on_a.ok("system-presence")
            assert any(e.get("host") == "on-b" for e in listed)
        # B's client left: A's clients hear it.
        await on_a.until(
            lambda f: (
                f.get("event") == "presence" and not any(e.get("host") == "on-b" for e in f["payload"]["presence"])
            )
        )
        health = await on_a.ok("health")
        backend = health["backend"]
        assert health["ok"] is True
        assert backend["bus"]["kind"] == "redis" and backend["bus"]["ok"] is True
        assert backend["cluster"]["liveNodes"] >= 1 and backend["process"]["pid"] == a.proc.pid  # type: ignore[union-attr]
        assert backend["database"]["kind"] == "postgresql" and backend["database"]["ok"] is True
        status = await on_a.ok("status")
        assert status["backend"]["bus"]["kind"] == "redis"
    metrics = await asyncio.to_thread(_get, f"{b.http}/metrics")
    assert 'agenthub_backend_info{bus="redis"' in metrics and "agenthub_bus_lag_ms" in metrics
    assert "agenthub_db_pool_checked_out" in metrics


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


async def test_a_device_revoked_on_a_is_refused_on_b_at_once(pair: Callable[..., Pair]) -> None:
    a, b = pair()
    ident = DeviceIdentity.generate()
    scopes = ["operator.read", "operator.write"]
    async with RawClient.open(a.url) as c:  # on loopback a new device is paired silently
        res = await c.connect(scopes=scopes, device=signed(c, ident, scopes=scopes))
        assert res["ok"], res
        token = res["payload"]["auth"]["deviceToken"]

    async def connect_b(dev: RawClient) -> dict[str, Any]:
        return await dev.connect(
            scopes=scopes, auth={"deviceToken": token}, device=signed(dev, ident, scopes=scopes, token=token)
        )

    async with RawClient.open(b.url) as dev, RawClient.open(a.url) as op:
        assert (await connect_b(dev))["ok"]  # B knows the device now (and caches it)
        assert (await op.connect())["ok"]
        revoked = await op.call("device.token.revoke", {"deviceId": ident.device_id, "role": "operator"})
        assert revoked["ok"], revoked
        # B closes its socket of that device, and refuses the token from now on.
        assert await dev.closed() == (1008, "device token revoked")
    async with RawClient.open(b.url) as dev:
        res = await connect_b(dev)
        assert res["ok"] is False and res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH", res


@pytest.mark.gateway_errors_expected()
async def test_kill_9_mid_run_clients_replay_on_b_and_the_run_ends_as_an_error(
    pair: Callable[..., Pair], postgres: Any
) -> None:
    a, b = pair()
    async with Client.open_connected(a.url) as watcher_a:
        await watcher_a.ok("chat.send", {"sessionKey": "k9", "message": "first question", "idempotencyKey": "k9-1"})
        await collect_run(watcher_a, "k9-1")
        rid, _ = await start_agent(watcher_a, "a long one [long:3000]", "k9-2", session="k9")
        # Read a good part of the run, then kill A without a chance to say anything.
        seen: list[dict[str, Any]] = []
        while len(seen) < 30:
            f = await watcher_a.recv()
            if f.get("event") == "agent" and f["payload"].get("runId") == "k9-2":
                seen.append(f["payload"])
        a.kill()
    last = seen[-1]["seq"]
    async with Client.open_connected(b.url) as on_b:
        # The client reconnects to B and asks for what it missed: every event after its last seq, once.
        replay = await on_b.ok("agent.replay", {"runId": "k9-2", "afterSeq": last})
        events = replay["events"]
        agent_seqs = [e["payload"]["seq"] for e in events if e["event"] == "agent"]
        assert agent_seqs == list(range(last + 1, last + 1 + len(agent_seqs)))
        # B (the only live process) notices A's death and ends its run with a reason, on A's stream.
        end = await on_b.until(lambda f: f.get("event") == "chat" and f["payload"].get("runId") == "k9-2", timeout=30)
        assert end["payload"]["state"] == "error" and "died" in end["payload"]["errorMessage"]
        rest = await on_b.ok("agent.replay", {"runId": "k9-2", "afterSeq": last, "epoch": replay["epoch"]})
        seqs = [e["payload"]["seq"] for e in rest["events"] if e["event"] == "agent"]
        assert seqs == list(range(last + 1, last + 1 + len(seqs))), "nothing missing, nothing twice"
        assert rest["events"][-1]["payload"]["state"] == "error" and rest["done"] is True
        waited = await on_b.ok("agent.wait", {"runId": "k9-2", "timeoutMs": 1000})
        assert waited["status"] == "error" and "died" in waited["error"]
        # The transcript holds every acknowledged message (the first turn, and the second question).
        history = await on_b.ok("chat.history", {"sessionKey": "k9"})
        texts = [(m["role"], m["content"][0]["text"]) for m in history["messages"]]
        assert texts[0] == ("user", "first question") and texts[1][0] == "assistant"
        assert ("user", "a long one [long:3000]") in texts
    del rid


async def test_redis_restarted_mid_run_health_degrades_and_recovers(
    make_gateway: Any, redis_server: Any, pg_url: str
) -> None:
    gw = make_gateway(
        "--workers",
        "1",
        "--redis-url",
        redis_server.url(0),
        "--database-url",
        pg_url,
        config={"redis": {"node_ttl_ms": 1500, "publish_timeout_s": 1}, "demo": {"word_delay_ms": 10}},
    )
    async with Client.open_connected(gw.url) as c:
        rid, _ = await start_agent(c, "through the outage [long:600]", "rr-1", session="rr")
        await c.until(lambda f: f.get("event") == "agent" and f["payload"].get("runId") == "rr-1")
        redis_server.stop_server()
        down = await c.until(lambda f: f.get("event") == "health" and f["payload"]["ok"] is False, timeout=30)
        assert "redis" in down["payload"].get("degraded", [])
        refused = await c.call("chat.send", {"sessionKey": "rr2", "message": "now?", "idempotencyKey": "rr-2"})
        assert refused["ok"] is False and refused["error"]["code"] == "UNAVAILABLE", refused
        assert refused["error"].get("retryable") is True
        redis_server.start_server()
        await c.until(lambda f: f.get("event") == "health" and f["payload"]["ok"] is True, timeout=30)
        # The run went on for its own clients the whole time, and ends normally.
        log = await collect_run(c, "rr-1", rid, timeout=60)
        assert log.final is not None and log.final["status"] == "ok"
        assert log.chat[-1]["state"] == "final"
        again = await c.call("chat.send", {"sessionKey": "rr2", "message": "now?", "idempotencyKey": "rr-2"})
        assert again["ok"], again
        await collect_run(c, "rr-2")  # the refused key was not spent: the retry runs
        history = await c.ok("chat.history", {"sessionKey": "rr"})
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
        assert (await c.ok("health"))["ok"] is True


async def test_workers_2_on_one_port_both_serve(make_gateway: Any, redis_url: str, pg_url: str) -> None:
    gw = make_gateway("--workers", "2", "--redis-url", redis_url, "--database-url", pg_url, config=CLUSTER_CONFIG)
    pids: set[int] = set()
    clients: list[Client] = []
    try:
        for _ in range(40):  # the kernel spreads connections over the two listening sockets
            cm = Client.open_connected(gw.url)
            c = await cm.__aenter__()
            clients.append(c)
            pids.add((await c.ok("health"))["backend"]["process"]["pid"])
            c._cm = cm
            if len(pids) == 2:
                break
        assert len(pids) == 2, "connections landed on both workers"
        by_pid: dict[int, Client] = {}
        for c in clients:
            by_pid.setdefault((await c.ok("health"))["backend"]["process"]["pid"], c)
        one, other = by_pid.values()
        await start_agent(one, "across workers", "w-1", session="w")
        frames = await run_seen_from(other, "w-1")
        assert frames[-1]["payload"]["state"] == "final"
        assert_run_numbering(frames)
    finally:
        for c in clients:
            await c._cm.__aexit__(None, None, None)  # type: ignore[attr-defined]
    assert gw.stop(signal.SIGTERM) == 0


def test_workers_need_redis_and_a_workers_data_dir_is_one_gateway(make_gateway: Any, redis_url: str) -> None:
    from ._util import gateway_cli

    gw = make_gateway("--workers", "2", "--redis-url", redis_url)
    refused = gateway_cli(gw.data_dir / "other", "--workers", "2")
    assert refused.returncode == 2 and "--workers 2 needs --redis-url" in refused.stderr
    # The supervisor holds the data dir for its workers: another gateway there is refused...
    busy = gateway_cli(gw.data_dir, "--workers", "1")
    assert busy.returncode == 2 and "in use by another gateway" in busy.stderr
    # ...and a process posing as a worker of someone else is refused too.
    impostor = gateway_cli(
        gw.data_dir, "--workers", "1", "--redis-url", redis_url, "--worker-index", "5", "--worker-of", "1"
    )
    assert impostor.returncode == 2 and "not held by this worker's supervisor" in impostor.stderr


async def test_an_agent_retry_sent_to_b_gets_the_final_of_the_run_on_a(pair: Callable[..., Pair]) -> None:
    a, b = pair()
    async with Client.open_connected(a.url) as on_a, Client.open_connected(b.url) as on_b:
        rid_a, first = await start_agent(on_a, "retry me [long:60]", "c-retry", session="cr")
        # The same idempotency key on B: the original acceptance, then the run's final from A's outcome.
        rid_b = await on_b.request("agent", {"message": "retry me [long:60]", "idempotencyKey": "c-retry"})
        again = await on_b.response(rid_b)
        assert again["ok"] and again["payload"] == first
        final_b = await on_b.response(rid_b, timeout=60)
        final_a = await on_a.response(rid_a, timeout=60)
        assert final_b["payload"]["status"] == final_a["payload"]["status"] == "ok"
        assert final_b["payload"]["runId"] == "c-retry"
