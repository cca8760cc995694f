"""The inbox aggregate: raw Telegram updates (`InboxUpdate`) stored once per update_id,
leased to the worker handling them, and reclaimed by the recovery sweep when a worker
died before marking them processed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxUpdate
from storage.repositories._sql import _insert


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_new(
        self, update_id: int, user_id: int | None, payload: dict[str, Any], claimed_until: datetime
    ) -> bool:
        """Store a raw update; False when this update_id was stored before (a redelivery)."""
        stmt = (
            _insert(self.session, InboxUpdate)
            .values(
                update_id=update_id, user_id=user_id, payload=payload, claimed_until=claimed_until
            )
            .on_conflict_do_nothing(index_elements=["update_id"])
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)

    async def mark_processed(
        self, update_id: int, at: datetime, error: str | None, payload: dict[str, Any]
    ) -> None:
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(processed_at=at, error=error, claimed_until=None, payload=payload)
        )

    async def renew_lease(self, update_id: int, until: datetime) -> bool:
        result = await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id, InboxUpdate.processed_at.is_(None))
            .values(claimed_until=until)
        )
        return bool(result.rowcount)

    async def get_attempts(self, update_id: int) -> int:
        return int(
            await self.session.scalar(
                select(InboxUpdate.attempts).where(InboxUpdate.update_id == update_id)
            )
            or 0
        )

    async def postpone(self, update_id: int, until: datetime, error: str) -> None:
        """Leave the update unprocessed; the recovery sweep claims it once `until` passes."""
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(claimed_until=until, error=error)
        )

    async def give_up(self, update_id: int, at: datetime, error: str) -> None:
        """Processed with an error, payload kept for a person to look at."""
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(processed_at=at, error=error, claimed_until=None)
        )

    async def claim_stale(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[InboxUpdate]:
        """Claim unprocessed updates whose lease ran out (their worker died), oldest first."""
        ids = (
            select(InboxUpdate.update_id)
            .where(InboxUpdate.processed_at.is_(None))
            .where(or_(InboxUpdate.claimed_until.is_(None), InboxUpdate.claimed_until < now))
            .order_by(InboxUpdate.update_id)
            .limit(limit)
        )
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        stmt = (
            update(InboxUpdate)
            .where(InboxUpdate.update_id.in_(ids.scalar_subquery()))
            .values(claimed_until=lease_until, attempts=InboxUpdate.attempts + 1)
            .returning(InboxUpdate)
        )
        rows = list((await self.session.scalars(stmt)).all())
        return sorted(rows, key=lambda row: row.update_id)

    async def count_pending(self) -> int:
        stmt = (
            select(func.count()).select_from(InboxUpdate).where(InboxUpdate.processed_at.is_(None))
        )
        return int(await self.session.scalar(stmt) or 0)
