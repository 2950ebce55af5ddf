"""Door limits with the time passed in."""

from __future__ import annotations

from agenthub.core.ratelimit import AuthLimiter, PreAuthCounter, SecurityLimits


def test_lockout_after_failures_in_window() -> None:
    lim = AuthLimiter(SecurityLimits(auth_max_failures=3, auth_window_ms=1000, auth_lockout_ms=5000))
    assert lim.failed("1.2.3.4", 0) == 0
    assert lim.failed("1.2.3.4", 2000) == 0  # the first failure left the window
    assert lim.failed("1.2.3.4", 2100) == 0
    assert lim.retry_after("1.2.3.4", 2100) == 0
    assert lim.failed("1.2.3.4", 2200) == 5000
    assert lim.retry_after("1.2.3.4", 3200) == 4000
    assert lim.retry_after("5.6.7.8", 3200) == 0
    assert lim.retry_after("1.2.3.4", 7200) == 0


def test_success_forgets_and_memory_is_bounded() -> None:
    lim = AuthLimiter(SecurityLimits(auth_max_failures=2), max_ips=2)
    lim.failed("a", 0)
    lim.succeeded("a")
    assert lim.failed("a", 1) == 0
    lim.failed("b", 1)
    lim.failed("c", 1)
    assert len(lim._ips) == 2


def test_preauth_counter() -> None:
    counter = PreAuthCounter(SecurityLimits(max_preauth_per_ip=2))
    assert counter.try_enter("x") and counter.try_enter("x")
    assert not counter.try_enter("x") and counter.try_enter("y")
    counter.leave("x")
    assert counter.count("x") == 1 and counter.try_enter("x")
    counter.leave("y")
    assert counter.count("y") == 0
