"""The admission ticket aggregate: `AdmissionTicket` rows and the per-session
`TicketCounter` rows their numbers and seats are drawn from, the numbers they replaced
(`SupersededTicket`), plus the PAID registrations still waiting for their ticket.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lifecycle import RegistrationState
from storage.models import (
    AdmissionTicket,
    ExamSession,
    Registration,
    SupersededTicket,
    TicketCounter,
)
from storage.repositories._sql import _insert, _is_postgresql


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
        return await self.session.scalar(
            select(AdmissionTicket).where(AdmissionTicket.ticket_number == ticket_number)
        )

    def add_superseded(
        self, ticket_number: str, registration_id: int, replaced_at: datetime, reason: str
    ) -> None:
        """Remember a number that a reissue replaced (numbers are never drawn twice)."""
        self.session.add(
            SupersededTicket(
                ticket_number=ticket_number,
                registration_id=registration_id,
                replaced_at=replaced_at,
                reason=reason,
            )
        )

    async def get_superseded(self, ticket_number: str) -> SupersededTicket | None:
        return await self.session.get(SupersededTicket, ticket_number)

    async def _ensure_counter(self, session_id: int, scope: str) -> None:
        stmt = _insert(self.session, TicketCounter).values(
            session_id=session_id, scope=scope, last=0
        )
        await self.session.execute(
            stmt.on_conflict_do_nothing(index_elements=["session_id", "scope"])
        )

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

    async def list_due(
        self, now: datetime, limit: int
    ) -> list[tuple[Registration, AdmissionTicket | None]]:
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
