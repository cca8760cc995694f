"""The certificate aggregate: `Certificate` rows, the per-session counter assigned numbers are
drawn from (`TicketCounter`, scope `certificate`) and the staged batches (an import file or
an assignment awaiting staff's decision, `CertificateBatch`).

Unique constraints (number key, registration, verify code) come back as a result from
`add`, never as an exception: two staff confirming overlapping batches at once get one
certificate each, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.certificates import CertificateStatus
from bot.domain.scoring import ImportStatus
from storage.models import (
    Certificate,
    CertificateBatch,
    ExamSession,
    Registration,
    TicketCounter,
)
from storage.repositories._sql import _insert, _is_postgresql, _is_unique_violation

#: The `ticket_counters` scope certificate numbers are drawn from.
COUNTER_SCOPE = "certificate"
# How each database names the unique constraints a new certificate can hit (PostgreSQL:
# the constraint, SQLite: table.column).
_UNIQUE = (
    "uq_certificates_",
    "certificates.number_key",
    "certificates.registration_id",
    "certificates.verify_code",
)


class CertificateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- certificates

    async def add(self, certificate: Certificate) -> bool:
        """Insert; False (and nothing written) when its number, registration or verify code
        is taken already."""
        try:
            async with self.session.begin_nested():
                self.session.add(certificate)
                await self.session.flush()
        except IntegrityError as exc:
            if not _is_unique_violation(exc, *_UNIQUE):
                raise
            return False
        return True

    async def get(self, certificate_id: int) -> Certificate | None:
        return await self.session.get(Certificate, certificate_id)

    async def revoke(self, certificate_id: int, actor: str, reason: str, at: datetime) -> bool:
        """Valid → revoked; False when it was revoked already (the first revocation wins)."""
        stmt = (
            update(Certificate)
            .where(Certificate.id == certificate_id, Certificate.status == CertificateStatus.VALID)
            .values(
                status=CertificateStatus.REVOKED,
                revoked_at=at,
                revoked_by=actor,
                revoke_reason=reason,
                updated_at=at,
            )
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(stmt)).rowcount == 1

    async def get_by_number_key(self, key: str) -> Certificate | None:
        stmt = (
            select(Certificate)
            .where(Certificate.number_key == key)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def by_registrations(self, registration_ids: Iterable[int]) -> dict[int, Certificate]:
        wanted = list(set(registration_ids))
        if not wanted:
            return {}
        rows = await self.session.scalars(
            select(Certificate)
            .where(Certificate.registration_id.in_(wanted))
            .execution_options(populate_existing=True)
        )
        return {row.registration_id: row for row in rows}

    async def for_candidate(self, candidate_id: int) -> list[tuple[Certificate, ExamSession]]:
        """The candidate's certificates, oldest issue first, with their registration's session."""
        stmt = (
            select(Certificate, ExamSession)
            .join(Registration, Registration.id == Certificate.registration_id)
            .join(ExamSession, ExamSession.id == Registration.session_id)
            .where(Certificate.candidate_id == candidate_id)
            .order_by(Certificate.issued_on, Certificate.id)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    # --- the per-session number counter

    async def lock_counter(self, session_id: int) -> None:
        """Serialise assignments within one session until the transaction ends (SQLite's
        BEGIN IMMEDIATE already does)."""
        stmt = _insert(self.session, TicketCounter).values(
            session_id=session_id, scope=COUNTER_SCOPE, last=0
        )
        await self.session.execute(
            stmt.on_conflict_do_nothing(index_elements=["session_id", "scope"])
        )
        if _is_postgresql(self.session):
            await self.session.execute(
                select(TicketCounter.last)
                .where(
                    TicketCounter.session_id == session_id,
                    TicketCounter.scope == COUNTER_SCOPE,
                )
                .with_for_update()
            )

    # --- staged batches

    def add_batch(self, batch: CertificateBatch) -> None:
        self.session.add(batch)

    async def get_batch(self, batch_id: int) -> CertificateBatch | None:
        return await self.session.get(CertificateBatch, batch_id, populate_existing=True)

    async def decide_batch(self, batch_id: int, status: str, actor: str, at: datetime) -> bool:
        """preview → `status`, once: True only for the first decision (on PostgreSQL a
        second decision waits for the first's transaction, then finds it decided)."""
        stmt = (
            update(CertificateBatch)
            .where(
                CertificateBatch.id == batch_id,
                CertificateBatch.status == ImportStatus.PREVIEW,
            )
            .values(status=status, decided_by=actor, decided_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)
