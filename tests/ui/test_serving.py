"""The gateway serves the built UI on plain GETs of its WebSocket URL (no browser needed)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from agenthub.web.ui import STATIC_DIR


def test_index_and_assets_are_served_with_a_csp(gateway: Any) -> None:
    page = httpx.get(gateway.http + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for path in assets:
        res = httpx.get(gateway.http + path)
        assert res.status_code == 200 and res.content == (STATIC_DIR / path.lstrip("/")).read_bytes()
    assert httpx.get(gateway.http + "/assets/nope.js").status_code == 404


def test_built_assets_ship_in_the_package() -> None:
    # Built by `make ui` and committed: running the gateway needs no Node.js.
    assert (STATIC_DIR / "index.html").is_file()
    assert list((STATIC_DIR / "assets").glob("index-*.js"))
