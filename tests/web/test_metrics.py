"""``/metrics`` on a real gateway: latency histograms, per-dialect gauges, store and bus timings, auth."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e._util import Client, collect_run, start_agent

TOKEN = "metrics-test-token-0123456789"


def scrape(base: str, **headers: str) -> dict[str, list[Any]]:
    """Name -> samples, parsed with prometheus-client's own parser (the text must be valid exposition)."""
    res = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain")
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(res.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert found, f"no sample {name}{labels}; have {sorted(samples)}"
    return float(sum(found))


async def test_metrics_histograms_gauges_and_process_metrics(gateway: Any) -> None:
    async with Client.open_connected(gateway.url) as c:
        rid, accepted = await start_agent(c, "what is 6*7", "m-1")
        await collect_run(c, accepted["runId"], rid)
        bad = await c.call("no.such.method")
        assert not bad["ok"]
        # A LangBot socket open beside the native one: each dialect is counted on its own.
        url = gateway.url + "/api/v1/pipelines/default/ws/connect?session_type=person"
        async with websockets.connect(url):
            m = scrape(gateway.http)
            assert value(m, "agenthub_dialect_connections", dialect="native") == 1
            assert value(m, "agenthub_dialect_connections", dialect="langbot") == 1
            assert value(m, "agenthub_dialect_connections", dialect="myagent") == 0
    # The socket gauge falls back when the sockets close (closing is asynchronous on the server).
    for _ in range(100):
        m = scrape(gateway.http)
        if value(m, "agenthub_dialect_connections", dialect="langbot") == 0:
            break
        await asyncio.sleep(0.05)
    assert value(m, "agenthub_dialect_connections", dialect="langbot") == 0
    assert value(m, "agenthub_rpc_duration_seconds_count", method="agent", outcome="ok") == 1
    assert value(m, "agenthub_rpc_duration_seconds_count", method="unknown", outcome="INVALID_REQUEST") == 1
    assert value(m, "agenthub_rpc_duration_seconds_bucket", method="agent", outcome="ok", le="+Inf") == 1
    assert value(m, "agenthub_run_duration_seconds_count", status="ok", origin="agent") == 1
    assert value(m, "agenthub_run_duration_seconds_sum", status="ok", origin="agent") > 0
    assert value(m, "agenthub_run_queue_seconds_count") == 1
    # Every agent/chat event of the run went through the bus, timed.
    assert value(m, "agenthub_bus_publish_seconds_count") >= 5
    # The run was stored: statements were timed through SQLAlchemy's events.
    assert value(m, "agenthub_store_statement_seconds_count", kind="insert") >= 2
    assert value(m, "agenthub_store_statement_seconds_count", kind="select") >= 1
    # prometheus-client's default collectors.
    assert value(m, "process_resident_memory_bytes") > 0
    assert value(m, "process_open_fds") > 0
    assert "python_info" in m and "python_gc_collections_total" in m
    # The scrape-time gateway collector is still there.
    assert value(m, "agenthub_runs_total", state="ok") == 1


async def test_metrics_needs_the_token_when_the_gateway_has_one(make_gateway: Any) -> None:
    gw = make_gateway("--token", TOKEN)
    async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
        res = await http.get("/metrics")
        assert res.status_code == 401
        assert res.headers["www-authenticate"].startswith("Bearer")
        assert res.json()["error"]["code"] == "unauthorized"
        assert TOKEN not in res.text
        res = await http.get("/metrics", headers={"Authorization": "Bearer wrong-token"})
        assert res.status_code == 401
        res = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert res.status_code == 200 and "agenthub_rpc_duration_seconds" in res.text
        # /healthz stays open: it is what load balancers and the Docker healthcheck probe.
        assert (await http.get("/healthz")).status_code == 200


async def test_metrics_public_opens_metrics_only(make_gateway: Any) -> None:
    gw = make_gateway("--token", TOKEN, "--metrics-public")
    async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
        res = await http.get("/metrics")
        assert res.status_code == 200
        assert re.search(r"^agenthub_connections \d", res.text, re.M)
    # Everything else still asks for the token.
    async with Client.open(gw.url) as c:
        res = await c.connect()
        assert not res["ok"]
