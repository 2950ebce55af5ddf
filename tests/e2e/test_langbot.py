"""LangBot dialect (seed 004) against a real gateway: the seed's console snippet, REST, CLI, errors."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiohttp import web

from agenthub.core.runtime import TextDelta, Turn

from ..conftest import GatewayProc, RawClient, require_node_ws, seed_text

ROOT = Path(__file__).resolve().parents[2]
SEED = "004_3ed3f710c8e1a76b.txt"
TOKEN = "lb-admin-token"


class _AnyStr(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


ANY_STR = _AnyStr()


def _ws(gw: GatewayProc, pipeline: str = "default", kind: str = "person", token: str | None = TOKEN) -> str:
    """The pipeline socket's URL; with the gateway token as ``?token=`` unless ``token`` is None."""
    url = f"{gw.url}/api/v1/pipelines/{pipeline}/ws/connect?session_type={kind}"
    return url + (f"&token={token}" if token is not None else "")


def _pipelines_cli(gw: GatewayProc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agenthub", "pipelines", "--data-dir", str(gw.data_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    """One gateway for the module, with a token (REST needs it) and a short heartbeat."""
    proc = GatewayProc(
        tmp_path_factory.mktemp("langbot"),
        ["--token", TOKEN],
        {},
        {"demo": {"word_delay_ms": 5}, "langbot": {"heartbeat_interval_s": 1.5}},
    )
    proc.start()
    yield proc
    proc.stop()


async def _recv(ws: Any, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        data: dict[str, Any] = json.loads(await ws.recv())
        return data


async def _final(ws: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    chunks = []
    while True:
        frame = await _recv(ws)
        if frame["type"] == "response":
            chunks.append(frame["data"])
            if frame["data"]["is_final"]:
                return chunks[:-1], chunks[-1]


def _message(text: str, *extra: dict[str, Any]) -> str:
    return json.dumps({"type": "message", "message": [{"type": "Plain", "text": text}, *extra]})


def test_seed_snippet_is_verbatim() -> None:
    assert (ROOT / "tests/js/langbot_console.js").read_text(encoding="utf-8") in seed_text(SEED)


async def test_seed_console_snippet_streams_and_operator_sees_the_run(gw: GatewayProc) -> None:
    """The seed's snippet sends no credential: it works against a public pipeline, and only there."""
    node = require_node_ws()
    public = (await asyncio.to_thread(_pipelines_cli, gw, "create", "--name", "console", "--public")).stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", public)  # a public pipeline gets no key: one line, the uuid
    async with RawClient.open(gw.url) as operator:
        assert (await operator.connect(auth={"token": TOKEN}))["ok"]
        proc = await asyncio.create_subprocess_exec(
            node,
            str(ROOT / "tests/js/langbot_run.js"),
            gw.url,
            public,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate()
        result = json.loads(out.decode().strip().splitlines()[-1])
        assert not result["timedOut"], err.decode()
        logs = result["logs"]
        assert logs[0] == ["已聿恥"]  # the seed's own (mis-decoded) "connected" label
        received = [args[1] for args in logs if args[0] == "收到:"]
        chunks = [m["data"] for m in received if m["type"] == "response"]
        assert len(chunks) >= 3 and all(not c["is_final"] for c in chunks[:-1]) and chunks[-1]["is_final"]
        assert all(chunks[i]["content"].startswith(chunks[i - 1]["content"]) for i in range(1, len(chunks)))
        final = chunks[-1]
        assert "你好" in final["content"] and final["role"] == "assistant"
        assert final["message_chain"] == [{"type": "Plain", "text": final["content"]}]
        # The run went through core: the native operator saw it on session langbot:<uuid>:person.
        event = await operator.until(
            lambda f: (
                f.get("event") == "chat"
                and f["payload"]["state"] == "final"
                and f["payload"]["sessionKey"] == f"langbot:{public}:person"
            )
        )
        assert "你好" in event["payload"]["message"]["content"][0]["text"]
    # The same snippet against the default pipeline of this gateway (it has a token): refused, 4401.
    proc = await asyncio.create_subprocess_exec(
        node, str(ROOT / "tests/js/langbot_run.js"), gw.url, "default", "3000", stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    refused = json.loads(out.decode().strip().splitlines()[-1])
    assert refused["timedOut"]
    frames = [args[1] for args in refused["logs"] if args[0] == "收到:"]
    assert frames == [{"type": "error", "data": {"message": ANY_STR, "code": "unauthorized"}}]


async def test_bad_input_gets_errors_and_the_socket_stays_usable(gw: GatewayProc) -> None:
    async with websockets.connect(_ws(gw)) as ws:
        assert (await _recv(ws))["type"] == "connected"
        for bad, expected in (
            ("not json", "invalid JSON"),
            ("[1]", "JSON object"),
            (json.dumps({"type": "shout"}), "unknown message type"),
            (json.dumps({"type": "message"}), "message chain"),
            (json.dumps({"type": "message", "message": [{"type": "Image", "url": "x"}]}), "must be http"),
            (json.dumps({"type": "message", "message": [{"type": "Plain", "text": " "}]}), "no text and no image"),
        ):
            await ws.send(bad)
            frame = await _recv(ws)
            assert frame["type"] == "error" and expected in frame["data"]["message"], frame
        await ws.send(json.dumps({"type": "ping"}))
        assert await _recv(ws) == {"type": "pong"}
        await ws.send(_message("still here?"))
        _, final = await _final(ws)
        assert "still here?" in final["content"]
    for url, code in ((_ws(gw, "no-such-pipeline"), 4404), (_ws(gw, kind="crowd"), 4400), (_ws(gw, token=None), 4401)):
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as info:
                frame = await _recv(ws)  # a refused credential is explained in an error frame first
                assert code == 4401 and frame["type"] == "error" and frame["data"]["code"] == "unauthorized"
                await _recv(ws)
            assert info.value.rcvd is not None and info.value.rcvd.code == code and info.value.rcvd.reason


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(24)).decode()


async def test_message_chain_components_reach_the_agent(gw: GatewayProc) -> None:
    """Mentions and quotes as text context, an image as image content (the demo agent says what it got)."""
    chain = [
        {"type": "Source", "id": 77, "time": 1700000000},
        {"type": "Quote", "id": 76, "sender_id": "alice", "origin": [{"type": "Plain", "text": "the menu?"}]},
        {"type": "At", "target": 42, "display": "Bob"},
        {"type": "Plain", "text": " here it is"},
        {"type": "Image", "base64": PNG},
    ]
    async with websockets.connect(_ws(gw, kind="group")) as ws, httpx.AsyncClient() as http:
        assert (await _recv(ws))["type"] == "connected"
        await ws.send(json.dumps({"type": "message", "message": chain}))
        _, final = await _final(ws)
        assert final["content"].startswith(
            'You said: "[quoting alice: the menu?] @Bob here it is". '
            "I received 1 image (image/png, 32 bytes) but I cannot see pictures."
        )
        history = (
            await http.get(
                f"{gw.http}/api/v1/pipelines/default/ws/messages/group", headers={"Authorization": f"Bearer {TOKEN}"}
            )
        ).json()["messages"]
        user = history[-2]
        assert user["content"] == "[quoting alice: the menu?]\n@Bob here it is"
        assert user["message_chain"][:4] == chain[:4]
        assert user["message_chain"][4] == {"type": "Image", "media_type": "image/png", "size": 32}  # no base64 kept


async def test_components_that_cannot_be_carried_are_refused_not_dropped(gw: GatewayProc) -> None:
    history_url = f"{gw.http}/api/v1/pipelines/default/ws/messages/person"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with websockets.connect(_ws(gw)) as ws, httpx.AsyncClient(headers=auth) as http:
        assert (await _recv(ws))["type"] == "connected"
        before = len((await http.get(history_url)).json()["messages"])
        for component, expected in (
            ({"type": "Voice", "url": "https://example.com/v.amr"}, "cannot carry Voice components"),
            ({"type": "File", "name": "report.pdf", "size": 1234}, "cannot carry File components"),
            ({"type": "Image", "path": "/tmp/cat.png"}, "file on the sender's machine"),
            ({"type": "Image", "base64": base64.b64encode(b"not an image").decode()}, "unsupported image data"),
        ):
            await ws.send(_message("please read this", component))
            frame = await _recv(ws)
            assert frame == {"type": "error", "data": {"message": ANY_STR, "code": "unsupported_component"}}, frame
            assert expected in frame["data"]["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert await _recv(ws) == {"type": "pong"}  # still open
        await ws.send(_message("and now?"))
        _, final = await _final(ws)
        assert final["content"].startswith('You said: "and now?".')
        after = (await http.get(history_url)).json()["messages"]
        assert len(after) == before + 2 and after[-2]["content"] == "and now?"  # no run for any refused message


class _TextOnly:
    """An embedder's runtime that reads text only (no ``accepts_images``)."""

    name = "text-only"

    async def run_turn(self, turn: Turn) -> AsyncIterator[TextDelta]:
        yield TextDelta(f"text: {turn.message}")


async def test_images_for_an_agent_that_takes_none_are_refused(tmp_path: Path) -> None:
    from agenthub.app import Gateway

    overrides = {"port": 0, "data_dir": str(tmp_path), "log_level": "WARNING"}
    async with Gateway({}, overrides, runtime_factory=lambda s: _TextOnly()) as gateway:  # type: ignore[arg-type,return-value]
        url = f"ws://127.0.0.1:{gateway.port}/api/v1/pipelines/default/ws/connect?session_type=person"
        async with websockets.connect(url) as ws:
            assert (await _recv(ws))["type"] == "connected"
            await ws.send(_message("see?", {"type": "Image", "base64": PNG}))
            frame = await _recv(ws)
            refusal = "this pipeline's agent (text-only) does not take images"
            assert frame == {"type": "error", "data": {"message": refusal, "code": "unsupported_component"}}
            await ws.send(_message("words only"))
            _, final = await _final(ws)
            assert final["content"] == "text: words only"


async def test_images_reach_an_openai_provider_as_image_url_parts(tmp_path: Path) -> None:
    """A gateway on the OpenAI provider, against a local server speaking OpenAI's streaming wire format."""
    from ..agents.conftest import Reply, ScriptedServer
    from ..agents.test_openai import chunk

    scripted = ScriptedServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    answer = chunk('{"role":"assistant","content":""}') + chunk('{"content":"A tiny PNG."}') + chunk("{}", '"stop"')
    scripted.replies.append(Reply((answer + "data: [DONE]\n\n").encode()))
    config = {"provider": "openai", "openai": {"base_url": f"http://{host}:{port}/v1", "model": "gpt-4o-mini"}}
    proc = GatewayProc(tmp_path, [], {}, config)
    proc.start(0)
    try:
        async with websockets.connect(_ws(proc, token=None)) as ws:
            assert (await _recv(ws))["type"] == "connected"
            image_url = {"type": "Image", "url": "https://example.com/cat.jpg"}
            await ws.send(_message("what are these?", {"type": "Image", "base64": PNG}, image_url))
            _, final = await _final(ws)
            assert final["content"] == "A tiny PNG."
    finally:
        proc.stop()
        await runner.cleanup()
    (request,) = scripted.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "what are these?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ],
    }


async def test_rest_history_connections_broadcast_reset(gw: GatewayProc) -> None:
    base = f"{gw.http}/api/v1/pipelines/default/ws"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/connections")).status_code == 401
        assert (await http.get(f"{base}/connections", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (await http.get(f"{gw.http}/api/v1/pipelines/nope/ws/connections", headers=auth)).status_code == 404
        async with websockets.connect(_ws(gw, kind="group")) as g1, websockets.connect(_ws(gw, kind="group")) as g2:
            for ws in (g1, g2):
                assert (await _recv(ws))["data"]["session_type"] == "group"
            await g1.send(_message("hello group", {"type": "Image", "url": "https://example.com/cat.png"}))
            await _final(g1)
            stats = (await http.get(f"{base}/connections", headers=auth)).json()
            assert stats["group"] == 2 and stats["total"] >= 2
            assert {c["session_type"] for c in stats["connections"]} >= {"group"}
            assert any(c["messages_received"] == 1 for c in stats["connections"])

            history = (await http.get(f"{base}/messages/group", headers=auth)).json()["messages"]
            assert [m["role"] for m in history[-2:]] == ["user", "assistant"]
            assert history[-2]["message_chain"][1] == {"type": "Image", "url": "https://example.com/cat.png"}
            assert (
                "hello group" in history[-1]["content"]
                and "a link to https://example.com/cat.png" in history[-1]["content"]
            )

            res = await http.post(f"{base}/broadcast", headers=auth, json={"message": "maintenance at noon"})
            assert res.json() == {"ok": True, "sent": stats["total"]}
            for ws in (g1, g2):
                frame = await _recv(ws)
                assert frame["type"] == "broadcast" and frame["data"]["message"] == "maintenance at noon"
            json_type = {**auth, "Content-Type": "application/json"}
            assert (await http.post(f"{base}/broadcast", headers=json_type, content=b"x")).status_code == 400
            assert (await http.post(f"{base}/broadcast", headers=auth, content=b"x")).status_code == 415

            assert (await http.post(f"{base}/reset/group", headers=auth)).json() == {"ok": True}
            assert (await http.get(f"{base}/messages/group", headers=auth)).json() == {"messages": []}
            assert (await http.get(f"{base}/messages/robots", headers=auth)).status_code == 400


async def test_silent_socket_is_closed_after_two_heartbeats(gw: GatewayProc) -> None:
    async with websockets.connect(_ws(gw)) as quiet, websockets.connect(_ws(gw)) as pinging:
        await _recv(quiet)
        await _recv(pinging)
        started = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await pinging.send(json.dumps({"type": "ping"}))
                assert await _recv(pinging) == {"type": "pong"}
                await _poll(quiet)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4408
        assert 2.5 <= time.monotonic() - started < 8
        await pinging.send(json.dumps({"type": "ping"}))  # the chatty one is still open
        assert await _recv(pinging) == {"type": "pong"}


async def _poll(ws: Any) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.recv(), 0.5)


def test_pipelines_cli_and_ws_test_client(gw: GatewayProc) -> None:
    cli = [sys.executable, "-m", "agenthub"]
    created = _pipelines_cli(gw, "create", "--name", "bot", "--provider", "demo", "--public")
    uuid = created.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", uuid)
    private = _pipelines_cli(gw, "create", "--name", "team").stdout.split()
    assert len(private) == 2 and private[1].startswith("lbk_")  # uuid, then its key (shown once)
    listed = _pipelines_cli(gw, "list").stdout
    assert "default\tdefault\t(gateway default)\tauto" in listed
    assert f"{uuid}\tbot\tdemo\tpublic" in listed and f"{private[0]}\tteam\t(gateway default)\tkey" in listed
    assert private[1] not in listed
    out = subprocess.run(
        [*cli, "ws-test", uuid, "--session-type", "group", "--multi", "3", "--url", gw.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3/3 connection(s) got a final reply" in out.stdout
    missing = subprocess.run(
        [*cli, "ws-test", "nope", "--url", gw.url, "--timeout", "5"], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1 and "0/1" in missing.stdout
