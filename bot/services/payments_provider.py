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
from datetime import datetime
from typing import Any, Protocol

from bot.domain.lifecycle import PAYMENT_UNMATCHED
from bot.services.catalog import CatalogService
from bot.services.errors import ServiceError
from bot.services.payments import PaymentConfig, expected_amount, record_payment
from storage.uow import UowFactory

SIGNATURE_HEADER = "X-Examdesk-Signature"
METHOD = "provider"


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
    (amount/currency mismatch, unknown reference; recorded and flagged either way)."""

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
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MalformedNotice("not_json") from None
        if not isinstance(data, dict):
            raise MalformedNotice("not_an_object")
        tx, ref, amount, currency, paid_at = (
            data.get(k)
            for k in ("transaction_id", "reference", "amount_minor", "currency", "paid_at")
        )
        if not isinstance(tx, str) or not 1 <= len(tx) <= 128:
            raise MalformedNotice("transaction_id")
        if not isinstance(ref, str) or not 1 <= len(ref) <= 32:
            raise MalformedNotice("reference")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise MalformedNotice("amount_minor")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise MalformedNotice("currency")
        try:
            when = datetime.fromisoformat(paid_at) if isinstance(paid_at, str) else None
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise MalformedNotice("paid_at")
        return ProviderNotice(tx, ref.strip().upper(), amount, currency.upper(), when, data)


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
        """Record a verified notice once per transaction id; a replay changes nothing."""
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            registration = await uow.payments.registration_by_reference(notice.reference)
            expected = (
                expected_amount(catalog, registration.level_code, notice.currency)
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
            await uow.commit()
        http = 409 if outcome.status in PAYMENT_UNMATCHED else 200
        return NoticeResult(outcome.status, outcome.payment_id, outcome.replay, http)
