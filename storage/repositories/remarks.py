"""The re-marking aggregate: 复核 requests (`remark_requests`), and the one write a decision
makes to a released component result.

Atomic statements, for SQLite and PostgreSQL alike: `add_if_new` (one request per
registration and component, whoever asks twice at once), `move` (a conditional UPDATE on
the status: the first staff decision wins) and `rescore` (score and `version + 1` in one
statement, so a concurrent change to the same result is never lost).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Candidate,
    ComponentResult,
    ExamSession,
    Registration,
    RemarkRequest,
)
from storage.repositories._sql import _insert


class RemarkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_new(self, **values: Any) -> RemarkRequest | None:
        """Insert a request; None when the registration already has one for the component."""
        stmt = _insert(self.session, RemarkRequest).values(**values)
        stmt = stmt.on_conflict_do_nothing(index_elements=["registration_id", "component"])
        if not (await self.session.execute(stmt)).rowcount:
            return None
        return await self.get_for(values["registration_id"], values["component"])

    async def get(self, request_id: int) -> RemarkRequest | None:
        return await self.session.get(RemarkRequest, request_id, populate_existing=True)

    async def get_for(self, registration_id: int, component: str) -> RemarkRequest | None:
        stmt = (
            select(RemarkRequest)
            .where(
                RemarkRequest.registration_id == registration_id,
                RemarkRequest.component == component,
            )
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def list_for_registrations(self, registration_ids: Iterable[int]) -> list[RemarkRequest]:
        ids = set(registration_ids)
        if not ids:
            return []
        stmt = select(RemarkRequest).where(RemarkRequest.registration_id.in_(ids))
        return list((await self.session.scalars(stmt)).all())

    async def list_in(
        self, statuses: Iterable[str]
    ) -> list[tuple[RemarkRequest, Registration, Candidate, ExamSession]]:
        """Requests in `statuses`, oldest first, with who asked and for which sitting."""
        stmt = (
            select(RemarkRequest, Registration, Candidate, ExamSession)
            .join(Registration, Registration.id == RemarkRequest.registration_id)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .join(ExamSession, ExamSession.id == Registration.session_id)
            .where(RemarkRequest.status.in_(tuple(statuses)))
            .order_by(RemarkRequest.created_at, RemarkRequest.id)
        )
        return [(r[0], r[1], r[2], r[3]) for r in (await self.session.execute(stmt)).all()]

    async def move(self, request_id: int, from_status: str, **values: Any) -> bool:
        """`from_status` → the values given, once: False when the request is no longer in
        `from_status` (PostgreSQL re-checks it after a concurrent writer's commit)."""
        stmt = (
            update(RemarkRequest)
            .where(RemarkRequest.id == request_id, RemarkRequest.status == from_status)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def rescore(
        self,
        result_id: int,
        score_tenths: int | None,
        actor: str,
        at: datetime,
        *,
        mark: str = "scored",
    ) -> None:
        """A new score (or mark: a staff correction may write absent / disqualified, with no
        score) for a component result, a re-mark decision or a correction: `version + 1`."""
        stmt = (
            update(ComponentResult)
            .where(ComponentResult.id == result_id)
            .values(
                mark=mark,
                score_tenths=score_tenths,
                version=ComponentResult.version + 1,
                updated_by=actor,
                updated_at=at,
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def get_result(
        self, result_id: int
    ) -> tuple[ComponentResult, Registration, ExamSession] | None:
        """A component result with its registration and sitting."""
        stmt = (
            select(ComponentResult, Registration, ExamSession)
            .join(Registration, Registration.id == ComponentResult.registration_id)
            .join(ExamSession, ExamSession.id == ComponentResult.session_id)
            .where(ComponentResult.id == result_id)
            .execution_options(populate_existing=True)
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1], row[2])

    async def get_result_for(self, registration_id: int, component: str) -> ComponentResult | None:
        stmt = (
            select(ComponentResult)
            .where(
                ComponentResult.registration_id == registration_id,
                ComponentResult.component == component,
            )
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)
