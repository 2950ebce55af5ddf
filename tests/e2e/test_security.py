"""Door security over real sockets: origins, auth modes, rate limits, TLS."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agenthub.client import DeviceIdentity, GatewayClient, GatewayError

from ..conftest import GatewayProc, RawClient, signed_device


async def test_foreign_browser_origin_is_refused(gateway: GatewayProc) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(gateway.url, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403
    for origin in (f"http://127.0.0.1:{gateway.port}", f"http://localhost:{gateway.port}"):
        async with RawClient.open(gateway.url, origin=origin) as c:
            assert (await c.connect())["ok"]
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(gateway.url, origin="http://127.0.0.1:1"):  # type: ignore[arg-type]
            pass
    async with RawClient.open(gateway.url) as c:  # no Origin: CLI and SDK clients
        assert (await c.connect())["ok"]
    # The check is a middleware: every WebSocket route of the main listener has it.
    for path in ("/api/v1/pipelines/p1/ws",):  # the LangBot dialect route
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(gateway.url + path, origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403


async def test_allowed_origin_list(make_gateway: Any) -> None:
    gw = make_gateway("--allowed-origin", "https://app.example")
    async with RawClient.open(gw.url, origin="https://app.example") as c:  # type: ignore[arg-type]
        assert (await c.connect())["ok"]
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(gw.url, origin="https://other.example"):  # type: ignore[arg-type]
            pass


async def test_failed_auth_is_rate_limited_per_ip(make_gateway: Any) -> None:
    gw = make_gateway(
        env={"AGENTHUB_GATEWAY_TOKEN": "right"},
        config={"security": {"auth_max_failures": 3, "auth_lockout_ms": 30_000}},
    )
    codes = []
    for _ in range(3):
        async with RawClient.open(gw.url) as c:
            res = await c.connect(auth={"token": "wrong"})
            codes.append(res["error"]["details"]["code"])
    assert codes == ["AUTH_TOKEN_MISMATCH", "AUTH_TOKEN_MISMATCH", "AUTH_RATE_LIMITED"]
    async with RawClient.open(gw.url) as c:  # even the right token waits out the lockout
        res = await c.connect(auth={"token": "right"})
        err = res["error"]
        assert err["code"] == "UNAVAILABLE" and err["details"]["code"] == "AUTH_RATE_LIMITED"
        assert 0 < err["retryAfterMs"] <= 30_000
        assert (await c.closed())[0] == 1008


async def test_unauthenticated_sockets_per_ip_are_capped(make_gateway: Any) -> None:
    gw = make_gateway(config={"security": {"max_preauth_per_ip": 3}})
    async with RawClient.open(gw.url) as a, RawClient.open(gw.url), RawClient.open(gw.url):
        async with websockets.connect(gw.url) as extra:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(extra.recv(), 5)
                await asyncio.wait_for(extra.recv(), 5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
            assert info.value.rcvd.reason == "too many unauthenticated connections"
        assert (await a.connect())["ok"]  # a completed connect frees its slot
        async with RawClient.open(gw.url) as d:
            assert (await d.connect())["ok"]


async def test_password_mode(make_gateway: Any) -> None:
    gw = make_gateway("--auth", "password", env={"AGENTHUB_GATEWAY_PASSWORD": "hunter2"})
    async with RawClient.open(gw.url) as c:
        assert (await c.connect())["error"]["details"]["code"] == "AUTH_PASSWORD_MISSING"
    async with RawClient.open(gw.url) as c:
        assert (await c.connect(auth={"password": "nope"}))["error"]["details"]["code"] == "AUTH_PASSWORD_MISMATCH"
    async with RawClient.open(gw.url) as c:
        res = await c.connect(auth={"password": "hunter2"})
        assert res["ok"] and res["payload"]["snapshot"]["authMode"] == "password"
        cfg = (await c.call("config.get"))["payload"]
        assert "hunter2" not in json.dumps(cfg)
    assert "hunter2" not in gw.output()


async def test_trusted_proxy_mode(make_gateway: Any) -> None:
    gw = make_gateway("--auth", "trusted-proxy", "--trusted-proxy", "127.0.0.1")
    async with RawClient.open(gw.url, additional_headers={"X-Forwarded-User": "alice"}) as c:
        res = await c.connect()
        assert res["ok"] and res["payload"]["snapshot"]["authMode"] == "trusted-proxy"
    async with RawClient.open(gw.url) as c:
        assert (await c.connect())["error"]["details"]["code"] == "AUTH_PROXY_IDENTITY_MISSING"
    # Through a proxy the peer address is the proxy's: a device is never "loopback" there.
    async with RawClient.open(gw.url, additional_headers={"X-Forwarded-User": "bob"}) as c:
        ident = DeviceIdentity.generate()
        dev = signed_device(c, ident, scopes=["operator.read"])
        res = await c.connect(scopes=["operator.read"], device=dev)
        assert res["error"]["code"] == "NOT_PAIRED"
    other = make_gateway("--auth", "trusted-proxy", "--trusted-proxy", "10.9.9.9")
    async with RawClient.open(other.url, additional_headers={"X-Forwarded-User": "mallory"}) as c:
        assert (await c.connect())["error"]["details"]["code"] == "AUTH_PROXY_IDENTITY_MISSING"


def _self_signed(directory: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


async def test_tls_with_pinned_self_signed_certificate(tmp_path: Path) -> None:
    cert, key, fingerprint = _self_signed(tmp_path)
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any awaiting
        [
            sys.executable,
            "-m",
            "agenthub",
            "gateway",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        port = 0
        for _ in range(200):
            line = await asyncio.to_thread(proc.stdout.readline)
            m = re.search(rb"ready on wss://[\d.]+:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "gateway did not start with TLS"
        url = f"wss://127.0.0.1:{port}"
        async with GatewayClient(
            url, tls_fingerprint=fingerprint, device=DeviceIdentity.generate(), reconnect=False, heartbeat_interval=0
        ) as gw:
            assert (await gw.call("health"))["ok"] is True
        with pytest.raises(GatewayError) as info:
            async with GatewayClient(url, tls_fingerprint="00" * 32, reconnect=False, heartbeat_interval=0):
                pass
        assert info.value.code == "TLS_FINGERPRINT_MISMATCH"
        # An unpinned client that checks certificates refuses the self-signed one.
        with pytest.raises(ssl.SSLCertVerificationError):
            async with websockets.connect(url, ssl=ssl.create_default_context()):
                pass
        out = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "agenthub",
                "call",
                "health",
                "--json",
                "--url",
                url,
                "--tls-fingerprint",
                fingerprint,
                "--data-dir",
                str(tmp_path / "cli"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["ok"] is True
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        body = await asyncio.to_thread(_https_get, f"https://127.0.0.1:{port}/healthz", ctx)
        assert body
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def _https_get(url: str, ctx: ssl.SSLContext) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
        data: bytes = resp.read()
        return data


@pytest.mark.parametrize("attack", ["other-role", "other-token", "other-key"])
async def test_signature_is_bound_to_role_token_and_key(gateway: GatewayProc, attack: str) -> None:
    """Extends test_handshake's signature cases (scopes, nonce replay, id mismatch)."""
    ident = DeviceIdentity.generate()
    async with RawClient.open(gateway.url) as c:
        nonce = c.challenge["payload"]["nonce"]
        fields: dict[str, Any] = dict(
            nonce=nonce,
            signed_at_ms=int(time.time() * 1000),
            client_id="test",
            client_mode="test",
            role="operator",
            scopes=["operator.read"],
            token="",
            platform="linux",
        )
        over: dict[str, Any] = {"scopes": ["operator.read"]}
        if attack == "other-role":
            dev = ident.sign_connect(**fields)
            over.update(role="node", scopes=[])
        elif attack == "other-token":
            dev = ident.sign_connect(**fields)
            over["auth"] = {"token": "stolen-elsewhere"}
        else:
            dev = ident.sign_connect(**fields)
            dev["signature"] = DeviceIdentity.generate().sign_connect(**fields)["signature"]
        res = await c.connect(device=dev, **over)
        assert res["ok"] is False and res["error"]["details"]["code"] == "DEVICE_AUTH_SIGNATURE"
        assert (await c.closed())[0] == 1008


async def test_dialect_ports_check_the_origin_too(make_gateway: Any) -> None:
    with socket.socket() as a, socket.socket() as m:
        a.bind(("127.0.0.1", 0))
        m.bind(("127.0.0.1", 0))
        ab_port, ma_port = a.getsockname()[1], m.getsockname()[1]
    gw = make_gateway("--agentbox-port", str(ab_port), "--myagent-port", str(ma_port), "--dev")
    for url in (f"ws://127.0.0.1:{ab_port}/api/v1/gateway/ws", f"ws://127.0.0.1:{ma_port}/"):
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(url, origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403
        # The gateway's own pages (main port) and non-browser clients (no Origin) get through.
        for origin in (f"http://127.0.0.1:{gw.port}", None):
            async with websockets.connect(url, origin=origin):  # type: ignore[arg-type]
                pass


async def test_forwarded_client_behind_a_trusted_proxy(make_gateway: Any) -> None:
    """Behind a trusted proxy, limits and loopback trust key on the forwarded client, not on the proxy."""
    gw = make_gateway(
        "--trusted-proxy",
        "127.0.0.1",
        config={"security": {"auth_max_failures": 2, "auth_lockout_ms": 30_000}},
        env={"AGENTHUB_GATEWAY_TOKEN": "right"},
    )

    def via(ip: str) -> dict[str, Any]:
        return {"additional_headers": {"X-Forwarded-For": f"6.6.6.6, {ip}"}}  # the left entry is spoofed

    for _ in range(2):
        async with RawClient.open(gw.url, **via("203.0.113.7")) as c:
            await c.connect(auth={"token": "wrong"})
    async with RawClient.open(gw.url, **via("203.0.113.7")) as c:
        assert (await c.connect(auth={"token": "right"}))["error"]["details"]["code"] == "AUTH_RATE_LIMITED"
    # Another client of the same proxy is not locked out, and presence shows where it really is.
    async with RawClient.open(gw.url, **via("198.51.100.2")) as c:
        assert (await c.connect(auth={"token": "right"}))["ok"]
        presence = (await c.call("system-presence"))["payload"]
        assert [p["ip"] for p in presence] == ["198.51.100.2"]
        # A remote client's device is not paired silently, although the proxy is on loopback.
        ident = DeviceIdentity.generate()
    async with RawClient.open(gw.url, **via("198.51.100.2")) as c:
        dev = signed_device(c, ident, scopes=["operator.read"], token="right")
        res = await c.connect(scopes=["operator.read"], device=dev, auth={"token": "right"})
        assert res["error"]["code"] == "NOT_PAIRED" and res["error"]["details"]["reason"] == "not-paired"
