"""Outbox flow: messages queued now, sent later by the sender (`bot.runtime.delivery`).

Entry points: `OutboxService.enqueue` / `enqueue_many` (one row per idempotency key; a
second enqueue of the same key is a no-op), `stats` (counts per status and per broadcast,
for staff and health). The sender's side: `claim` (lease due rows under a fresh claim
token, cancel expired ones), `record` (settle results in one small transaction),
`extend_leases`, `release` and `release_all_leases`. Every write after the claim names
the claim's token and changes nothing if the row was claimed again since (fencing: a
worker frozen past its lease cannot settle what another worker took over).
Every call is one transaction; nothing here talks to Telegram.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.services.errors import InvalidPayload
from bot.services.notify import queue
from storage.uow import UowFactory


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to queue; `payload` is a template reference or literal text (and file)."""

    idempotency_key: str
    chat_id: int
    payload: dict[str, Any]
    kind: str = "notification"
    candidate_id: int | None = None
    not_before: datetime | None = None
    expires_at: datetime | None = None
    broadcast_id: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A leased outbox row with what the sender needs to render and send it."""

    id: int
    chat_id: int
    payload: dict[str, Any]
    attempts: int  # including this claim
    candidate_id: int | None  # the recipient's candidate, when there is one
    language: str | None  # the candidate's own choice
    telegram_language: str | None
    expires_at: datetime | None
    broadcast_id: int | None
    claim_token: str  # the claim's fence: results are recorded under it
    lease_until: datetime  # the claim's lease as claimed (the sender tracks renewals)

    @property
    def paid(self) -> bool:
        return bool(self.payload.get("paid"))


Outcome = Literal["sent", "unreachable", "failed", "cancelled", "retry", "release"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one claimed row; `record` settles a batch of these."""

    id: int
    outcome: Outcome
    error: str | None = None
    claim_token: str | None = None  # the claim it settles; None or a stale token: no change
    candidate_id: int | None = None  # marked unreachable with the row
    not_before: datetime | None = None  # retry: due again then
    count_attempt: bool = True  # retry: False for a 429 (not the message's fault)
    chat_id: int | None = None  # retry: the group moved to a supergroup
    message_id: int | None = None  # sent: Telegram's id of the message


@dataclass(frozen=True, slots=True)
class RenewedLeases:
    """Which claimed rows are still this worker's, and until when."""

    ids: frozenset[int]
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class OutboxStats:
    by_status: dict[str, int]
    by_broadcast: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.by_status.get("pending", 0)


def check_payload(payload: dict[str, Any]) -> None:
    """A payload names a template, or carries text and/or a file; anything else is a bug."""
    if "template" in payload:
        if not isinstance(payload["template"], str) or not isinstance(
            payload.get("params", {}), dict
        ):
            raise InvalidPayload("template must be a name and params a mapping")
        return
    if not any(payload.get(key) for key in ("text", "photo", "document")):
        raise InvalidPayload("payload needs a template, text, photo or document")
    if payload.get("photo") and payload.get("document"):
        raise InvalidPayload("a message carries a photo or a document, not both")


class OutboxService:
    def __init__(self, uow: UowFactory, clock: Callable[[], datetime]) -> None:
        self._uow = uow
        self._clock = clock

    # --- queueing --------------------------------------------------------------------

    async def enqueue(self, message: OutgoingMessage) -> bool:
        """Queue one message; False when its idempotency key was queued before."""
        return bool(await self.enqueue_many([message]))

    async def enqueue_many(self, messages: Iterable[OutgoingMessage]) -> int:
        """Queue messages in one transaction (the sender is woken once it commits); returns how
        many were new."""
        now = self._clock()
        created = 0
        async with self._uow() as uow:
            for m in messages:
                check_payload(m.payload)
                created += await queue(
                    uow,
                    key=m.idempotency_key,
                    chat_id=m.chat_id,
                    candidate_id=m.candidate_id,
                    kind=m.kind,
                    payload=m.payload,
                    not_before=m.not_before or now,
                    expires_at=m.expires_at,
                    broadcast_id=m.broadcast_id,
                )
            await uow.commit()
        return created

    async def stats(self, broadcast_id: int | None = None) -> OutboxStats:
        """Counts per status (of one broadcast, or of everything plus each broadcast)."""
        async with self._uow() as uow:
            if broadcast_id is not None:
                return OutboxStats(await uow.outbox.count_by_status(broadcast_id))
            return OutboxStats(
                await uow.outbox.count_by_status(), await uow.outbox.count_by_broadcast()
            )

    # --- the sender's side -----------------------------------------------------------

    async def claim(self, limit: int, lease: timedelta) -> list[ClaimedMessage]:
        """Cancel expired due rows, then lease up to `limit` due rows, by (not_before, id),
        under a fresh claim token."""
        now = self._clock()
        token = secrets.token_hex(16)
        async with self._uow() as uow:
            await uow.outbox.cancel_expired(now)
            rows = await uow.outbox.claim_due(now, now + lease, limit, token)
            if not rows:
                await uow.commit()
                return []
            recipients = await uow.outbox.list_recipients(
                [r.candidate_id for r in rows if r.candidate_id is not None],
                [r.chat_id for r in rows if r.candidate_id is None and r.chat_id > 0],
            )
            await uow.commit()
        by_id = {cid: (cid, lang, tg) for cid, _tid, lang, tg in recipients}
        by_chat = {tid: (cid, lang, tg) for cid, tid, lang, tg in recipients}
        claimed = []
        for r in rows:
            found = (
                by_id.get(r.candidate_id) if r.candidate_id is not None else by_chat.get(r.chat_id)
            )
            candidate_id, language, telegram_language = found or (r.candidate_id, None, None)
            claimed.append(
                ClaimedMessage(
                    id=r.id,
                    chat_id=r.chat_id,
                    payload=r.payload,
                    attempts=r.attempts,
                    candidate_id=candidate_id,
                    language=language,
                    telegram_language=telegram_language,
                    expires_at=r.expires_at,
                    broadcast_id=r.broadcast_id,
                    claim_token=token,
                    lease_until=now + lease,
                )
            )
        return claimed

    async def record(self, results: Sequence[SendResult]) -> None:
        """Settle a batch of send results in one transaction; a result whose claim was
        lost (another claim since, or no token) changes nothing."""
        now = self._clock()
        groups: dict[tuple[str, Outcome, str | None], list[int]] = {}
        unreachable: dict[int, int] = {}  # row id -> candidate id
        async with self._uow() as uow:
            for r in results:
                if r.claim_token is None:
                    continue
                if r.outcome == "retry":
                    await uow.outbox.retry_later(
                        r.id,
                        r.claim_token,
                        r.not_before or now,
                        r.error,
                        count_attempt=r.count_attempt,
                        chat_id=r.chat_id,
                    )
                    continue
                groups.setdefault((r.claim_token, r.outcome, r.error), []).append(r.id)
                if r.outcome == "unreachable" and r.candidate_id is not None:
                    unreachable[r.id] = r.candidate_id
            for (token, outcome, error), ids in groups.items():
                if outcome == "sent":
                    sent = await uow.outbox.mark_sent(ids, token, now)
                    for r in results:  # kept for cards whose buttons are taken away later
                        if r.id in sent and r.message_id is not None:
                            await uow.outbox.set_message_id(r.id, r.message_id)
                elif outcome == "unreachable":
                    settled = await uow.outbox.mark_unreachable(ids, token, error or "unreachable")
                    for candidate_id in {unreachable[i] for i in settled if i in unreachable}:
                        await uow.candidates.mark_unreachable(candidate_id, now)
                elif outcome == "failed":
                    await uow.outbox.mark_failed(ids, token, error or "failed")
                elif outcome == "cancelled":
                    await uow.outbox.mark_cancelled(ids, token, error or "cancelled")
                else:
                    await uow.outbox.release(ids, token)
            await uow.commit()

    async def release(self, claims: Sequence[tuple[int, str]]) -> int:
        """Give back claimed rows (id, claim token) that were never sent (a clean stop)."""
        if not claims:
            return 0
        n = 0
        async with self._uow() as uow:
            for token, ids in _by_token(claims).items():
                n += await uow.outbox.release(ids, token)
            await uow.commit()
            return n

    async def extend_leases(
        self, claims: Sequence[tuple[int, str]], lease: timedelta
    ) -> RenewedLeases:
        """Renew the leases of claimed rows (id, claim token); which are still this
        worker's (the others were claimed by another worker or settled)."""
        lease_until = self._clock() + lease
        renewed: set[int] = set()
        async with self._uow() as uow:
            for token, ids in _by_token(claims).items():
                renewed.update(await uow.outbox.extend_leases(ids, token, lease_until))
            await uow.commit()
        return RenewedLeases(frozenset(renewed), lease_until)

    async def release_all_leases(self) -> int:
        """A single instance (SQLite) starting up: every lease was its own previous life's."""
        async with self._uow() as uow:
            n = await uow.outbox.release_all_leases()
            await uow.commit()
            return n

    async def next_due_at(self) -> datetime | None:
        async with self._uow() as uow:
            return await uow.outbox.next_due_at()


def _by_token(claims: Iterable[tuple[int, str]]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for row_id, token in claims:
        grouped.setdefault(token, []).append(row_id)
    return grouped
