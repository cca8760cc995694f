"""Repositories: get, list and add rows for the services. They never commit.

The unit of work (`storage.uow`) owns the transaction; a repository only shapes queries.
Statements that must be atomic across instances (insert-or-ignore, conditional updates,
claims) are written here once, for both SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
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

    async def get_by_id_hash(self, id_number_hash: str) -> Candidate | None:
        return await self.session.scalar(select(Candidate).where(Candidate.id_number_hash == id_number_hash))

    async def add_if_missing(self, telegram_id: int, **values: Any) -> None:
        """Create the candidate row unless it exists; safe when two updates race."""
        stmt = _insert(self.session, Candidate).values(telegram_id=telegram_id, **values)
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["telegram_id"]))

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Candidate)) or 0)

    async def mark_unreachable(self, candidate_id: int, at: datetime) -> bool:
        """Note that messages no longer reach the candidate (blocked bot, deleted account)."""
        stmt = (
            update(Candidate)
            .where(Candidate.id == candidate_id, Candidate.unreachable_at.is_(None))
            .values(unreachable_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)


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

    async def mark_processed(self, update_id: int, at: datetime, error: str | None, payload: dict[str, Any]) -> None:
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(processed_at=at, error=error, claimed_until=None, payload=payload)
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


#: Take back the attempt a claim counted (the row was never handed to Telegram).
_UNCOUNT_ATTEMPT = case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0)


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

    async def get_by_key(self, idempotency_key: str) -> OutboxMessage | None:
        stmt = select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
        return await self.session.scalar(stmt)

    def _due(self, now: datetime) -> Any:
        """Pending, due (`not_before` passed) and not leased by a live worker."""
        return (
            (OutboxMessage.status == OutboxStatus.PENDING)
            & (OutboxMessage.not_before <= now)
            & or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now)
        )

    async def cancel_expired(self, now: datetime) -> int:
        """Cancel due rows whose `expires_at` has passed (reason "expired"); never a leased row."""
        stmt = (
            update(OutboxMessage)
            .where(self._due(now), OutboxMessage.expires_at.is_not(None), OutboxMessage.expires_at <= now)
            .values(status=OutboxStatus.CANCELLED, last_error="expired", lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[OutboxMessage]:
        """Lease up to `limit` due rows, by (`not_before`, id); each claim counts one attempt.

        PostgreSQL: the ids are locked with FOR UPDATE SKIP LOCKED first, so concurrent
        workers pass over each other's rows instead of waiting or taking them twice.
        SQLite: one UPDATE … RETURNING inside BEGIN IMMEDIATE, which serialises writers.
        """
        ids = (
            select(OutboxMessage.id)
            .where(self._due(now))
            .where(or_(OutboxMessage.expires_at.is_(None), OutboxMessage.expires_at > now))
            .order_by(OutboxMessage.not_before, OutboxMessage.id)
            .limit(limit)
        )
        if _is_postgresql(self.session):
            picked = list((await self.session.scalars(ids.with_for_update(skip_locked=True))).all())
            if not picked:
                return []
            where = OutboxMessage.id.in_(picked)
        else:
            where = OutboxMessage.id.in_(ids.scalar_subquery())
        stmt = (
            update(OutboxMessage)
            .where(where)
            .values(lease_until=lease_until, attempts=OutboxMessage.attempts + 1)
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        rows = list((await self.session.scalars(stmt)).all())
        return sorted(rows, key=lambda row: (row.not_before, row.id))

    async def next_due_at(self) -> datetime | None:
        """When the next pending row becomes claimable: its `not_before`, or its lease's end."""
        stmt = select(
            func.min(OutboxMessage.not_before).filter(OutboxMessage.lease_until.is_(None)),
            func.min(OutboxMessage.lease_until),
        ).where(OutboxMessage.status == OutboxStatus.PENDING)
        free, leased = (await self.session.execute(stmt)).one()
        times = [t for t in (free, leased) if t is not None]
        return min(times) if times else None

    async def mark_sent(self, ids: Sequence[int], at: datetime) -> int:
        return await self._finish(ids, status=OutboxStatus.SENT, sent_at=at, last_error=None)

    async def mark_failed(self, ids: Sequence[int], error: str) -> int:
        return await self._finish(ids, status=OutboxStatus.FAILED, last_error=error)

    async def mark_unreachable(self, ids: Sequence[int], error: str) -> int:
        return await self._finish(ids, status=OutboxStatus.UNREACHABLE, last_error=error)

    async def mark_cancelled(self, ids: Sequence[int], reason: str) -> int:
        return await self._finish(ids, status=OutboxStatus.CANCELLED, last_error=reason)

    async def _finish(self, ids: Sequence[int], **values: Any) -> int:
        """Settle pending rows for good; a row already settled is left as it was."""
        if not ids:
            return 0
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == OutboxStatus.PENDING)
            .values(lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def retry_later(
        self, row_id: int, not_before: datetime, error: str | None, *, count_attempt: bool,
        chat_id: int | None = None,
    ) -> int:
        """Give a claimed row back, due again at `not_before`.

        `count_attempt=False` (a 429, a row never handed to Telegram) takes back the
        attempt its claim counted.
        """
        values: dict[str, Any] = {"lease_until": None, "not_before": not_before, "last_error": error}
        if not count_attempt:
            values["attempts"] = _UNCOUNT_ATTEMPT
        if chat_id is not None:
            values["chat_id"] = chat_id
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def release(self, ids: Sequence[int]) -> int:
        """Drop the lease of claimed rows that were never sent (a clean stop); uncount the claim."""
        if not ids:
            return 0
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == OutboxStatus.PENDING)
            .values(lease_until=None, attempts=_UNCOUNT_ATTEMPT)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def extend_leases(self, ids: Sequence[int], lease_until: datetime) -> int:
        """Renew the lease of rows a live worker still holds (waiting for their turn)."""
        if not ids:
            return 0
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == OutboxStatus.PENDING)
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def release_all_leases(self) -> int:
        """Drop every lease (a single instance starting up: the leases were its own)."""
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.lease_until.is_not(None))
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def list_recipients(
        self, candidate_ids: Sequence[int], private_chat_ids: Sequence[int]
    ) -> list[tuple[int, int, str | None, str | None]]:
        """(candidate id, telegram id, chosen language, Telegram language) for message recipients.

        Rows without a candidate id are matched by their private chat id (= the user id).
        """
        if not candidate_ids and not private_chat_ids:
            return []
        stmt = select(
            Candidate.id, Candidate.telegram_id, Candidate.language, Candidate.telegram_language
        ).where(or_(Candidate.id.in_(list(set(candidate_ids))), Candidate.telegram_id.in_(list(set(private_chat_ids)))))
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]  # type: ignore[misc]

    async def count_by_status(self, broadcast_id: int | None = None) -> dict[str, int]:
        stmt = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        if broadcast_id is not None:
            stmt = stmt.where(OutboxMessage.broadcast_id == broadcast_id)
        return {status: int(n) for status, n in (await self.session.execute(stmt)).all()}

    async def count_by_broadcast(self) -> dict[int, dict[str, int]]:
        """{broadcast_id: {status: count}} over rows that belong to a broadcast."""
        stmt = (
            select(OutboxMessage.broadcast_id, OutboxMessage.status, func.count())
            .where(OutboxMessage.broadcast_id.is_not(None))
            .group_by(OutboxMessage.broadcast_id, OutboxMessage.status)
        )
        out: dict[int, dict[str, int]] = {}
        for broadcast_id, status, n in (await self.session.execute(stmt)).all():
            out.setdefault(int(broadcast_id), {})[status] = int(n)
        return out


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
