"""The broadcast aggregate: `Broadcast` rows and their status changes, the audiences
they are sent to (candidates with a private chat, chosen by session, level or
registration state group: `bot.domain.lifecycle.BROADCAST_STATE_GROUPS`) and the
recipients not reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lifecycle import (
    ACTIVE,
    BROADCAST_STATE_GROUPS,
    BROADCAST_TICKING,
    OUTBOX_NOT_REACHED,
)
from storage.models import Broadcast, Candidate, ExamSession, OutboxMessage, Registration


class BroadcastRepository:
    """Broadcasts, their audiences (candidates with a private chat) and who was not reached."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, broadcast: Broadcast) -> None:
        self.session.add(broadcast)

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return await self.session.get(Broadcast, broadcast_id, populate_existing=True)

    async def refresh(self, broadcast: Broadcast) -> None:
        """Read the row again after a conditional UPDATE (ours, or one that lost the race)."""
        await self.session.refresh(broadcast)

    async def transition(
        self, broadcast_id: int, from_states: Sequence[str], **values: Any
    ) -> bool:
        """Compare-and-set on the status: False when someone else moved it first."""
        stmt = (
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status.in_(list(from_states)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def set_fingerprint(self, broadcast_id: int, fingerprint: str) -> bool:
        """Claim a progress edit: True only if the message does not already show this."""
        stmt = (
            update(Broadcast)
            .where(
                Broadcast.id == broadcast_id,
                or_(
                    Broadcast.progress_fingerprint.is_(None),
                    Broadcast.progress_fingerprint != fingerprint,
                ),
            )
            .values(progress_fingerprint=fingerprint)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def list_ticking(self) -> Sequence[Broadcast]:
        """Broadcasts whose progress may still change: confirmed and not finished."""
        stmt = (
            select(Broadcast)
            .where(
                Broadcast.status.in_(BROADCAST_TICKING),
                Broadcast.confirmed_at.is_not(None),
                Broadcast.finished_at.is_(None),
            )
            .order_by(Broadcast.id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).all()

    def _audience(self, kind: str, value: str | None) -> Any:
        """Candidate ids of an audience (`all`, `session` code, `level` code, `state` group)."""
        if kind == "all":
            return select(Candidate.id)
        regs = select(Registration.candidate_id).where(Registration.state.in_(ACTIVE))
        if kind == "session":
            regs = regs.join(ExamSession, ExamSession.id == Registration.session_id).where(
                ExamSession.code == value
            )
        elif kind == "level":
            regs = regs.where(Registration.level_code == value)
        elif kind == "state":
            regs = select(Registration.candidate_id).where(
                Registration.state.in_(BROADCAST_STATE_GROUPS[value or ""])
            )
        else:
            raise ValueError(kind)
        return regs

    async def list_audience(self, kind: str, value: str | None) -> list[tuple[int, int, bool]]:
        """(candidate id, private chat id, known unreachable) per recipient, by candidate id."""
        stmt = (
            select(Candidate.id, Candidate.chat_id, Candidate.unreachable_at.is_not(None))
            .where(Candidate.id.in_(self._audience(kind, value)), Candidate.chat_id > 0)
            .order_by(Candidate.id)
        )
        return [(int(a), int(b), bool(c)) for a, b, c in (await self.session.execute(stmt)).all()]

    async def count_audience(self, kind: str, value: str | None) -> tuple[int, int]:
        """(reachable, known unreachable) recipients of an audience."""
        stmt = select(
            func.count().filter(Candidate.unreachable_at.is_(None)),
            func.count().filter(Candidate.unreachable_at.is_not(None)),
        ).where(Candidate.id.in_(self._audience(kind, value)), Candidate.chat_id > 0)
        reachable, unreachable = (await self.session.execute(stmt)).one()
        return int(reachable or 0), int(unreachable or 0)

    async def list_not_reached(self, broadcast_id: int) -> list[tuple[str, int, str, str | None]]:
        """(name, Telegram id, outbox status, reason) of every recipient not reached, by name."""
        stmt = (
            select(
                func.coalesce(Candidate.full_name, Candidate.first_name),
                Candidate.telegram_id,
                OutboxMessage.status,
                OutboxMessage.last_error,
            )
            .join(Candidate, Candidate.id == OutboxMessage.candidate_id)
            .where(
                OutboxMessage.broadcast_id == broadcast_id,
                OutboxMessage.status.in_(OUTBOX_NOT_REACHED),
            )
            .order_by(OutboxMessage.status, Candidate.telegram_id)
        )
        return [
            (str(n or ""), int(t), str(s), e)
            for n, t, s, e in (await self.session.execute(stmt)).all()
        ]
