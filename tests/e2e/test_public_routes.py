"""The public routes on bad input, over HTTP and on both databases: `GET /tickets/verify` with
a reference that is no reference answers 404 `{"valid": false}`; `POST /payments/notify`
with an amount or a time out of range answers 400, and a transaction id replayed with
another amount answers 409 and is flagged in the staff chat. Never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.devtools.sandbox import Sandbox
from storage.models import Registration
from tests.e2e.conftest import STAFF_CHAT_ID, Harness
from tests.e2e.test_payments import (
    PROVIDER_SECRET,
    SIGNATURE_HEADER,
    PaymentsHarness,
    db_rows,
    pay_harness_for,
    registered,
    sign,
)


@pytest.fixture
async def any_pay_bot(sandbox: Sandbox, database_url: str) -> AsyncIterator[PaymentsHarness]:
    """examdesk with the provider route, on SQLite and on PostgreSQL."""
    async for harness in pay_harness_for(sandbox, database_url):
        yield harness


async def get(bot: Harness, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(bot.web_url + path) as response:
        return response.status, await body_of(response)


async def body_of(response: aiohttp.ClientResponse) -> Any:
    """The JSON answer, or the text of one that is not JSON (a 500's)."""
    text = await response.text()
    try:
        return json.loads(text)
    except ValueError:
        return text


async def notify(bot: Harness, **fields: Any) -> tuple[int, Any]:
    body = json.dumps(
        {
            "transaction_id": "wx-route-1",
            "amount_minor": 80000,
            "currency": "CNY",
            "paid_at": "2026-11-26T18:00:00+08:00",
            **fields,
        }
    ).encode()
    headers = {SIGNATURE_HEADER: sign(PROVIDER_SECRET, body), "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bot.web_url}/payments/notify", data=body, headers=headers) as response,
    ):
        return response.status, await body_of(response)


MALFORMED_REFS = (
    "%C3%BC",  # ü
    "%E5%87%86%E8%80%83%E8%AF%81.abc",  # 准考证.abc
    "tk:2027-01-J-0001.%ED%A0%80",  # a lone surrogate's UTF-8 bytes
    "%FF%FE",  # not UTF-8 at all
    "tk:2027-01-J-0001%00.x",  # NUL
    "http%3A%2F%2F%5B%3A%3A1%2F%3Fref%3Dx",  # a check URL with a broken host
    "a" * 4000,
)


async def test_ticket_check_with_a_malformed_reference_is_not_valid(
    any_pay_bot: PaymentsHarness,
) -> None:
    answers = [await get(any_pay_bot, f"/tickets/verify?ref={ref}") for ref in MALFORMED_REFS]
    assert answers == [(404, {"valid": False})] * len(MALFORMED_REFS)


async def test_provider_notice_out_of_range_is_malformed_and_a_changed_replay_conflicts(
    any_pay_bot: PaymentsHarness,
) -> None:
    _, rid, _ = await registered(any_pay_bot, 781)
    [reference] = [
        r.reference
        for r in await db_rows(any_pay_bot.database_url, Registration, Registration.id == rid)
    ]
    answers = [
        await notify(any_pay_bot, reference=reference, amount_minor=2**63),
        await notify(any_pay_bot, reference=reference, paid_at="9999-12-31T23:59:59+00:00"),
        await notify(any_pay_bot, reference=reference, paid_at="9999-12-31T23:00:00-12:00"),
        await notify(any_pay_bot, reference=reference),
        await notify(any_pay_bot, reference=reference),
        await notify(any_pay_bot, reference=reference, amount_minor=90000),
    ]
    assert answers == [
        (400, {"error": "malformed", "field": "amount_minor"}),
        (400, {"error": "malformed", "field": "paid_at"}),
        (400, {"error": "malformed", "field": "paid_at"}),
        (200, {"status": "paid", "replay": False}),
        (200, {"status": "paid", "replay": True}),
        (409, {"status": "conflict", "replay": False}),
    ]
    flagged = await any_pay_bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "wx-route-1" in m.get("text", ""), timeout=15
    )
    assert flagged["text"].startswith("⚠️")
