"""The browser Control UI: a built single-page app served from ``web/static``.

The app speaks the native protocol over the same WebSocket URL as every other
client, so this module only serves files: ``index()`` answers a plain GET on
``/`` (``app.py`` keeps the WebSocket upgrade on that path) and ``mount()`` adds
``/assets/``. The assets are built by ``make ui`` and committed, so running the
gateway needs no Node.js.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .edge import Edge

__all__ = ["STATIC_DIR", "index", "mount"]

STATIC_DIR = Path(__file__).parent / "static"

# The page talks only to its own origin (the WebSocket included); no inline script or style.
_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def mount(edge: Edge) -> None:
    assets = STATIC_DIR / "assets"
    if assets.is_dir():
        edge.app.router.add_static("/assets", assets)


async def index(request: web.Request) -> web.StreamResponse:
    """The UI's page, or a one-line hint when the package was built without assets."""
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        return web.Response(text="agenthub gateway: connect a WebSocket client to this URL\n")
    return web.FileResponse(
        page,
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": _CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
