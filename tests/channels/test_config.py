"""The ``channels`` settings: accounts, where tokens come from, and secrets kept out of config.get."""

from __future__ import annotations

from pathlib import Path

from agenthub.app import channel_options
from agenthub.channels.options import DiscordOptions, SlackOptions, TelegramOptions
from agenthub.config import REDACTED, GatewaySettings


def test_accounts_inherit_settings_but_not_credentials(tmp_path: Path) -> None:
    token_file = tmp_path / "tg-token"
    token_file.write_text("111:from-file\n")
    settings = GatewaySettings.model_validate(
        {
            "channels": {
                "dm_scope": "per-account-channel-peer",
                "telegram": {
                    "bot_token_file": str(token_file),
                    "api_base_url": "http://127.0.0.1:9/tg",
                    "allow_from": [42, "43"],
                    "edit_interval_ms": 1500,
                    "accounts": {"work": {"bot_token": "222:work", "dm_policy": "allowlist"}},
                },
            }
        }
    )
    options = channel_options(settings, {"TELEGRAM_BOT_TOKEN": "333:env"})
    assert options.dm_scope == "per-account-channel-peer"
    by_id = {a.account_id: a for a in options.accounts}
    default, work = by_id["default"], by_id["work"]
    assert isinstance(default, TelegramOptions) and isinstance(work, TelegramOptions)
    assert (default.token, default.token_source) == ("111:from-file", "file")  # the file beats the env
    assert (work.token, work.token_source) == ("222:work", "config")
    assert work.api_base_url == "http://127.0.0.1:9/tg" and work.access.allow_from == ("42", "43")
    assert work.access.edit_interval_ms == 1500 and work.access.dm_policy == "allowlist"
    assert default.access.dm_policy == "pairing"
    assert "111:from-file" not in repr(default)  # secrets stay out of reprs (and so of logs)


def test_env_tokens_apply_only_to_a_configured_platform() -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": "1:t",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "DISCORD_BOT_TOKEN": "d",
    }
    assert channel_options(GatewaySettings(), env).accounts == ()  # no section: the variables are ignored
    settings = GatewaySettings.model_validate(
        {"channels": {"telegram": {}, "slack": {}, "discord": {"enabled": False}}}
    )
    by_id = {type(a): a for a in channel_options(settings, env).accounts}
    assert by_id[TelegramOptions].token == "1:t" and by_id[TelegramOptions].token_source == "env"
    slack = by_id[SlackOptions]
    assert isinstance(slack, SlackOptions) and slack.signing_secret == "s" and slack.events_path == "/slack/events"
    assert by_id[DiscordOptions].enabled is False


def test_an_unreadable_token_file_is_an_account_error(tmp_path: Path) -> None:
    settings = GatewaySettings.model_validate({"channels": {"telegram": {"bot_token_file": str(tmp_path / "nope")}}})
    (account,) = channel_options(settings, {}).accounts
    assert account.token is None and account.error is not None and "cannot read bot_token_file" in account.error


def test_channel_secrets_are_redacted() -> None:
    settings = GatewaySettings.model_validate(
        {
            "channels": {
                "telegram": {"bot_token": "1:secret", "accounts": {"b": {"bot_token": "2:secret"}}},
                "slack": {"bot_token": "xoxb-secret", "signing_secret": "sign-secret"},
                "discord": {"bot_token": "discord-secret"},
            }
        }
    )
    public = settings.public_dict()["channels"]
    assert public["telegram"]["bot_token"] == REDACTED
    assert public["telegram"]["accounts"]["b"]["bot_token"] == REDACTED
    assert public["slack"]["bot_token"] == REDACTED and public["slack"]["signing_secret"] == REDACTED
    assert public["discord"]["bot_token"] == REDACTED
    assert public["telegram"]["webhook_secret"] is None  # unset stays visible as unset
    assert "secret" not in str(public).replace("signing_secret", "").replace("webhook_secret", "")
