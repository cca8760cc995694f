"""Support threads ("Ask the exam centre"): `SupportThread` rows and their `SupportMessage`s
(`SupportRepository`).

A candidate's message reaches the staff chat as an outbox row keyed `support:<message id>`;
the sender records Telegram's id of the sent card on that row. `map_sent_cards` copies
those ids onto the messages (`staff_chat_message_id`), so a staff member's reply to a card
finds its thread with one indexed look-up (`get_by_staff_message`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lifecycle import OutboxStatus
from storage.models import Candidate, OutboxMessage, SupportMessage, SupportThread

#: The outbox key prefix of a support message's card or answer.
KEY_PREFIX = "support:"


def outbox_key(message_id: int) -> str:
    return f"{KEY_PREFIX}{message_id}"


class SupportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_thread(
        self, thread_id: int, *, for_update: bool = False
    ) -> SupportThread | None:
        return await self.session.get(
            SupportThread, thread_id, populate_existing=True, with_for_update=for_update
        )

    async def latest_thread(self, candidate_id: int) -> SupportThread | None:
        stmt = (
            select(SupportThread)
            .where(SupportThread.candidate_id == candidate_id)
            .order_by(SupportThread.updated_at.desc(), SupportThread.id.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def add_thread(self, thread: SupportThread) -> SupportThread:
        self.session.add(thread)
        await self.session.flush()
        return thread

    async def add_message(self, message: SupportMessage) -> SupportMessage:
        self.session.add(message)
        await self.session.flush()
        return message

    async def last_message(self, thread_id: int, direction: str) -> SupportMessage | None:
        stmt = (
            select(SupportMessage)
            .where(SupportMessage.thread_id == thread_id, SupportMessage.direction == direction)
            .order_by(SupportMessage.id.desc())
            .limit(1)
        )
        return await self.session.scalar(stmt)

    async def get_by_staff_message(self, staff_chat_message_id: int) -> SupportMessage | None:
        stmt = (
            select(SupportMessage)
            .where(SupportMessage.staff_chat_message_id == staff_chat_message_id)
            .order_by(SupportMessage.id.desc())
            .limit(1)
        )
        return await self.session.scalar(stmt)

    async def map_sent_cards(self, staff_chat_id: int, since: datetime) -> int:
        """Copy the staff chat message id of each card sent since `since` onto its message;
        the number of messages mapped."""
        stmt = select(SupportMessage.id).where(
            SupportMessage.direction == "in",
            SupportMessage.staff_chat_message_id.is_(None),
            SupportMessage.created_at >= since,
        )
        unmapped = list((await self.session.scalars(stmt)).all())
        mapped = 0
        for start in range(0, len(unmapped), 500):
            keys = {outbox_key(i): i for i in unmapped[start : start + 500]}
            sent = await self.session.execute(
                select(OutboxMessage.idempotency_key, OutboxMessage.message_id).where(
                    OutboxMessage.idempotency_key.in_(keys),
                    OutboxMessage.chat_id == staff_chat_id,
                    OutboxMessage.status == OutboxStatus.SENT,
                    OutboxMessage.message_id.is_not(None),
                )
            )
            for key, message_id in sent.all():
                await self.session.execute(
                    update(SupportMessage)
                    .where(SupportMessage.id == keys[key])
                    .values(staff_chat_message_id=message_id)
                    .execution_options(synchronize_session=False)
                )
                mapped += 1
        return mapped

    async def list_by_status(
        self, status: str, limit: int
    ) -> Sequence[tuple[SupportThread, Candidate, int]]:
        """Threads in `status`, the longest waiting first, with their candidate and the
        number of their messages."""
        count = (
            select(func.count())
            .where(SupportMessage.thread_id == SupportThread.id)
            .correlate(SupportThread)
            .scalar_subquery()
        )
        stmt = (
            select(SupportThread, Candidate, count)
            .join(Candidate, Candidate.id == SupportThread.candidate_id)
            .where(SupportThread.status == status)
            .order_by(SupportThread.updated_at, SupportThread.id)
            .limit(limit)
        )
        return [(t, c, int(n)) for t, c, n in (await self.session.execute(stmt)).all()]

    async def count_by_status(self, status: str) -> int:
        stmt = select(func.count()).where(SupportThread.status == status)
        return int(await self.session.scalar(stmt.select_from(SupportThread)) or 0)
