"""Finding a candidate for the staff desk (`bot.services.find`): the search over candidates
and what one candidate's card shows, read only.

`search` takes the already-parsed parts of a staff query (name words, phone digits, the
last 4 of an ID number, a Telegram id, codes that may be a registration reference or a
ticket number, a username) and returns the first matching candidates with the total
number of matches. The candidates' own columns are one branch of a UNION (one scan, or on
PostgreSQL a BitmapOr of the unique `telegram_id` index and trigram indexes where an
operator created them, see docs/staff.md "Find a candidate"); registrations and tickets
are one branch each, by their unique `reference` and `ticket_number`. SQLite gets the
same query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    AdmissionTicket,
    AuditEntry,
    Candidate,
    ExamSession,
    Payment,
    Registration,
)


@dataclass(frozen=True, slots=True)
class SearchParts:
    """What a staff query may mean; empty parts are not searched."""

    name_words: tuple[str, ...] = ()
    phone_digits: str | None = None
    id_last4: str | None = None
    telegram_id: int | None = None
    codes: tuple[str, ...] = ()  # a registration reference or a ticket number, exactly
    username: str | None = None


def _like(text: str) -> str:
    """`%text%` with LIKE's wildcards in `text` taken literally (ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, word: str) -> ColumnElement[bool]:
    """`column` contains `word`; in any case only when the word has a case at all (a
    Chinese name has none, and a plain LIKE scans faster than ILIKE)."""
    if word.lower() == word.upper():
        return column.like(_like(word), escape="\\")
    return column.ilike(_like(word), escape="\\")


def _branches(parts: SearchParts) -> list[Select[tuple[int]]]:
    """One SELECT of candidate ids per table: the candidates' own columns in one (one scan
    of the table, or a BitmapOr of its indexes), registrations and tickets by code."""
    own: list[ColumnElement[bool]] = []
    if parts.name_words:
        # Every word in the name on the document, or every word in the Telegram name.
        own += [
            and_(*(_contains(column, w) for w in parts.name_words))
            for column in (Candidate.full_name, Candidate.first_name)
        ]
    if parts.phone_digits:
        own.append(Candidate.phone.like(_like(parts.phone_digits), escape="\\"))
    if parts.id_last4:
        # The masked number keeps the last 4 characters (`bot.domain.idcard.mask_id_number`).
        own.append(Candidate.id_number_masked.like(_like(parts.id_last4)[:-1], escape="\\"))
    if parts.telegram_id is not None:
        own.append(Candidate.telegram_id == parts.telegram_id)
    if parts.username:
        own.append(func.lower(Candidate.username) == parts.username.lower())
    found: list[Select[tuple[int]]] = []
    if own:
        found.append(select(Candidate.id).where(or_(*own)))
    if parts.codes:
        found.append(
            select(Registration.candidate_id).where(Registration.reference.in_(parts.codes))
        )
        found.append(
            select(Registration.candidate_id)
            .join(AdmissionTicket, AdmissionTicket.registration_id == Registration.id)
            .where(AdmissionTicket.ticket_number.in_(parts.codes))
        )
    return found


class FindRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search(self, parts: SearchParts, limit: int) -> tuple[list[Candidate], int]:
        """The first `limit` matching candidates (by name on the document, then id) and how
        many match in all."""
        branches = _branches(parts)
        if not branches:
            return [], 0
        matched = union(*branches).subquery()
        stmt = (
            select(Candidate, func.count().over())
            .join(matched, matched.c[0] == Candidate.id)
            .order_by(Candidate.full_name.is_(None), Candidate.full_name, Candidate.id)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        return [row[0] for row in rows], (rows[0][1] if rows else 0)

    async def candidate(self, candidate_id: int) -> Candidate | None:
        return await self.session.get(Candidate, candidate_id)

    async def registrations(
        self, candidate_id: int
    ) -> Sequence[tuple[Registration, ExamSession, AdmissionTicket | None]]:
        """The candidate's registrations, newest first, with their session and ticket."""
        stmt = (
            select(Registration, ExamSession, AdmissionTicket)
            .join(ExamSession, ExamSession.id == Registration.session_id)
            .outerjoin(AdmissionTicket, AdmissionTicket.registration_id == Registration.id)
            .where(Registration.candidate_id == candidate_id)
            .order_by(Registration.created_at.desc(), Registration.id.desc())
        )
        return [(r, s, t) for r, s, t in (await self.session.execute(stmt)).all()]

    async def payments(self, registration_ids: Sequence[int]) -> Sequence[Payment]:
        if not registration_ids:
            return []
        stmt = (
            select(Payment)
            .where(Payment.registration_id.in_(registration_ids))
            .order_by(Payment.created_at, Payment.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def recent_history(
        self, registration_ids: Sequence[int], payment_ids: Sequence[int], limit: int
    ) -> list[AuditEntry]:
        """The latest `limit` audit entries of these registrations and payments, oldest
        first (what /history shows, cut to the most recent)."""
        conditions = []
        if registration_ids:
            conditions.append(
                and_(
                    AuditEntry.entity == "registration",
                    AuditEntry.entity_id.in_([str(i) for i in registration_ids]),
                )
            )
        if payment_ids:
            conditions.append(
                and_(
                    AuditEntry.entity == "payment",
                    AuditEntry.entity_id.in_([str(i) for i in payment_ids]),
                )
            )
        if not conditions:
            return []
        stmt = (
            select(AuditEntry)
            .where(or_(*conditions))
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
        return list(reversed((await self.session.scalars(stmt)).all()))
