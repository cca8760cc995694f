"""Payments flow, online provider: notices a payment provider POSTs to `/payments/notify`.

Entry points: a `ProviderAdapter` turns the raw request (body bytes + headers) into a
`ProviderNotice` or raises `BadSignature` / `MalformedNotice`; `ProviderPaymentService.record`
records the notice once per transaction id and settles the registration. `HmacJsonAdapter`
is examdesk's own documented format (docs/payments.md):

    POST /payments/notify
    X-Examdesk-Signature: sha256=<hex HMAC-SHA256 of the raw body, key EXAMDESK_PROVIDER_SECRET>
    {"transaction_id": "...", "reference": "ED...", "amount_minor": 80000, "currency": "CNY",
     "paid_at": "2026-12-01T10:00:00+08:00"}

A WeChat Pay or Alipay adapter implements the same protocol (their own signature scheme
and field names) and plugs in behind the same route and service. No aiohttp here: the
route hands over bytes and a header mapping.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.domain.lifecycle import PAYMENT_UNMATCHED
from bot.services.catalog import CatalogService
from bot.services.errors import ServiceError
from bot.services.notify import audit
from bot.services.payments import (
    PaymentConfig,
    expected_amount,
    record_payment,
    tell_staff_flagged,
)
from storage.models import Payment
from storage.uow import UnitOfWork, UowFactory

SIGNATURE_HEADER = "X-Examdesk-Signature"
METHOD = "provider"
#: `payments.amount_minor` is an Integer column: a larger amount is no real fee either.
MAX_AMOUNT_MINOR = 2**31 - 1
#: How far ahead of our clock `paid_at` may be (a provider's clock or zone slightly off);
#: a payment made later than that is no payment yet.
MAX_CLOCK_SKEW = timedelta(days=1)
#: The status a replayed transaction id with another amount or currency is answered with.
CONFLICT = "conflict"


class BadSignature(ServiceError):
    """The notice is not signed with the shared secret (forged, or a wrong secret)."""


class MalformedNotice(ServiceError):
    """The notice is signed but its body is not a notice; `reason` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProviderNotice:
    transaction_id: str
    reference: str
    amount_minor: int
    currency: str
    paid_at: datetime
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NoticeResult:
    """What the route answers: `http_status` 200 (paid, refund due, replay of either) or 409
    (amount/currency mismatch, unknown reference: recorded and flagged; or `conflict`: a
    transaction id recorded before, now with another amount or currency: flagged, nothing
    recorded)."""

    status: str
    payment_id: int
    replay: bool
    http_status: int


class ProviderAdapter(Protocol):
    """Verify and parse one provider's notice; raise BadSignature or MalformedNotice."""

    name: str

    def parse(self, body: bytes, headers: Mapping[str, str]) -> ProviderNotice: ...


def sign(secret: str, body: bytes) -> str:
    """The header value for `body` (what the provider sends; tests use it too)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HmacJsonAdapter:
    """examdesk's JSON notice, HMAC-SHA256 over the raw body, compared in constant time."""

    name = METHOD

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def parse(self, body: bytes, headers: Mapping[str, str]) -> ProviderNotice:
        given = headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.encode(), sign(self._secret, body).encode()):
            raise BadSignature()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # not UTF-8 or JSON, a huge number, deep nesting
            raise MalformedNotice("not_json") from None
        if not isinstance(data, dict):
            raise MalformedNotice("not_an_object")
        tx, ref, amount, currency, paid_at = (
            data.get(k)
            for k in ("transaction_id", "reference", "amount_minor", "currency", "paid_at")
        )
        if not _printable(tx, 128):
            raise MalformedNotice("transaction_id")
        if not _printable(ref, 32):
            raise MalformedNotice("reference")
        if (
            not isinstance(amount, int)
            or isinstance(amount, bool)
            or not 0 < amount <= MAX_AMOUNT_MINOR
        ):
            raise MalformedNotice("amount_minor")
        if not isinstance(currency, str) or not (
            len(currency) == 3 and currency.isascii() and currency.isalpha()
        ):
            raise MalformedNotice("currency")
        when = _moment(paid_at)
        if when is None:
            raise MalformedNotice("paid_at")
        # Only the checked fields are kept: the rest of the body may hold text the database
        # refuses (NUL, lone surrogates) and is not ours to store.
        raw = {
            "transaction_id": tx,
            "reference": ref,
            "amount_minor": amount,
            "currency": currency,
            "paid_at": paid_at,
        }
        return ProviderNotice(tx, ref.strip().upper(), amount, currency.upper(), when, raw)


def _printable(value: object, limit: int) -> bool:
    """1..limit printable ASCII characters (an id or a reference, nothing else)."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= limit
        and value.isascii()
        and value.isprintable()
    )


def _moment(value: object) -> datetime | None:
    """An ISO 8601 time with its UTC offset, in UTC; None if it is not one (or, near year
    1 or 9999, has no UTC equivalent)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


class ProviderPaymentService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        config: PaymentConfig | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._config = config or PaymentConfig()

    async def record(self, notice: ProviderNotice, *, method: str = METHOD) -> NoticeResult:
        """Record a verified notice once per transaction id; a replay changes nothing.

        Raises MalformedNotice("paid_at") for a payment dated in the future. A replay whose
        amount or currency differs from the recorded one is not the same payment: staff
        are told, and the answer is a `conflict` (409).
        """
        catalog = await self._catalog.current()
        now = self._clock()
        if notice.paid_at > now + MAX_CLOCK_SKEW:
            raise MalformedNotice("paid_at")
        async with self._uow() as uow:
            registration = await uow.payments.registration_by_reference(notice.reference)
            expected = (
                expected_amount(catalog, registration, notice.currency)
                if registration is not None and notice.currency != "XTR"
                else None
            )
            outcome = await record_payment(
                uow,
                registration=registration,
                method=method,
                external_id=notice.transaction_id,
                amount_minor=notice.amount_minor,
                currency=notice.currency,
                expected=expected,
                now=now,
                actor=f"provider:{method}",
                staff_chat_id=self._config.staff_chat_id,
                raw={**notice.raw, "reference": notice.reference},
            )
            if outcome.replay:
                recorded = await uow.payments.get_by_external_id(method, notice.transaction_id)
                assert recorded is not None
                if (recorded.amount_minor, recorded.currency) != (
                    notice.amount_minor,
                    notice.currency,
                ):
                    await self._flag_conflict(uow, recorded, notice, method, now)
                    await uow.commit()
                    return NoticeResult(CONFLICT, recorded.id, False, 409)
            await uow.commit()
        http = 409 if outcome.status in PAYMENT_UNMATCHED else 200
        return NoticeResult(outcome.status, outcome.payment_id, outcome.replay, http)

    async def _flag_conflict(
        self,
        uow: UnitOfWork,
        recorded: Payment,
        notice: ProviderNotice,
        method: str,
        now: datetime,
    ) -> None:
        """Audit and tell staff, once per differing amount: a provider error, or a forgery
        with a leaked secret; either way a person looks at it."""
        details = {
            "external_id": notice.transaction_id,
            "amount_minor": notice.amount_minor,
            "currency": notice.currency,
            "recorded_amount_minor": recorded.amount_minor,
            "recorded_currency": recorded.currency,
        }
        audit(
            uow,
            f"provider:{method}",
            "payment",
            recorded.id,
            "replay_conflict",
            now,
            reason="replay_differs",
            details=details,
        )
        await tell_staff_flagged(
            uow,
            self._config.staff_chat_id,
            now,
            key=f"payment_conflict:{recorded.id}:{notice.amount_minor}:{notice.currency}",
            payment_id=recorded.id,
            reference=notice.reference,
            method=method,
            external_id=notice.transaction_id,
            amount_minor=notice.amount_minor,
            currency=notice.currency,
            expected=recorded.amount_minor,
            why="replay_differs",
        )
