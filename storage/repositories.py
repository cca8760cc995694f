"""Repositories: get, list and add rows for the services. They never commit.

The unit of work (`storage.uow`) owns the transaction; a repository only shapes queries.
Statements that must be atomic across instances (insert-or-ignore, conditional updates,
claims) are written here once, for both SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, exists, false, func, literal, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from storage.models import (
    ACTIVE_STATES,
    AdmissionTicket,
    AuditEntry,
    Broadcast,
    BroadcastStatus,
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
    Payment,
    Registration,
    RegistrationState,
    StatementImport,
    TicketCounter,
    UTCDateTime,
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

    async def get_by_telegram_id(self, telegram_id: int, *, for_update: bool = False) -> Candidate | None:
        """`for_update` locks the row on PostgreSQL (SQLite serialises writers anyway), for
        read-modify-write of the JSON `profile` that two actors may change at once."""
        stmt = select(Candidate).where(Candidate.telegram_id == telegram_id)
        return await self.session.scalar(stmt.with_for_update() if for_update else stmt)

    async def get(self, candidate_id: int, *, for_update: bool = False) -> Candidate | None:
        return await self.session.get(Candidate, candidate_id, with_for_update=for_update)

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

    async def renew_lease(self, update_id: int, until: datetime) -> bool:
        result = await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id, InboxUpdate.processed_at.is_(None))
            .values(claimed_until=until)
        )
        return bool(result.rowcount)

    async def get_attempts(self, update_id: int) -> int:
        return int(await self.session.scalar(select(InboxUpdate.attempts).where(InboxUpdate.update_id == update_id)) or 0)

    async def postpone(self, update_id: int, until: datetime, error: str) -> None:
        """Leave the update unprocessed; the recovery sweep claims it once `until` passes."""
        await self.session.execute(
            update(InboxUpdate).where(InboxUpdate.update_id == update_id).values(claimed_until=until, error=error)
        )

    async def give_up(self, update_id: int, at: datetime, error: str) -> None:
        """Processed with an error, payload kept for a person to look at."""
        await self.session.execute(
            update(InboxUpdate).where(InboxUpdate.update_id == update_id).values(processed_at=at, error=error, claimed_until=None)
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


def _not_held() -> Any:
    """Rows of a paused or cancelled broadcast are not claimed: one broadcast row holds them all."""
    held = select(Broadcast.id).where(Broadcast.status.in_((BroadcastStatus.PAUSED, BroadcastStatus.CANCELLED)))
    return or_(OutboxMessage.broadcast_id.is_(None), OutboxMessage.broadcast_id.not_in(held))


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
        """Pending, due (`not_before` passed), not leased by a live worker, not held."""
        return (
            (OutboxMessage.status == OutboxStatus.PENDING)
            & (OutboxMessage.not_before <= now)
            & or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now)
            & _not_held()
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
        ).where(OutboxMessage.status == OutboxStatus.PENDING, _not_held())
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

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue many messages in one statement (a broadcast); known keys are skipped."""
        if rows:
            stmt = _insert(self.session, OutboxMessage).on_conflict_do_nothing(index_elements=["idempotency_key"])
            await self.session.execute(stmt, list(rows))

    async def cancel_unleased(self, broadcast_id: int, now: datetime, reason: str) -> int:
        """Cancel a broadcast's pending rows that no live worker holds (held rows finish first)."""
        stmt = (
            update(OutboxMessage)
            .where(
                OutboxMessage.broadcast_id == broadcast_id,
                OutboxMessage.status == OutboxStatus.PENDING,
                or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
            )
            .values(status=OutboxStatus.CANCELLED, last_error=reason, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

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

    async def list_open_session_codes(self) -> list[str]:
        """Codes of sessions not cancelled, by exam date."""
        stmt = select(ExamSession.code).where(ExamSession.cancelled.is_(False)).order_by(ExamSession.exam_date)
        return list((await self.session.scalars(stmt)).all())

    async def list_active_level_codes(self) -> list[str]:
        stmt = select(Level.code).where(Level.active.is_(True)).order_by(Level.rank)
        return list((await self.session.scalars(stmt)).all())

    async def get_direction(self, code: str) -> Direction | None:
        return await self.session.get(Direction, code)

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


class PaymentRepository:
    """Payments: idempotent inserts on (method, external_id), first-wins status changes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_new(self, **values: Any) -> int | None:
        """Insert a payment; None when (method, external_id) was recorded before (a replay)."""
        stmt = (
            _insert(self.session, Payment)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["method", "external_id"])
            .returning(Payment.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get(self, payment_id: int) -> Payment | None:
        return await self.session.get(Payment, payment_id, populate_existing=True)

    async def get_by_external_id(self, method: str, external_id: str) -> Payment | None:
        stmt = select(Payment).where(Payment.method == method, Payment.external_id == external_id)
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def list_for_registration(self, registration_id: int) -> Sequence[Payment]:
        stmt = select(Payment).where(Payment.registration_id == registration_id).order_by(Payment.id)
        return (await self.session.scalars(stmt)).all()

    async def list_same_receipt(
        self, receipt_unique_id: str, receipt_sha256: str | None, registration_id: int
    ) -> Sequence[Payment]:
        """Receipts with the same file on other registrations: Telegram's file_unique_id (a
        forwarded file) or the content's sha256 (the same picture uploaded again)."""
        same = Payment.receipt_unique_id == receipt_unique_id
        if receipt_sha256 is not None:
            same = or_(same, Payment.receipt_sha256 == receipt_sha256)
        stmt = select(Payment).where(same, Payment.registration_id != registration_id).order_by(Payment.id)
        return (await self.session.scalars(stmt)).all()

    async def decide(self, payment_id: int, from_status: str, **values: Any) -> bool:
        """Compare-and-set on the status: True only for the first decision."""
        stmt = (
            update(Payment)
            .where(Payment.id == payment_id, Payment.status == from_status)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def supersede_pending(self, registration_id: int, at: datetime, reason: str) -> int:
        """Close receipts still under review once the registration is paid another way."""
        stmt = (
            update(Payment)
            .where(Payment.registration_id == registration_id, Payment.status == "pending_review")
            .values(status="superseded", decided_at=at, reason=reason, pending_reason_by=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    # -- registration look-ups of the payments flow

    async def registration_by_reference(self, reference: str) -> Registration | None:
        stmt = select(Registration).where(Registration.reference == reference.strip().upper())
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def list_unpaid_past_deadline(self, now: datetime, states: Sequence[str], limit: int) -> Sequence[Registration]:
        """Registrations in `states` whose session's payment deadline (due + grace) has passed,
        by session then id (the lock order)."""
        deadline = func.coalesce(ExamSession.payment_deadline_at, ExamSession.payment_due_at)
        stmt = (
            select(Registration)
            .join(ExamSession, ExamSession.id == Registration.session_id)
            .where(Registration.state.in_(list(states)), deadline <= now)
            .order_by(Registration.session_id, Registration.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def list_paid(self, session_id: int | None = None) -> list[tuple[Registration, Candidate, ExamSession, datetime | None]]:
        """PAID registrations with their candidate, session and when the money was accepted."""
        paid_at = (
            select(func.max(Payment.decided_at))
            .where(Payment.registration_id == Registration.id, Payment.status.in_(["paid", "approved"]),
                   Payment.needs_refund.is_(False))
            .correlate(Registration)
            .scalar_subquery()
        )
        stmt = (
            select(Registration, Candidate, ExamSession, paid_at)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .join(ExamSession, ExamSession.id == Registration.session_id)
            .where(Registration.state == RegistrationState.PAID)
            .order_by(ExamSession.exam_date, Registration.id)
        )
        if session_id is not None:
            stmt = stmt.where(Registration.session_id == session_id)
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]  # type: ignore[misc]

    async def get_awaiting_reason(self, staff_id: int, since: datetime) -> Payment | None:
        """The receipt this staff member chose "other reason" for (after `since`) and has not
        explained yet; an older marker is stale and ordinary chat text is not a reason."""
        stmt = (
            select(Payment)
            .where(
                Payment.pending_reason_by == staff_id, Payment.status == "pending_review",
                Payment.pending_reason_at > since,
            )
            .order_by(Payment.id.desc())
            .limit(1)
        )
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def clear_awaiting_reason(self, staff_id: int) -> None:
        await self.session.execute(
            update(Payment).where(Payment.pending_reason_by == staff_id).values(pending_reason_by=None)
            .execution_options(synchronize_session=False)
        )


class StatementImportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: StatementImport) -> None:
        self.session.add(row)

    async def get(self, import_id: int) -> StatementImport | None:
        return await self.session.get(StatementImport, import_id, populate_existing=True)

    async def decide(self, import_id: int, status: str, staff_id: int, at: datetime) -> bool:
        """pending → applied/discarded, once: True only for the first confirmation."""
        stmt = (
            update(StatementImport)
            .where(StatementImport.id == import_id, StatementImport.status == "pending")
            .values(status=status, decided_by=staff_id, decided_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)


class TicketRepository:
    """Admission tickets and the per-session counters their numbers and seats come from.

    Allocation: `lock_session_counters` first (PostgreSQL: the session's `seat` counter row
    FOR UPDATE; SQLite's BEGIN IMMEDIATE already serialises), then look whether the
    registration has a ticket, then `next_value` per scope. Every issuer takes the
    session's lock before any other counter, so two issuers never deadlock and never
    draw a number that is later thrown away.
    """

    SEAT = "seat"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, ticket: AdmissionTicket) -> None:
        self.session.add(ticket)

    async def get_for_registration(self, registration_id: int) -> AdmissionTicket | None:
        stmt = (
            select(AdmissionTicket)
            .where(AdmissionTicket.registration_id == registration_id)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def get_by_number(self, ticket_number: str) -> AdmissionTicket | None:
        return await self.session.scalar(select(AdmissionTicket).where(AdmissionTicket.ticket_number == ticket_number))

    async def _ensure_counter(self, session_id: int, scope: str) -> None:
        stmt = _insert(self.session, TicketCounter).values(session_id=session_id, scope=scope, last=0)
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["session_id", "scope"]))

    async def lock_session_counters(self, session_id: int) -> None:
        """Serialise ticket issuing within one exam session until the transaction ends."""
        await self._ensure_counter(session_id, self.SEAT)
        if _is_postgresql(self.session):
            await self.session.execute(
                select(TicketCounter.last)
                .where(TicketCounter.session_id == session_id, TicketCounter.scope == self.SEAT)
                .with_for_update()
            )

    async def next_value(self, session_id: int, scope: str) -> int:
        """The next value of a counter (1, 2, …): one atomic UPDATE … RETURNING."""
        await self._ensure_counter(session_id, scope)
        stmt = (
            update(TicketCounter)
            .where(TicketCounter.session_id == session_id, TicketCounter.scope == scope)
            .values(last=TicketCounter.last + 1)
            .returning(TicketCounter.last)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def list_due(self, now: datetime, limit: int) -> list[tuple[Registration, AdmissionTicket | None]]:
        """PAID registrations whose session's ticket date has passed and whose candidate was
        not yet told (no ticket, not notified, or a ticket for another session: moved).
        Ordered by session then id, the order in which issuers lock sessions."""
        stmt = (
            select(Registration, AdmissionTicket)
            .join(ExamSession, ExamSession.id == Registration.session_id)
            .outerjoin(AdmissionTicket, AdmissionTicket.registration_id == Registration.id)
            .where(
                Registration.state == RegistrationState.PAID,
                ExamSession.tickets_from_at <= now,
                ExamSession.cancelled.is_(False),
                or_(
                    AdmissionTicket.id.is_(None),
                    AdmissionTicket.notified_at.is_(None),
                    AdmissionTicket.session_id != Registration.session_id,
                ),
            )
            .order_by(Registration.session_id, Registration.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]



#: Registration states per broadcast audience "state" value.
BROADCAST_STATE_GROUPS: dict[str, tuple[str, ...]] = {
    "unpaid": (RegistrationState.SUBMITTED, RegistrationState.AWAITING_PAYMENT),
    "waitlisted": (RegistrationState.WAITLISTED,),
    "paid": (RegistrationState.PAID,),
}


class BroadcastRepository:
    """Broadcasts, their audiences (candidates with a private chat) and who was not reached."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, broadcast: Broadcast) -> None:
        self.session.add(broadcast)

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return await self.session.get(Broadcast, broadcast_id, populate_existing=True)

    async def transition(self, broadcast_id: int, from_states: Sequence[str], **values: Any) -> bool:
        """Compare-and-set on the status: False when someone else moved it first."""
        stmt = (
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status.in_(list(from_states)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def finish(self, broadcast_id: int, status: str, at: datetime) -> bool:
        """Mark a broadcast finished once (two ticks racing: one wins)."""
        stmt = (
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.finished_at.is_(None))
            .values(status=status, finished_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def set_fingerprint(self, broadcast_id: int, fingerprint: str) -> bool:
        """Claim a progress edit: True only if the message does not already show this."""
        stmt = (
            update(Broadcast)
            .where(
                Broadcast.id == broadcast_id,
                or_(Broadcast.progress_fingerprint.is_(None), Broadcast.progress_fingerprint != fingerprint),
            )
            .values(progress_fingerprint=fingerprint)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def list_ticking(self) -> Sequence[Broadcast]:
        """Broadcasts whose progress may still change: confirmed and not finished."""
        stmt = (
            select(Broadcast)
            .where(
                Broadcast.status.in_(
                    (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING, BroadcastStatus.PAUSED,
                     BroadcastStatus.CANCELLED)
                ),
                Broadcast.confirmed_at.is_not(None),
                Broadcast.finished_at.is_(None),
            )
            .order_by(Broadcast.id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).all()

    def _audience(self, kind: str, value: str | None) -> Any:
        """Candidate ids of an audience (`all`, `session` code, `level` code, `state` group)."""
        if kind == "all":
            return select(Candidate.id)
        regs = select(Registration.candidate_id).where(Registration.state.in_(_ACTIVE))
        if kind == "session":
            regs = regs.join(ExamSession, ExamSession.id == Registration.session_id).where(ExamSession.code == value)
        elif kind == "level":
            regs = regs.where(Registration.level_code == value)
        elif kind == "state":
            regs = select(Registration.candidate_id).where(
                Registration.state.in_([s.value for s in BROADCAST_STATE_GROUPS[value or ""]])
            )
        else:
            raise ValueError(kind)
        return regs

    async def list_audience(self, kind: str, value: str | None) -> list[tuple[int, int, bool]]:
        """(candidate id, private chat id, known unreachable) per recipient, by candidate id."""
        stmt = (
            select(Candidate.id, Candidate.chat_id, Candidate.unreachable_at.is_not(None))
            .where(Candidate.id.in_(self._audience(kind, value)), Candidate.chat_id > 0)
            .order_by(Candidate.id)
        )
        return [(int(a), int(b), bool(c)) for a, b, c in (await self.session.execute(stmt)).all()]

    async def count_audience(self, kind: str, value: str | None) -> tuple[int, int]:
        """(reachable, known unreachable) recipients of an audience."""
        stmt = select(
            func.count().filter(Candidate.unreachable_at.is_(None)),
            func.count().filter(Candidate.unreachable_at.is_not(None)),
        ).where(Candidate.id.in_(self._audience(kind, value)), Candidate.chat_id > 0)
        reachable, unreachable = (await self.session.execute(stmt)).one()
        return int(reachable or 0), int(unreachable or 0)

    async def list_not_reached(self, broadcast_id: int) -> list[tuple[str, int, str, str | None]]:
        """(name, Telegram id, outbox status, reason) of every recipient not reached, by name."""
        stmt = (
            select(
                func.coalesce(Candidate.full_name, Candidate.first_name), Candidate.telegram_id,
                OutboxMessage.status, OutboxMessage.last_error,
            )
            .join(Candidate, Candidate.id == OutboxMessage.candidate_id)
            .where(
                OutboxMessage.broadcast_id == broadcast_id,
                OutboxMessage.status.in_((OutboxStatus.FAILED, OutboxStatus.UNREACHABLE, OutboxStatus.CANCELLED)),
            )
            .order_by(OutboxMessage.status, Candidate.telegram_id)
        )
        return [(str(n or ""), int(t), str(s), e) for n, t, s, e in (await self.session.execute(stmt)).all()]


class ReminderRepository:
    """Reminder rows of the outbox (kind "reminder"), planned and dropped set-wise, plus the
    exam-day rules acknowledgements.

    Keys are `<prefix><registration or candidate id><suffix>`, the suffix naming the session,
    the reminder and its moment (see `bot.services.reminders`); building them in SQL lets one
    INSERT … SELECT plan a reminder for every registration of a session, and one UPDATE per
    session drop the pending rows that no longer apply.
    """

    KIND = "reminder"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- planning ----------------------------------------------------------------------

    def _payload(self, base: dict[str, Any], per_row: dict[str, Any]) -> Any:
        """The JSON payload: `base` with `params.<name>` set from each per-row column."""
        document = json.dumps(base, ensure_ascii=False, separators=(",", ":"))
        if _is_postgresql(self.session):
            expr: Any = cast(literal(document, String), JSONB)
            for name, column in per_row.items():
                path = literal_column(f"ARRAY['params', '{name}']")
                expr = func.jsonb_set(expr, path, func.to_jsonb(column))
            return expr
        pairs: list[Any] = []
        for name, column in per_row.items():
            pairs += [literal(f"$.params.{name}"), column]
        return func.json_set(literal(document), *pairs) if pairs else literal(document)

    async def _insert_from(self, rows: Any) -> int:
        columns = [
            "idempotency_key", "chat_id", "candidate_id", "kind", "payload", "status", "not_before",
            "expires_at", "attempts", "registration_id", "session_id", "created_at",
        ]
        stmt = (
            _insert(self.session, OutboxMessage)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    @staticmethod
    def _common(
        session_id: int, not_before: datetime, expires_at: datetime, now: datetime
    ) -> tuple[list[Any], list[Any]]:
        """The constant columns: (status … attempts) and (session_id, created_at)."""
        middle = [
            literal(OutboxStatus.PENDING.value), literal(not_before, UTCDateTime()),
            literal(expires_at, UTCDateTime()), literal(0),
        ]
        return middle, [literal(session_id), literal(now, UTCDateTime())]

    async def plan_for_registrations(
        self, *, prefix: str, suffix: str, session_id: int, states: Sequence[str], payload: dict[str, Any],
        not_before: datetime, expires_at: datetime, now: datetime,
    ) -> int:
        """One row per registration of the session in `states` whose candidate has a chat and
        is not known unreachable; existing keys are left alone. Returns the rows created."""
        key = literal(prefix) + cast(Registration.id, String) + literal(suffix)
        known = aliased(OutboxMessage)
        middle, tail = self._common(session_id, not_before, expires_at, now)
        rows = (
            select(
                key, Candidate.chat_id, Candidate.id, literal(self.KIND),
                self._payload(payload, {
                    "registration_id": Registration.id, "level_code": Registration.level_code,
                    "reference": Registration.reference,
                }),
                *middle, Registration.id, *tail,
            )
            .select_from(Registration)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .where(
                Registration.session_id == session_id,
                Registration.state.in_(list(states)),
                Candidate.chat_id.is_not(None),
                Candidate.unreachable_at.is_(None),
                ~exists(select(known.id).where(known.idempotency_key == key)),
            )
        )
        return await self._insert_from(rows)

    def wants_to_register(self, session_id: int, levels: Sequence[str], allowed: Sequence[str]) -> Any:
        """The candidate may register for a level the session offers (eligibility settled as
        allowed) and holds no active registration for it, nor any at this session."""
        active = aliased(Registration)

        def holders(*conditions: Any) -> Any:
            # Uncorrelated: computed once per statement, not once per candidate.
            return select(active.candidate_id).where(active.state.in_(_ACTIVE), *conditions)

        per_level = [
            and_(
                Candidate.profile[("verdicts", level, "status")].as_string().in_(list(allowed)),
                Candidate.id.not_in(holders(active.level_code == level)),
            )
            for level in levels
        ]
        return and_(
            or_(*per_level) if per_level else false(),
            Candidate.id.not_in(holders(active.session_id == session_id)),
        )

    async def plan_for_candidates(
        self, *, prefix: str, suffix: str, session_id: int, levels: Sequence[str], allowed: Sequence[str],
        payload: dict[str, Any], not_before: datetime, expires_at: datetime, now: datetime,
    ) -> int:
        """One row per candidate who `wants_to_register` at the session (registration_closing)."""
        key = literal(prefix) + cast(Candidate.id, String) + literal(suffix)
        known = aliased(OutboxMessage)
        middle, tail = self._common(session_id, not_before, expires_at, now)
        rows = (
            select(
                key, Candidate.chat_id, Candidate.id, literal(self.KIND), self._payload(payload, {}),
                *middle, literal(None), *tail,
            )
            .select_from(Candidate)
            .where(
                self.wants_to_register(session_id, levels, allowed),
                Candidate.chat_id.is_not(None),
                Candidate.unreachable_at.is_(None),
                ~exists(select(known.id).where(known.idempotency_key == key)),
            )
        )
        return await self._insert_from(rows)

    # --- dropping what no longer applies --------------------------------------------------

    def _pending(self, session_id: int, now: datetime) -> Any:
        """Pending reminder rows of a session that no live worker holds (a held row is being sent)."""
        return and_(
            OutboxMessage.kind == self.KIND,
            OutboxMessage.session_id == session_id,
            OutboxMessage.status == OutboxStatus.PENDING,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
        )

    async def _cancel(self, where: Any, reason: str) -> int:
        stmt = (
            update(OutboxMessage)
            .where(where)
            .values(status=OutboxStatus.CANCELLED, last_error=reason, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def drop_off_schedule(
        self, session_id: int, *, registration_prefix: str, registration_suffixes: Sequence[str],
        candidate_prefix: str, candidate_suffixes: Sequence[str], now: datetime, reason: str,
    ) -> int:
        """Cancel pending rows whose key matches none of the session's current reminder moments
        (the session moved, a reminder left the catalogue, the session was cancelled)."""
        o = OutboxMessage
        by_registration = [
            o.idempotency_key == literal(registration_prefix) + cast(o.registration_id, String) + literal(s)
            for s in registration_suffixes
        ]
        by_candidate = [
            o.idempotency_key == literal(candidate_prefix) + cast(o.candidate_id, String) + literal(s)
            for s in candidate_suffixes
        ]
        on_schedule = or_(
            and_(o.registration_id.is_not(None), or_(*by_registration) if by_registration else false()),
            and_(o.registration_id.is_(None), or_(*by_candidate) if by_candidate else false()),
        )
        return await self._cancel(and_(self._pending(session_id, now), ~on_schedule), reason)

    async def drop_unconcerned_registrations(
        self, session_id: int, *, prefix: str, slots: Sequence[tuple[str, Sequence[str]]], now: datetime, reason: str,
    ) -> int:
        """Cancel pending rows whose registration left the session or the states its reminder
        concerns (`slots`: (key suffix, states) per reminder moment)."""
        o = OutboxMessage
        r = aliased(Registration)
        matches = [
            and_(o.idempotency_key == literal(prefix) + cast(r.id, String) + literal(suffix), r.state.in_(list(states)))
            for suffix, states in slots
        ]
        concerned = exists(
            select(r.id).where(r.id == o.registration_id, r.session_id == session_id, or_(*matches) if matches else false())
        )
        return await self._cancel(and_(self._pending(session_id, now), o.registration_id.is_not(None), ~concerned), reason)

    async def drop_unconcerned_candidates(
        self, session_id: int, *, levels: Sequence[str], allowed: Sequence[str], now: datetime, reason: str,
    ) -> int:
        """Cancel pending registration_closing rows of candidates who registered meanwhile (or
        whose eligibility changed)."""
        o = OutboxMessage
        still = exists(
            select(Candidate.id).where(
                Candidate.id == o.candidate_id, self.wants_to_register(session_id, levels, allowed)
            )
        )
        return await self._cancel(and_(self._pending(session_id, now), o.registration_id.is_(None), ~still), reason)

    async def fingerprint(self) -> tuple[Any, ...]:
        """A cheap summary of what reminders depend on: it changes when a registration is
        added, changes state (version) or session, or a candidate row changes."""
        regs = (
            select(
                Registration.state, func.count(), func.coalesce(func.sum(Registration.version), 0),
                func.max(Registration.id), func.coalesce(func.sum(Registration.session_id), 0),
            )
            .group_by(Registration.state)
            .order_by(Registration.state)
        )
        candidates = select(
            func.count(), func.max(Candidate.updated_at), func.count(Candidate.unreachable_at),
            func.count(Candidate.chat_id),
        )
        return (
            tuple(tuple(row) for row in (await self.session.execute(regs)).all()),
            tuple((await self.session.execute(candidates)).one()),
        )

    # --- exam-day rules --------------------------------------------------------------------

    async def acknowledge_rules(self, registration_id: int, at: datetime) -> bool:
        """Record "I have read the rules" once; False when it was recorded before."""
        stmt = (
            update(Registration)
            .where(Registration.id == registration_id, Registration.rules_acknowledged_at.is_(None))
            .values(rules_acknowledged_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    def _unacknowledged(self, session_id: int) -> Any:
        return and_(
            Registration.session_id == session_id,
            Registration.state == RegistrationState.PAID,
            Registration.rules_acknowledged_at.is_(None),
        )

    async def count_unacknowledged(self, session_id: int) -> int:
        stmt = select(func.count()).select_from(Registration).where(self._unacknowledged(session_id))
        return int(await self.session.scalar(stmt) or 0)

    async def list_unacknowledged(self, session_id: int, offset: int, limit: int) -> list[tuple[str, int, str]]:
        """(name, Telegram id, level code) of PAID registrations without the acknowledgement."""
        stmt = (
            select(func.coalesce(Candidate.full_name, Candidate.first_name), Candidate.telegram_id, Registration.level_code)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .where(self._unacknowledged(session_id))
            .order_by(Registration.id)
            .offset(offset)
            .limit(limit)
        )
        return [(str(n or ""), int(t), str(lv)) for n, t, lv in (await self.session.execute(stmt)).all()]
