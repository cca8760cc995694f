"""The outbox aggregate: `OutboxMessage` rows queued once per idempotency key, claimed
under a lease by the sender (FOR UPDATE SKIP LOCKED on PostgreSQL), settled as sent,
failed, unreachable or cancelled, and counted per status and per broadcast.

Fencing: a claim writes a fresh `claim_token` with the lease, and every later write of
the claimant (settle, retry, release, extend) matches that token. A worker that lost its
claim (frozen past the lease while another took the row) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lifecycle import OutboxStatus
from storage.models import Candidate, OutboxMessage
from storage.repositories._sql import _insert, _is_postgresql, _not_held

#: Take back the attempt a claim counted (the row was never handed to Telegram).
_UNCOUNT_ATTEMPT = case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_new(self, **values: Any) -> bool:
        """Queue a message; False when its idempotency key was queued before."""
        stmt = _insert(self.session, OutboxMessage).values(**values)
        result = await self.session.execute(
            stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        return bool(result.rowcount)

    async def has_key(self, idempotency_key: str) -> bool:
        stmt = select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
        return (await self.session.scalar(stmt)) is not None

    async def statuses_like(self, pattern: str) -> list[tuple[str, str]]:
        """(idempotency key, status) of the rows whose key is LIKE `pattern` (one
        notification of many, as a release's `results:%:<release id>`)."""
        stmt = select(OutboxMessage.idempotency_key, OutboxMessage.status).where(
            OutboxMessage.idempotency_key.like(pattern)
        )
        return [(key, status) for key, status in (await self.session.execute(stmt)).all()]

    async def count_pending(self) -> int:
        stmt = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        return int(await self.session.scalar(stmt) or 0)

    def _due(self, now: datetime) -> Any:
        """Pending, due (`not_before` passed), not leased by a live worker, not held."""
        return (
            (OutboxMessage.status == OutboxStatus.PENDING)
            & (OutboxMessage.not_before <= now)
            & or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now)
            & _not_held()
        )

    async def cancel_expired(self, now: datetime) -> int:
        """Cancel due rows whose `expires_at` has passed (reason "expired"); never a leased row."""
        stmt = (
            update(OutboxMessage)
            .where(
                self._due(now),
                OutboxMessage.expires_at.is_not(None),
                OutboxMessage.expires_at <= now,
            )
            .values(status=OutboxStatus.CANCELLED, last_error="expired", lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int, token: str
    ) -> list[OutboxMessage]:
        """Lease up to `limit` due rows under `token`, by (`not_before`, id); each claim
        counts one attempt.

        PostgreSQL: the ids are locked with FOR UPDATE SKIP LOCKED first, so concurrent
        workers pass over each other's rows instead of waiting or taking them twice.
        SQLite: one UPDATE … RETURNING inside BEGIN IMMEDIATE, which serialises writers.
        """
        ids = (
            select(OutboxMessage.id)
            .where(self._due(now))
            .where(or_(OutboxMessage.expires_at.is_(None), OutboxMessage.expires_at > now))
            .order_by(OutboxMessage.not_before, OutboxMessage.id)
            .limit(limit)
        )
        if _is_postgresql(self.session):
            picked = list(
                (await self.session.scalars(ids.with_for_update(skip_locked=True))).all()
            )
            if not picked:
                return []
            where = OutboxMessage.id.in_(picked)
        else:
            where = OutboxMessage.id.in_(ids.scalar_subquery())
        stmt = (
            update(OutboxMessage)
            .where(where)
            .values(
                lease_until=lease_until, claim_token=token, attempts=OutboxMessage.attempts + 1
            )
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        rows = list((await self.session.scalars(stmt)).all())
        return sorted(rows, key=lambda row: (row.not_before, row.id))

    async def next_due_at(self) -> datetime | None:
        """When the next pending row becomes claimable: its `not_before`, or its lease's end."""
        stmt = select(
            func.min(OutboxMessage.not_before).filter(OutboxMessage.lease_until.is_(None)),
            func.min(OutboxMessage.lease_until),
        ).where(OutboxMessage.status == OutboxStatus.PENDING, _not_held())
        free, leased = (await self.session.execute(stmt)).one()
        times = [t for t in (free, leased) if t is not None]
        return min(times) if times else None

    async def mark_sent(self, ids: Sequence[int], token: str, at: datetime) -> list[int]:
        return await self._finish(
            ids, token, status=OutboxStatus.SENT, sent_at=at, last_error=None
        )

    async def set_message_id(self, row_id: int, message_id: int) -> None:
        """Keep Telegram's id of a sent row's message."""
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(message_id=message_id)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def get_sent_message(self, idempotency_key: str) -> tuple[int, int] | None:
        """(chat id, message id) of the row queued under `idempotency_key`, once sent."""
        stmt = select(OutboxMessage.chat_id, OutboxMessage.message_id).where(
            OutboxMessage.idempotency_key == idempotency_key,
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.message_id.is_not(None),
        )
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row else None

    async def mark_failed(self, ids: Sequence[int], token: str, error: str) -> list[int]:
        return await self._finish(ids, token, status=OutboxStatus.FAILED, last_error=error)

    async def mark_unreachable(self, ids: Sequence[int], token: str, error: str) -> list[int]:
        return await self._finish(ids, token, status=OutboxStatus.UNREACHABLE, last_error=error)

    async def mark_cancelled(self, ids: Sequence[int], token: str, reason: str) -> list[int]:
        return await self._finish(ids, token, status=OutboxStatus.CANCELLED, last_error=reason)

    @staticmethod
    def _claimed(ids: Sequence[int], token: str) -> Any:
        """Pending rows among `ids` still held under the claim `token`."""
        return (
            OutboxMessage.id.in_(list(ids))
            & (OutboxMessage.status == OutboxStatus.PENDING)
            & (OutboxMessage.claim_token == token)
        )

    async def _finish(self, ids: Sequence[int], token: str, **values: Any) -> list[int]:
        """Settle claimed rows for good; the ids settled. A row settled before or claimed
        since under another token is left as it was."""
        if not ids:
            return []
        stmt = (
            update(OutboxMessage)
            .where(self._claimed(ids, token))
            .values(lease_until=None, claim_token=None, **values)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.scalars(stmt)).all())

    async def retry_later(
        self,
        row_id: int,
        token: str,
        not_before: datetime,
        error: str | None,
        *,
        count_attempt: bool,
        chat_id: int | None = None,
    ) -> int:
        """Give a row claimed under `token` back, due again at `not_before`.

        `count_attempt=False` (a 429, a row never handed to Telegram) takes back the
        attempt its claim counted.
        """
        values: dict[str, Any] = {
            "lease_until": None,
            "claim_token": None,
            "not_before": not_before,
            "last_error": error,
        }
        if not count_attempt:
            values["attempts"] = _UNCOUNT_ATTEMPT
        if chat_id is not None:
            values["chat_id"] = chat_id
        stmt = (
            update(OutboxMessage)
            .where(self._claimed([row_id], token))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def release(self, ids: Sequence[int], token: str) -> int:
        """Drop the claim on rows that were never sent (a clean stop); uncount the claim."""
        if not ids:
            return 0
        stmt = (
            update(OutboxMessage)
            .where(self._claimed(ids, token))
            .values(lease_until=None, claim_token=None, attempts=_UNCOUNT_ATTEMPT)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def extend_leases(
        self, ids: Sequence[int], token: str, lease_until: datetime
    ) -> list[int]:
        """Renew the lease of rows a live worker still holds under `token`; the ids renewed
        (the others were settled or taken over by another claim)."""
        if not ids:
            return []
        stmt = (
            update(OutboxMessage)
            .where(self._claimed(ids, token))
            .values(lease_until=lease_until)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.scalars(stmt)).all())

    async def release_all_leases(self) -> int:
        """Drop every lease (a single instance starting up: the leases were its own)."""
        stmt = (
            update(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.lease_until.is_not(None),
            )
            .values(lease_until=None, claim_token=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def list_recipients(
        self, candidate_ids: Sequence[int], private_chat_ids: Sequence[int]
    ) -> list[tuple[int, int, str | None, str | None]]:
        """(candidate id, telegram id, chosen language, Telegram language) for message recipients.

        Rows without a candidate id are matched by their private chat id (= the user id).
        """
        if not candidate_ids and not private_chat_ids:
            return []
        stmt = select(
            Candidate.id, Candidate.telegram_id, Candidate.language, Candidate.telegram_language
        ).where(
            or_(
                Candidate.id.in_(list(set(candidate_ids))),
                Candidate.telegram_id.in_(list(set(private_chat_ids))),
            )
        )
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]  # type: ignore[misc]

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue many messages in one statement (a broadcast); known keys are skipped."""
        if rows:
            stmt = _insert(self.session, OutboxMessage).on_conflict_do_nothing(
                index_elements=["idempotency_key"]
            )
            await self.session.execute(stmt, list(rows))

    async def cancel_unleased(self, broadcast_id: int, now: datetime, reason: str) -> int:
        """Cancel a broadcast's pending rows that no live worker holds (held rows finish first)."""
        stmt = (
            update(OutboxMessage)
            .where(
                OutboxMessage.broadcast_id == broadcast_id,
                OutboxMessage.status == OutboxStatus.PENDING,
                or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
            )
            .values(status=OutboxStatus.CANCELLED, last_error=reason, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def count_by_status(self, broadcast_id: int | None = None) -> dict[str, int]:
        stmt = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        if broadcast_id is not None:
            stmt = stmt.where(OutboxMessage.broadcast_id == broadcast_id)
        return {status: int(n) for status, n in (await self.session.execute(stmt)).all()}

    async def count_by_broadcast(self) -> dict[int, dict[str, int]]:
        """{broadcast_id: {status: count}} over rows that belong to a broadcast."""
        stmt = (
            select(OutboxMessage.broadcast_id, OutboxMessage.status, func.count())
            .where(OutboxMessage.broadcast_id.is_not(None))
            .group_by(OutboxMessage.broadcast_id, OutboxMessage.status)
        )
        out: dict[int, dict[str, int]] = {}
        for broadcast_id, status, n in (await self.session.execute(stmt)).all():
            out.setdefault(int(broadcast_id), {})[status] = int(n)
        return out
