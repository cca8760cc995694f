"""The standing read side: a candidate's certificates as `/status` and the eligibility engine
need them (which registration, which number, valid or revoked and since when).

Read only. Certificates are written by the certificate service
(`storage/repositories/certificates.py`); results are read through `ResultRepository`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Certificate


@dataclass(frozen=True, slots=True)
class CertificateState:
    """One certificate, plain values (no ORM row)."""

    registration_id: int
    level_code: str
    number: str
    issued_on: date
    status: str  # a `bot.domain.certificates.CertificateStatus`
    revoked_at: datetime | None


class StandingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def certificates_for_candidate(self, candidate_id: int) -> list[CertificateState]:
        """The candidate's certificates, oldest issue first."""
        stmt = (
            select(Certificate)
            .where(Certificate.candidate_id == candidate_id)
            .order_by(Certificate.issued_on, Certificate.id)
            .execution_options(populate_existing=True)
        )
        return [
            CertificateState(
                registration_id=c.registration_id,
                level_code=c.level_code,
                number=c.number,
                issued_on=c.issued_on,
                status=c.status,
                revoked_at=c.revoked_at,
            )
            for c in await self.session.scalars(stmt)
        ]
