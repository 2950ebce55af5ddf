"""Client addresses behind trusted proxies (pure functions; the e2e side is in tests/e2e/test_security.py)."""

from __future__ import annotations

from agenthub.web.origin import forwarded_client

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
