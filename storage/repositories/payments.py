"""The payment aggregate: `Payment` rows inserted idempotently on (method, external_id)
and decided first-wins, with the registration look-ups of the payments flow
(`PaymentRepository`), and the bank statement imports confirmed once
(`StatementImportRepository`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lifecycle import PAYMENT_ACCEPTED, PaymentStatus, RefundStatus, RegistrationState
from storage.models import Candidate, ExamSession, Payment, Registration, StatementImport
from storage.repositories._sql import _insert

_P = PaymentStatus


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
        stmt = (
            select(Payment).where(Payment.registration_id == registration_id).order_by(Payment.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def list_same_receipt(
        self, receipt_unique_id: str, receipt_sha256: str | None, registration_id: int
    ) -> Sequence[Payment]:
        """Receipts with the same file on other registrations: Telegram's file_unique_id (a
        forwarded file) or the content's sha256 (the same picture uploaded again)."""
        same = Payment.receipt_unique_id == receipt_unique_id
        if receipt_sha256 is not None:
            same = or_(same, Payment.receipt_sha256 == receipt_sha256)
        stmt = (
            select(Payment)
            .where(same, Payment.registration_id != registration_id)
            .order_by(Payment.id)
        )
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
            .where(Payment.registration_id == registration_id, Payment.status == _P.PENDING_REVIEW)
            .values(status=_P.SUPERSEDED, decided_at=at, reason=reason, pending_reason_by=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    # -- registration look-ups of the payments flow

    async def registration_by_reference(self, reference: str) -> Registration | None:
        stmt = select(Registration).where(Registration.reference == reference.strip().upper())
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def list_unpaid_past_deadline(
        self, now: datetime, states: Sequence[str], limit: int
    ) -> Sequence[Registration]:
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

    async def list_paid(
        self, session_id: int | None = None
    ) -> list[tuple[Registration, Candidate, ExamSession, datetime | None]]:
        """PAID registrations with their candidate, session and when the money was accepted."""
        paid_at = (
            select(func.max(Payment.decided_at))
            .where(
                Payment.registration_id == Registration.id,
                Payment.status.in_(PAYMENT_ACCEPTED),
                Payment.needs_refund.is_(False),
            )
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
                Payment.pending_reason_by == staff_id,
                Payment.status == _P.PENDING_REVIEW,
                Payment.pending_reason_at > since,
            )
            .order_by(Payment.id.desc())
            .limit(1)
        )
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def clear_awaiting_reason(self, staff_id: int) -> None:
        await self.session.execute(
            update(Payment)
            .where(Payment.pending_reason_by == staff_id)
            .values(pending_reason_by=None)
            .execution_options(synchronize_session=False)
        )

    # -- refunds (issue 14; bot/services/refunds.py)

    async def list_open_refunds(
        self, limit: int
    ) -> list[tuple[Payment, Registration | None, Candidate | None]]:
        """Refunds waiting for finance (`_REFUND_OPEN`), oldest first, with the registration
        and candidate when the money named one."""
        stmt = (
            select(Payment, Registration, Candidate)
            .outerjoin(Registration, Registration.id == Payment.registration_id)
            .outerjoin(Candidate, Candidate.id == Registration.candidate_id)
            .where(_REFUND_OPEN)
            .order_by(Payment.id)
            .limit(limit)
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]  # type: ignore[misc]

    async def request_refund(self, payment_id: int, **values: Any) -> bool:
        """Mark a payment to refund unless it already has a refund status (first wins)."""
        stmt = (
            update(Payment)
            .where(Payment.id == payment_id, Payment.refund_status.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def decide_refund(self, payment_id: int, **values: Any) -> bool:
        """Compare-and-set on an open refund: True only for the first decision."""
        stmt = (
            update(Payment)
            .where(Payment.id == payment_id, _REFUND_OPEN)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)


#: A refund waits for finance: DUE, or flagged for refund before refunds had states.
_REFUND_OPEN = or_(
    Payment.refund_status == RefundStatus.DUE,
    and_(Payment.refund_status.is_(None), Payment.needs_refund.is_(True)),
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
