"""The control pages in Chromium against a real gateway: live cards and tables, node invoke,
pairing decisions, channels, and the settings form saving through ``config.patch``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agenthub.client import DeviceIdentity

from ..conftest import GatewayProc, RawClient, signed_device
from .conftest import go, in_thread, open_ui, shot

pytestmark = pytest.mark.browser
NODE_RUN = [sys.executable, "-m", "agenthub", "node", "run"]


async def _call(url: str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    async with RawClient.open(url) as c:
        assert (await c.connect())["ok"]
        res = await c.call(method, params or {})
        assert res["ok"], res
        payload: dict[str, Any] = res["payload"]
        return payload


def call(gw: GatewayProc, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One RPC from a separate operator connection (not the page's)."""
    return in_thread(_call, gw.url, method, params)


async def _ask_pairing(url: str, ident: DeviceIdentity) -> dict[str, Any]:
    scopes = ["operator.read"]
    async with RawClient.open(url) as c:
        res: dict[str, Any] = await c.connect(scopes=scopes, device=signed_device(c, ident, scopes=scopes))
        return res


@contextmanager
def node_host(gw: GatewayProc, data_dir: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """``agenthub node run``: a real headless node (system.info, system.notify) connected to ``gw``."""
    proc = subprocess.Popen(
        [*NODE_RUN, "--url", gw.url, "--data-dir", str(data_dir), "--display-name", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_health_presence_and_runs_update_live(page: Any, make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 40}})
    open_ui(page, gw, "presence")
    page.wait_for_selector("#page-presence-body table")
    assert page.locator("#page-presence-body tbody tr").count() == 1
    with node_host(gw, tmp_path / "node", "presence-node"):
        # The node's arrival comes as a presence event: no refresh, no reload.
        row = page.locator("#page-presence-body tbody tr", has_text="presence-node")
        row.wait_for()
        assert row.locator(".badge").inner_text() == "node"
        shot(page, "20-presence-live")
    page.locator("#page-presence-body tbody tr", has_text="presence-node").wait_for(state="detached")

    go(page, "runs")
    page.wait_for_selector("#page-runs-body .cards")
    call(gw, "chat.send", {"sessionKey": "elsewhere", "message": "a long one [long]", "idempotencyKey": "live-1"})
    running = page.locator("#page-runs-body tbody tr", has_text="live-1")
    running.locator(".badge.running").wait_for()
    assert "agent:main:elsewhere" in running.inner_text()
    shot(page, "21-runs-live")
    running.get_by_role("button", name="Stop run live-1").click()
    running.locator(".badge.aborted").wait_for()
    page.wait_for_function(
        "document.querySelector('#page-runs-body .cards li:nth-child(4) .card-value')?.textContent === '1'"
    )  # the Aborted card

    go(page, "health")
    cards = page.locator("#page-health-body .card")
    cards.first.wait_for()
    titles = [t.lower() for t in page.locator("#page-health-body .card-title").all_inner_texts()]
    assert {"gateway", "agent provider", "connections", "runs", "sessions", "channels", "nodes"} <= set(titles)
    assert page.locator("#page-health-body .card", has_text="Gateway").locator(".card-value").inner_text() == "Healthy"
    assert "1 aborted" in page.locator("#page-health-body .card", has_text="Runs").inner_text()
    assert page.locator("#page-health-body pre").count() == 0  # cards, no raw JSON
    assert "{" not in page.locator("#page-health-body").inner_text()
    # Refreshed while shown: a new session shows up without a click.
    before = page.locator("#page-health-body .card", has_text="Sessions").locator(".card-value").inner_text()
    call(gw, "chat.send", {"sessionKey": "third", "message": "hi", "idempotencyKey": "live-2"})
    page.wait_for_function(
        "prev => [...document.querySelectorAll('#page-health-body .card')]"
        ".find(c => c.textContent.includes('Sessions'))?.querySelector('.card-value').textContent !== prev",
        arg=before,
        timeout=15_000,
    )
    assert page.page_errors == []


def test_nodes_page_invokes_a_command(page: Any, make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway()
    open_ui(page, gw, "nodes")
    page.wait_for_selector("#page-nodes-body .empty")
    with node_host(gw, tmp_path / "node", "ui-node") as node:
        assert node.stdout is not None
        card = page.locator("#page-nodes-body li.node", has_text="ui-node")
        card.wait_for()  # live: the node connected while the page was shown
        assert card.locator(".badge.ok").inner_text() == "connected"
        assert set(card.locator(".chips").first.locator("li").all_inner_texts()) == {"system.info", "system.notify"}
        form = card.locator("form.invoke-form")
        form.get_by_label("Command").select_option("system.notify")
        form.get_by_label("Parameters (JSON object, optional)").fill("{not json")
        form.get_by_role("button", name="Invoke").click()
        assert "not valid JSON" in form.locator(".invoke-result").inner_text()
        form.get_by_label("Parameters (JSON object, optional)").fill('{"message": "hello from the UI"}')
        form.get_by_role("button", name="Invoke").click()
        form.locator(".invoke-result .ok-text").wait_for()
        payload = form.locator(".invoke-payload")
        assert "Delivered" in payload.inner_text() and payload.locator(".badge.ok").first.inner_text() == "yes"
        form.get_by_label("Command").select_option("system.info")
        form.get_by_label("Parameters (JSON object, optional)").fill("")
        form.get_by_role("button", name="Invoke").click()
        page.wait_for_function(
            "document.querySelector('#page-nodes-body .invoke-payload')?.textContent.includes('Cpu count')"
        )
        assert page.locator("#page-nodes-body .invoke-payload dl").count() >= 1  # a readable list, not JSON
        shot(page, "22-node-invoke")
    assert b"hello from the UI" in node.stdout.read()  # the node really got the parameters
    assert page.page_errors == []


def test_pairing_requests_are_approved_and_rejected(page: Any, make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway("--require-pairing")
    open_ui(page, gw, "devices")
    page.wait_for_selector("#page-devices-body h3")
    alice, bob = DeviceIdentity.generate(), DeviceIdentity.generate()
    for ident in (alice, bob):
        refused = in_thread(_ask_pairing, gw.url, ident)
        assert refused["error"]["details"]["code"] == "PAIRING_REQUIRED"
    rows = page.locator("#page-devices-body table").first.locator("tbody tr")
    page.wait_for_function("document.querySelectorAll('#page-devices-body table')[0]?.tBodies[0].rows.length === 2")
    shot(page, "23-pairing-pending")
    first_id = rows.nth(0).get_by_role("button", name="Approve").get_attribute("aria-label")
    rows.nth(0).get_by_role("button", name="Approve").click()
    page.locator(".toast", has_text="approved").wait_for()
    page.wait_for_function("document.querySelectorAll('#page-devices-body table')[0]?.tBodies[0].rows.length === 1")
    rows.nth(0).get_by_role("button", name="Reject").click()
    page.locator(".toast", has_text="rejected").wait_for()
    page.wait_for_function(  # nothing is waiting any more
        "document.querySelector('#page-devices-body h3 .badge')?.textContent === '0'"
    )
    listed = call(gw, "device.pair.list")
    assert listed["pending"] == []
    paired = {d["deviceId"] for d in listed["paired"]}
    assert (alice.device_id in paired) != (bob.device_id in paired), first_id  # exactly one was approved
    approved = alice if alice.device_id in paired else bob
    assert in_thread(_ask_pairing, gw.url, approved)["ok"]

    # A node asks too: it waits for approval, then connects by itself.
    with node_host(gw, tmp_path / "node", "paired-node"):
        waiting = page.locator("#page-devices-body tr", has_text="system.notify")
        waiting.wait_for()
        waiting.get_by_role("button", name="Approve").click()
        page.locator(".toast", has_text="approved").last.wait_for()
        go(page, "nodes")
        page.locator("#page-nodes-body li.node .badge.ok").wait_for(timeout=30_000)
    assert page.page_errors == []


def test_channels_page_shows_accounts(page: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    open_ui(page, gw, "channels")
    row = page.locator("#page-channels-body tbody tr", has_text="WebChat")
    row.wait_for()
    assert row.locator(".badge").inner_text() == "running" and "always on" in row.inner_text()


def discard(page: Any) -> None:
    """Discard the form's edits and wait for the fresh form (its filter starts empty)."""
    page.locator("#settings-discard").click()
    page.wait_for_function("document.querySelector('#settings-filter')?.value === ''")


def test_settings_form_saves_through_config_patch(page: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    open_ui(page, gw, "settings")
    form = page.locator("#settings-form")
    form.wait_for()
    # Every kind of field the schema has: numbers with bounds, enums, booleans, lists, secrets.
    assert form.locator("#cfg-demo__word_delay_ms").get_attribute("type") == "number"
    assert form.locator("#cfg-demo__word_delay_ms").get_attribute("max") == "10000"
    assert form.locator("select#cfg-provider option").all_inner_texts() == ["demo", "openai", "anthropic"]
    assert form.locator("input#cfg-dev").get_attribute("type") == "checkbox"
    assert form.locator("textarea#cfg-security__allowed_origins").count() == 1
    assert "never saved from here" in form.locator(".cfg-field[data-path='token']").inner_text()
    assert form.locator("#cfg-token").evaluate("el => el.tagName") == "SPAN"  # no input for a secret
    page.locator("#settings-filter").fill("word delay")
    assert form.locator(".cfg-field:not([hidden])").count() == 1
    field = form.locator("#cfg-demo__word_delay_ms")
    field.fill("7")
    page.locator("#settings-save").click()
    page.locator("#settings-status", has_text="Saved 1 setting(s)").wait_for()
    got = call(gw, "config.get")
    assert got["config"]["demo"]["word_delay_ms"] == 7 and got["sources"]["demo.word_delay_ms"] == "stored"
    # Bounds are checked before anything is sent ...
    page.locator("#settings-filter").fill("max payload")
    form.locator("#cfg-limits__max_payload").fill("5")
    page.locator("#settings-save").click()
    page.locator("#settings-status.error-text", has_text="limits.max_payload").wait_for()
    assert call(gw, "config.get")["config"]["limits"]["max_payload"] == 1024 * 1024
    discard(page)
    # ... and what only the gateway can check comes back as its error, nothing saved.
    page.locator("#settings-filter").fill("hooks")
    form.locator("#cfg-hooks__path").fill("no-leading-slash")
    page.locator("#settings-save").click()
    page.locator("#settings-status.error-text", has_text="Not saved").wait_for()
    assert "hooks.path" in page.locator("#settings-status").inner_text()
    assert call(gw, "config.get")["config"]["hooks"]["path"] == "/hooks"
    discard(page)
    # The saved override can be removed again: the value falls back to the config file's.
    page.locator("#settings-filter").fill("word delay")
    remove = form.locator(".cfg-field[data-path='demo.word_delay_ms']").get_by_role("button")
    assert "saved here" in form.locator(".cfg-field[data-path='demo.word_delay_ms']").inner_text()
    remove.click()
    page.locator("#settings-status", has_text="saved value removed").wait_for()
    got = call(gw, "config.get")
    assert got["sources"]["demo.word_delay_ms"] == "file" and got["config"]["demo"]["word_delay_ms"] == 5
    shot(page, "24-settings")
    assert json.dumps(page.page_errors) == "[]"
