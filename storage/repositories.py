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
    ACTIVE_STATES,
    AuditEntry,
    Candidate,
    EligibilityReview,
    CatalogVersion,
    Direction,
    ExamSession,
    FlowState,
    InboxUpdate,
    Level,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationState,
)

_ACTIVE = [state.value for state in ACTIVE_STATES]


def _is_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


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


class SessionRepository:
    """Exam sessions and their seat counter.

    The counter only moves through the conditional UPDATEs below, never read-modify-write.
    Lock order, to keep PostgreSQL free of deadlocks: session rows (by id) before
    registration rows.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, session_id: int) -> ExamSession | None:
        stmt = (
            select(ExamSession)
            .where(ExamSession.id == session_id)
            .options(selectinload(ExamSession.components))
        )
        return await self.session.scalar(stmt)

    async def get_by_code(self, code: str) -> ExamSession | None:
        stmt = select(ExamSession).where(ExamSession.code == code).options(selectinload(ExamSession.components))
        return await self.session.scalar(stmt)

    async def list_by_ids(self, ids: Sequence[int]) -> dict[int, ExamSession]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(ExamSession).where(ExamSession.id.in_(set(ids))))
        return {row.id: row for row in rows}

    async def list_for_level(self, level_code: str) -> list[ExamSession]:
        """Sessions offering a level, by exam date (the JSON list is filtered here: few rows)."""
        stmt = (
            select(ExamSession)
            .order_by(ExamSession.exam_date, ExamSession.code)
            .options(selectinload(ExamSession.components))
        )
        return [row for row in (await self.session.scalars(stmt)).all() if level_code in row.levels]

    async def lock(self, *session_ids: int) -> None:
        """Lock session rows in id order (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises)."""
        if not _is_postgresql(self.session):
            return
        stmt = (
            select(ExamSession.id)
            .where(ExamSession.id.in_(set(session_ids)))
            .order_by(ExamSession.id)
            .with_for_update()
        )
        await self.session.execute(stmt)

    async def take_seat(self, session_id: int) -> bool:
        """Take one seat if one is free; False when the session is full."""
        stmt = (
            update(ExamSession)
            .where(ExamSession.id == session_id, ExamSession.seats_taken < ExamSession.capacity)
            .values(seats_taken=ExamSession.seats_taken + 1)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def release_seat(self, session_id: int) -> bool:
        """Give one seat back; False when none was taken (the counter never goes below 0)."""
        stmt = (
            update(ExamSession)
            .where(ExamSession.id == session_id, ExamSession.seats_taken > 0)
            .values(seats_taken=ExamSession.seats_taken - 1)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def seats_taken(self, session_id: int) -> int:
        stmt = select(ExamSession.seats_taken).where(ExamSession.id == session_id)
        return int(await self.session.scalar(stmt) or 0)


class RegistrationRepository:
    """Registrations; state changes are compare-and-set UPDATEs (`transition`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, registration_id: int) -> Registration | None:
        return await self.session.get(Registration, registration_id, populate_existing=True)

    async def get_for_candidate(self, registration_id: int, candidate_id: int) -> Registration | None:
        """The registration only if it belongs to the candidate (callback ids can be forged)."""
        stmt = (
            select(Registration)
            .where(Registration.id == registration_id, Registration.candidate_id == candidate_id)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def list_for_candidate(self, candidate_id: int) -> Sequence[Registration]:
        stmt = (
            select(Registration)
            .where(Registration.candidate_id == candidate_id)
            .order_by(Registration.created_at.desc(), Registration.id.desc())
        )
        return (await self.session.scalars(stmt)).all()

    async def find_active(
        self, candidate_id: int, *, level_code: str | None = None, session_id: int | None = None
    ) -> Registration | None:
        """An active registration of the candidate for that level or at that session."""
        matches = []
        if level_code is not None:
            matches.append(Registration.level_code == level_code)
        if session_id is not None:
            matches.append(Registration.session_id == session_id)
        stmt = (
            select(Registration)
            .where(Registration.candidate_id == candidate_id, Registration.state.in_(_ACTIVE), or_(*matches))
            .order_by(Registration.id)
            .limit(1)
        )
        return await self.session.scalar(stmt)

    def add(self, registration: Registration) -> None:
        self.session.add(registration)

    async def transition(
        self, registration_id: int, from_states: Sequence[str], **values: Any
    ) -> bool:
        """Compare-and-set: apply `values` only while the row is in one of `from_states`.

        False means someone else changed the registration first; the caller decides.
        """
        stmt = (
            update(Registration)
            .where(Registration.id == registration_id, Registration.state.in_(list(from_states)))
            .values(version=Registration.version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def next_waitlisted(self, session_id: int, *, skip: Sequence[int] = ()) -> Registration | None:
        """The registration first in line for a seat (oldest `waitlisted_at`, then id)."""
        stmt = (
            select(Registration)
            .where(Registration.session_id == session_id, Registration.state == RegistrationState.WAITLISTED)
            .order_by(Registration.waitlisted_at, Registration.id)
            .limit(1)
        )
        if skip:
            stmt = stmt.where(Registration.id.not_in(list(skip)))
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def count_waitlisted(self, session_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(Registration)
            .where(Registration.session_id == session_id, Registration.state == RegistrationState.WAITLISTED)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def waitlist_position(self, registration: Registration) -> int:
        """1-based place in the session's line, by (`waitlisted_at`, id)."""
        ahead = (
            select(func.count())
            .select_from(Registration)
            .where(
                Registration.session_id == registration.session_id,
                Registration.state == RegistrationState.WAITLISTED,
                or_(
                    Registration.waitlisted_at < registration.waitlisted_at,
                    (Registration.waitlisted_at == registration.waitlisted_at)
                    & (Registration.id < registration.id),
                ),
            )
        )
        return int(await self.session.scalar(ahead) or 0) + 1

    async def list_expired_offers(self, now: datetime, limit: int) -> Sequence[Registration]:
        """OFFERED registrations whose offer ran out, by session then id (the lock order)."""
        stmt = (
            select(Registration)
            .where(Registration.state == RegistrationState.OFFERED, Registration.offer_expires_at <= now)
            .order_by(Registration.session_id, Registration.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def count_in_states(self, session_id: int, states: Sequence[str]) -> int:
        stmt = (
            select(func.count())
            .select_from(Registration)
            .where(Registration.session_id == session_id, Registration.state.in_(list(states)))
        )
        return int(await self.session.scalar(stmt) or 0)


class ReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, review: EligibilityReview) -> None:
        self.session.add(review)

    async def get(self, review_id: int) -> EligibilityReview | None:
        return await self.session.get(EligibilityReview, review_id)

    async def get_pending(self, candidate_id: int, level_code: str) -> EligibilityReview | None:
        return await self.session.scalar(
            select(EligibilityReview).where(
                EligibilityReview.candidate_id == candidate_id,
                EligibilityReview.level_code == level_code,
                EligibilityReview.status == "pending",
            )
        )

    async def decide(self, review_id: int, status: str, staff_id: int, at: datetime, reason: str | None) -> bool:
        """Conditional update: True only for the first decision on a pending review."""
        result = await self.session.execute(
            update(EligibilityReview)
            .where(EligibilityReview.id == review_id, EligibilityReview.status == "pending")
            .values(status=status, decided_by=staff_id, decided_at=at, reason=reason)
        )
        return bool(result.rowcount)
