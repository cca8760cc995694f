"""The results aggregate: result imports (staged files), component results and the
per-session release record, plus the look-ups an import needs (who sits a session, a
registration by ticket number or reference).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.scoring import ImportStatus, ReleaseStatus
from storage.models import (
    AdmissionTicket,
    Candidate,
    ComponentResult,
    ExamSession,
    Registration,
    ResultImport,
    ResultRelease,
)


class ResultRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- imports

    def add_import(self, row: ResultImport) -> None:
        self.session.add(row)

    async def get_import(self, import_id: int) -> ResultImport | None:
        return await self.session.get(ResultImport, import_id, populate_existing=True)

    async def decide_import(self, import_id: int, status: str, actor: str, at: datetime) -> bool:
        """preview → `status`, once: True only for the first decision."""
        stmt = (
            update(ResultImport)
            .where(ResultImport.id == import_id, ResultImport.status == ImportStatus.PREVIEW)
            .values(status=status, decided_by=actor, decided_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def supersede_previews(self, session_id: int, actor: str, at: datetime) -> int:
        """Close the session's other open previews: they were checked against results that
        a confirmation has just replaced."""
        stmt = (
            update(ResultImport)
            .where(
                ResultImport.session_id == session_id,
                ResultImport.status == ImportStatus.PREVIEW,
            )
            .values(status=ImportStatus.SUPERSEDED, decided_by=actor, decided_at=at)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount)

    # --- who sits a session

    async def seated(
        self, session_id: int
    ) -> list[tuple[Registration, Candidate, AdmissionTicket | None]]:
        """Every registration of the session (any state), its candidate and its ticket
        (only a ticket issued for this session)."""
        stmt = (
            select(Registration, Candidate, AdmissionTicket)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .outerjoin(
                AdmissionTicket,
                (AdmissionTicket.registration_id == Registration.id)
                & (AdmissionTicket.session_id == session_id),
            )
            .where(Registration.session_id == session_id)
            .order_by(Registration.id)
        )
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]

    async def find_registration(self, code: str) -> Registration | None:
        """The registration a ticket number or a registration reference names."""
        ticket = select(AdmissionTicket.registration_id).where(
            AdmissionTicket.ticket_number == code
        )
        stmt = select(Registration).where(
            or_(Registration.reference == code.upper(), Registration.id.in_(ticket))
        )
        return (await self.session.scalars(stmt)).first()

    # --- component results

    def add(self, result: ComponentResult) -> None:
        self.session.add(result)

    async def delete(self, result: ComponentResult) -> None:
        await self.session.delete(result)

    async def list_for_session(self, session_id: int) -> list[ComponentResult]:
        stmt = (
            select(ComponentResult)
            .where(ComponentResult.session_id == session_id)
            .order_by(ComponentResult.registration_id, ComponentResult.component)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def released_at(self, session_id: int) -> datetime | None:
        """When the session's results were released (its release record, or the earliest
        released result); None while nothing is released."""
        release = await self.session.scalar(
            select(ResultRelease.released_at).where(
                ResultRelease.session_id == session_id,
                ResultRelease.status == ReleaseStatus.RELEASED,
            )
        )
        if release is not None:
            return release
        return await self.session.scalar(
            select(func.min(ComponentResult.released_at)).where(
                ComponentResult.session_id == session_id
            )
        )

    # --- release

    async def get_release(self, session_id: int) -> ResultRelease | None:
        stmt = (
            select(ResultRelease)
            .where(ResultRelease.session_id == session_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def releases_since(self, at: datetime) -> list[ResultRelease]:
        """Releases done at or after `at`, oldest first."""
        stmt = (
            select(ResultRelease)
            .where(ResultRelease.status == ReleaseStatus.RELEASED, ResultRelease.released_at >= at)
            .order_by(ResultRelease.released_at)
        )
        return list((await self.session.scalars(stmt)).all())

    async def list_releases(self) -> dict[int, ResultRelease]:
        """Every session's release row, by session id (the reminder planner's input)."""
        rows = await self.session.scalars(
            select(ResultRelease).execution_options(populate_existing=True)
        )
        return {row.session_id: row for row in rows}

    def add_release(self, release: ResultRelease) -> None:
        self.session.add(release)

    async def mark_released(self, release_id: int, at: datetime, recipients: int) -> bool:
        """scheduled / releasing → released, once: False when another run released it first
        (PostgreSQL re-checks the status after the first run's commit)."""
        stmt = (
            update(ResultRelease)
            .where(ResultRelease.id == release_id, ResultRelease.status != ReleaseStatus.RELEASED)
            .values(status=ReleaseStatus.RELEASED, released_at=at, recipients=recipients)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def release_results(self, session_id: int, at: datetime) -> None:
        stmt = (
            update(ComponentResult)
            .where(ComponentResult.session_id == session_id, ComponentResult.released_at.is_(None))
            .values(released_at=at)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def sessions_with_unreleased(self) -> list[int]:
        stmt = (
            select(ComponentResult.session_id)
            .where(ComponentResult.released_at.is_(None))
            .distinct()
        )
        return list((await self.session.scalars(stmt)).all())

    async def registrations_with_results(self, session_id: int) -> list[int]:
        stmt = (
            select(ComponentResult.registration_id)
            .where(ComponentResult.session_id == session_id)
            .distinct()
            .order_by(ComponentResult.registration_id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def registrations_and_candidates(
        self, registration_ids: list[int]
    ) -> list[tuple[Registration, Candidate]]:
        """The registrations (in the order given) with their candidates, in one query; the
        candidates stay in the session's identity map, so later `get`s cost nothing."""
        stmt = (
            select(Registration, Candidate)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .where(Registration.id.in_(registration_ids))
        )
        found = {r[0].id: (r[0], r[1]) for r in (await self.session.execute(stmt)).all()}
        return [found[i] for i in registration_ids if i in found]

    async def for_candidates(
        self, candidate_ids: list[int]
    ) -> dict[int, list[tuple[ComponentResult, Registration, ExamSession]]]:
        """`for_candidate` for many candidates in one query, by candidate id."""
        stmt = (
            select(ComponentResult, Registration, ExamSession)
            .join(Registration, Registration.id == ComponentResult.registration_id)
            .join(ExamSession, ExamSession.id == ComponentResult.session_id)
            .where(Registration.candidate_id.in_(candidate_ids))
            .order_by(ExamSession.exam_date, ComponentResult.component)
            .execution_options(populate_existing=True)
        )
        grouped: dict[int, list[tuple[ComponentResult, Registration, ExamSession]]] = {
            i: [] for i in candidate_ids
        }
        for result, registration, sitting in (await self.session.execute(stmt)).all():
            grouped[registration.candidate_id].append((result, registration, sitting))
        return grouped

    async def for_candidate(
        self, candidate_id: int
    ) -> list[tuple[ComponentResult, Registration, ExamSession]]:
        """Every component result of the candidate (released or not), oldest sitting first."""
        stmt = (
            select(ComponentResult, Registration, ExamSession)
            .join(Registration, Registration.id == ComponentResult.registration_id)
            .join(ExamSession, ExamSession.id == ComponentResult.session_id)
            .where(Registration.candidate_id == candidate_id)
            .order_by(ExamSession.exam_date, ComponentResult.component)
            .execution_options(populate_existing=True)
        )
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]
