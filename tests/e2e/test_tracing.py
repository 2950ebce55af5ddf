"""OpenTelemetry (``agenthub[otel]``): a span per RPC and per run, read back with the SDK's in-memory exporter."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agenthub.app import Gateway
from agenthub.client import GatewayClient, GatewayError

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider() -> None:
    """The embedding program's tracer provider (set once per process): the gateway must use it, not its own."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


async def test_a_span_per_rpc_and_per_run_with_the_run_under_its_request(tmp_path: Path) -> None:
    EXPORTER.clear()
    config = {"data_dir": str(tmp_path), "port": 0, "demo": {"word_delay_ms": 1}, "otel": {"enabled": True}}
    async with Gateway(config) as gw, GatewayClient(f"ws://127.0.0.1:{gw.port}") as client:
        items = [item async for item in client.run_agent("what is 3*5", session_key="traced")]
        assert items[-1]["type"] == "result" and items[-1]["status"] == "ok"
        with pytest.raises(GatewayError):
            await client.call("agent.wait", {"runId": "no-such-run"}, timeout=5)
    spans = EXPORTER.get_finished_spans()
    by_name: dict[str, list[object]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    agent_rpc = next(s for s in spans if s.name == "rpc agent")
    run = next(s for s in spans if s.name == "run")
    assert agent_rpc.kind is trace.SpanKind.SERVER
    assert agent_rpc.attributes is not None and agent_rpc.attributes["rpc.method"] == "agent"
    # The run is a child of the request that started it, in the same trace, and carries its request id.
    assert run.parent is not None and agent_rpc.context is not None
    assert run.parent.span_id == agent_rpc.context.span_id
    assert run.context is not None and run.context.trace_id == agent_rpc.context.trace_id
    assert run.attributes is not None
    assert run.attributes["agenthub.request_id"] == agent_rpc.attributes["agenthub.request_id"]
    assert run.attributes["agenthub.run.status"] == "ok"
    assert run.attributes["agenthub.session_key"] == "agent:main:traced"
    assert [e.name for e in run.events] == ["started"]
    assert run.end_time is not None and run.start_time is not None and run.end_time > run.start_time
    # A failed RPC is an error span naming the code.
    wait = [s for s in spans if s.name == "rpc agent.wait"]
    failed = [s for s in wait if s.status.status_code is trace.StatusCode.ERROR]
    assert failed and failed[0].attributes is not None
    assert failed[0].attributes["rpc.agenthub.error_code"] == "INVALID_REQUEST"
    assert "rpc connect" not in by_name  # connect is the handshake, not an RPC of the dispatcher
