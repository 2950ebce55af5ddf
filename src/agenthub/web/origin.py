"""Which browser pages may act on the gateway, and trusted-proxy identities.

Browsers attach ``Origin`` to every WebSocket upgrade and to every
state-changing request, and a page on any site can try to open
``ws://127.0.0.1:18789`` or ``POST`` to it: without a check, that page would
ride on the user's loopback trust (cross-site WebSocket hijacking, CSRF). The
allow-list is the gateway's own origin (``http(s)://`` 127.0.0.1, localhost,
[::1] or the bound host, at the bound port) unless ``security.allowed_origins``
lists others, one by one (no wildcard). ``origin_middleware`` applies it on
every listener, whatever route serves the request:

- a WebSocket upgrade, or a ``POST``/``PUT``/``PATCH``/``DELETE``, from a
  foreign origin gets HTTP 403 before any handler (and any credential check) runs;
- a state-changing request with a body must say ``Content-Type:
  application/json`` (or ``application/*+json``), else HTTP 415: the types a
  cross-site HTML form or a CORS "simple request" can send (``text/plain``,
  form encodings) never reach a handler. A route that takes another type
  (e.g. a form webhook) opts in with ``accepts_body``;
- CORS is answered only for allowed origins: a preflight gets the route's
  methods, ``Authorization, Content-Type`` and a max age, and responses carry
  ``Access-Control-Allow-Origin: <that origin>`` with ``Vary: Origin``; never
  ``*``, never credentials (the gateway authenticates with bearer secrets, not
  cookies). A foreign origin's preflight gets 403.

Requests without ``Origin`` (CLI, SDK, servers, webhooks) are not browsers and pass.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

__all__ = [
    "accepts_body",
    "forwarded_client",
    "forwarded_middleware",
    "is_loopback_host",
    "local_page_origin",
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
    if allowed:
        return origin in {a.strip().rstrip("/").lower() for a in allowed}
    return origin in own_origins(host, port)


def refuse_foreign_origin(request: web.Request, allowed: Sequence[str], host: str, port: int) -> web.Response | None:
    """A 403 response for an upgrade from a foreign browser origin, else None."""
    origin = request.headers.get("Origin")
    if origin is None or origin_allowed(origin, allowed, host, port):
        return None
    return _forbidden_origin()


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CORS_ALLOW_HEADERS = "Authorization, Content-Type"
CORS_EXPOSE_HEADERS = "Retry-After"
CORS_MAX_AGE_S = 600
_BODY_TYPES_ATTR = "__agenthub_body_types__"
H = TypeVar("H", bound=Callable[..., Any])


def accepts_body(*media_types: str) -> Callable[[H], H]:
    """Let a route's handler take request bodies of these media types as well as JSON.

    For the rare route whose callers cannot send JSON (a form-encoded webhook);
    the Origin check still applies to it.
    """

    def mark(handler: H) -> H:
        setattr(handler, _BODY_TYPES_ATTR, frozenset(t.lower() for t in media_types))
        return handler

    return mark


def _is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def refuse_body_type(request: web.Request) -> web.Response | None:
    """HTTP 415 for a state-changing request whose body is not declared JSON, else None.

    A request with neither a body nor a ``Content-Type`` passes (``POST .../reset``).
    """
    ctype = request.headers.get("Content-Type")
    if ctype is None:
        if not request.body_exists:
            return None
        media = ""
    else:
        media = ctype.split(";", 1)[0].strip().lower()
        if _is_json(media):
            return None
    extra: frozenset[str] = getattr(request.match_info.route.handler, _BODY_TYPES_ATTR, frozenset())
    if media and media in extra:
        return None
    return web.Response(status=415, text="send the request body as Content-Type: application/json\n")


def _cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
        "Vary": "Origin",
    }


async def _preflight(request: web.Request, handler: Handler, origin: str) -> web.StreamResponse:
    """Answer a CORS preflight from an allowed origin with exactly what the route takes."""
    missing = request.match_info.http_exception
    if not isinstance(missing, web.HTTPMethodNotAllowed):
        return await handler(request)  # an unknown path (404), or a route that answers OPTIONS itself
    return web.Response(
        status=204,
        headers={
            **_cors_headers(origin),
            "Access-Control-Allow-Methods": ", ".join(sorted(missing.allowed_methods)),
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
        },
    )


def origin_middleware(
    allowed: Sequence[str], host: str, port: Callable[[], int], also: Callable[[str], bool] | None = None
) -> Middleware:
    """Checks every WebSocket upgrade and state-changing request on an application, and answers CORS.

    ``also``: origins this application takes beyond the allow-list (see ``local_page_origin``).
    """

    @web.middleware
    async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        trusted = origin is None or origin_allowed(origin, allowed, host, port()) or (also is not None and also(origin))
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        if not trusted and (upgrade or preflight or request.method in UNSAFE_METHODS):
            return _forbidden_origin()
        if request.method in UNSAFE_METHODS:
            refused = refuse_body_type(request)
            if refused is not None:
                return refused
        if origin is None or not trusted or upgrade:
            # Not a browser, a foreign read (no CORS headers: the page cannot see the answer), or a socket.
            return await handler(request)
        if preflight:
            return await _preflight(request, handler, origin)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(_cors_headers(origin))
            raise
        if not response.prepared:
            response.headers.update(_cors_headers(origin))
        return response

    return check_origin


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def local_page_origin(origin: str) -> bool:
    """A page opened from a file (``Origin: null``) or served from any loopback port.

    What a developer's own pages send: the MyAgent quickstart's HTML opened
    from disk, or a dev server on another local port. Only ever added to a
    loopback listener in ``--dev``: a sandboxed frame of any site also says
    ``null``.
    """
    value = origin.strip().rstrip("/").lower()
    if value == "null":
        return True
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or "/" in rest:
        return False
    host = rest.rsplit(":", 1)[0] if not rest.endswith("]") and ":" in rest else rest
    return host in _LOOPBACK_HOSTS


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (an empty host or a wildcard is not)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _forbidden_origin() -> web.Response:
    return web.Response(status=403, text="origin not allowed\n")


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
