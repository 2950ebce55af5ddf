"""A full disk over real sockets: writes answer UNAVAILABLE "disk full" (retryable), and recover with space.

The gateway's data dir is a small tmpfs (a real file system that fills up,
not a simulated error); a filler file takes the last byte, and deleting it
gives the space back. Reads and the rest of the gateway keep working meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests._servers import fill_disk, mount_tmpfs

from ..conftest import GatewayProc
from ._util import Client, collect_run, expected_answer

pytestmark = pytest.mark.timeout(90)


def _texts(history: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"][0]["text"]) for m in history["messages"]]


def _assert_disk_full(res: dict[str, Any]) -> None:
    assert res["ok"] is False, res
    error = res["error"]
    assert error["code"] == "UNAVAILABLE" and error["retryable"] is True, error
    assert "disk full" in error["message"], error
    assert "agenthub.db" not in error["message"]  # the server's paths stay in its log


async def test_full_disk_answers_retryable_unavailable_and_recovers(make_gateway: Any, tmp_path: Path) -> None:
    data = tmp_path / "small"
    with mount_tmpfs(data, "4m"):
        gw: GatewayProc = make_gateway(data_dir=data)
        try:
            async with Client.open_connected(gw.url) as c:
                await c.ok("chat.send", {"sessionKey": "df", "message": "first", "idempotencyKey": "df-0"})
                await collect_run(c, "df-0")
                before = await c.ok("chat.history", {"sessionKey": "df"})

                filler = fill_disk(data)
                send = {"sessionKey": "df", "message": "while full", "idempotencyKey": "df-1"}
                _assert_disk_full(await c.call("chat.send", send))
                _assert_disk_full(await c.call("send", {"sessionKey": "df", "message": "note", "idempotencyKey": "n1"}))
                _assert_disk_full(
                    await c.call("agent", {"message": "hi", "idempotencyKey": "df-2", "sessionKey": "df"})
                )
                # Everything else goes on: the socket, health, reads.
                assert (await c.ok("health"))["ok"] is True
                assert await c.ok("chat.history", {"sessionKey": "df"}) == before

                filler.unlink()
                # The same requests, retried, now succeed: nothing half-done was left behind.
                assert await c.ok("chat.send", send) == {"runId": "df-1", "status": "started"}
                await collect_run(c, "df-1")
                await c.ok("send", {"sessionKey": "df", "message": "note", "idempotencyKey": "n1"})
                after = await c.ok("chat.history", {"sessionKey": "df"})
            assert _texts(after) == [
                *_texts(before),
                ("user", "while full"),
                ("assistant", await expected_answer("while full")),
                ("assistant", "note"),
            ]
            log = gw.output()
            assert f"database {data / 'agenthub.db'}: disk full" in log  # the operator learns which file
            assert "Traceback" not in log
        finally:
            gw.stop()
