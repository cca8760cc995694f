"""Repositories: get, list and add rows for the services. They never commit.

The unit of work (`storage.uow`) owns the transaction; a repository only shapes queries.
Statements that must be atomic across instances (insert-or-ignore, conditional updates,
claims) are written here once, for both SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import (
    AuditEntry,
    Candidate,
    CatalogVersion,
    Direction,
    ExamSession,
    FlowState,
    InboxUpdate,
    Level,
    OutboxMessage,
    OutboxStatus,
)


def _insert(session: AsyncSession, model: type) -> Any:
    """A dialect-specific INSERT that supports ON CONFLICT."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


class CandidateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_telegram_id(self, telegram_id: int) -> Candidate | None:
        return await self.session.scalar(select(Candidate).where(Candidate.telegram_id == telegram_id))

    async def get(self, candidate_id: int) -> Candidate | None:
        return await self.session.get(Candidate, candidate_id)

    async def add_if_missing(self, telegram_id: int, **values: Any) -> None:
        """Create the candidate row unless it exists; safe when two updates race."""
        stmt = _insert(self.session, Candidate).values(telegram_id=telegram_id, **values)
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["telegram_id"]))

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Candidate)) or 0)


class FlowStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, candidate_id: int) -> FlowState | None:
        return await self.session.get(FlowState, candidate_id)

    async def get_or_add(self, candidate_id: int) -> FlowState:
        state = await self.get(candidate_id)
        if state is None:
            state = FlowState(candidate_id=candidate_id, answers={})
            self.session.add(state)
            await self.session.flush()
        return state


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_new(
        self, update_id: int, user_id: int | None, payload: dict[str, Any], claimed_until: datetime
    ) -> bool:
        """Store a raw update; False when this update_id was stored before (a redelivery)."""
        stmt = (
            _insert(self.session, InboxUpdate)
            .values(update_id=update_id, user_id=user_id, payload=payload, claimed_until=claimed_until)
            .on_conflict_do_nothing(index_elements=["update_id"])
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)

    async def mark_processed(self, update_id: int, at: datetime, error: str | None) -> None:
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(processed_at=at, error=error, claimed_until=None)
        )

    async def claim_stale(self, now: datetime, lease_until: datetime, limit: int) -> list[InboxUpdate]:
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
        stmt = select(func.count()).select_from(InboxUpdate).where(InboxUpdate.processed_at.is_(None))
        return int(await self.session.scalar(stmt) or 0)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_new(self, **values: Any) -> bool:
        """Queue a message; False when its idempotency key was queued before."""
        stmt = _insert(self.session, OutboxMessage).values(**values)
        result = await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["idempotency_key"]))
        return bool(result.rowcount)

    async def count_pending(self) -> int:
        stmt = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        return int(await self.session.scalar(stmt) or 0)


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_current(self) -> CatalogVersion | None:
        stmt = select(CatalogVersion).order_by(CatalogVersion.id.desc()).limit(1)
        return await self.session.scalar(stmt)

    async def get_version_by_hash(self, content_hash: str) -> CatalogVersion | None:
        return await self.session.scalar(
            select(CatalogVersion).where(CatalogVersion.content_hash == content_hash)
        )

    async def list_levels(self) -> Sequence[Level]:
        return (await self.session.scalars(select(Level).order_by(Level.rank))).all()

    async def list_directions(self) -> Sequence[Direction]:
        return (await self.session.scalars(select(Direction).order_by(Direction.code))).all()

    async def list_sessions(self) -> Sequence[ExamSession]:
        stmt = select(ExamSession).options(selectinload(ExamSession.components)).order_by(ExamSession.exam_date)
        return (await self.session.scalars(stmt)).all()

    async def get_session_by_code(self, code: str) -> ExamSession | None:
        return await self.session.scalar(select(ExamSession).where(ExamSession.code == code))

    def add(self, row: object) -> None:
        self.session.add(row)


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, entry: AuditEntry) -> None:
        self.session.add(entry)

    async def list_for(self, entity: str, entity_id: str) -> Sequence[AuditEntry]:
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        return (await self.session.scalars(stmt)).all()
