"""Provider notices at the edges, on real databases (SQLite and PostgreSQL): amounts past the
column, times that cannot have happened, bodies the database could not store, and a
transaction id replayed with another amount (a conflict flagged to staff, not a replay)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bot.services.payments_provider import (
    MAX_CLOCK_SKEW,
    HmacJsonAdapter,
    MalformedNotice,
    ProviderNotice,
    sign,
)
from storage.db import Database
from storage.models import AuditEntry, OutboxMessage, Payment
from tests.factories import NOW, Clock
from tests.services.test_payments import STAFF_CHAT, register, rows, state, world

SECRET = "provider-secret-0123456789"
ADAPTER = HmacJsonAdapter(SECRET)


def body(reference: str = "EDAAAAAAAA", **fields: Any) -> bytes:
    notice = {
        "transaction_id": "wx-edge-1",
        "reference": reference,
        "amount_minor": 80000,
        "currency": "CNY",
        "paid_at": "2026-11-26T18:00:00+08:00",
    }
    return json.dumps({**notice, **fields}).encode()


def parse(raw: bytes) -> ProviderNotice:
    return ADAPTER.parse(raw, {"X-Examdesk-Signature": sign(SECRET, raw)})


def refused_field(raw: bytes) -> str | None:
    try:
        parse(raw)
    except MalformedNotice as exc:
        return exc.reason
    return None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (body(amount_minor=2**63), "amount_minor"),
        (body(amount_minor=2**31), "amount_minor"),  # past the Integer column
        (body(amount_minor=10**40), "amount_minor"),
        (body(paid_at="9999-12-31T23:00:00-12:00"), "paid_at"),  # no UTC equivalent
        (body(paid_at="0001-01-01T00:30:00+01:00"), "paid_at"),
        (body(paid_at="2026-13-01T00:00:00+08:00"), "paid_at"),
        (body(paid_at="soon"), "paid_at"),
        (body(paid_at="2026-11-26T18:00:00"), "paid_at"),  # no offset: which zone?
        (body(paid_at=20261126), "paid_at"),
        (body(transaction_id="wx\u0000-1"), "transaction_id"),  # PostgreSQL refuses NUL
        (body(transaction_id="wx-\ud800"), "transaction_id"),  # a lone surrogate
        (body(reference="ＥＤ１２３"), "reference"),
        (body(currency="ÄÖÜ"), "currency"),
        (b'{"amount_minor": ' + b"9" * 5000 + b"}", "not_json"),  # past Python's int digits
        (b"[" * 100_000 + b"]" * 100_000, "not_json"),  # nesting deeper than the parser goes
    ],
)
def test_adapter_out_of_range_or_unstorable_notice_is_malformed(raw: bytes, field: str) -> None:
    assert refused_field(raw) == field


def test_adapter_keeps_only_the_checked_fields_of_the_body() -> None:
    notice = parse(body(note="\u0000 \ud800", nested={"deep": [1, 2]}))
    assert sorted(notice.raw) == [
        "amount_minor",
        "currency",
        "paid_at",
        "reference",
        "transaction_id",
    ]


async def test_notice_paid_in_the_far_future_is_malformed_and_records_nothing(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    _, reference = await register(services, database, 1201)
    late = NOW + MAX_CLOCK_SKEW + timedelta(minutes=1)
    reasons = []
    for paid_at in ("9999-12-31T23:59:59+00:00", late.isoformat()):
        with pytest.raises(MalformedNotice) as exc:
            await services.provider_payments.record(parse(body(reference, paid_at=paid_at)))
        reasons.append(exc.value.reason)
    near = await services.provider_payments.record(
        parse(body(reference, paid_at=(NOW + timedelta(hours=14)).isoformat()))
    )
    assert (reasons, near.status, len(await rows(database, Payment))) == (
        ["paid_at", "paid_at"],
        "paid",
        1,
    )


async def test_notice_with_unstorable_text_in_other_fields_is_recorded(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, reference = await register(services, database, 1202)
    result = await services.provider_payments.record(
        parse(body(reference, note="\u0000", extra="\ud800"))
    )
    assert (result.status, result.http_status, await state(database, rid)) == (
        "paid",
        200,
        "paid",
    )


async def test_replay_with_another_amount_is_a_conflict_flagged_to_staff_once(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, reference = await register(services, database, 1203)
    record = services.provider_payments.record

    first = await record(parse(body(reference)))
    same = await record(parse(body(reference)))
    other = await record(parse(body(reference, amount_minor=1)))
    again = await record(parse(body(reference, amount_minor=1)))
    currency = await record(parse(body(reference, currency="USD")))

    answers = [(r.status, r.replay, r.http_status) for r in (first, same, other, again, currency)]
    assert answers == [
        ("paid", False, 200),
        ("paid", True, 200),
        ("conflict", False, 409),
        ("conflict", False, 409),
        ("conflict", False, 409),
    ]
    cards = [
        (m.payload["template"], m.payload["params"]["why"], m.payload["params"]["amount_minor"])
        for m in await rows(database, OutboxMessage, OutboxMessage.chat_id == STAFF_CHAT)
        if m.payload["params"].get("why") == "replay_differs"
    ]
    audited = [e.action for e in await rows(database, AuditEntry) if e.action == "replay_conflict"]
    [payment] = await rows(database, Payment)
    assert (cards, len(audited), payment.amount_minor, await state(database, rid)) == (
        [("payment_flagged", "replay_differs", 1), ("payment_flagged", "replay_differs", 80000)],
        3,
        80000,
        "paid",
    )
