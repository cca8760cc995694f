"""Inbox flow: raw Telegram updates are stored before they are acknowledged.

Entry points: `InboxService.store` (webhook route and polling loop), `mark_processed`
(after the handlers ran), `claim_stale` (recovery of updates whose worker died),
`backlog` (health). A redelivered `update_id` is stored once and processed once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.uow import UowFactory

#: How long a worker may take on one update before another instance may pick it up.
#: Handlers finish in seconds; the lease only matters when a process died mid-update.
PROCESSING_LEASE = timedelta(minutes=2)
#: A failed update that must not be lost (a payment) is tried this often, this far apart.
MAX_ATTEMPTS = 5
RETRY_BACKOFF = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Backlog:
    inbox_pending: int
    outbox_pending: int


def update_user_id(payload: dict[str, Any]) -> int | None:
    """The Telegram user behind a raw update (None for channel posts and the like)."""
    for key, value in payload.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        sender = value.get("from") or value.get("user") or value.get("chat")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return sender["id"]
    return None


class InboxService:
    def __init__(self, uow: UowFactory, clock: Callable[[], datetime]) -> None:
        self._uow = uow
        self._clock = clock

    async def store(self, payload: dict[str, Any]) -> bool:
        """Store one raw update, claimed by this instance; False for a redelivery."""
        return bool(await self.store_many([payload]))

    async def store_many(self, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store updates in one transaction; return the ones not seen before, in order."""
        lease = self._clock() + PROCESSING_LEASE
        fresh = []
        async with self._uow() as uow:
            for payload in payloads:
                update_id = payload["update_id"]
                if await uow.inbox.add_if_new(update_id, update_user_id(payload), payload, lease):
                    fresh.append(payload)
            await uow.commit()
        return fresh

    async def mark_processed(self, update_id: int, error: str | None = None) -> None:
        """Mark an update done and drop its content: the raw update may hold personal data
        (an ID number typed as text), which is kept encrypted elsewhere once processed."""
        async with self._uow() as uow:
            await uow.inbox.mark_processed(
                update_id, self._clock(), error, {"update_id": update_id, "redacted": True}
            )
            await uow.commit()

    async def renew_lease(self, update_id: int) -> bool:
        """Extend this instance's claim on a waiting update; False if it
        was processed meanwhile."""
        async with self._uow() as uow:
            renewed = await uow.inbox.renew_lease(update_id, self._clock() + PROCESSING_LEASE)
            await uow.commit()
            return renewed

    async def retry_later(self, update_id: int) -> bool:
        """Keep a failed update (payload intact) for the recovery sweep, after a backoff.

        After MAX_ATTEMPTS it is marked processed with an error but keeps its payload, so
        nothing is lost and staff can look at it; True means it was given up.
        """
        now = self._clock()
        async with self._uow() as uow:
            attempts = await uow.inbox.get_attempts(update_id)
            if attempts >= MAX_ATTEMPTS:
                await uow.inbox.give_up(update_id, now, "failed_every_attempt")
                await uow.commit()
                return True
            await uow.inbox.postpone(
                update_id, now + RETRY_BACKOFF * max(1, attempts), "handler_failed"
            )
            await uow.commit()
            return False

    async def claim_stale(
        self, limit: int = 100, *, ignore_leases: bool = False
    ) -> list[dict[str, Any]]:
        """Claim stored but unprocessed updates whose lease has run out, oldest first.

        `ignore_leases` is for a single instance starting up (SQLite): every unprocessed
        update was left by its own previous life, so there is no one to wait for.
        """
        now = self._clock()
        async with self._uow() as uow:
            cutoff = datetime.max.replace(tzinfo=now.tzinfo) if ignore_leases else now
            rows = await uow.inbox.claim_stale(cutoff, now + PROCESSING_LEASE, limit)
            await uow.commit()
            return [row.payload for row in rows]

    async def backlog(self) -> Backlog:
        async with self._uow() as uow:
            return Backlog(await uow.inbox.count_pending(), await uow.outbox.count_pending())
