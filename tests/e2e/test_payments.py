"""Payments end to end against the sandbox: Telegram invoices and Stars, bank receipts reviewed
by staff, bank-statement CSV import, provider notices over HTTP, deadline expiry and late money,
and a successful_payment that survives a crash between acknowledgement and processing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import select

from bot.config import PROJECT_ROOT, Settings
from bot.devtools.sandbox import Sandbox
from bot.domain.catalog import parse_catalog
from bot.services import build_services
from bot.services.payments_provider import SIGNATURE_HEADER, sign
from storage.db import Database
from storage.models import ExamSession, InboxUpdate, Payment, Registration
from storage.uow import UnitOfWork
from tests.e2e.conftest import (
    STAFF_CHAT_ID,
    STAFF_ID,
    STAFF_ID_2,
    Harness,
    exchange,
    harness_for,
    sqlite_url,
)
from tests.e2e.test_registration import Person, become_eligible_for_junior, fill_form
from tests.factories import Clock
from tests.sandbox.images import png

PROVIDER_SECRET = "provider-secret-for-e2e-0123"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(seq: int) -> str:
    """A checksum-valid resident ID number (GB 11643), one per test person."""
    body = f"11010519900307{seq:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


@dataclass
class PaymentsHarness(Harness):
    """The e2e harness with Telegram invoices, Stars and the provider route enabled."""

    def settings(self) -> Settings:
        return (
            super()
            .settings()
            .model_copy(
                update={
                    "payment_provider_token": SecretStr("284685063:TEST:provider"),
                    "payment_stars": True,
                    "provider_secret": SecretStr(PROVIDER_SECRET),
                }
            )
        )


async def load_confirmed_fees(url: str) -> None:
    """The shipped catalogue with every fee confirmed (as staff do once the
    centre publishes them)."""
    document = yaml.safe_load(
        (PROJECT_ROOT / "catalog" / "exam-catalog.yaml").read_text(encoding="utf-8")
    )
    for fee in document["fees"]["levels"].values():
        fee["confirmed"] = True
    database = Database(url)
    try:
        await build_services(database, Clock()).catalog.load(parse_catalog(document))
    finally:
        await database.dispose()


async def pay_harness_for(sandbox: Sandbox, url: str) -> AsyncIterator[PaymentsHarness]:
    """examdesk in polling mode with confirmed fees and every payment method enabled."""
    async for harness in harness_for(
        sandbox, url, webhook=False, harness_type=PaymentsHarness, setup=load_confirmed_fees
    ):
        yield harness


@pytest.fixture
async def pay_bot(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[PaymentsHarness]:
    async for harness in pay_harness_for(sandbox, sqlite_url(tmp_path)):
        yield harness


async def registered(
    bot: Harness, user_id: int, language: str = "en", name: str = "Ann Smith"
) -> tuple[Person, int, list[str]]:
    """A candidate who registered for junior; returns the person, the registration id
    and the replies to submit."""
    p = Person(bot, user_id, language, "Ann")
    await become_eligible_for_junior(p)
    await fill_form(
        p, name=name, id_number=id_number(user_id % 1000), email=f"c{user_id}@example.com"
    )
    replies = await p.press("reg:submit")
    data = {d: t for t, d in p.user.inline_buttons()}
    [rid] = {int(d.rsplit(":", 1)[1]) for d in data if d and d.startswith("pay:receipt:")}
    return p, rid, replies


async def db_rows(url: str, model: type, *where: Any) -> list[Any]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            key = model.__mapper__.primary_key[0]
            found = list(
                (await uow.session.scalars(select(model).where(*where).order_by(key))).all()
            )
            uow.session.expunge_all()
            return found
    finally:
        await database.dispose()


async def reg_state(url: str, rid: int) -> str:
    return (await db_rows(url, Registration, Registration.id == rid))[0].state


async def invoice_of(bot: Harness, p: Person, rid: int, method: str) -> dict[str, Any]:
    sent = await exchange(bot, p.user, p.user.press(f"pay:inv:{rid}:{method}"))
    return next(m for m in sent if "invoice" in m)


# --- Telegram Payments and Stars -----------------------------------------------------------------


async def test_submit_shows_the_fee_deadline_and_methods_then_invoice_pre_checkout_and_payment(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, replies = await registered(pay_bot, 701)
    assert replies[0].startswith("✅ Registered for Junior")
    assert (
        replies[1].startswith("Exam fee for Junior (初级): CN¥800.00.")
        and "Write this reference in the transfer remark: ED" in replies[1]
    )
    assert [t for t, _ in p.user.inline_buttons()] == [
        "💳 Pay CN¥800.00 in Telegram",
        "⭐ Pay with 8500 Stars",
        "🧾 I paid by bank transfer: upload the receipt",
    ]
    invoice = await invoice_of(pay_bot, p, rid, "telegram")
    stored = pay_bot.sandbox.invoice(p.user.id, invoice["message_id"])
    assert (stored["currency"], stored["total_amount"], stored["payload"]) == (
        "CNY",
        80000,
        f"pay:{rid}:telegram",
    )
    paid = await exchange(pay_bot, p.user, p.user.pay(invoice["message_id"]))
    assert paid[-1]["text"].startswith("✅ Payment received for registration ED")
    [payment] = await db_rows(pay_bot.database_url, Payment)
    assert (
        payment.method,
        payment.amount_minor,
        payment.status,
        await reg_state(pay_bot.database_url, rid),
    ) == ("telegram", 80000, "paid", "paid")


async def test_stars_invoice_is_paid_and_a_second_invoice_is_refused_at_pre_checkout(
    pay_bot: PaymentsHarness,
) -> None:
    from bot.devtools.sandbox import PaymentDeclined

    p, rid, _ = await registered(pay_bot, 702)
    first = await invoice_of(pay_bot, p, rid, "stars")
    second = await invoice_of(pay_bot, p, rid, "stars")
    stored = pay_bot.sandbox.invoice(p.user.id, first["message_id"])
    await exchange(pay_bot, p.user, p.user.pay(first["message_id"]))
    with pytest.raises(PaymentDeclined) as declined:
        await p.user.pay(second["message_id"])
    assert (
        stored["currency"],
        stored["total_amount"],
        stored["provider_token"] in (None, ""),
    ) == ("XTR", 8500, True)
    assert (str(declined.value), await reg_state(pay_bot.database_url, rid)) == (
        "This registration is already paid. See /status.",
        "paid",
    )


async def test_pre_checkout_with_a_wrong_amount_is_refused_and_nothing_is_recorded(
    pay_bot: PaymentsHarness,
) -> None:
    from bot.devtools.sandbox import PaymentDeclined

    p, rid, _ = await registered(pay_bot, 703)
    invoice = await invoice_of(pay_bot, p, rid, "telegram")
    with pytest.raises(PaymentDeclined) as declined:
        await p.user.pay(invoice["message_id"], total_amount=100)
    assert str(declined.value).startswith("The amount does not match the fee")
    assert (
        await db_rows(pay_bot.database_url, Payment),
        await reg_state(pay_bot.database_url, rid),
    ) == ([], "submitted")


async def test_same_successful_payment_delivered_twice_is_recorded_once(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 704)
    invoice = await invoice_of(pay_bot, p, rid, "telegram")
    update = await p.user.pay(invoice["message_id"])
    await exchange(
        pay_bot,
        p.user,
        p.user.wait_for_message(lambda m: m.get("text", "").startswith("✅"), timeout=10),
    )
    again = await exchange(pay_bot, p.user, _resend(p, update["message"]["successful_payment"]))
    assert again[-1]["text"].startswith("✅ Payment received for registration ED")
    assert (
        len(await db_rows(pay_bot.database_url, Payment)),
        await reg_state(pay_bot.database_url, rid),
    ) == (1, "paid")


async def _resend(p: Person, successful_payment: dict[str, Any]) -> dict[str, Any]:
    """Telegram delivering the same payment in a second message (same charge id)."""
    return p.user._send(p.user._chat(None), {"successful_payment": successful_payment})


async def _resend_content(p: Person, content: dict[str, Any]) -> dict[str, Any]:
    """A message whose content (e.g. a forwarded file, same Telegram file ids) is given as is."""
    return p.user._send(p.user._chat(None), content)


async def test_successful_payment_acknowledged_but_not_processed_runs_after_restart(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 705)
    invoice = await invoice_of(pay_bot, p, rid, "telegram")
    stored = pay_bot.sandbox.invoice(p.user.id, invoice["message_id"])
    await pay_bot.stop()  # the process dies after the update was stored, before the handlers ran
    update = {
        "update_id": 9_100_705,
        "message": {
            "message_id": 99_705,
            "date": 1_800_000_000,
            "chat": p.user.chat.chat,
            "from": p.user.user,
            "successful_payment": {
                "currency": "CNY",
                "total_amount": 80000,
                "invoice_payload": stored["payload"],
                "telegram_payment_charge_id": "tg_crash_1",
                "provider_payment_charge_id": "prov_crash_1",
            },
        },
    }
    database = Database(pay_bot.database_url)
    try:
        await build_services(database, pay_bot.clock).inbox.store(update)
    finally:
        await database.dispose()
    await pay_bot.start()
    told = await p.user.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ Payment received"), timeout=15
    )
    await pay_bot.runtime.dispatcher.drain(15)
    payments = await db_rows(pay_bot.database_url, Payment)
    pending = await db_rows(pay_bot.database_url, InboxUpdate, InboxUpdate.processed_at.is_(None))
    assert (
        [x.external_id for x in payments],
        await reg_state(pay_bot.database_url, rid),
        pending,
        "ED" in told["text"],
    ) == (["tg_crash_1"], "paid", [], True)


# --- bank transfer receipts and staff review -----------------------------------------------------


async def _upload_receipt(bot: Harness, p: Person, rid: int) -> dict[str, Any]:
    prompt = await p.press(f"pay:receipt:{rid}")
    assert prompt[-1].startswith(("Send the receipt of your bank transfer", "请现在发送"))
    assert (await p.do(p.user.send_sticker()))[-1].startswith(
        ("Please send the receipt as a photo or a PDF", "请以照片或 PDF")
    )
    done = await p.do(p.user.send_document(b"%PDF-1.4 receipt", "receipt.pdf", "application/pdf"))
    assert done[-1].startswith(("📨 Receipt received for ED", "📨 已收到"))
    return await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "#" in (m.get("caption") or ""), timeout=15
    )


async def test_receipt_is_reviewed_by_staff_and_approval_pays(pay_bot: PaymentsHarness) -> None:
    p, rid, _ = await registered(pay_bot, 711)
    card = await _upload_receipt(pay_bot, p, rid)
    assert (
        "document" in card
        and "ED" in card["caption"]
        and await reg_state(pay_bot.database_url, rid) == "payment_review"
    )
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff")
    await staff.press_data(
        card["message_id"],
        card["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        chat=STAFF_CHAT_ID,
    )
    told = await p.user.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ Your bank transfer"), timeout=15
    )
    decided = pay_bot.sandbox.message(STAFF_CHAT_ID, card["message_id"])
    assert (
        decided["caption"].endswith("✅ 已由 Staff 通过"),
        "reply_markup" in decided,
        "ED" in told["text"],
    ) == (True, False, True)
    assert await reg_state(pay_bot.database_url, rid) == "paid"


async def test_receipt_rejected_with_a_reason_tells_the_candidate_in_their_language(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 712, "zh-hans", "张三")
    card = await _upload_receipt(pay_bot, p, rid)
    payment_id = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"].rsplit(":", 1)[1]
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff")
    await staff.press_data(card["message_id"], f"pay:no:{payment_id}", chat=STAFF_CHAT_ID)
    await pay_bot.sandbox.wait_idle(timeout=10)
    reasons = [
        b["callback_data"]
        for row in pay_bot.sandbox.message(STAFF_CHAT_ID, card["message_id"])["reply_markup"][
            "inline_keyboard"
        ]
        for b in row
    ]
    await staff.press_data(
        card["message_id"], f"pay:no:{payment_id}:reference_missing", chat=STAFF_CHAT_ID
    )
    told = await p.user.wait_for_message(lambda m: m.get("text", "").startswith("❌"), timeout=15)
    assert reasons[-2:] == [f"pay:no:{payment_id}:other", f"pay:back:{payment_id}"]
    assert "转账附言中缺少报名编号" in told["text"] and (
        "💳 缴费",
        f"pay:{rid}",
    ) in p.user.inline_buttons(told)
    assert await reg_state(pay_bot.database_url, rid) == "awaiting_payment"


async def test_other_reason_is_typed_in_the_staff_chat(pay_bot: PaymentsHarness) -> None:
    p, rid, _ = await registered(pay_bot, 713)
    card = await _upload_receipt(pay_bot, p, rid)
    payment_id = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"].rsplit(":", 1)[1]
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff")
    await staff.press_data(card["message_id"], f"pay:no:{payment_id}:other", chat=STAFF_CHAT_ID)
    await pay_bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "Staff" in m.get("text", ""), timeout=10
    )
    await staff.send_text("Payer name does not match", chat=STAFF_CHAT_ID)
    told = await p.user.wait_for_message(lambda m: m.get("text", "").startswith("❌"), timeout=15)
    assert (
        "Payer name does not match" in told["text"]
        and await reg_state(pay_bot.database_url, rid) == "awaiting_payment"
    )


async def test_two_staff_members_approving_the_same_receipt_make_one_decision(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 714)
    card = await _upload_receipt(pay_bot, p, rid)
    data = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    staff, staff_2 = (
        pay_bot.sandbox.user(STAFF_ID, first_name="Staff"),
        pay_bot.sandbox.user(STAFF_ID_2, first_name="Other"),
    )
    first = await staff.press_data(card["message_id"], data, chat=STAFF_CHAT_ID)
    second = await staff_2.press_data(card["message_id"], data, chat=STAFF_CHAT_ID)
    answers = [
        (await u.wait_for_callback_answer(q, timeout=10)).get("text")
        for u, q in ((staff, first), (staff_2, second))
    ]
    await pay_bot.sandbox.wait_idle(timeout=10)
    [payment] = await db_rows(pay_bot.database_url, Payment)
    loser = STAFF_ID_2 if payment.decided_by == STAFF_ID else STAFF_ID
    assert sorted(a or "" for a in answers) == [
        "",
        f"已由用户 {payment.decided_by} 处理（凭证已通过）。",
    ]
    assert (
        payment.status,
        loser != payment.decided_by,
        await reg_state(pay_bot.database_url, rid),
    ) == ("approved", True, "paid")


async def test_same_receipt_file_for_two_registrations_is_shown_to_staff(
    pay_bot: PaymentsHarness,
) -> None:
    first, rid_1, _ = await registered(pay_bot, 715)
    second, rid_2, _ = await registered(pay_bot, 716, name="Bob Smith")
    photo = png(600, 800)
    for p, rid in ((first, rid_1), (second, rid_2)):
        await p.press(f"pay:receipt:{rid}")
        await p.do(p.user.send_photo(photo))
    card = await pay_bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "⚠️" in (m.get("caption") or ""), timeout=15
    )
    [reference_1] = [
        r.reference
        for r in await db_rows(pay_bot.database_url, Registration, Registration.id == rid_1)
    ]
    assert reference_1 in card["caption"] and "photo" in card


# --- bank statement CSV --------------------------------------------------------------------------


async def test_statement_csv_import_shows_matched_unmatched_and_ambiguous_rows_then_records(
    pay_bot: PaymentsHarness,
) -> None:
    a, rid_a, _ = await registered(pay_bot, 721)
    _b, rid_b, _ = await registered(pay_bot, 722, name="Bob Smith")
    refs = {r.id: r.reference for r in await db_rows(pay_bot.database_url, Registration)}
    csv_text = (
        "date,amount,reference,payer\n"
        f"2026-11-27,800.00,报名费 {refs[rid_a]},Ann\n"
        f"2026-11-27,80.00,{refs[rid_b]},Bob\n"
        "2026-11-27,800.00,EDAAAAAAAA,Nobody\n"
    )
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    preview = await exchange(
        pay_bot, staff, staff.send_document(csv_text.encode(), "statement.csv", "text/csv")
    )
    text = preview[-1]["text"]
    assert text.startswith(
        "📄 Bank statement statement.csv: 1 matched, 1 ambiguous, 1 unmatched, 0 already recorded."
    )
    assert "amount differs from the fee" in text and "unknown reference" in text
    done = await exchange(pay_bot, staff, staff.press("✅ Record 1 matched payment"))
    assert done[-1]["text"] == "Recorded: 1 paid, 0 flagged for refund, 0 already recorded before."
    told = await a.user.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ Payment received"), timeout=15
    )
    again = await exchange(
        pay_bot, staff, staff.send_document(csv_text.encode(), "statement.csv", "text/csv")
    )
    assert (
        "ED" in told["text"],
        await reg_state(pay_bot.database_url, rid_a),
        await reg_state(pay_bot.database_url, rid_b),
    ) == (True, "paid", "submitted")
    assert again[-1]["text"].startswith(
        "📄 Bank statement statement.csv: 0 matched, 1 ambiguous, 1 unmatched, 1 already recorded."
    )
    bad = await exchange(
        pay_bot, staff, staff.send_document(b"just,some\n1,2\n", "wrong.csv", "text/csv")
    )
    assert bad[-1]["text"].startswith("I could not read this file as a bank statement.")


# --- provider notices ----------------------------------------------------------------------------


async def _notify(
    bot: Harness, body: bytes, signature: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {
        SIGNATURE_HEADER: signature if signature is not None else sign(PROVIDER_SECRET, body),
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bot.web_url}/payments/notify", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


def _notice(reference: str, amount: int = 80000, tx: str = "wx-4200001") -> bytes:
    return json.dumps(
        {
            "transaction_id": tx,
            "reference": reference,
            "amount_minor": amount,
            "currency": "CNY",
            "paid_at": "2026-11-27T10:00:00+08:00",
        }
    ).encode()


async def test_provider_notice_is_verified_idempotent_and_checked_against_the_fee(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 731)
    [reference] = [
        r.reference
        for r in await db_rows(pay_bot.database_url, Registration, Registration.id == rid)
    ]
    results = [
        await _notify(pay_bot, _notice(reference), signature="sha256=" + "0" * 64),
        await _notify(pay_bot, b"{not json", signature=sign(PROVIDER_SECRET, b"{not json")),
        await _notify(pay_bot, _notice(reference, amount=1, tx="wx-short")),
        await _notify(pay_bot, _notice(reference)),
        await _notify(pay_bot, _notice(reference)),
    ]
    assert [status for status, _ in results] == [401, 400, 409, 200, 200]
    assert (results[2][1], results[3][1], results[4][1]) == (
        {"status": "mismatch", "replay": False},
        {"status": "paid", "replay": False},
        {"status": "paid", "replay": True},
    )
    told = await p.user.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ Payment received"), timeout=15
    )
    flagged = await pay_bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "wx-short" in m.get("text", ""), timeout=15
    )
    assert (
        "ED" in told["text"],
        flagged["text"].startswith("⚠️"),
        len(await db_rows(pay_bot.database_url, Payment)),
    ) == (True, True, 2)


# --- deadlines -----------------------------------------------------------------------------------


async def test_deadline_expiry_frees_the_seat_and_a_late_payment_is_flagged_for_refund(
    pay_bot: PaymentsHarness,
) -> None:
    from bot.devtools.sandbox import PaymentDeclined

    p, rid, _ = await registered(pay_bot, 741)
    [registration] = await db_rows(pay_bot.database_url, Registration, Registration.id == rid)
    [session] = await db_rows(
        pay_bot.database_url, ExamSession, ExamSession.id == registration.session_id
    )
    invoice = await invoice_of(pay_bot, p, rid, "telegram")
    pay_bot.clock.now = session.payment_deadline_at + timedelta(minutes=1)
    assert await pay_bot.runtime.services.payments.expire_unpaid() == 1
    told = await p.user.wait_for_message(lambda m: m.get("text", "").startswith("⌛"), timeout=15)
    with pytest.raises(PaymentDeclined) as declined:
        await p.user.pay(invoice["message_id"])
    status, body = await _notify(pay_bot, _notice(registration.reference, tx="wx-late"))
    flagged = await pay_bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "wx-late" in m.get("text", ""), timeout=15
    )
    [after] = await db_rows(pay_bot.database_url, ExamSession, ExamSession.id == session.id)
    [late] = await db_rows(pay_bot.database_url, Payment)
    assert (registration.reference in told["text"], str(declined.value)) == (
        True,
        "This registration cannot be paid any more. See /status.",
    )
    assert (status, body["status"], late.needs_refund, after.seats_taken, session.seats_taken) == (
        200,
        "refund_due",
        True,
        session.seats_taken - 1,
        session.seats_taken,
    )
    assert "/history " + registration.reference in flagged["text"]
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    history = await exchange(
        pay_bot, staff, staff.send_command("/history", registration.reference)
    )
    assert (
        "the bot: expired (registered, not paid yet → expired (not paid in time)). "
        "Reason: the payment deadline passed" in history[-1]["text"]
    )
    assert "Payment #1: online payment, CN¥800.00, to be refunded" in history[-1]["text"]


class _FailOnce:
    """A handler group that fails the first payment update it sees, as a
    passing database error would."""

    def __init__(self) -> None:
        self.failed = False

    async def __call__(self, update: Any, context: Any) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("database went away for a moment")


async def test_successful_payment_whose_handler_failed_is_kept_and_recorded_on_retry(
    pay_bot: PaymentsHarness,
) -> None:
    from datetime import timedelta

    from telegram.ext import MessageHandler, filters

    p, rid, _ = await registered(pay_bot, 706)
    invoice = await invoice_of(pay_bot, p, rid, "telegram")
    pay_bot.runtime.application.add_handler(
        MessageHandler(filters.SUCCESSFUL_PAYMENT, _FailOnce()), group=-2
    )
    first = await exchange(pay_bot, p.user, p.user.pay(invoice["message_id"]))
    kept = await db_rows(pay_bot.database_url, InboxUpdate, InboxUpdate.processed_at.is_(None))
    # The failing group runs before identity chose the translator; the error handler
    # chooses again: the candidate's English (issue 9, item 8).
    assert ([m.get("text", "")[:10] for m in first], len(kept)) == (["Sorry, som"], 1)
    assert (
        await db_rows(pay_bot.database_url, Payment),
        kept[0].error,
        "successful_payment" in kept[0].payload["message"],
    ) == ([], "handler_failed", True)
    pay_bot.clock.now += timedelta(minutes=1)  # past the retry backoff
    retried = await exchange(pay_bot, p.user, pay_bot.runtime.recover())
    [payment] = await db_rows(pay_bot.database_url, Payment)
    assert (
        retried[-1]["text"].startswith("✅ Payment received"),
        payment.status,
        await reg_state(pay_bot.database_url, rid),
    ) == (True, "paid", "paid")


async def test_same_receipt_file_sent_again_after_rejection_gets_a_clear_answer(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 714)
    card = await _upload_receipt(pay_bot, p, rid)
    payment_id = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"].rsplit(":", 1)[1]
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff")
    await staff.press_data(
        card["message_id"], f"pay:no:{payment_id}:unreadable", chat=STAFF_CHAT_ID
    )
    await p.user.wait_for_message(lambda m: m.get("text", "").startswith("❌"), timeout=15)
    await exchange(pay_bot, p.user, p.user.press(f"pay:{rid}"))
    await exchange(pay_bot, p.user, p.user.press(f"pay:receipt:{rid}"))
    # The very same file again (a forward keeps Telegram's file ids), not a new upload.
    again = await exchange(pay_bot, p.user, _resend_content(p, {"document": card["document"]}))
    assert [m["text"] for m in again] == [
        "The exam centre has already reviewed this very file for this registration. "
        "Please send a new receipt (press 🧾 again in /status), or contact the staff."
    ]
    assert await reg_state(pay_bot.database_url, rid) == "awaiting_payment"
