"""The catalogue aggregate: catalogue versions, levels, directions and exam sessions as
read from the catalogue (`CatalogRepository`), and the exam sessions with their seat
counter, moved only by conditional UPDATEs (`SessionRepository`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import CatalogVersion, Direction, ExamSession, Level
from storage.repositories._sql import _is_postgresql


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_current(self) -> CatalogVersion | None:
        stmt = select(CatalogVersion).order_by(CatalogVersion.id.desc()).limit(1)
        return await self.session.scalar(stmt)

    async def get_version_by_hash(self, content_hash: str) -> CatalogVersion | None:
        return await self.session.scalar(
            select(CatalogVersion).where(CatalogVersion.content_hash == content_hash)
        )

    async def list_levels(self) -> Sequence[Level]:
        return (await self.session.scalars(select(Level).order_by(Level.rank))).all()

    async def list_directions(self) -> Sequence[Direction]:
        return (await self.session.scalars(select(Direction).order_by(Direction.code))).all()

    async def list_sessions(self) -> Sequence[ExamSession]:
        stmt = (
            select(ExamSession)
            .options(selectinload(ExamSession.components))
            .order_by(ExamSession.exam_date)
        )
        return (await self.session.scalars(stmt)).all()

    async def list_open_session_codes(self) -> list[str]:
        """Codes of sessions not cancelled, by exam date."""
        stmt = (
            select(ExamSession.code)
            .where(ExamSession.cancelled.is_(False))
            .order_by(ExamSession.exam_date)
        )
        return list((await self.session.scalars(stmt)).all())

    async def list_active_level_codes(self) -> list[str]:
        stmt = select(Level.code).where(Level.active.is_(True)).order_by(Level.rank)
        return list((await self.session.scalars(stmt)).all())

    async def get_direction(self, code: str) -> Direction | None:
        return await self.session.get(Direction, code)

    def add(self, row: object) -> None:
        self.session.add(row)

    async def remove_version(self, version: CatalogVersion) -> None:
        """Delete a loaded version now (its content hash is free again for a re-load)."""
        await self.session.delete(version)
        await self.session.flush()


class SessionRepository:
    """Exam sessions and their seat counter.

    The counter only moves through the conditional UPDATEs below, never read-modify-write.
    Lock order, to keep PostgreSQL free of deadlocks: session rows (by id) before
    registration rows.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, session_id: int) -> ExamSession | None:
        stmt = (
            select(ExamSession)
            .where(ExamSession.id == session_id)
            .options(selectinload(ExamSession.components))
        )
        return await self.session.scalar(stmt)

    async def get_by_code(self, code: str) -> ExamSession | None:
        stmt = (
            select(ExamSession)
            .where(ExamSession.code == code)
            .options(selectinload(ExamSession.components))
        )
        return await self.session.scalar(stmt)

    async def list_by_ids(self, ids: Sequence[int]) -> dict[int, ExamSession]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(ExamSession).where(ExamSession.id.in_(set(ids))))
        return {row.id: row for row in rows}

    async def list_for_level(self, level_code: str) -> list[ExamSession]:
        """Sessions offering a level, by exam date (the JSON list is filtered here: few rows)."""
        stmt = (
            select(ExamSession)
            .order_by(ExamSession.exam_date, ExamSession.code)
            .options(selectinload(ExamSession.components))
        )
        return [
            row for row in (await self.session.scalars(stmt)).all() if level_code in row.levels
        ]

    async def lock(self, *session_ids: int) -> None:
        """Lock session rows in id order (PostgreSQL; SQLite's BEGIN
        IMMEDIATE already serialises)."""
        if not _is_postgresql(self.session):
            return
        stmt = (
            select(ExamSession.id)
            .where(ExamSession.id.in_(set(session_ids)))
            .order_by(ExamSession.id)
            .with_for_update()
        )
        await self.session.execute(stmt)

    async def take_seat(self, session_id: int) -> bool:
        """Take one seat if one is free; False when the session is full."""
        stmt = (
            update(ExamSession)
            .where(ExamSession.id == session_id, ExamSession.seats_taken < ExamSession.capacity)
            .values(seats_taken=ExamSession.seats_taken + 1)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def release_seat(self, session_id: int) -> bool:
        """Give one seat back; False when none was taken (the counter never goes below 0)."""
        stmt = (
            update(ExamSession)
            .where(ExamSession.id == session_id, ExamSession.seats_taken > 0)
            .values(seats_taken=ExamSession.seats_taken - 1)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)
