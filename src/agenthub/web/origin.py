"""Who may open a WebSocket: browser origins and trusted-proxy identities.

Browsers attach ``Origin`` to every WebSocket upgrade, and a page on any site
can try to open ``ws://127.0.0.1:18789``: without a check, that page would ride
on the user's loopback trust (cross-site WebSocket hijacking). An upgrade whose
``Origin`` is not in the allow-list is refused with HTTP 403 before the
handshake. The default list is the gateway's own origin (``http(s)://``
127.0.0.1, localhost, [::1] or the bound host, at the bound port). Requests
without ``Origin`` (CLI, SDK, servers) are not browsers and pass.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

__all__ = [
    "forwarded_client",
    "forwarded_middleware",
    "origin_allowed",
    "origin_middleware",
    "own_origins",
    "proxy_identity",
    "refuse_foreign_origin",
    "socket_peer",
]


def own_origins(host: str, port: int) -> set[str]:
    hosts = {"127.0.0.1", "localhost", "[::1]"}
    if host and host not in ("0.0.0.0", "::"):
        hosts.add(f"[{host}]" if ":" in host else host)
    return {f"{scheme}://{h}:{port}" for scheme in ("http", "https") for h in hosts}


def origin_allowed(origin: str, allowed: Sequence[str], host: str, port: int) -> bool:
    origin = origin.strip().rstrip("/").lower()
    if "*" in allowed:
        return True
    if allowed:
        return origin in {a.strip().rstrip("/").lower() for a in allowed}
    return origin in own_origins(host, port)


def refuse_foreign_origin(request: web.Request, allowed: Sequence[str], host: str, port: int) -> web.Response | None:
    """A 403 response for an upgrade from a foreign browser origin, else None."""
    origin = request.headers.get("Origin")
    if origin is None or origin_allowed(origin, allowed, host, port):
        return None
    return web.Response(status=403, text="origin not allowed\n")


def origin_middleware(allowed: Sequence[str], host: str, port: Callable[[], int]) -> Middleware:
    """Checks every WebSocket upgrade on an application, whichever route serves it."""

    @web.middleware
    async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            refused = refuse_foreign_origin(request, allowed, host, port())
            if refused is not None:
                return refused
        return await handler(request)

    return check_origin


def socket_peer(request: web.Request) -> str:
    """The TCP peer's address (``request.remote`` may be a forwarded client's)."""
    peername = request.transport.get_extra_info("peername") if request.transport is not None else None
    return str(peername[0]) if isinstance(peername, tuple) and peername else (request.remote or "")


def forwarded_client(peer: str, forwarded_for: Sequence[str], proxies: Sequence[str]) -> str:
    """The client address behind trusted proxies, from ``X-Forwarded-For``.

    Each proxy appends the address it received from, so the list is read from
    the right: trusted proxies are skipped and the first other address is the
    client. Entries left of it were written by the client and prove nothing. A
    peer that is not a trusted proxy is the client itself, whatever it claims.
    """
    if not forwarded_for or not _in_any(peer, proxies):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",")]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage (or "unknown"): trust nothing further left
        client = hop
        if not _in_any(hop, proxies):
            break
    return client


def forwarded_middleware(proxies: Sequence[str]) -> Middleware:
    """Rewrite ``request.remote`` to the forwarded client when the peer is a trusted proxy.

    Everything keyed on the peer address (per-IP auth limits, the pre-connect
    socket cap, loopback trust, presence) then sees the client, not the proxy.
    """

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = socket_peer(request)
        client = forwarded_client(peer, request.headers.getall("X-Forwarded-For", []), proxies)
        if client != peer:
            request = request.clone(remote=client)
        return await handler(request)

    return forwarded


def proxy_identity(request: web.Request, header: str, proxies: Sequence[str]) -> str | None:
    """The identity header's value, only when the peer is one of the trusted proxies."""
    if not _in_any(socket_peer(request), proxies):
        return None
    value = request.headers.get(header, "").strip()
    return value[:256] or None


def _in_any(ip: str, networks: Sequence[str]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for net in networks:
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False
