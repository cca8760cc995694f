"""Certificate verification (docs/verification.md): the public page and `/verify` ask here.

Entry points (`VerificationService`):

* `by_number(number, name, client)`: the certificate whose number (by `number_key`) and
  holder name (by `name_key`) both match, else None: one answer for "no such number" and
  "wrong name", so nobody learns which numbers exist;
* `by_code(code, client)`: the certificate of a QR / deep-link code (`verify_<code>`):
  the code alone proves one holds the record; a malformed or unknown code gives None;
* `purge_throttle()`: drop the counters whose window is over.

`client` names who asks, raw: `"ip:<address>"` (the page) or `"tg:<user id>"` (the chat).
It is stored only as a keyed hash (`Vault.lookup_hash`). Each failed look-up counts for
that client; after `max_failures` failures within `window` (from the first of them), every
look-up raises `TooManyAttempts` until the window is over, without reading a certificate.
A successful look-up does not reset the count: otherwise one known certificate between
guesses would undo the limit. The counter lives in the database (`lookup_throttle`), so
every instance shares it.

What a `Verified` answer carries is public: the holder's name masked (`mask_name`), the
level and direction names, the issue date and, for a revoked certificate, the day of the
revocation; never the reason, the full name or anything else about the holder.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.crypto import Vault
from bot.domain.certificates import (
    VERIFY_CODE_PATTERN,
    CertificateStatus,
    mask_name,
    name_key,
    number_key,
)
from bot.services.errors import ServiceError
from storage.repositories.verification import CertificateRecord, VerificationRepository
from storage.uow import UnitOfWork, UowFactory

MAX_FAILURES = 10  # failed look-ups allowed per client and window
WINDOW = timedelta(minutes=15)
# Longer input cannot match a stored certificate (the columns' widths); it is a failure.
MAX_NUMBER_LENGTH = 48
MAX_NAME_LENGTH = 64


class TooManyAttempts(ServiceError):
    """Too many failed look-ups from this client; the next is allowed at `retry_at`,
    `seconds` from now (at least 1)."""

    def __init__(self, retry_at: datetime, seconds: int) -> None:
        super().__init__(retry_at, seconds)
        self.retry_at = retry_at
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class Verified:
    """A verification answer; every field may be shown to anyone."""

    holder_masked: str
    number: str
    level_code: str
    level_names: dict[str, Any]  # {"zh_Hans": ..., "en": ...}
    direction_code: str | None
    direction_names: dict[str, Any] | None
    issued_on: date
    revoked_on: date | None  # the day in the site's zone; None: valid

    @property
    def valid(self) -> bool:
        return self.revoked_on is None


def _repo(uow: UnitOfWork) -> VerificationRepository:
    return uow.verification


class VerificationService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        vault: Vault,
        *,
        site_zone: str = "Asia/Shanghai",
        max_failures: int = MAX_FAILURES,
        window: timedelta = WINDOW,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._vault = vault
        self._zone = ZoneInfo(site_zone)
        self.max_failures = max_failures
        self.window = window

    async def by_number(self, number: str, name: str, client: str) -> Verified | None:
        """The certificate with this number and holder name, or None (counted as a failure).
        Raises TooManyAttempts. Empty input is no look-up: None, not counted."""
        wanted_number, wanted_name = number_key(number), name_key(name)
        if not wanted_number or not wanted_name:
            return None
        async with self._uow() as uow:
            repo = _repo(uow)
            key = await self._admit(repo, client)
            record = None
            if _plausible(wanted_number, MAX_NUMBER_LENGTH) and _plausible(
                wanted_name, MAX_NAME_LENGTH
            ):
                record = await repo.get_by_number_key(wanted_number)
            if record is None or not _same_name(record.holder_name, wanted_name):
                await self._fail(repo, key)
                await uow.commit()
                return None
            return self._answer(record)

    async def by_code(self, code: str, client: str) -> Verified | None:
        """The certificate of a QR / deep-link code, or None (counted as a failure).
        Raises TooManyAttempts."""
        async with self._uow() as uow:
            repo = _repo(uow)
            key = await self._admit(repo, client)
            record = None
            if VERIFY_CODE_PATTERN.fullmatch(code):
                record = await repo.get_by_verify_code(code)
            if record is None:
                await self._fail(repo, key)
                await uow.commit()
                return None
            return self._answer(record)

    async def purge_throttle(self) -> int:
        """Forget the counters whose window is over; how many were dropped."""
        async with self._uow() as uow:
            dropped = await _repo(uow).delete_throttles_before(self._clock() - self.window)
            await uow.commit()
            return dropped

    def client_key(self, client: str) -> str:
        """The stored form of a client: a keyed hash, never the address or the user id."""
        return self._vault.lookup_hash(f"verify-client:{client}")

    async def _admit(self, repo: VerificationRepository, client: str) -> str:
        key = self.client_key(client)
        row = await repo.get_throttle(key)
        if row is not None and row.failures >= self.max_failures:
            retry_at, now = row.window_started_at + self.window, self._clock()
            if retry_at > now:
                # Shown to the minute ("after 09:31"): round up, so trying again at the
                # minute shown works.
                shown = retry_at.replace(second=0, microsecond=0)
                if shown < retry_at:
                    shown += timedelta(minutes=1)
                raise TooManyAttempts(shown, max(1, math.ceil((shown - now).total_seconds())))
        return key

    async def _fail(self, repo: VerificationRepository, key: str) -> None:
        now = self._clock()
        await repo.count_failure(key, now, now - self.window)

    def _answer(self, record: CertificateRecord) -> Verified:
        revoked_on = None
        if record.status == CertificateStatus.REVOKED:
            revoked_at = record.revoked_at or self._clock()
            revoked_on = revoked_at.astimezone(self._zone).date()
        return Verified(
            holder_masked=mask_name(record.holder_name),
            number=record.number,
            level_code=record.level_code,
            level_names=record.level_names,
            direction_code=record.direction_code,
            direction_names=record.direction_names,
            issued_on=record.issued_on,
            revoked_on=revoked_on,
        )


def _plausible(text: str, max_length: int) -> bool:
    """A look-up key that could be stored: not too long, no control character, NUL or
    lone surrogate (PostgreSQL refuses those in a query, and no certificate holds one)."""
    return len(text) <= max_length and text.isprintable()


def _same_name(holder_name: str, wanted_key: str) -> bool:
    holder_key = name_key(holder_name)
    return bool(holder_key) and hmac.compare_digest(holder_key.encode(), wanted_key.encode())
