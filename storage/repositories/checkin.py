"""The check-in aggregate: attendance at the door (`attendance`, one row per registration;
the first scan wins), and the look-ups the door needs: the sessions around a day, who is
expected at a session, and a staff member's name.

`add_if_new` is one INSERT … ON CONFLICT DO NOTHING on the registration (the primary key),
so two staff members pressing "Present" at once on two instances record it once.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.domain.lifecycle import RegistrationState
from storage.models import Attendance, Candidate, ExamSession, Registration, StaffRole
from storage.repositories._sql import _insert


class CheckinRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sessions_between(self, first: date, last: date) -> list[ExamSession]:
        """Sessions (not cancelled) whose exam date is within first..last, with components."""
        stmt = (
            select(ExamSession)
            .where(
                ExamSession.exam_date >= first,
                ExamSession.exam_date <= last,
                ExamSession.cancelled.is_(False),
            )
            .order_by(ExamSession.exam_date, ExamSession.code)
            .options(selectinload(ExamSession.components))
        )
        return list((await self.session.scalars(stmt)).all())

    async def get(self, registration_id: int) -> Attendance | None:
        return await self.session.get(Attendance, registration_id, populate_existing=True)

    async def add_if_new(
        self, registration_id: int, session_id: int, at: datetime, by: int
    ) -> bool:
        """Record the check-in; False when the registration was checked in before."""
        stmt = (
            _insert(self.session, Attendance)
            .values(
                registration_id=registration_id,
                session_id=session_id,
                checked_in_at=at,
                checked_in_by=by,
            )
            .on_conflict_do_nothing(index_elements=["registration_id"])
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def for_session(self, session_id: int) -> dict[int, Attendance]:
        """The session's check-ins by registration id."""
        stmt = select(Attendance).where(Attendance.session_id == session_id)
        return {row.registration_id: row for row in (await self.session.scalars(stmt)).all()}

    async def expected(self, session_id: int) -> list[Registration]:
        """The session's PAID registrations: who is expected at the door."""
        stmt = (
            select(Registration)
            .where(
                Registration.session_id == session_id,
                Registration.state == RegistrationState.PAID,
            )
            .order_by(Registration.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def staff_name(self, telegram_id: int) -> str | None:
        """The name a staff member was granted a role under, else their Telegram first
        name if they ever wrote to the bot; None when neither is known."""
        granted = await self.session.scalar(
            select(StaffRole.name)
            .where(StaffRole.telegram_id == telegram_id, StaffRole.name != "")
            .limit(1)
        )
        if granted:
            return granted
        first = await self.session.scalar(
            select(Candidate.first_name).where(Candidate.telegram_id == telegram_id)
        )
        return first or None
