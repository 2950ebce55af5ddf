"""The SDK and the CLI against a wss:// gateway whose certificate a CA made here signed.

Verified against a CA file (``ca_file``/``--ca-file``, or ``SSL_CERT_FILE`` as the
system store's override), refused without it, and pinned with a fingerprint.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agenthub.client import GatewayClient


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_leaf(directory: Path) -> tuple[Path, Path, Path, str]:
    """A CA, and a leaf for 127.0.0.1 and localhost signed by it: (ca.pem, leaf chain, leaf key, leaf sha256)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("agenthub test CA"))
        .issuer_name(_name("agenthub test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, chain_path, key_path = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, chain_path, key_path, hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    return subprocess.run(
        [sys.executable, "-m", "agenthub", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
    )


@dataclass
class TlsGateway:
    port: int
    ca: Path
    fingerprint: str


@pytest.fixture
def tls_gateway(tmp_path: Path) -> Iterator[TlsGateway]:
    """A real ``agenthub gateway`` serving wss:// with a leaf signed by a CA made here."""
    ca, chain, key, fingerprint = make_ca_and_leaf(tmp_path)
    cmd = [sys.executable, "-m", "agenthub", "gateway", "--port", "0", "--data-dir", str(tmp_path / "gw")]
    cmd += ["--tls-cert", str(chain), "--tls-key", str(key), "--token", "tls-token"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        assert proc.stdout is not None
        port = 0
        for line in iter(proc.stdout.readline, b""):
            if m := re.search(rb"ready on wss://[\d.]+:(\d+)", line):
                port = int(m.group(1))
                break
        assert port, "the TLS gateway did not start"
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
        yield TlsGateway(port, ca, fingerprint)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_sdk_verifies_against_a_ca_and_pins(tls_gateway: TlsGateway) -> None:
    gw, ca, fingerprint = tls_gateway, tls_gateway.ca, tls_gateway.fingerprint
    opts: dict[str, Any] = {"token": "tls-token", "reconnect": False, "heartbeat_interval": 0}
    for host in ("127.0.0.1", "localhost"):
        async with GatewayClient(f"wss://{host}:{gw.port}", ca_file=str(ca), **opts) as c:
            assert (await c.call("health"))["ok"] is True
    # An SDK user's own context works too.
    async with GatewayClient(
        f"wss://localhost:{gw.port}", ssl_context=ssl.create_default_context(cafile=ca), **opts
    ) as c:
        assert (await c.call("health"))["ok"] is True
    # The default is the system CA store, which does not know this CA: refused, not silently accepted.
    with pytest.raises(ssl.SSLCertVerificationError):
        async with GatewayClient(f"wss://127.0.0.1:{gw.port}", **opts):
            pass
    async with GatewayClient(f"wss://127.0.0.1:{gw.port}", tls_fingerprint=fingerprint, **opts) as c:
        assert (await c.call("health"))["ok"] is True


def test_cli_over_wss_with_ca_file_ssl_cert_file_and_pin(tls_gateway: TlsGateway, tmp_path: Path) -> None:
    gw, ca, fingerprint = tls_gateway, tls_gateway.ca, tls_gateway.fingerprint
    common = ["--token", "tls-token", "--data-dir", str(tmp_path / "cli"), "--json"]
    url = f"wss://localhost:{gw.port}"
    for extra, env in (
        (["--ca-file", str(ca)], {}),
        ([], {"AGENTHUB_CA_FILE": str(ca)}),
        ([], {"SSL_CERT_FILE": str(ca)}),  # OpenSSL's override of the system store
        (["--tls-fingerprint", fingerprint], {}),
    ):
        res = cli("call", "health", "--url", url, *common, *extra, env=env)
        assert res.returncode == 0, (extra, env, res.stderr)
        assert json.loads(res.stdout)["ok"] is True
    devices = cli("devices", "list", "--url", url, "--ca-file", str(ca), "--token", "tls-token", "--json")
    assert devices.returncode == 0, devices.stderr
    refused = cli("call", "health", "--url", url, *common)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"agenthub: cannot reach {url}: certificate verify failed")
    assert "--ca-file" in refused.stderr and "--tls-fingerprint" in refused.stderr


async def test_node_run_over_wss(tls_gateway: TlsGateway, tmp_path: Path) -> None:
    gw, ca = tls_gateway, tls_gateway.ca
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agenthub",
        "node",
        "run",
        "--url",
        f"wss://localhost:{gw.port}",
        "--ca-file",
        str(ca),
        "--token",
        "tls-token",
        "--data-dir",
        str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while b"connected to wss://" not in (line := await proc.stdout.readline()):
                assert line, "node run exited"
    finally:
        proc.terminate()
        await proc.wait()
