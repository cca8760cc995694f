"""The day's figures (read only): sessions ahead, registrations counted by session and
state, payments grouped by what staff need to tell them apart, check-ins per session, and
the moments of recent registrations and payments for the chart.

Every query is an aggregate or a narrow column read; which states count as what
("unpaid", "settled", "refund open") is the service's business (`bot.services.stats`),
handed in or applied to the groups returned here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Attendance, ExamSession, Payment, Registration


@dataclass(frozen=True, slots=True)
class PaymentGroup:
    """Payments alike in everything the figures look at, counted and summed."""

    session_id: int | None  # None: money that matched no registration
    status: str
    method: str
    currency: str
    needs_refund: bool
    refund_status: str | None
    count: int
    amount_minor: int


class StatsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sessions_from(self, day: date, limit: int) -> list[ExamSession]:
        """Sessions not cancelled whose exam day is `day` or later, soonest first."""
        stmt = (
            select(ExamSession)
            .where(ExamSession.exam_date >= day, ExamSession.cancelled.is_(False))
            .order_by(ExamSession.exam_date, ExamSession.code)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))

    async def registration_counts(
        self, session_ids: Collection[int]
    ) -> dict[tuple[int, str], int]:
        """(session id, state) → registrations."""
        if not session_ids:
            return {}
        stmt = (
            select(Registration.session_id, Registration.state, func.count())
            .where(Registration.session_id.in_(session_ids))
            .group_by(Registration.session_id, Registration.state)
        )
        return {(sid, state): n for sid, state, n in await self.session.execute(stmt)}

    async def payment_groups(self) -> list[PaymentGroup]:
        """Every payment row, grouped by session, status, method, currency and refund state."""
        columns = (
            Registration.session_id,
            Payment.status,
            Payment.method,
            Payment.currency,
            Payment.needs_refund,
            Payment.refund_status,
        )
        stmt = (
            select(*columns, func.count(), func.coalesce(func.sum(Payment.amount_minor), 0))
            .select_from(Payment)
            .outerjoin(Registration, Registration.id == Payment.registration_id)
            .group_by(*columns)
        )
        return [
            PaymentGroup(sid, status, method, currency, bool(flag), refund, n, int(total))
            for sid, status, method, currency, flag, refund, n, total in (
                await self.session.execute(stmt)
            )
        ]

    async def checked_in(self, session_ids: Collection[int]) -> dict[int, int]:
        """Session id → candidates checked in at the door."""
        if not session_ids:
            return {}
        stmt = (
            select(Attendance.session_id, func.count())
            .where(Attendance.session_id.in_(session_ids))
            .group_by(Attendance.session_id)
        )
        return dict((await self.session.execute(stmt)).all())

    async def registration_times(self, since: datetime) -> list[datetime]:
        """When each registration made since `since` was made."""
        stmt = select(Registration.created_at).where(Registration.created_at >= since)
        return list(await self.session.scalars(stmt))

    async def payment_times(self, since: datetime, statuses: Sequence[str]) -> list[datetime]:
        """When each payment in `statuses` was settled (decided; else recorded), since `since`."""
        settled = func.coalesce(Payment.decided_at, Payment.created_at)
        stmt = select(Payment.decided_at, Payment.created_at).where(
            Payment.status.in_(statuses), settled >= since
        )
        return [decided or created for decided, created in await self.session.execute(stmt)]
