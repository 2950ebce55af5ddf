"""A gateway on PostgreSQL (``--database-url`` / ``AGENTHUB_DATABASE_URL``), over real sockets.

Runs, chat.history and idempotency go through a real PostgreSQL server
(``tests/_servers.py``); a restart finds the transcript there, and nothing is
written to a SQLite file in the data dir. The URL carries a password (the
test server trusts loopback, so it is never checked) to prove it stays out of
the log and out of ``config.get``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests._servers import PostgresServer

from ..conftest import GatewayProc
from ._util import Client, collect_run, expected_answer, start_agent

pytestmark = pytest.mark.timeout(90)

PASSWORD = "hunter2-not-for-logs"


def _texts(history: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"][0]["text"]) for m in history["messages"]]


async def test_runs_and_history_on_postgresql_survive_a_restart(make_gateway: Any, postgres: PostgresServer) -> None:
    database = postgres.create_database("e2e")
    url = postgres.url(database, password=PASSWORD)
    gw: GatewayProc = make_gateway("--database-url", url)
    try:
        async with Client.open_connected(gw.url) as c:
            rid, accepted = await start_agent(c, "hello postgres", "pg-agent", session="pg")
            run = await collect_run(c, "pg-agent", rid)
            assert run.final is not None and run.final["status"] == "ok"
            assert await c.ok("chat.send", {"sessionKey": "pg", "message": "what is 6*7", "idempotencyKey": "pg-chat"})
            await collect_run(c, "pg-chat")
            before = await c.ok("chat.history", {"sessionKey": "pg"})
            config = (await c.ok("config.get"))["config"]
            # the stored config lives in that database, so it cannot choose another one
            refused = await c.call("config.patch", {"patch": {"database_url": "postgresql://elsewhere/db"}})
            assert refused["error"]["code"] == "INVALID_REQUEST" and "--database-url" in refused["error"]["message"]
        answers = [await expected_answer("hello postgres"), await expected_answer("what is 6*7")]
        assert _texts(before) == [
            ("user", "hello postgres"),
            ("assistant", answers[0]),
            ("user", "what is 6*7"),
            ("assistant", answers[1]),
        ]
        # The rows are in PostgreSQL, and there is no SQLite file beside them.
        assert (
            postgres.psql("SELECT count(*) FROM messages WHERE session_key = 'agent:main:pg'", database).strip() == "4"
        )
        assert postgres.psql("SELECT status FROM runs WHERE run_id = 'pg-agent'", database).strip() == "ok"
        assert not (gw.data_dir / "agenthub.db").exists()
        assert config["database_url"] == postgres.url(database, password="***")

        # Restart, this time choosing the database through the environment.
        gw.stop()
        gw.args = [a for a in gw.args if a not in ("--database-url", url)]
        gw.env = {"AGENTHUB_DATABASE_URL": url}
        gw.start(gw.port)
        async with Client.open_connected(gw.url) as c:
            assert await c.ok("chat.history", {"sessionKey": "pg"}) == before
            # a finished run is answered from the store: the same outcome, no new run
            final = await c.ok("agent.wait", {"runId": "pg-agent"})
            assert final["status"] == "ok"
            rid = await c.request(
                "agent", {"message": "hello postgres", "idempotencyKey": "pg-agent", "sessionKey": "pg"}
            )
            assert (await c.response(rid))["payload"] == accepted
            assert (await c.response(rid))["payload"]["status"] == "ok"
            # and new turns keep going into the same transcript
            rid, _ = await start_agent(c, "after restart", "pg-after", session="pg")
            await collect_run(c, "pg-after", rid)
            after = await c.ok("chat.history", {"sessionKey": "pg"})
        assert _texts(after)[:4] == _texts(before)
        assert _texts(after)[4] == ("user", "after restart")
        assert not (gw.data_dir / "agenthub.db").exists()
        assert PASSWORD not in gw.output()
        assert "database=postgresql+asyncpg://postgres:***@127.0.0.1" in gw.output()
    finally:
        gw.stop()
        postgres.drop_database(database)


async def test_unreachable_database_at_start_is_one_clear_line(make_gateway: Any, postgres: PostgresServer) -> None:
    """No server on the port: a short message naming the URL (without its password), exit 1, no traceback."""
    with pytest.raises(RuntimeError, match="did not start") as err:
        make_gateway("--database-url", f"postgresql+asyncpg://agent:{PASSWORD}@127.0.0.1:1/agenthub")
    output = str(err.value)
    assert "cannot open the database postgresql+asyncpg://agent:***@127.0.0.1:1/agenthub" in output
    assert "no database server answers at 127.0.0.1:1" in output
    assert "Traceback" not in output and PASSWORD not in output
