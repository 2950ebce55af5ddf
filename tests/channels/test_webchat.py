"""WebChat: the gateway's own browser chat is a channel in channels.status, and a target of Outbound."""

from __future__ import annotations

from pathlib import Path

from agenthub.app import Gateway

from ..e2e._util import Client

BROWSER = {"id": "agenthub-ui", "version": "0.1.0", "platform": "web", "mode": "webchat"}


async def test_webchat_counts_browser_clients_and_takes_deliveries(tmp_path: Path) -> None:
    async with Gateway({"data_dir": str(tmp_path), "port": 0}) as gw:
        url = f"ws://127.0.0.1:{gw.port}"
        async with Client.open_connected(url) as cli:
            account = (await cli.ok("channels.status"))["channelAccounts"]["webchat"][0]
            assert account["running"] and account["configured"]
            assert account["connected"] is False and account["connectedClients"] == 0  # a CLI is not a browser
            async with Client.open_connected(url, client=BROWSER) as browser:
                account = (await cli.ok("channels.status", {"channel": "webchat"}))["channelAccounts"]["webchat"][0]
                assert account["connected"] is True and account["connectedClients"] == 1
                assert account["lastConnectedAt"] >= account["lastStartAt"]

                # What cron and heartbeats do: deliver through the node's Outbound, to a session.
                outbound = gw.node.outbound if gw.node is not None else None
                assert outbound is not None and outbound.has_channel("webchat")
                delivery = await outbound.deliver("webchat", "ops", "Nightly report ready.")
                assert delivery.channel == "webchat" and delivery.to == "ops" and delivery.message_id
                final = await browser.until(
                    lambda f: (
                        f.get("event") == "chat"
                        and f["payload"].get("sessionKey") == "agent:main:ops"  # the canonical key of "ops"
                        and f["payload"]["state"] == "final"
                    )
                )
                assert final["payload"]["message"]["content"][0]["text"] == "Nightly report ready."
                history = await browser.ok("chat.history", {"sessionKey": "ops"})
                assert [m["content"][0]["text"] for m in history["messages"]] == ["Nightly report ready."]
            start = await cli.call("channels.start", {"channel": "webchat"})
            assert start["error"]["code"] == "INVALID_REQUEST"
            unknown = await cli.call("channels.status", {"channel": "irc"})
            assert unknown["error"]["code"] == "INVALID_REQUEST" and "unknown channel" in unknown["error"]["message"]
