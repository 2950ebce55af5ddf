"""Heartbeats, wake and system events, with the gateway embedded and a recording ``Outbound``.

The channels package is being written in parallel, so deliveries go to a small
in-test ``Outbound`` handed to ``agenthub.app.Gateway(outbound=...)``: the same
seam (``Node.outbound``) the channels will implement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agenthub.app import Gateway
from agenthub.core.outbound import Delivery

from ..e2e._util import Client
from ._common import cron_event, run_events


class RecordingOutbound:
    """Records every delivery; knows one channel, ``telegram``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, str | None]] = []

    def has_channel(self, channel: str) -> bool:
        return channel == "telegram"

    async def deliver(self, channel: str, to: str, text: str, *, account: str | None = None) -> Delivery:
        self.sent.append((channel, to, text, account))
        return Delivery(channel, to, str(len(self.sent)), account)


def heartbeat(status: str) -> Any:
    return lambda f: f.get("event") == "heartbeat" and f["payload"]["status"] == status


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Any]:
    gateways: list[Gateway] = []

    async def start(heartbeat: dict[str, Any]) -> tuple[str, RecordingOutbound]:
        outbound = RecordingOutbound()
        # The heartbeat section is the config file's layer, so config.patch can change it at run time.
        base = {"demo": {"word_delay_ms": 1}, "heartbeat": {"target": "telegram", "to": "42", **heartbeat}}
        overrides = {"port": 0, "data_dir": str(tmp_path / f"gw{len(gateways)}"), "log_level": "WARNING"}
        gw = Gateway(base, overrides, outbound=outbound)
        await gw.__aenter__()
        gateways.append(gw)
        return f"ws://127.0.0.1:{gw.port}", outbound

    yield start
    for gw in gateways:
        await gw.__aexit__(None, None, None)


async def test_a_silent_heartbeat_delivers_nothing(embedded: Any) -> None:
    url, outbound = await embedded({"interval_s": 1})
    async with Client.open_connected(url, scopes=["operator.read"]) as op:
        beat = (await op.until(heartbeat("ok-token"), timeout=20))["payload"]
        assert beat["silent"] is True and beat["sessionKey"] == "agent:main:main"
        # The heartbeat turn is a normal run every operator sees; its reply is the bare acknowledgment.
        chat = run_events(op.events, beat["runId"], "chat")
        assert chat[-1]["state"] == "final" and chat[-1]["message"]["content"][0]["text"] == "HEARTBEAT_OK"
        last = await op.ok("last-heartbeat")
        assert last["status"] in ("ok-token", "skipped") and last["ts"] >= beat["ts"]
    assert outbound.sent == []


async def test_a_heartbeat_with_something_to_say_is_delivered(embedded: Any) -> None:
    url, outbound = await embedded({"interval_s": 0})
    async with Client.open_connected(url) as op:
        assert await op.ok("last-heartbeat") is None
        assert await op.ok("wake", {"mode": "next-heartbeat", "text": "[alert] disk 97% full on db-1"}) == {"ok": True}
        assert await op.ok("wake", {"mode": "now", "text": "deploy finished"}) == {"ok": True}
        sent = (await op.until(heartbeat("sent"), timeout=20))["payload"]
        assert sent["channel"] == "telegram" and sent["to"] == "42" and "disk 97% full" in sent["preview"]
        assert len(outbound.sent) == 1
        channel, to, text, _ = outbound.sent[0]
        assert (channel, to) == ("telegram", "42")
        assert "System: [alert] disk 97% full on db-1" in text and "System: deploy finished" in text
        assert (await op.ok("last-heartbeat"))["runId"] == sent["runId"]
        # The events were read by that turn: the next wake has nothing to alert about.
        await op.ok("wake", {"mode": "now", "text": "all good"})
        await op.until(heartbeat("ok-token"), timeout=20)
        assert len(outbound.sent) == 1


async def test_set_heartbeats_pauses_and_resumes(embedded: Any) -> None:
    url, outbound = await embedded({"interval_s": 0})
    async with Client.open_connected(url) as op:
        assert await op.ok("set-heartbeats", {"enabled": False}) == {"ok": True, "enabled": False}
        await op.ok("system-event", {"text": "[alert] queued while paused", "wake": True})
        skipped = (await op.until(heartbeat("skipped"), timeout=20))["payload"]
        assert skipped["reason"] == "disabled"
        assert await op.ok("set-heartbeats", {"enabled": True}) == {"ok": True, "enabled": True}
        await op.ok("wake", {"mode": "now", "text": "resume"})
        await op.until(heartbeat("sent"), timeout=20)
        assert "queued while paused" in outbound.sent[0][2]
        bad = await op.call("set-heartbeats", {})
        assert not bad["ok"] and "enabled" in bad["error"]["message"]
        # The cadence is a live setting: config.patch turns periodic heartbeats on without a restart.
        patched = await op.ok("config.patch", {"patch": {"heartbeat": {"interval_s": 1}}})
        assert "heartbeat" not in patched["restartRequired"]
        assert (await op.ok("cron.status"))["heartbeat"]["intervalSeconds"] == 1
        beat = (await op.until(heartbeat("ok-token"), timeout=20))["payload"]
        assert beat["sessionKey"] == "agent:main:main"


async def test_cron_system_event_job_wakes_the_heartbeat_and_announce_delivers(embedded: Any) -> None:
    url, outbound = await embedded({"interval_s": 0})
    async with Client.open_connected(url) as op:
        reminder = await op.ok(
            "cron.add",
            {
                "name": "reminder",
                "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "UTC"},
                "sessionTarget": "main",
                "wakeMode": "now",
                "payload": {"kind": "systemEvent", "text": "[alert] stand-up in 5 minutes"},
            },
        )
        await op.ok("cron.run", {"id": reminder["id"]})
        await op.until(cron_event("finished", reminder["id"]), timeout=20)
        await op.until(heartbeat("sent"), timeout=20)
        assert "stand-up in 5 minutes" in outbound.sent[-1][2]

        report = await op.ok(
            "cron.add",
            {
                "name": "report",
                "schedule": {"kind": "every", "everyMs": 3_600_000},
                "sessionTarget": "isolated",
                "payload": {"kind": "agentTurn", "message": "what is 6*7"},
                "delivery": {"mode": "announce", "channel": "telegram", "to": "-100123"},
            },
        )
        await op.ok("cron.run", {"id": report["id"]})
        fin = (await op.until(cron_event("finished", report["id"]), timeout=20))["payload"]
        assert fin["status"] == "ok" and fin["delivered"] is True and fin["deliveryStatus"] == "delivered"
        assert outbound.sent[-1][:2] == ("telegram", "-100123") and "42" in outbound.sent[-1][2]

        nowhere = await op.ok("cron.update", {"id": report["id"], "patch": {"delivery": {"channel": "slack"}}})
        assert nowhere["delivery"] == {"mode": "announce", "channel": "slack", "to": "-100123"}
        await op.ok("cron.run", {"id": report["id"]})
        seen = {fin["runId"]}
        fin = (await op.until(cron_event("finished", report["id"], seen), timeout=20))["payload"]
        assert fin["status"] == "ok" and fin["deliveryStatus"] == "not-delivered"
        assert "channel not configured: slack" in fin["deliveryError"]
        job = await op.ok("cron.get", {"id": report["id"]})
        assert job["state"]["lastDeliveryStatus"] == "not-delivered"
