"""The inbox aggregate: raw Telegram updates (`InboxUpdate`) stored once per update_id,
owned and leased by the instance handling them, and reclaimed by the recovery sweep when
that instance died before marking them processed.

Who may claim a row (`claim_stale`): on PostgreSQL a row whose owner no longer holds its
instance lock (`storage.locks.InstanceLock`) at once, a row without an owner (never
owned, or postponed for a retry) once its lease ran out, and the claimer's own row once
its lease ran out. A live owner's row is never taken by another instance, however long
its lease is overdue. SQLite has one instance: leases alone decide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.locks import OWNER_NAMESPACE
from storage.models import InboxUpdate
from storage.repositories._sql import _insert, _is_postgresql

#: The row's owner no longer holds its instance lock in this database (see storage.locks).
_OWNER_GONE = text(
    "NOT EXISTS (SELECT 1 FROM pg_locks AS held WHERE held.locktype = 'advisory'"
    " AND held.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    f" AND held.classid = {OWNER_NAMESPACE} AND held.objid = inbox.owner"
    " AND held.objsubid = 2 AND held.granted)"
)


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_new(
        self,
        update_id: int,
        user_id: int | None,
        payload: dict[str, Any],
        claimed_until: datetime,
        owner: int | None = None,
    ) -> bool:
        """Store a raw update; False when this update_id was stored before (a redelivery)."""
        stmt = (
            _insert(self.session, InboxUpdate)
            .values(
                update_id=update_id,
                user_id=user_id,
                payload=payload,
                claimed_until=claimed_until,
                owner=owner,
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

    async def get(self, update_id: int) -> InboxUpdate | None:
        return await self.session.get(InboxUpdate, update_id)

    async def postpone(self, update_id: int, until: datetime, error: str) -> None:
        """Leave the update unprocessed and unowned: any instance's recovery sweep claims it
        once `until` passes."""
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(claimed_until=until, error=error, owner=None)
        )

    async def give_up(self, update_id: int, at: datetime, error: str) -> None:
        """Processed with an error, payload kept for a person to look at."""
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(processed_at=at, error=error, claimed_until=None)
        )

    async def claim_stale(
        self, now: datetime, lease_until: datetime, limit: int, owner: int | None = None
    ) -> list[InboxUpdate]:
        """Claim for `owner` the unprocessed updates whose worker died (see the module
        docstring for who may take which row), oldest first."""
        lease_over = or_(InboxUpdate.claimed_until.is_(None), InboxUpdate.claimed_until < now)
        ids = (
            select(InboxUpdate.update_id)
            .where(InboxUpdate.processed_at.is_(None))
            .order_by(InboxUpdate.update_id)
            .limit(limit)
        )
        if _is_postgresql(self.session):
            mine_or_nobodys = or_(InboxUpdate.owner.is_(None), InboxUpdate.owner == owner)
            ids = ids.where(
                or_(
                    and_(mine_or_nobodys, lease_over),
                    and_(~mine_or_nobodys, _OWNER_GONE),
                )
            ).with_for_update(skip_locked=True)
        else:
            ids = ids.where(lease_over)
        stmt = (
            update(InboxUpdate)
            .where(InboxUpdate.update_id.in_(ids.scalar_subquery()))
            .values(claimed_until=lease_until, attempts=InboxUpdate.attempts + 1, owner=owner)
            .returning(InboxUpdate)
        )
        rows = list((await self.session.scalars(stmt)).all())
        return sorted(rows, key=lambda row: row.update_id)

    async def count_pending(self) -> int:
        stmt = (
            select(func.count()).select_from(InboxUpdate).where(InboxUpdate.processed_at.is_(None))
        )
        return int(await self.session.scalar(stmt) or 0)
