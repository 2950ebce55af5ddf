"""Client addresses behind trusted proxies, and the body-type opt-out of the Origin middleware.

The e2e side is in tests/e2e/test_security.py and tests/e2e/test_csrf.py.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agenthub.web.origin import accepts_body, forwarded_client, origin_middleware

PROXIES = ["127.0.0.1", "10.0.0.0/8"]


def test_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert forwarded_client("198.51.100.9", ["203.0.113.7"], PROXIES) == "198.51.100.9"


def test_trusted_peer_without_header_is_the_client() -> None:
    assert forwarded_client("127.0.0.1", [], PROXIES) == "127.0.0.1"


def test_rightmost_untrusted_hop_wins_over_spoofed_entries() -> None:
    # The client wrote "1.2.3.4"; the outer proxy (10.1.1.1) saw 203.0.113.7; the inner one saw 10.1.1.1.
    header = ["1.2.3.4, 203.0.113.7, 10.1.1.1"]
    assert forwarded_client("127.0.0.1", header, PROXIES) == "203.0.113.7"
    # Several headers are one list, in order.
    assert forwarded_client("127.0.0.1", ["1.2.3.4", "203.0.113.7", "10.1.1.1"], PROXIES) == "203.0.113.7"


def test_all_hops_trusted_gives_the_leftmost() -> None:
    assert forwarded_client("127.0.0.1", ["10.2.2.2, 10.1.1.1"], PROXIES) == "10.2.2.2"


def test_garbage_stops_the_walk() -> None:
    assert forwarded_client("127.0.0.1", ["203.0.113.7, unknown"], PROXIES) == "127.0.0.1"
    assert forwarded_client("127.0.0.1", ["unknown, 10.1.1.1"], PROXIES) == "10.1.1.1"
    assert forwarded_client("127.0.0.1", ["2001:db8::1"], PROXIES) == "2001:db8::1"


async def test_a_route_can_accept_a_non_json_body_and_the_origin_check_still_applies() -> None:
    """``accepts_body`` (e.g. a form-encoded webhook) on a real aiohttp server with the gateway's middleware."""

    @accepts_body("application/x-www-form-urlencoded")
    async def form_hook(request: web.Request) -> web.Response:
        return web.json_response(dict(await request.post()))

    async def json_only(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    app = web.Application(middlewares=[origin_middleware([], "127.0.0.1", lambda: 1)])
    app.router.add_post("/hook", form_hook)
    app.router.add_post("/api", json_only)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.post("/hook", data=b"a=1", headers=form)).status == 200
        assert (await client.post("/hook", data=b"a=1", headers={"Content-Type": "text/plain"})).status == 415
        assert (
            await client.post("/hook", data=b"a=1", headers={**form, "Origin": "http://evil.example"})
        ).status == 403
        assert (await client.post("/api", data=b"a=1", headers=form)).status == 415
        ok = await client.post("/api", data=b'{"a": 1}', headers={"Content-Type": "application/vnd.x+json"})
        assert ok.status == 200 and await ok.json() == {"a": 1}
