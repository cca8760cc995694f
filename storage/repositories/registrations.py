"""The registration aggregate: `Registration` rows, whose state changes are
compare-and-set UPDATEs, with the waitlist and expired-offer look-ups
(`RegistrationRepository`), and the staff eligibility reviews decided once
(`ReviewRepository`).

The one-active-registration rule is judged by the partial unique indexes: `insert` and
`move` write inside a savepoint and turn the index's refusal into
`DuplicateActiveRegistration`, leaving the caller's transaction usable on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lifecycle import ACTIVE, DuplicateActiveRegistration, RegistrationState
from storage.models import EligibilityReview, Registration
from storage.repositories._sql import _is_unique_violation

#: How each database names the one-active-registration indexes in its error message.
_ACTIVE_INDEX = ("uq_registrations_active", "unique constraint failed: registrations.candidate_id")


class RegistrationRepository:
    """Registrations; state changes are compare-and-set UPDATEs (`transition`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, registration_id: int) -> Registration | None:
        return await self.session.get(Registration, registration_id, populate_existing=True)

    async def get_for_candidate(
        self, registration_id: int, candidate_id: int
    ) -> Registration | None:
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
            .where(
                Registration.candidate_id == candidate_id,
                Registration.state.in_(ACTIVE),
                or_(*matches),
            )
            .order_by(Registration.id)
            .limit(1)
        )
        return await self.session.scalar(stmt)

    def add(self, registration: Registration) -> None:
        """Add a registration to the unit of work, written at the next flush (unchecked)."""
        self.session.add(registration)

    async def insert(self, registration: Registration) -> None:
        """Write a new registration now (it gets its id). Raises DuplicateActiveRegistration
        when the candidate meanwhile got an active one for its level or at its session."""
        try:
            async with self.session.begin_nested():
                self.session.add(registration)
        except IntegrityError as exc:
            if _is_unique_violation(exc, *_ACTIVE_INDEX):
                raise DuplicateActiveRegistration() from None
            raise

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

    async def move(
        self, registration_id: int, from_states: Sequence[str], *, to_session: int, **values: Any
    ) -> bool:
        """`transition` to another session. Raises DuplicateActiveRegistration when the
        candidate holds an active registration there (another level, registered meanwhile)."""
        try:
            async with self.session.begin_nested():
                return await self.transition(
                    registration_id, from_states, session_id=to_session, **values
                )
        except IntegrityError as exc:
            if _is_unique_violation(exc, *_ACTIVE_INDEX):
                raise DuplicateActiveRegistration() from None
            raise

    async def next_waitlisted(
        self, session_id: int, *, skip: Sequence[int] = ()
    ) -> Registration | None:
        """The registration first in line for a seat (oldest `waitlisted_at`, then id)."""
        stmt = (
            select(Registration)
            .where(
                Registration.session_id == session_id,
                Registration.state == RegistrationState.WAITLISTED,
            )
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
            .where(
                Registration.session_id == session_id,
                Registration.state == RegistrationState.WAITLISTED,
            )
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
            .where(
                Registration.state == RegistrationState.OFFERED,
                Registration.offer_expires_at <= now,
            )
            .order_by(Registration.session_id, Registration.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()


class ReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, review: EligibilityReview) -> None:
        self.session.add(review)

    async def get(self, review_id: int) -> EligibilityReview | None:
        return await self.session.get(EligibilityReview, review_id)

    async def refresh(self, review: EligibilityReview) -> None:
        """Read the review again (after a decision lost the race: who decided, and how)."""
        await self.session.refresh(review)

    async def get_pending(self, candidate_id: int, level_code: str) -> EligibilityReview | None:
        return await self.session.scalar(
            select(EligibilityReview).where(
                EligibilityReview.candidate_id == candidate_id,
                EligibilityReview.level_code == level_code,
                EligibilityReview.status == "pending",
            )
        )

    async def decide(
        self, review_id: int, status: str, staff_id: int, at: datetime, reason: str | None
    ) -> bool:
        """Conditional update: True only for the first decision on a pending review."""
        result = await self.session.execute(
            update(EligibilityReview)
            .where(EligibilityReview.id == review_id, EligibilityReview.status == "pending")
            .values(status=status, decided_by=staff_id, decided_at=at, reason=reason)
        )
        return bool(result.rowcount)
