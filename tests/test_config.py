"""The settings model on its own: layers and sources, environment names, secret files, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agenthub.config import (
    GatewaySettings,
    env_layer,
    env_names,
    merge_layers,
    redact,
    value_sources,
)


def test_layers_merge_in_order_and_remember_their_source() -> None:
    merged, sources = merge_layers(
        {
            "flag": {"port": 3},
            "file": {"port": 1, "limits": {"max_payload": 2048}},
            "stored": {"port": 2, "host": "127.0.0.2", "limits": {}},
            "env": {"limits": {"tick_interval_ms": "500"}},
        }
    )
    settings = GatewaySettings.model_validate(merged)
    assert (settings.port, settings.host, settings.limits.max_payload) == (3, "127.0.0.2", 2048)
    src = value_sources(settings, sources)
    assert src["port"] == "flag" and src["host"] == "stored" and src["limits.max_payload"] == "file"
    assert src["limits.tick_interval_ms"] == "env" and src["limits.run_timeout_s"] == "default"


def test_environment_names_nested_and_older_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTHUB_LIMITS__MAX_PAYLOAD", "4096")
    monkeypatch.setenv("AGENTHUB_SECURITY__TRUSTED_PROXIES", '["10.0.0.0/8"]')
    monkeypatch.setenv("OPENAI_API_KEY", "sk-alias")
    monkeypatch.setenv("AGENTHUB_GATEWAY_TOKEN", "legacy")
    monkeypatch.setenv("AGENTHUB_TOKEN", "canonical")  # the canonical name wins over the older one
    monkeypatch.setenv("AGENTHUB_URL", "ws://elsewhere")  # a client option, not a setting: ignored
    layer = env_layer()
    settings = GatewaySettings.model_validate(layer)
    assert settings.limits.max_payload == 4096 and settings.security.trusted_proxies == ["10.0.0.0/8"]
    assert settings.openai.api_key is not None and settings.openai.api_key.get_secret_value() == "sk-alias"
    assert settings.token is not None and settings.token.get_secret_value() == "canonical"
    assert env_names("token") == ["AGENTHUB_TOKEN", "AGENTHUB_GATEWAY_TOKEN"]
    assert env_names("limits.max_payload") == ["AGENTHUB_LIMITS__MAX_PAYLOAD"]
    # Validation reads nothing but the layers it is given.
    assert GatewaySettings.model_validate({}).token is None


def test_secret_files(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-from-file\n")
    s = GatewaySettings.model_validate({"openai": {"api_key_file": str(key)}, "token_file": str(key)})
    assert s.openai.api_key is not None and s.openai.api_key.get_secret_value() == "sk-from-file"
    assert s.token is not None and s.token.get_secret_value() == "sk-from-file"
    assert GatewaySettings.model_validate(s.model_dump()).token == s.token  # a dump validates again
    with pytest.raises(ValidationError, match="both api_key and api_key_file are set"):
        GatewaySettings.model_validate({"openai": {"api_key_file": str(key), "api_key": "other"}})
    with pytest.raises(ValidationError, match="cannot read"):
        GatewaySettings.model_validate({"token_file": str(tmp_path / "missing")})


def test_redaction_covers_every_secret_and_url_passwords() -> None:
    s = GatewaySettings.model_validate(
        {
            "token": "t",
            "security": {"password": "p"},
            "anthropic": {"api_key": "a"},
            "myagent": {"state_secret_key": "m"},
            "database_url": "postgresql+asyncpg://hub:pw-secret@db.local/hub",
        }
    )
    public = s.public_dict()
    text = str(public)
    for secret in ("'t'", "'p'", "'a'", "'m'", "pw-secret"):
        assert secret not in text
    assert public["database_url"] == "postgresql+asyncpg://hub:***@db.local/hub"  # as storage messages show it
    assert redact({"token": None})["token"] is None
