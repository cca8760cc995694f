"""Inbox flow: raw Telegram updates are stored before they are acknowledged.

Entry points: `InboxService.receive` (a webhook body) and `receive_many` (a polling batch)
store what can be stored and set aside what cannot, so one bad update never blocks the
others; `mark_processed` (after the handlers ran), `retry_later` (a failed payment),
`claim_stale` (recovery of updates whose instance died), `backlog` (health). A
redelivered `update_id` is stored once and processed once.

Personal data: a string of the update holding an ID-like number (a typed resident ID) is
sealed with the vault before the first write, so the clear number never reaches the
database files (nor their WAL); a claim unseals it, so a replay after a crash hands the
handlers the original text. `mark_processed` then drops the payload.

Ownership: each stored or claimed row names this instance's owner id (its instance lock,
`storage.locks.InstanceLock`): on PostgreSQL, a dead instance's rows are taken by the
others at their next sweep, a live one's never (see `storage.repositories.inbox`).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.crypto import Vault
from bot.domain.updates import (
    MAX_UPDATE_ID,
    UnstorableUpdate,
    check_update,
    clean_text,
    clean_update,
    parse_update,
)
from bot.logs import redact
from storage.locks import InstanceLock
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

#: How long a worker may take on one update before the recovery sweep may take it back
#: (rows without a live owner only: on PostgreSQL a live owner's rows are never taken).
PROCESSING_LEASE = timedelta(minutes=2)
#: How often an update is tried: a failed payment this far apart, and any update re-claimed
#: after crashes (a poison update that kills the process each time) is then set aside.
MAX_ATTEMPTS = 5
RETRY_BACKOFF = timedelta(seconds=30)
#: The set-aside copy of an update is cut at this many bytes (UTF-8).
SET_ASIDE_MAX_BYTES = 64 * 1024
#: The key of a sealed string: {"examdesk:sealed": "<vault token>"} stands for the text.
SEALED = "examdesk:sealed"


@dataclass(frozen=True, slots=True)
class Backlog:
    inbox_pending: int
    outbox_pending: int
    set_aside: int = 0


@dataclass(frozen=True, slots=True)
class Received:
    """What became of a received update: `payload` (cleaned, in clear) to dispatch when
    it is new; `reason` when it was set aside."""

    status: Literal["new", "again", "set_aside"]
    payload: dict[str, Any] | None = None
    reason: str | None = None


def update_user_id(payload: dict[str, Any]) -> int | None:
    """The Telegram user behind a raw update (None for channel posts and the like)."""
    for key, value in payload.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        sender = value.get("from") or value.get("user") or value.get("chat")
        if isinstance(sender, dict) and _is_stored_int(sender.get("id")):
            return sender["id"]
    return None


def _is_stored_int(value: Any) -> bool:
    """An int the BigInteger columns can hold (a forged 2**64 would refuse the row)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and -MAX_UPDATE_ID - 1 <= value <= MAX_UPDATE_ID
    )


def _holds_id_number(text: str) -> bool:
    return redact(text) != text


def seal_personal(payload: Any, vault: Vault) -> Any:
    """A copy of the payload with each string that holds an ID-like number sealed."""
    if isinstance(payload, str):
        return {SEALED: vault.encrypt(payload).decode()} if _holds_id_number(payload) else payload
    if isinstance(payload, dict):
        return {key: seal_personal(value, vault) for key, value in payload.items()}
    if isinstance(payload, list):
        return [seal_personal(value, vault) for value in payload]
    return payload


def unseal_personal(payload: Any, vault: Vault) -> Any:
    """The payload as received (ValueError when a seal cannot be opened: another key)."""
    if isinstance(payload, dict):
        if len(payload) == 1 and isinstance(payload.get(SEALED), str):
            return vault.decrypt(payload[SEALED].encode())
        return {key: unseal_personal(value, vault) for key, value in payload.items()}
    if isinstance(payload, list):
        return [unseal_personal(value, vault) for value in payload]
    return payload


def set_aside_body(text: str) -> str:
    """What staff may read of an update: ID-like numbers masked, storable, cut short."""
    text = clean_text(redact(text).replace("\x00", "\ufffd"))
    return text.encode()[:SET_ASIDE_MAX_BYTES].decode(errors="ignore")


def _dump(payload: Any) -> str:
    try:
        return json.dumps(payload, ensure_ascii=False, default=repr)
    except (RecursionError, ValueError):
        return repr(type(payload))


def _known_id(payload: Any) -> int | None:
    try:
        return check_update(payload)
    except UnstorableUpdate:
        return None


def _describe(exc: Exception) -> str:
    """Why the database refused an update, for staff: the error's first line, no data."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return set_aside_body(f"store_failed: {type(exc).__name__}: {first}")[:500]


class InboxService:
    """Without a vault, strings with ID-like numbers are sealed under a throw-away key:
    fine for callers that store and process in one process (tests)."""

    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        vault: Vault | None = None,
        instance: InstanceLock | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._vault = vault or Vault(secrets.token_urlsafe(32))
        self._instance = instance

    @property
    def _owner(self) -> int | None:
        instance = self._instance
        return instance.owner if instance is not None and instance.held else None

    async def receive(self, body: bytes, source: str = "webhook") -> Received:
        """Store one webhook body, or set it aside when it cannot be stored.

        Raises only when even the set-aside copy cannot be written (the database is
        down): then the caller must not acknowledge the update."""
        text = body.decode(errors="replace")  # the set-aside copy: as received
        try:
            parsed = parse_update(body)
        except UnstorableUpdate as exc:
            return await self._set_aside(source, exc.reason, exc.update_id, text)
        try:
            payload = clean_update(parsed)
            check_update(payload)
        except UnstorableUpdate as exc:
            return await self._set_aside(source, exc.reason, _known_id(parsed), text)
        try:
            fresh = await self._store_or_retry(payload)
        except Exception as exc:  # this update is refused: nobody else must wait for it
            return await self._set_aside(source, _describe(exc), payload["update_id"], text)
        return Received("new", payload) if fresh else Received("again")

    async def receive_many(
        self, payloads: list[dict[str, Any]], source: str = "polling"
    ) -> list[dict[str, Any]]:
        """Store a batch, setting aside what cannot be stored; return the new updates (in
        clear) in order. Raises only when the database is down (nothing is confirmed then:
        updates stored before it come again as redeliveries and their lease brings them
        back)."""
        ready = []
        for raw in payloads:
            try:
                payload = clean_update(raw)
                check_update(payload)
            except UnstorableUpdate as exc:
                await self._set_aside(source, exc.reason, _known_id(raw), _dump(raw))
                continue
            ready.append(payload)
        try:
            return await self.store_many(ready)
        except Exception:
            log.warning("a batch of %d update(s) was refused; storing one by one", len(ready))
        fresh = []
        for payload in ready:
            try:
                if await self._store_or_retry(payload):
                    fresh.append(payload)
            except Exception as exc:
                await self._set_aside(source, _describe(exc), payload["update_id"], _dump(payload))
        return fresh

    async def _store_or_retry(self, payload: dict[str, Any]) -> bool:
        """Store; a failure is tried once more before the update counts as refused, so a
        passing database hiccup does not set aside a good update (a payment, say)."""
        try:
            return await self.store(payload)
        except Exception:
            log.warning("update %s was not stored; trying once more", payload["update_id"])
        return await self.store(payload)

    async def store(self, payload: dict[str, Any]) -> bool:
        """Store one raw update, claimed by this instance; False for a redelivery."""
        return bool(await self.store_many([payload]))

    async def store_many(self, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store updates in one transaction; return the ones not seen before, in order."""
        lease = self._clock() + PROCESSING_LEASE
        owner = self._owner
        fresh = []
        async with self._uow() as uow:
            for payload in payloads:
                sealed = seal_personal(payload, self._vault)
                user_id = update_user_id(payload)
                if await uow.inbox.add_if_new(payload["update_id"], user_id, sealed, lease, owner):
                    fresh.append(payload)
            await uow.commit()
        return fresh

    async def _set_aside(
        self, source: str, reason: str, update_id: int | None, body: str
    ) -> Received:
        async with self._uow() as uow:
            await uow.set_aside.add(source, reason, update_id, set_aside_body(body), self._clock())
            await uow.commit()
        log.warning("update %s set aside (%s, %s)", update_id, source, reason)
        return Received("set_aside", reason=reason)

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

        After MAX_ATTEMPTS it is marked processed with an error but keeps its payload, and
        a copy is set aside, so nothing is lost and staff can look at it; True means it
        was given up.
        """
        now = self._clock()
        async with self._uow() as uow:
            row = await uow.inbox.get(update_id)
            attempts = row.attempts if row is not None else 0
            if attempts >= MAX_ATTEMPTS:
                await self._give_up(
                    uow, update_id, row.payload if row else {}, "failed_every_attempt"
                )
                await uow.commit()
                return True
            await uow.inbox.postpone(
                update_id, now + RETRY_BACKOFF * max(1, attempts), "handler_failed"
            )
            await uow.commit()
            return False

    async def _give_up(
        self, uow: UnitOfWork, update_id: int, stored: dict[str, Any], reason: str
    ) -> None:
        """Processed with an error, payload kept (sealed) in the inbox and a masked copy set
        aside for staff."""
        now = self._clock()
        try:
            body = _dump(unseal_personal(stored, self._vault))
        except ValueError:
            body = _dump(stored)  # sealed under another key: the masked rest is still shown
        await uow.inbox.give_up(update_id, now, reason)
        await uow.set_aside.add("processing", reason, update_id, set_aside_body(body), now)
        log.error("update %s given up (%s); a copy is set aside for staff", update_id, reason)

    async def claim_stale(
        self, limit: int = 100, *, ignore_leases: bool = False
    ) -> list[dict[str, Any]]:
        """Claim stored but unprocessed updates whose instance died or whose lease ran out,
        oldest first, as received (unsealed).

        An update claimed more than MAX_ATTEMPTS times (its processing kills the process
        each time) is given up and set aside instead. `ignore_leases` is for a single
        instance starting up (SQLite): every unprocessed update was left by its own
        previous life, so there is no one to wait for.
        """
        now = self._clock()
        claimed = []
        async with self._uow() as uow:
            cutoff = datetime.max.replace(tzinfo=now.tzinfo) if ignore_leases else now
            rows = await uow.inbox.claim_stale(cutoff, now + PROCESSING_LEASE, limit, self._owner)
            for row in rows:
                if row.attempts > MAX_ATTEMPTS:
                    await self._give_up(uow, row.update_id, row.payload, "crashed_every_attempt")
                    continue
                try:
                    claimed.append(unseal_personal(row.payload, self._vault))
                except ValueError:
                    await self._give_up(uow, row.update_id, row.payload, "cannot_unseal")
            await uow.commit()
        return claimed

    async def backlog(self) -> Backlog:
        async with self._uow() as uow:
            return Backlog(
                await uow.inbox.count_pending(),
                await uow.outbox.count_pending(),
                await uow.set_aside.count(),
            )
