"""Rosters and exports (issue 14; docs/staff.md "Rosters and exports"): read-only queries
over registrations, candidates, admission tickets, attendance and payments.

`RosterRepository`: `list_roster(session_id, states)` (a session's registrations with
their candidate, ticket for that session and check-in), `accepted_methods(ids)` (how
each registration was paid), `list_registrations(session_id, state)` and
`list_payments(session_id, status)` (the finance exports, filters optional).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lifecycle import PAYMENT_ACCEPTED
from storage.models import (
    AdmissionTicket,
    Attendance,
    Candidate,
    ExamSession,
    Payment,
    Registration,
)

RosterRow = tuple[Registration, Candidate, AdmissionTicket | None, Attendance | None]
RegistrationRow = tuple[Registration, Candidate, str]  # … and the session's code
PaymentRow = tuple[Payment, Registration | None, Candidate | None, str | None]


class RosterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_roster(self, session_id: int, states: Sequence[str]) -> list[RosterRow]:
        """The session's registrations in `states`; a ticket only when it was issued for
        this session (a moved registration's old ticket does not count)."""
        stmt = (
            select(Registration, Candidate, AdmissionTicket, Attendance)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .outerjoin(
                AdmissionTicket,
                and_(
                    AdmissionTicket.registration_id == Registration.id,
                    AdmissionTicket.session_id == Registration.session_id,
                ),
            )
            .outerjoin(
                Attendance,
                and_(
                    Attendance.registration_id == Registration.id,
                    Attendance.session_id == Registration.session_id,
                ),
            )
            .where(Registration.session_id == session_id, Registration.state.in_(list(states)))
            .order_by(Registration.id)
        )
        return [(r[0], r[1], r[2], r[3]) for r in (await self.session.execute(stmt)).all()]

    async def accepted_methods(self, registration_ids: Sequence[int]) -> dict[int, str]:
        """The method of each registration's accepted payment (the latest, if several)."""
        if not registration_ids:
            return {}
        stmt = (
            select(Payment.registration_id, Payment.method)
            .where(
                Payment.registration_id.in_(list(registration_ids)),
                Payment.status.in_(list(PAYMENT_ACCEPTED)),
            )
            .order_by(Payment.id)
        )
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}

    async def list_registrations(
        self, session_id: int | None, state: str | None
    ) -> list[RegistrationRow]:
        stmt = (
            select(Registration, Candidate, ExamSession.code)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .join(ExamSession, ExamSession.id == Registration.session_id)
            .order_by(ExamSession.exam_date, ExamSession.code, Registration.id)
        )
        if session_id is not None:
            stmt = stmt.where(Registration.session_id == session_id)
        if state is not None:
            stmt = stmt.where(Registration.state == state)
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]

    async def list_payments(self, session_id: int | None, status: str | None) -> list[PaymentRow]:
        """Payments with their registration, candidate and session when they have one (a
        provider notice matching no registration has none; a session filter leaves it out)."""
        stmt = (
            select(Payment, Registration, Candidate, ExamSession.code)
            .outerjoin(Registration, Registration.id == Payment.registration_id)
            .outerjoin(Candidate, Candidate.id == Registration.candidate_id)
            .outerjoin(ExamSession, ExamSession.id == Registration.session_id)
            .order_by(Payment.id)
        )
        if session_id is not None:
            stmt = stmt.where(Registration.session_id == session_id)
        if status is not None:
            stmt = stmt.where(Payment.status == status)
        return [(r[0], r[1], r[2], r[3]) for r in (await self.session.execute(stmt)).all()]
