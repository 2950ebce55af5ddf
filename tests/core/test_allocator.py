"""core.allocator: memory freed by the gateway goes back to the OS (glibc), not only to malloc's arenas."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys

import pytest

from agenthub.core.allocator import cap_arenas, malloc_trim, trim_periodically

MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(malloc_trim() is None, reason="malloc_trim is glibc's")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fragment(total: int = 96 * MIB, block: int = 2048, keep_every: int = 16) -> list[bytes]:
    """Allocate ``total`` bytes in malloc-sized blocks and free all but every ``keep_every``-th.

    What a load round leaves behind: live objects scattered through a heap
    whose other pages are free but, with glibc, still resident.
    """
    blocks = [bytes(block) for _ in range(total // block)]
    return blocks[::keep_every]


async def test_the_periodic_trim_hands_freed_heap_pages_back_to_the_os() -> None:
    kept = fragment()
    before = rss()
    task = asyncio.get_running_loop().create_task(trim_periodically(lambda: 0.05))
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while rss() > before - 48 * MIB and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 - polls RSS
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert rss() <= before - 48 * MIB, f"RSS {before / MIB:.0f} -> {rss() / MIB:.0f} MiB"
    assert len(kept) == 96 * MIB // 2048 // 16  # the live blocks stay


async def test_an_interval_of_zero_trims_nothing() -> None:
    kept = fragment()
    before = rss()
    task = asyncio.get_running_loop().create_task(trim_periodically(lambda: 0))
    await asyncio.sleep(0.3)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert rss() > before - 16 * MIB
    assert kept


ARENAS = """
import ctypes, sys, tempfile, threading
from agenthub.core.allocator import cap_arenas

cap = int(sys.argv[1])
assert cap_arenas(cap) is (cap > 0)
hold = threading.Barrier(5)

def work():
    blocks = [bytes(4096) for _ in range(1000)]  # malloc-sized: from this thread's arena
    hold.wait()

threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
hold.wait()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    fp = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(open(f.name).read().count("<heap nr="))
"""


def arenas_used(cap: int) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run(
        [sys.executable, "-c", ARENAS, str(cap)], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    return int(out.stdout.strip())


def test_capped_arenas_leave_no_thread_an_arena_of_its_own() -> None:
    # Each thread arena keeps its free top chunk out of malloc_trim's reach: one arena leaves nothing there.
    assert arenas_used(0) > 1  # glibc's default: concurrent threads get arenas of their own
    assert arenas_used(1) == 1


def test_the_operators_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_arenas(1) is False
