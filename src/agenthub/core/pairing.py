"""Device pairing and device tokens.

A connect that carries a device identity is admitted by ``PairingService.admit``:

- a paired device asking for no more than it was granted (same role, scopes
  within its paired scopes) is let in, and gets a fresh device token unless it
  authenticated with one;
- an unknown device on loopback (without ``require_pairing``) is paired silently,
  as OpenClaw does for same-host clients;
- anything else (a remote or, with ``require_pairing``, any unknown device; a
  role or scope upgrade, which is never silent) gets ``NOT_PAIRED`` with
  ``details {code: "PAIRING_REQUIRED", requestId, reason}``, and the request goes
  to operators holding ``operator.pairing`` as ``device.pair.requested``.

Nodes pair exactly like devices: a node is a device whose paired role is
``node``. Pending requests live in memory (bounded, with a TTL): a device that
is refused simply asks again on reconnect, and keeps its ``requestId`` while
the request is pending. Paired devices and token hashes are in the ``Store``;
a device token is 32 random bytes, stored only as its SHA-256 digest, bound to
one device and one role, and replaced at once by ``device.token.rotate``.

Every device write goes through this service, so it keeps the records it has
seen in memory (``cache_size``, oldest evicted) and a connect costs no read.
Writes are group-committed: all records changed in one loop iteration go to the
store in one transaction, and each caller waits for that commit, so a token is
durable before it is handed out while a connect storm pays one commit per batch
instead of one per connect (S4 in ``bench/``). Several gateway processes
sharing a database keep their caches right through ``Cluster.invalidate``:
each committed device write is announced before its caller is answered, and
a revoked or removed device's sockets are closed on every process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.errors import CloseCode, ErrorCode, HandshakeError, RpcError, not_found
from ..protocol.handshake import Accepted
from ..protocol.methods import (
    DeviceIdParams,
    DeviceRenameParams,
    DeviceTokenRevokeParams,
    DeviceTokenRotateParams,
    EmptyParams,
    PairRequestParams,
    expand_scopes,
    is_operator_scope,
)
from .cluster import Cluster, LocalCluster
from .connection import Connection
from .secrets import hash_secret, secret_matches
from .store import DeviceRecord, Store

__all__ = [
    "PairRequest",
    "PairingService",
    "device_view",
    "is_loopback_ip",
    "node_request_view",
    "pairing_required_details",
    "register_pairing_handlers",
]

log = logging.getLogger(__name__)

Publish = Callable[..., None]


def is_loopback_ip(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@dataclass(slots=True)
class PairRequest:
    request_id: str
    device_id: str
    public_key: str
    role: str
    scopes: list[str]
    display_name: str | None
    platform: str | None
    device_family: str | None
    client_id: str
    client_mode: str
    remote_ip: str
    ts: int
    reason: str
    # What a node declared when it asked (shown by node.pair.list; nodes only).
    version: str | None = None
    caps: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    permissions: dict[str, bool] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        """The ``device.pair.requested`` payload (OpenClaw's DevicePairRequestedEvent)."""
        out: dict[str, Any] = {
            "requestId": self.request_id,
            "deviceId": self.device_id,
            "publicKey": self.public_key,
            "clientId": self.client_id,
            "clientMode": self.client_mode,
            "role": self.role,
            "roles": [self.role],
            "scopes": list(self.scopes),
            "remoteIp": self.remote_ip,
            "silent": False,
            "isRepair": self.reason != "not-paired",
            "ts": self.ts,
        }
        for key, value in (
            ("displayName", self.display_name),
            ("platform", self.platform),
            ("deviceFamily", self.device_family),
        ):
            if value:
                out[key] = value
        return out


def pairing_required_details(req: PairRequest, role: str) -> dict[str, Any]:
    """``details`` of a NOT_PAIRED connect error, with OpenClaw's recovery hints.

    A node is told to keep retrying (``wait_then_retry``, ``pauseReconnect: false``):
    OpenClaw's node host otherwise pauses until restarted, and with these it
    reconnects by itself once an operator approves the request.
    """
    details: dict[str, Any] = {
        "code": "PAIRING_REQUIRED",
        "requestId": req.request_id,
        "reason": req.reason,
        "deviceId": req.device_id,
        "requestedRole": role,
        "requestedScopes": list(req.scopes),
    }
    if role == "node":
        details.update(recommendedNextStep="wait_then_retry", retryable=True, pauseReconnect=False)
    return details


def node_request_view(req: PairRequest) -> dict[str, Any]:
    """A node's pairing request as ``node.pair.list`` and ``node.pair.requested`` show it."""
    out: dict[str, Any] = {
        "requestId": req.request_id,
        "nodeId": req.device_id,
        "clientId": req.client_id,
        "clientMode": req.client_mode,
        "caps": list(req.caps),
        "commands": list(req.commands),
        "permissions": dict(req.permissions),
        "remoteIp": req.remote_ip,
        "silent": False,
        "ts": req.ts,
    }
    for key, value in (
        ("displayName", req.display_name),
        ("platform", req.platform),
        ("version", req.version),
        ("deviceFamily", req.device_family),
    ):
        if value:
            out[key] = value
    return out


def device_view(d: DeviceRecord) -> dict[str, Any]:
    """A paired device as listed to operators; never the token or its hash."""
    out: dict[str, Any] = {
        "deviceId": d.device_id,
        "publicKey": d.public_key,
        "role": d.role,
        "roles": [d.role],
        "scopes": list(d.scopes),
        "createdAtMs": d.created_ms,
        "lastSeenAtMs": d.last_seen_ms,
        "tokens": []
        if d.token_hash is None
        else [{"role": d.role, "scopes": list(d.scopes), "createdAtMs": d.token_issued_ms or d.created_ms}],
    }
    for key, value in (("displayName", d.display_name), ("platform", d.platform), ("clientId", d.client_id)):
        if value:
            out[key] = value
    return out


def _covers(granted: Iterable[str], wanted: Iterable[str]) -> bool:
    return expand_scopes(list(wanted)) <= expand_scopes(list(granted))


def _first_missing(held: frozenset[str], wanted: Iterable[str]) -> str | None:
    """The first scope asked for (then implied by what is asked for) that ``held`` lacks."""
    asked = sorted(set(wanted))
    have = expand_scopes(held)
    for scope in [*asked, *sorted(expand_scopes(asked) - set(asked))]:
        if scope not in have:
            return scope
    return None


class PairingService:
    """Pending pairing requests, paired devices and their tokens."""

    def __init__(
        self,
        store: Store,
        *,
        require_pairing: bool = False,
        max_pending: int = 256,
        pending_ttl_ms: int = 10 * 60_000,
        cache_size: int = 4096,
    ) -> None:
        self.store = store
        self.require_pairing = require_pairing
        self.max_pending = max_pending
        self.pending_ttl_ms = pending_ttl_ms
        self.cache_size = cache_size
        self.pending: dict[str, PairRequest] = {}
        self._devices: dict[str, DeviceRecord] = {}
        self._dirty: dict[str, DeviceRecord] = {}
        self._batch: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._publish: Publish = lambda *a, **k: None
        self._connections: Callable[[], Iterable[Connection]] = lambda: ()
        self.cluster: Cluster = LocalCluster()

    def join(self, cluster: Cluster) -> None:
        """Share the device cache with the other gateway processes (see the module doc)."""
        self.cluster = cluster
        cluster.on_invalidate("device", self._forget_devices)
        cluster.on_invalidate("device-close", self._close_remote)

    def _forget_devices(self, ids: str) -> None:
        for device_id in ids.split(","):
            if device_id not in self._dirty:
                self._devices.pop(device_id, None)

    def _close_remote(self, device_id: str) -> None:
        self._forget_devices(device_id)
        self.close_device(device_id, "device token revoked")

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        """Broadcast a pairing event (operators holding ``operator.pairing`` receive it)."""
        self._publish(event, payload)

    def bind(self, publish: Publish, connections: Callable[[], Iterable[Connection]]) -> None:
        """Late wiring: the node's broadcast and its live connections."""
        self._publish = publish
        self._connections = connections

    # -- device records: read-through cache, group-committed writes -------------
    async def _get(self, device_id: str) -> DeviceRecord | None:
        record = self._devices.pop(device_id, None)
        if record is None:
            record = await self.store.get_device(device_id)
            if record is None:
                return None
            record = self._devices.pop(device_id, record)  # a concurrent miss may have won
        self._devices[device_id] = record  # most recently used last
        self._trim()
        return record

    def _trim(self) -> None:
        """Evict the least recently used records; a change not yet committed stays."""
        excess = len(self._devices) - self.cache_size
        if excess > 0:
            clean = (d for d in self._devices if d not in self._dirty)
            for device_id in list(itertools.islice(clean, excess)):
                del self._devices[device_id]

    async def _save(self, record: DeviceRecord) -> None:
        """Make ``record`` current at once and return when it is committed (with its batch)."""
        self._devices.pop(record.device_id, None)
        self._devices[record.device_id] = record
        self._dirty[record.device_id] = record
        self._trim()
        batch = self._batch
        if batch is None:
            batch = self._batch = asyncio.get_running_loop().create_future()
            batch.add_done_callback(_retrieve)
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_batches())
        await asyncio.shield(batch)

    async def _write_batches(self) -> None:
        while self._dirty:
            await asyncio.sleep(0)  # let the connects of this loop iteration join the batch
            records, self._dirty = list(self._dirty.values()), {}
            batch, self._batch = self._batch, None
            assert batch is not None
            try:
                await self.store.put_devices(records)
                # Other processes drop their copies before any caller here is answered.
                await self.cluster.invalidate("device", ",".join(r.device_id for r in records))
            except Exception as exc:
                for r in records:  # the store is the truth again: reload on next use
                    if self._devices.get(r.device_id) is r and r.device_id not in self._dirty:
                        del self._devices[r.device_id]
                batch.set_exception(exc)
            else:
                batch.set_result(None)

    async def flush(self) -> None:
        """Wait for device writes in flight (before a listing, and at shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    # -- connect -----------------------------------------------------------------
    async def verify_token(self, device_id: str | None, role: str, token: str | None) -> bool:
        """True when ``token`` is the current device token of this paired device and role."""
        if not token or device_id is None:
            return False
        record = await self._get(device_id)
        return (
            record is not None
            and record.status == "paired"
            and record.role == role
            and secret_matches(token, record.token_hash)
        )

    async def admit(
        self,
        accepted: Accepted,
        requested: list[str],
        remote_ip: str,
        now_ms: int,
        *,
        via_device_token: bool,
        proxied: bool = False,
    ) -> str | None:
        """Admit a device connect; returns a new device token to hand out, or None.

        ``proxied`` connects came through a trusted proxy: their peer address is the
        proxy's, so they never count as loopback.

        Raises:
            HandshakeError: NOT_PAIRED with the pairing request id.
        """
        assert accepted.device_id is not None and accepted.device_public_key is not None
        params = accepted.params
        record = await self._get(accepted.device_id)
        if record is not None and record.status == "paired":
            if record.role != params.role:
                self._refuse(accepted, requested, remote_ip, now_ms, "role-upgrade")
            if not _covers(record.scopes, requested):
                self._refuse(accepted, requested, remote_ip, now_ms, "scope-upgrade")
            record.last_seen_ms = now_ms
            token = None if via_device_token else self._mint(record, now_ms)
            await self._save(record)
            return token
        if self.require_pairing or proxied or not is_loopback_ip(remote_ip):
            self._refuse(accepted, requested, remote_ip, now_ms, "not-paired")
        client = params.client
        record = DeviceRecord(
            device_id=accepted.device_id,
            public_key=accepted.device_public_key,
            role=params.role,
            scopes=list(requested),
            display_name=client.displayName,
            platform=client.platform,
            client_id=client.id,
            created_ms=now_ms,
            last_seen_ms=now_ms,
        )
        token = self._mint(record, now_ms)
        await self._save(record)
        return token

    @staticmethod
    def _mint(record: DeviceRecord, now_ms: int) -> str:
        token = secrets.token_urlsafe(32)
        record.token_hash = hash_secret(token)
        record.token_issued_ms = now_ms
        return token

    def _refuse(self, accepted: Accepted, requested: list[str], remote_ip: str, now_ms: int, reason: str) -> None:
        req = self._request(accepted, requested, remote_ip, now_ms, reason)
        raise HandshakeError(
            ErrorCode.NOT_PAIRED,
            "pairing required",
            details=pairing_required_details(req, accepted.params.role),
            request_id=accepted.request_id,
            close_code=CloseCode.POLICY_VIOLATION,
        )

    def _request(
        self, accepted: Accepted, requested: list[str], remote_ip: str, now_ms: int, reason: str
    ) -> PairRequest:
        self._expire(now_ms)
        params = accepted.params
        device_id = accepted.device_id or ""
        for req in self.pending.values():
            if req.device_id == device_id and req.role == params.role and req.scopes == list(requested):
                req.ts = now_ms
                req.remote_ip = remote_ip
                return req
        while len(self.pending) >= self.max_pending:
            self.pending.pop(next(iter(self.pending)))
        client = params.client
        req = PairRequest(
            request_id=secrets.token_hex(12),
            device_id=device_id,
            public_key=accepted.device_public_key or "",
            role=params.role,
            scopes=list(requested),
            display_name=client.displayName,
            platform=client.platform,
            device_family=client.deviceFamily,
            client_id=client.id,
            client_mode=client.mode,
            remote_ip=remote_ip,
            ts=now_ms,
            reason=reason,
            version=client.version,
            caps=list(params.caps),
            commands=list(params.commands or ()),
            permissions=dict(params.permissions or {}),
        )
        self.pending[req.request_id] = req
        log.info("pairing requested device=%s role=%s reason=%s ip=%s", device_id[:12], req.role, reason, remote_ip)
        self._publish("device.pair.requested", req.view())
        if req.role == "node":
            self._publish("node.pair.requested", node_request_view(req))
        return req

    def _expire(self, now_ms: int) -> None:
        for rid in [rid for rid, r in self.pending.items() if now_ms - r.ts > self.pending_ttl_ms]:
            del self.pending[rid]

    # -- operator actions --------------------------------------------------------
    async def list(self, now_ms: int) -> dict[str, Any]:
        self._expire(now_ms)
        await self.flush()
        devices = [d for d in await self.store.list_devices() if d.status == "paired"]
        return {"pending": [r.view() for r in self.pending.values()], "paired": [device_view(d) for d in devices]}

    async def approve(self, request_id: str, approver_scopes: frozenset[str], now_ms: int) -> dict[str, Any]:
        req = self.pending.get(request_id)
        if req is None:
            raise not_found("unknown pairing request", "PAIRING_REQUEST_NOT_FOUND", requestId=request_id)
        missing = _first_missing(approver_scopes, req.scopes)
        if missing is not None:
            raise RpcError(
                ErrorCode.FORBIDDEN,
                f"cannot grant a scope you do not hold: {missing}",
                details={"missingScope": missing},
            )
        del self.pending[request_id]
        record = await self._get(req.device_id)
        if record is None:
            record = DeviceRecord(
                device_id=req.device_id,
                public_key=req.public_key,
                role=req.role,
                scopes=list(req.scopes),
                display_name=req.display_name,
                platform=req.platform,
                client_id=req.client_id,
                created_ms=now_ms,
                last_seen_ms=now_ms,
            )
        record.status = "paired"
        record.role = req.role
        record.scopes = list(req.scopes)
        record.token_hash = None  # the device gets a token on its next connect
        record.token_issued_ms = None
        await self._save(record)
        self._resolved(req, "approved", now_ms)
        return {"requestId": request_id, "device": device_view(record)}

    async def reject(self, request_id: str, now_ms: int) -> dict[str, Any]:
        req = self.pending.pop(request_id, None)
        if req is None:
            raise not_found("unknown pairing request", "PAIRING_REQUEST_NOT_FOUND", requestId=request_id)
        self._resolved(req, "rejected", now_ms)
        return {"requestId": request_id, "deviceId": req.device_id}

    def _resolved(self, req: PairRequest, decision: str, now_ms: int) -> None:
        log.info("pairing %s device=%s", decision, req.device_id[:12])
        self._publish(
            "device.pair.resolved",
            {"requestId": req.request_id, "deviceId": req.device_id, "decision": decision, "ts": now_ms},
        )

    async def _paired(self, device_id: str) -> DeviceRecord:
        record = await self._get(device_id.lower())
        if record is None or record.status != "paired":
            raise not_found("unknown device", "DEVICE_NOT_FOUND", deviceId=device_id)
        return record

    async def rename(self, device_id: str, label: str) -> dict[str, Any]:
        """Set the name operators see for a paired device (``openclaw devices rename``)."""
        record = await self._paired(device_id)
        record.display_name = label
        await self._save(record)
        log.info("device renamed device=%s", record.device_id[:12])
        return {"deviceId": record.device_id, "label": label}

    async def remove(self, device_id: str, now_ms: int) -> dict[str, Any]:
        record = await self._paired(device_id)
        record.status = "removed"
        record.token_hash = None
        record.token_issued_ms = None
        await self._save(record)
        closed = self.close_device(record.device_id, "device removed")
        await self.cluster.invalidate("device-close", record.device_id)
        return {"deviceId": record.device_id, "removedAtMs": now_ms, "closed": closed}

    async def rotate(self, p: DeviceTokenRotateParams, caller_scopes: frozenset[str], now_ms: int) -> dict[str, Any]:
        record = await self._paired(p.deviceId)
        if record.role != p.role:
            raise not_found(f"device has no {p.role} role", "DEVICE_ROLE_NOT_FOUND", deviceId=p.deviceId)
        if p.scopes is not None:
            unknown = [s for s in p.scopes if not is_operator_scope(s)]
            if unknown:
                raise RpcError(ErrorCode.INVALID_REQUEST, f"unknown scope: {unknown[0]}")
            missing = _first_missing(caller_scopes, p.scopes)
            if missing is not None:
                raise RpcError(
                    ErrorCode.FORBIDDEN,
                    f"cannot grant a scope you do not hold: {missing}",
                    details={"missingScope": missing},
                )
            record.scopes = list(p.scopes)
        token = self._mint(record, now_ms)
        await self._save(record)
        log.info("device token rotated device=%s", record.device_id[:12])
        return {
            "deviceId": record.device_id,
            "role": record.role,
            "token": token,
            "scopes": list(record.scopes),
            "rotatedAtMs": now_ms,
        }

    async def revoke(self, p: DeviceTokenRevokeParams, now_ms: int) -> dict[str, Any]:
        record = await self._paired(p.deviceId)
        if record.role != p.role:
            raise not_found(f"device has no {p.role} role", "DEVICE_ROLE_NOT_FOUND", deviceId=p.deviceId)
        record.token_hash = None
        record.token_issued_ms = None
        await self._save(record)
        closed = self.close_device(record.device_id, "device token revoked")
        await self.cluster.invalidate("device-close", record.device_id)
        log.info("device token revoked device=%s closed=%d", record.device_id[:12], closed)
        return {"deviceId": record.device_id, "role": record.role, "revokedAtMs": now_ms, "closed": closed}

    def close_device(self, device_id: str, reason: str) -> int:
        """Close every open socket of this device (1008); returns how many."""
        n = 0
        for conn in list(self._connections()):
            if conn.principal is not None and conn.principal.device_id == device_id:
                conn.close(CloseCode.POLICY_VIOLATION, reason)
                n += 1
        return n


def _retrieve(fut: asyncio.Future[None]) -> None:
    """Mark a failed batch's exception as seen: its waiters may all have been cancelled."""
    if not fut.cancelled():
        fut.exception()


def register_pairing_handlers(dispatcher: Any, pairing: PairingService, clock: Callable[[], int]) -> None:
    """Register the ``device.pair.*`` and ``device.token.*`` methods on a ``core.rpc.Dispatcher``."""

    def scopes_of(call: Any) -> frozenset[str]:
        principal = call.conn.principal
        return principal.scopes if principal is not None else frozenset()

    async def pair_list(call: Any, p: EmptyParams) -> Any:
        return await pairing.list(clock())

    async def pair_approve(call: Any, p: PairRequestParams) -> Any:
        return await pairing.approve(p.requestId, scopes_of(call), clock())

    async def pair_reject(call: Any, p: PairRequestParams) -> Any:
        return await pairing.reject(p.requestId, clock())

    async def pair_remove(call: Any, p: DeviceIdParams) -> Any:
        return await pairing.remove(p.deviceId, clock())

    async def token_rotate(call: Any, p: DeviceTokenRotateParams) -> Any:
        return await pairing.rotate(p, scopes_of(call), clock())

    async def token_revoke(call: Any, p: DeviceTokenRevokeParams) -> Any:
        return await pairing.revoke(p, clock())

    async def pair_rename(call: Any, p: DeviceRenameParams) -> Any:
        label = p.label.strip()
        if not label:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: label: must not be blank")
        return await pairing.rename(p.deviceId, label)

    for name, handler in (
        ("device.pair.list", pair_list),
        ("device.pair.approve", pair_approve),
        ("device.pair.reject", pair_reject),
        ("device.pair.remove", pair_remove),
        ("device.token.rotate", token_rotate),
        ("device.token.revoke", token_revoke),
        ("device.pair.rename", pair_rename),
    ):
        dispatcher.register(name, handler)
