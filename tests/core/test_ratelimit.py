"""Door limits with the time passed in."""

from __future__ import annotations

import pytest

from agenthub.core.ratelimit import AuthLimiter, AuthLockedOut, PreAuthCounter, SecurityLimits


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


class _Wrong(Exception):
    pass


async def test_attempt_counts_guesses_only_and_refuses_a_locked_out_ip_before_checking() -> None:
    lim = AuthLimiter(SecurityLimits(auth_max_failures=2, auth_lockout_ms=1000))
    checked: list[str] = []

    async def wrong() -> str:
        checked.append("wrong")
        raise _Wrong

    async def broken() -> str:
        checked.append("broken")
        raise RuntimeError("not a guess")

    async def right() -> str:
        checked.append("right")
        return "user"

    def is_guess(exc: Exception) -> bool:
        return isinstance(exc, _Wrong)

    with pytest.raises(RuntimeError):  # other failures pass through uncounted
        await lim.attempt("ip", 0, broken, is_guess)
    with pytest.raises(_Wrong):
        await lim.attempt("ip", 0, wrong, is_guess)
    with pytest.raises(AuthLockedOut) as locked:  # the failure that reaches the limit answers with the lockout
        await lim.attempt("ip", 10, wrong, is_guess)
    assert locked.value.retry_after_ms == 1000
    with pytest.raises(AuthLockedOut) as again:  # even the right secret is not looked at
        await lim.attempt("ip", 500, right, is_guess)
    assert again.value.retry_after_ms == 510 and checked == ["broken", "wrong", "wrong"]
    assert await lim.attempt("ip", 1010, right, is_guess) == "user"  # after the lockout
    assert await lim.attempt("other", 20, right, is_guess) == "user"
