"""Channel DM pairing (``channels.pairing.PairingStore``) in the gateway's SQL database.

The tables are created by migration ``m0005_channels``; this module only
queries them, in portable SQLAlchemy Core, on the engine of an open store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..core.dm_access import PairingRequest, PairingStore
from ..protocol import _json

__all__ = ["SqlChannelStore"]

_metadata = MetaData()

_requests = Table(
    "channel_pairing_requests",
    _metadata,
    Column("request_id", String, primary_key=True),
    Column("channel", String, nullable=False),
    Column("account_id", String, nullable=False),
    Column("sender_id", String, nullable=False),
    Column("code_hash", String, nullable=False),
    Column("meta", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
)

_allowed = Table(
    "channel_allow_entries",
    _metadata,
    Column("channel", String, primary_key=True),
    Column("account_id", String, primary_key=True),
    Column("sender_id", String, primary_key=True),
    Column("approved_ms", BigInteger, nullable=False),
)


def _request(row: Any) -> PairingRequest:
    meta = _json.loads(row.meta) if row.meta else {}
    return PairingRequest(
        request_id=row.request_id,
        channel=row.channel,
        account_id=row.account_id,
        sender_id=row.sender_id,
        code_hash=row.code_hash,
        created_ms=row.created_ms,
        last_seen_ms=row.last_seen_ms,
        meta={str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {},
    )


class SqlChannelStore:
    """Pending pairing requests and approved senders, per channel account."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def allowed_senders(self, channel: str, account_id: str) -> set[str]:
        query = select(_allowed.c.sender_id).where(_allowed.c.channel == channel, _allowed.c.account_id == account_id)
        async with self.engine.connect() as conn:
            return set((await conn.scalars(query)).all())

    async def add_allowed(self, channel: str, account_id: str, sender_id: str, now_ms: int) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(_allowed).values(
                        channel=channel, account_id=account_id, sender_id=sender_id, approved_ms=now_ms
                    )
                )
        except IntegrityError:  # approved before: nothing to add
            pass

    async def pending(self, channel: str | None, account_id: str | None) -> list[PairingRequest]:
        query = select(_requests).order_by(_requests.c.created_ms)
        if channel is not None:
            query = query.where(_requests.c.channel == channel)
        if account_id is not None:
            query = query.where(_requests.c.account_id == account_id)
        async with self.engine.connect() as conn:
            return [_request(row) for row in (await conn.execute(query)).all()]

    async def put_pending(self, request: PairingRequest) -> None:
        c = _requests.c
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(_requests).where(
                    c.channel == request.channel, c.account_id == request.account_id, c.sender_id == request.sender_id
                )
            )
            await conn.execute(
                insert(_requests).values(
                    request_id=request.request_id,
                    channel=request.channel,
                    account_id=request.account_id,
                    sender_id=request.sender_id,
                    code_hash=request.code_hash,
                    meta=_json.dumps_str(request.meta),
                    created_ms=request.created_ms,
                    last_seen_ms=request.last_seen_ms,
                )
            )

    async def touch_pending(self, request_id: str, now_ms: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(_requests).where(_requests.c.request_id == request_id).values(last_seen_ms=now_ms)
            )

    async def take_pending(self, request_id: str) -> PairingRequest | None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(_requests).where(_requests.c.request_id == request_id))).first()
            if row is None:
                return None
            result = await conn.execute(delete(_requests).where(_requests.c.request_id == request_id))
        # Two approvals racing: only the one whose delete removed the row took the request.
        return _request(row) if result.rowcount else None

    async def purge_pending(self, before_ms: int) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(_requests).where(_requests.c.created_ms < before_ms))
        return int(result.rowcount or 0)


if TYPE_CHECKING:

    def _conforms(engine: AsyncEngine) -> PairingStore:
        return SqlChannelStore(engine)
