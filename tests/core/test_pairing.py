"""PairingService without a socket: admit, requests, approval, tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agenthub.client.identity import DeviceIdentity
from agenthub.core.auth import hash_secret
from agenthub.core.pairing import PairingService, is_loopback_ip
from agenthub.core.store import DeviceRecord
from agenthub.protocol.errors import ErrorCode, HandshakeError, RpcError
from agenthub.protocol.handshake import Accepted, ServerHandshake
from agenthub.protocol.methods import ADMIN, PAIRING, READ, WRITE, DeviceTokenRevokeParams, DeviceTokenRotateParams
from agenthub.storage.sqlite import SqliteStore

NOW = 1_800_000_000_000


class FakeStore:
    def __init__(self) -> None:
        self.devices: dict[str, DeviceRecord] = {}

    async def get_device(self, device_id: str) -> DeviceRecord | None:
        return self.devices.get(device_id)

    async def put_device(self, device: DeviceRecord) -> None:
        self.devices[device.device_id] = device

    async def put_devices(self, devices: list[DeviceRecord]) -> None:
        for device in devices:
            await self.put_device(device)

    async def list_devices(self) -> list[DeviceRecord]:
        return list(self.devices.values())


def accepted(ident: DeviceIdentity, scopes: list[str], role: str = "operator") -> Accepted:
    hs = ServerHandshake(NOW)
    device = ident.sign_connect(
        nonce=hs.nonce,
        signed_at_ms=NOW,
        client_id="cli",
        client_mode="cli",
        role=role,
        scopes=scopes,
        token="",
        platform="linux",
    )
    params = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "role": role,
        "scopes": scopes,
        "device": device,
        "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"},
    }
    return hs.receive_connect(json.dumps({"type": "req", "id": "c1", "method": "connect", "params": params}), NOW)


@pytest.fixture
def svc() -> tuple[PairingService, list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    service = PairingService(FakeStore(), max_pending=3, pending_ttl_ms=1000)  # type: ignore[arg-type]
    service.bind(lambda event, payload: events.append((event, payload)), lambda: ())
    return service, events


async def refused(service: PairingService, acc: Accepted, scopes: list[str], ip: str) -> dict[str, Any]:
    with pytest.raises(HandshakeError) as info:
        await service.admit(acc, scopes, ip, NOW, via_device_token=False)
    assert info.value.code is ErrorCode.NOT_PAIRED and info.value.message == "pairing required"
    assert info.value.details is not None
    return info.value.details


def test_loopback_detection() -> None:
    assert is_loopback_ip("127.0.0.1") and is_loopback_ip("::1") and is_loopback_ip("127.8.0.1")
    assert not is_loopback_ip("10.0.0.1") and not is_loopback_ip("") and not is_loopback_ip("garbage")


async def test_loopback_first_sight_is_silent(svc: Any) -> None:
    service, events = svc
    ident = DeviceIdentity.generate()
    token = await service.admit(accepted(ident, [READ]), [READ], "127.0.0.1", NOW, via_device_token=False)
    assert token and events == []
    assert await service.verify_token(ident.device_id, "operator", token)
    assert not await service.verify_token(ident.device_id, "node", token)
    details = await refused(service, accepted(ident, [READ, WRITE]), [READ, WRITE], "127.0.0.1")
    assert details["reason"] == "scope-upgrade" and events[0][0] == "device.pair.requested"


async def test_remote_request_approve_rotate_revoke(svc: Any) -> None:
    service, events = svc
    ident = DeviceIdentity.generate()
    acc = accepted(ident, [READ, WRITE])
    details = await refused(service, acc, [READ, WRITE], "10.0.0.7")
    assert details["code"] == "PAIRING_REQUIRED" and details["reason"] == "not-paired"
    rid = details["requestId"]
    assert (await refused(service, acc, [READ, WRITE], "10.0.0.7"))["requestId"] == rid
    assert len(events) == 1 and events[0][1]["remoteIp"] == "10.0.0.7"

    with pytest.raises(RpcError) as info:
        await service.approve(rid, frozenset({READ, PAIRING}), NOW)
    assert info.value.code is ErrorCode.FORBIDDEN and info.value.details == {"missingScope": WRITE}
    out = await service.approve(rid, frozenset({READ, WRITE, PAIRING}), NOW)
    assert out["device"]["scopes"] == [READ, WRITE] and events[-1][1]["decision"] == "approved"

    token = await service.admit(acc, [READ, WRITE], "10.0.0.7", NOW, via_device_token=False)
    assert token is not None
    assert await service.admit(acc, [READ], "10.0.0.7", NOW, via_device_token=True) is None
    rotated = await service.rotate(
        DeviceTokenRotateParams(deviceId=ident.device_id, role="operator"), frozenset({PAIRING, READ, WRITE}), NOW
    )
    assert not await service.verify_token(ident.device_id, "operator", token)
    assert await service.verify_token(ident.device_id, "operator", rotated["token"])
    with pytest.raises(RpcError) as info:
        await service.rotate(
            DeviceTokenRotateParams(deviceId=ident.device_id, role="operator", scopes=[ADMIN]),
            frozenset({PAIRING, READ, WRITE}),
            NOW,
        )
    assert info.value.details == {"missingScope": ADMIN}
    await service.revoke(DeviceTokenRevokeParams(deviceId=ident.device_id, role="operator"), NOW)
    assert not await service.verify_token(ident.device_id, "operator", rotated["token"])


async def test_require_pairing_covers_loopback_and_pending_is_bounded(svc: Any) -> None:
    service, _ = svc
    service.require_pairing = True
    ids = []
    for _ in range(5):
        details = await refused(service, accepted(DeviceIdentity.generate(), [READ]), [READ], "127.0.0.1")
        ids.append(details["requestId"])
    assert list(service.pending) == ids[-3:]
    listed = await service.list(NOW + 5000)  # past the TTL: expired
    assert listed["pending"] == []
    with pytest.raises(RpcError):
        await service.reject(ids[-1], NOW)


async def test_role_change_needs_approval(svc: Any) -> None:
    service, _ = svc
    ident = DeviceIdentity.generate()
    await service.admit(accepted(ident, []), [], "127.0.0.1", NOW, via_device_token=False)
    details = await refused(service, accepted(ident, [], role="node"), [], "127.0.0.1")
    assert details["reason"] == "role-upgrade"


class CountingStore(SqliteStore):
    """A real SQLite store that counts device reads and write transactions."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0
        self.batches: list[int] = []
        self.fail = False

    async def get_device(self, device_id: str) -> DeviceRecord | None:
        self.reads += 1
        return await super().get_device(device_id)

    async def put_devices(self, batch: Sequence[DeviceRecord]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.batches.append(len(batch))
        await super().put_devices(batch)


@pytest.fixture
async def sqlite_svc(tmp_path: Path) -> AsyncIterator[tuple[PairingService, CountingStore]]:
    store = CountingStore(tmp_path / "agenthub.db")
    await store.open()
    try:
        yield PairingService(store, cache_size=4), store
    finally:
        await store.close()


async def test_concurrent_connects_share_one_commit_and_tokens_are_durable(sqlite_svc: Any, tmp_path: Path) -> None:
    service, store = sqlite_svc
    idents = [DeviceIdentity.generate() for _ in range(4)]
    for ident in idents:  # first sight: each pairs (one read, one commit)
        await service.admit(accepted(ident, [READ]), [READ], "127.0.0.1", NOW, via_device_token=False)
    assert store.batches == [1, 1, 1, 1] and store.reads == 4
    # Reconnects of known devices are served from memory and share one transaction.
    tokens = await asyncio.gather(
        *(service.admit(accepted(i, [READ]), [READ], "127.0.0.1", NOW + 1, via_device_token=False) for i in idents)
    )
    assert store.batches == [1, 1, 1, 1, 4] and store.reads == 4
    reopened = SqliteStore(tmp_path / "agenthub.db")  # what a restart would read: committed before admit returned
    await reopened.open()
    try:
        for ident, token in zip(idents, tokens, strict=True):
            record = await reopened.get_device(ident.device_id)
            assert record is not None and record.token_hash == hash_secret(token or "")
            assert record.last_seen_ms == NOW + 1
    finally:
        await reopened.close()


async def test_cache_is_bounded_and_evicted_records_are_reread(sqlite_svc: Any) -> None:
    service, store = sqlite_svc
    idents = [DeviceIdentity.generate() for _ in range(6)]
    tokens = [
        await service.admit(accepted(i, [READ]), [READ], "127.0.0.1", NOW, via_device_token=False) for i in idents
    ]
    assert len(service._devices) == 4
    reads = store.reads
    assert await service.verify_token(idents[0].device_id, "operator", tokens[0])  # evicted: read again
    assert store.reads == reads + 1
    assert await service.verify_token(idents[0].device_id, "operator", tokens[0])  # now cached
    assert store.reads == reads + 1 and len(service._devices) == 4


async def test_failed_commit_fails_the_connect_and_forgets_the_change(sqlite_svc: Any) -> None:
    service, store = sqlite_svc
    ident = DeviceIdentity.generate()
    first = await service.admit(accepted(ident, [READ]), [READ], "127.0.0.1", NOW, via_device_token=False)
    store.fail = True
    with pytest.raises(OSError):
        await service.admit(accepted(ident, [READ]), [READ], "127.0.0.1", NOW + 1, via_device_token=False)
    store.fail = False
    # The token that was never stored is not honoured; the stored one still is.
    assert await service.verify_token(ident.device_id, "operator", first)
    await service.flush()
