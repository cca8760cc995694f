"""The candidate aggregate: the `Candidate` row of each Telegram user (looked up, created
race-free, its ID number stored race-free, marked unreachable) and its `FlowState`, the
position and answers of the conversation the candidate is in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Candidate, FlowState
from storage.repositories._sql import _insert, _is_unique_violation

#: How each database names the unique index on `id_number_hash` in its error message.
_ID_HASH_INDEX = ("id_number_hash",)


class CandidateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_telegram_id(
        self, telegram_id: int, *, for_update: bool = False
    ) -> Candidate | None:
        """`for_update` locks the row on PostgreSQL (SQLite serialises writers anyway), for
        read-modify-write of the JSON `profile` that two actors may change at once."""
        stmt = select(Candidate).where(Candidate.telegram_id == telegram_id)
        return await self.session.scalar(stmt.with_for_update() if for_update else stmt)

    async def get(self, candidate_id: int, *, for_update: bool = False) -> Candidate | None:
        return await self.session.get(Candidate, candidate_id, with_for_update=for_update)

    async def get_by_id_hash(self, id_number_hash: str) -> Candidate | None:
        return await self.session.scalar(
            select(Candidate).where(Candidate.id_number_hash == id_number_hash)
        )

    async def add_if_missing(self, telegram_id: int, **values: Any) -> None:
        """Create the candidate row unless it exists; safe when two updates race."""
        stmt = _insert(self.session, Candidate).values(telegram_id=telegram_id, **values)
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["telegram_id"]))

    async def set_id_number(
        self, candidate: Candidate, *, encrypted: bytes, digest: str, masked: str
    ) -> bool:
        """Store the candidate's ID number (encrypted, its keyed hash, the masked copy); False
        when another candidate holds the same hash. The unique index decides, inside a
        savepoint, so two accounts saving one number at once cannot both keep it."""
        try:
            async with self.session.begin_nested():
                candidate.id_number_encrypted = encrypted
                candidate.id_number_hash = digest
                candidate.id_number_masked = masked
        except IntegrityError as exc:
            if not _is_unique_violation(exc, *_ID_HASH_INDEX):
                raise
            await self.session.refresh(candidate)  # the savepoint's rollback expired it
            return False
        return True

    async def mark_unreachable(self, candidate_id: int, at: datetime) -> bool:
        """Note that messages no longer reach the candidate (blocked bot, deleted account)."""
        stmt = (
            update(Candidate)
            .where(Candidate.id == candidate_id, Candidate.unreachable_at.is_(None))
            .values(unreachable_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)


class FlowStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, candidate_id: int) -> FlowState | None:
        return await self.session.get(FlowState, candidate_id)

    async def get_or_add(self, candidate_id: int) -> FlowState:
        state = await self.get(candidate_id)
        if state is None:
            state = FlowState(candidate_id=candidate_id, answers={})
            self.session.add(state)
            await self.session.flush()
        return state
