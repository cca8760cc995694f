"""The verification read side: a certificate with its holder, level and direction, found by
number or by QR code, and the per-client counter of failed look-ups (`LookupThrottle`).

Certificates are written by the certificate service (`storage/repositories/certificates.py`);
this module only reads them. The throttle counter is one upsert, correct under concurrency
on SQLite and PostgreSQL: the increment happens in the database, never read-modify-write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Candidate, Certificate, Direction, Level, LookupThrottle
from storage.repositories._sql import _insert


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """One certificate as a verification answer needs it (plain values, no ORM rows)."""

    number: str
    holder_name: str  # the candidate's full name as registered ("" when none is on file)
    level_code: str
    level_names: dict[str, Any]
    direction_code: str | None
    direction_names: dict[str, Any] | None
    issued_on: date
    status: str
    revoked_at: datetime | None


class VerificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- certificates (read only)

    async def get_by_number_key(self, key: str) -> CertificateRecord | None:
        return await self._one(Certificate.number_key == key)

    async def get_by_verify_code(self, code: str) -> CertificateRecord | None:
        return await self._one(Certificate.verify_code == code)

    async def _one(self, where: Any) -> CertificateRecord | None:
        direction = aliased(Direction)
        stmt = (
            select(
                Certificate,
                Candidate.full_name,
                Level.names,
                direction.names,
            )
            .join(Candidate, Candidate.id == Certificate.candidate_id)
            .join(Level, Level.code == Certificate.level_code)
            .outerjoin(direction, direction.code == Certificate.direction_code)
            .where(where)
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            return None
        cert, full_name, level_names, direction_names = row
        return CertificateRecord(
            number=cert.number,
            holder_name=full_name or "",
            level_code=cert.level_code,
            level_names=dict(level_names or {}),
            direction_code=cert.direction_code,
            direction_names=dict(direction_names) if direction_names is not None else None,
            issued_on=cert.issued_on,
            status=cert.status,
            revoked_at=cert.revoked_at,
        )

    # --- the look-up throttle

    async def get_throttle(self, key: str) -> LookupThrottle | None:
        return await self.session.get(LookupThrottle, key, populate_existing=True)

    async def count_failure(self, key: str, now: datetime, window_start_after: datetime) -> None:
        """One more failure for `key`, atomically: a window that started at or before
        `window_start_after` is over, so the count starts again at 1 from `now`.

        Both SET expressions read the row as it was (SQL semantics on both databases), so
        the window and the count move together; concurrent calls queue on the row.
        """
        expired = LookupThrottle.window_started_at <= window_start_after
        stmt = _insert(self.session, LookupThrottle).values(
            key=key, window_started_at=now, failures=1
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[LookupThrottle.key],
            set_={
                "failures": case((expired, 1), else_=LookupThrottle.failures + 1),
                "window_started_at": case((expired, now), else_=LookupThrottle.window_started_at),
            },
        )
        await self.session.execute(stmt)

    async def delete_throttles_before(self, window_start_after: datetime) -> int:
        """Forget the counters whose window is over (they would start again at 1 anyway)."""
        stmt = delete(LookupThrottle).where(LookupThrottle.window_started_at <= window_start_after)
        return int((await self.session.execute(stmt)).rowcount)
