"""PaymentService, StatementService and ProviderPaymentService on real databases (SQLite and
PostgreSQL): idempotent recording, first staff decision wins, deadline expiry, refunds flagged."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.config import PROJECT_ROOT
from bot.domain.catalog import parse_catalog
from bot.services import Services, build_services
from bot.services.errors import (
    AlreadyDecided,
    AlreadyPaid,
    InvalidState,
    PaymentUnavailable,
    StaleStep,
)
from bot.services.payments import PaymentConfig
from bot.services.payments_bank import parse_statement
from bot.services.payments_provider import BadSignature, HmacJsonAdapter, MalformedNotice, sign
from storage.db import Database
from storage.models import AuditEntry, ExamSession, OutboxMessage, Payment, Registration
from storage.uow import UnitOfWork
from tests.factories import Clock, make_candidates, make_session

STAFF_CHAT = -100500
STAFF = 9001
SECRET = "provider-secret-0123456789"


def catalog_document(*, confirmed: bool = True) -> dict[str, Any]:
    doc = yaml.safe_load(
        (PROJECT_ROOT / "catalog" / "exam-catalog.yaml").read_text(encoding="utf-8")
    )
    for fee in doc["fees"]["levels"].values():
        fee["confirmed"] = confirmed
    return doc


async def world(
    database: Database, clock: Clock, *, confirmed: bool = True, capacity: int = 20
) -> tuple[Services, int]:
    services = build_services(
        database,
        clock,
        payment_config=PaymentConfig(staff_chat_id=STAFF_CHAT, telegram=True, stars=True),
    )
    await services.catalog.load(parse_catalog(catalog_document(confirmed=confirmed)))
    session_id = await make_session(
        database, "S1", capacity=capacity, levels=("junior", "intermediate"), now=clock.now
    )
    return services, session_id


async def register(
    services: Services, database: Database, telegram_id: int, *, waitlist: bool = False
) -> tuple[int, str]:
    await make_candidates(database, [telegram_id])
    result = await services.registration.submit(
        telegram_id,
        session_code="S1",
        level_code="junior",
        direction_code=None,
        components=[],
        eligibility={"status": "eligible", "route": "J2"},
        join_waitlist=waitlist,
    )
    return result.registration.id, result.registration.reference


async def rows(database: Database, model: type, *where: Any) -> list[Any]:
    async with UnitOfWork(database.sessions) as uow:
        found = list(
            (await uow.session.scalars(select(model).where(*where).order_by(model.id))).all()
        )
        uow.session.expunge_all()  # plain snapshots: the rollback on leave must not expire them
        return found


async def state(database: Database, registration_id: int) -> str:
    return (await rows(database, Registration, Registration.id == registration_id))[0].state


async def templates(database: Database, chat_id: int | None = None) -> list[str]:
    found = await rows(
        database, OutboxMessage, *([OutboxMessage.chat_id == chat_id] if chat_id else [])
    )
    return [m.payload.get("template") for m in found]


# --- offer and Telegram invoices -----------------------------------------------------------------


async def test_offer_hides_an_unconfirmed_fee_and_offers_no_invoice(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock, confirmed=False)
    rid, reference = await register(services, database, 1001)
    offer = await services.payments.offer(1001, rid)
    assert (offer.amount, offer.methods, offer.reference) == (None, ("bank_transfer",), reference)
    with pytest.raises(PaymentUnavailable) as exc:
        await services.payments.invoice(1001, rid, "telegram")
    assert exc.value.reason == "fee_unconfirmed"


async def test_offer_with_a_confirmed_fee_lists_every_enabled_method(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1002)
    offer = await services.payments.offer(1002, rid)
    spec = await services.payments.invoice(1002, rid, "stars")
    assert (str(offer.amount), offer.methods, spec.currency, spec.amount_minor) == (
        "800",
        ("bank_transfer", "telegram", "stars"),
        "XTR",
        8500,
    )


async def test_pre_checkout_checks_amount_state_and_deadline_against_the_database(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1003)
    payments = services.payments
    await payments.check_pre_checkout(f"pay:{rid}:telegram", "CNY", 80000)
    refusals = []
    for payload, currency, amount in (
        (f"pay:{rid}:telegram", "CNY", 100),
        (f"pay:{rid}:stars", "CNY", 80000),
        ("forged", "CNY", 80000),
    ):
        with pytest.raises(PaymentUnavailable) as exc:
            await payments.check_pre_checkout(payload, currency, amount)
        refusals.append(exc.value.reason)
    clock.now += timedelta(days=20)
    with pytest.raises(PaymentUnavailable) as late:
        await payments.check_pre_checkout(f"pay:{rid}:telegram", "CNY", 80000)
    assert (refusals, late.value.reason) == (
        ["amount_mismatch", "amount_mismatch", "unknown_invoice"],
        "deadline_passed",
    )


async def test_successful_payment_delivered_twice_is_recorded_once(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1004)
    first = await services.payments.record_telegram_payment(
        f"pay:{rid}:telegram", "CNY", 80000, "tg_charge_1", "prov_1"
    )
    second = await services.payments.record_telegram_payment(
        f"pay:{rid}:telegram", "CNY", 80000, "tg_charge_1", "prov_1"
    )
    with pytest.raises(AlreadyPaid):
        await services.payments.check_pre_checkout(f"pay:{rid}:telegram", "CNY", 80000)
    payments = await rows(database, Payment)
    assert (
        (first.status, first.replay),
        (second.status, second.replay),
        len(payments),
        await state(database, rid),
    ) == (("paid", False), ("paid", True), 1, "paid")


# --- bank transfer receipts ----------------------------------------------------------------------


async def _receipt(services: Services, telegram_id: int, rid: int, unique: str = "file-u1") -> Any:
    await services.payments.start_receipt(telegram_id, rid)
    return await services.payments.submit_receipt(
        telegram_id, file_id=f"id-{unique}", file_unique_id=unique, kind="photo"
    )


async def test_receipt_then_approval_pays_and_tells_the_candidate(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1005)
    receipt = await _receipt(services, 1005, rid)
    under_review = await state(database, rid)
    decision = await services.payments.decide_receipt(receipt.payment_id, STAFF, approve=True)
    assert (under_review, decision.registration_state, await templates(database)) == (
        "payment_review",
        "paid",
        ["payment_receipt_review", "payment_receipt_decided"],
    )


async def test_receipt_rejected_with_a_listed_reason_goes_back_to_awaiting_payment(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1006)
    receipt = await _receipt(services, 1006, rid)
    with pytest.raises(InvalidState):
        await services.payments.decide_receipt(
            receipt.payment_id, STAFF, approve=False, reason="made_up"
        )
    await services.payments.decide_receipt(
        receipt.payment_id, STAFF, approve=False, reason="amount_wrong"
    )
    told = [
        m.payload["params"]
        for m in await rows(database, OutboxMessage, OutboxMessage.chat_id == 1006)
    ]
    assert (await state(database, rid), told[0]["reason"], told[0]["approved"]) == (
        "awaiting_payment",
        "amount_wrong",
        False,
    )


async def test_other_reason_typed_by_the_staff_member_rejects_the_receipt(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, reference = await register(services, database, 1007)
    receipt = await _receipt(services, 1007, rid)
    assert await services.payments.reject_with_typed_reason(STAFF, "chatter before asking") is None
    assert await services.payments.ask_reason(receipt.payment_id, STAFF) == reference
    decision = await services.payments.reject_with_typed_reason(
        STAFF, "  Payer name  differs from the candidate "
    )
    assert (
        decision.reason,
        await state(database, rid),
        await services.payments.reject_with_typed_reason(STAFF, "again"),
    ) == ("Payer name differs from the candidate", "awaiting_payment", None)


async def test_two_staff_members_deciding_at_once_make_one_decision(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1008)
    receipt = await _receipt(services, 1008, rid)
    results = await asyncio.gather(
        services.payments.decide_receipt(receipt.payment_id, STAFF, approve=True),
        services.payments.decide_receipt(
            receipt.payment_id, STAFF + 1, approve=False, reason="unreadable"
        ),
        return_exceptions=True,
    )
    losers = [r for r in results if isinstance(r, AlreadyDecided)]
    [payment] = await rows(database, Payment)
    assert (
        len(losers),
        losers[0].decided_by == payment.decided_by,
        len(await templates(database, 1008)),
    ) == (1, True, 1)


async def test_same_receipt_file_for_another_registration_is_shown_to_staff(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    first, first_ref = await register(services, database, 1009)
    second, _ = await register(services, database, 1010)
    await _receipt(services, 1009, first, unique="same-file")
    result = await _receipt(services, 1010, second, unique="same-file")
    cards = [
        m.payload["params"]
        for m in await rows(database, OutboxMessage, OutboxMessage.chat_id == STAFF_CHAT)
    ]
    assert (result.same_file_on, cards[-1]["same_file_on"]) == ((first_ref,), [first_ref])


async def test_receipt_without_pressing_upload_is_a_stale_step(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    await register(services, database, 1011)
    with pytest.raises(StaleStep):
        await services.payments.submit_receipt(1011, file_id="x", file_unique_id="u", kind="photo")


# --- deadlines -----------------------------------------------------------------------------------


async def test_deadline_expiry_frees_the_seat_promotes_the_waitlist_spares_receipts_under_review(
    database: Database,
) -> None:
    clock = Clock()
    services, session_id = await world(database, clock, capacity=2)
    unpaid, _ = await register(services, database, 1012)
    reviewed, _ = await register(services, database, 1013)
    waiting, _ = await register(services, database, 1014, waitlist=True)
    await _receipt(services, 1013, reviewed)
    clock.now += timedelta(days=17)
    expired = await services.payments.expire_unpaid()
    again = await services.payments.expire_unpaid()
    [session] = await rows(database, ExamSession, ExamSession.id == session_id)
    assert (
        expired,
        again,
        await state(database, unpaid),
        await state(database, reviewed),
        await state(database, waiting),
        session.seats_taken,
    ) == (1, 0, "expired", "payment_review", "offered", 2)
    assert "payment_expired" in await templates(database, 1012)


async def test_late_payment_for_an_expired_registration_is_recorded_and_flagged_for_refund(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1015)
    clock.now += timedelta(days=17)
    await services.payments.expire_unpaid()
    outcome = await services.payments.record_telegram_payment(
        f"pay:{rid}:telegram", "CNY", 80000, "tg_late", None
    )
    [payment] = await rows(database, Payment)
    assert (outcome.status, payment.needs_refund, payment.reason, await state(database, rid)) == (
        "refund_due",
        True,
        "registration_expired",
        "expired",
    )
    assert await templates(database, STAFF_CHAT) == ["payment_flagged"]


async def test_receipt_rejected_after_the_deadline_expires_the_registration(
    database: Database,
) -> None:
    clock = Clock()
    services, session_id = await world(database, clock)
    rid, _ = await register(services, database, 1016)
    receipt = await _receipt(services, 1016, rid)
    clock.now += timedelta(days=17)
    await services.payments.decide_receipt(
        receipt.payment_id, STAFF, approve=False, reason="not_received"
    )
    [session] = await rows(database, ExamSession, ExamSession.id == session_id)
    assert (await state(database, rid), session.seats_taken) == ("expired", 0)


# --- bank statement CSV --------------------------------------------------------------------------


def _csv(lines: list[str]) -> bytes:
    return ("date,amount,reference,payer\n" + "\n".join(lines) + "\n").encode("utf-8")


async def test_statement_import_classifies_rows_and_applies_only_matched_ones(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    matched, ref_m = await register(services, database, 1020)
    wrong_amount, ref_w = await register(services, database, 1021)
    _twice, ref_t = await register(services, database, 1022)
    data = _csv(
        [
            f"2026-11-27,800.00,学费 {ref_m},张三",
            f"2026-11-27,700.00,{ref_w},李四",
            f"2026-11-27,800.00,{ref_t},王五",
            f"2026-11-28,800.00,{ref_t},王五",
            "2026-11-28,800.00,EDAAAAAAAA,赵六",
            "2026-11-28,800.00,no reference here,钱七",
            "yesterday,800.00,x,y",
        ]
    )
    preview = await services.statements.preview(STAFF, "nov.csv", data)
    statuses = [(r.status, r.why) for r in preview.rows]
    applied = await services.statements.apply(preview.import_id, STAFF)
    with pytest.raises(AlreadyDecided):
        await services.statements.apply(preview.import_id, STAFF)
    again = await services.statements.preview(STAFF, "nov.csv", data)
    assert statuses == [
        ("matched", None),
        ("ambiguous", "amount_differs"),
        ("ambiguous", "reference_repeated"),
        ("ambiguous", "reference_repeated"),
        ("unmatched", "unknown_reference"),
        ("unmatched", "no_reference"),
        ("unmatched", "bad_date"),
    ]
    assert (
        applied.paid,
        await state(database, matched),
        await state(database, wrong_amount),
        again.rows[0].status,
    ) == (1, "paid", "submitted", "recorded")


def test_statement_without_the_documented_header_is_refused() -> None:
    from bot.services.errors import InvalidAnswer

    with pytest.raises(InvalidAnswer) as exc:
        parse_statement(b"when,how much\n2026-11-27,800\n")
    assert exc.value.reason == "header"


def test_statement_in_gb18030_is_read() -> None:
    rows = parse_statement(
        'date,amount,reference,payer\n2026/11/27,"1,200.00",EDABCDEFGH 报名费,张三\n'.encode(
            "gb18030"
        )
    )
    assert (rows[0]["date"], rows[0]["amount_minor"], rows[0]["reference"], rows[0]["payer"]) == (
        "2026-11-27",
        120000,
        "EDABCDEFGH",
        "张三",
    )


# --- provider notices ----------------------------------------------------------------------------


def _notice(reference: str, amount: int = 80000, tx: str = "wx-1", currency: str = "CNY") -> bytes:
    return json.dumps(
        {
            "transaction_id": tx,
            "reference": reference,
            "amount_minor": amount,
            "currency": currency,
            "paid_at": "2026-11-27T10:00:00+08:00",
        }
    ).encode()


def test_provider_adapter_refuses_forged_and_malformed_notices() -> None:
    adapter = HmacJsonAdapter(SECRET)
    body = _notice("EDAAAAAAAA")
    outcomes = []
    for raw, signature in (
        (body, "sha256=" + "0" * 64),
        (body, ""),
        (body, sign("another-secret-1234", body)),
    ):
        with pytest.raises(BadSignature):
            adapter.parse(raw, {"X-Examdesk-Signature": signature})
    for raw in (
        b"not json",
        b"[1]",
        _notice("EDAAAAAAAA", amount=-5),
        json.dumps({"transaction_id": "t"}).encode(),
    ):
        with pytest.raises(MalformedNotice) as exc:
            adapter.parse(raw, {"X-Examdesk-Signature": sign(SECRET, raw)})
        outcomes.append(exc.value.reason)
    assert outcomes == ["not_json", "not_an_object", "amount_minor", "reference"]


async def test_provider_notice_is_idempotent_and_checks_the_amount(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, reference = await register(services, database, 1030)
    other, other_ref = await register(services, database, 1031)
    adapter = HmacJsonAdapter(SECRET)

    async def post(body: bytes) -> tuple[str, bool, int]:
        result = await services.provider_payments.record(
            adapter.parse(body, {"X-Examdesk-Signature": sign(SECRET, body)})
        )
        return result.status, result.replay, result.http_status

    results = [
        await post(_notice(reference)),
        await post(_notice(reference)),
        await post(_notice(other_ref, amount=100, tx="wx-2")),
        await post(_notice("EDZZZZZZZZ", tx="wx-3")),
    ]
    assert results == [
        ("paid", False, 200),
        ("paid", True, 200),
        ("mismatch", False, 409),
        ("unmatched", False, 409),
    ]
    assert (
        await state(database, rid),
        await state(database, other),
        len(await rows(database, Payment)),
    ) == ("paid", "submitted", 3)
    assert await templates(database, STAFF_CHAT) == ["payment_flagged", "payment_flagged"]


# --- audit and the list for admission tickets ----------------------------------------------------


async def test_history_lists_every_change_with_actor_and_reason(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, reference = await register(services, database, 1040)
    receipt = await _receipt(services, 1040, rid)
    await services.payments.decide_receipt(
        receipt.payment_id, STAFF, approve=False, reason="unreadable"
    )
    await services.payments.record_telegram_payment(
        f"pay:{rid}:telegram", "CNY", 80000, "tg_h", None
    )
    history = await services.payments.history(reference.lower())
    actions = [(e.entity, e.action, e.actor, e.reason) for e in history.entries]
    assert actions == [
        ("registration", "submit", "tg:1040", None),
        ("payment", "receipt_submitted", "tg:1040", None),
        ("registration", "receipt_submitted", "tg:1040", None),
        ("payment", "receipt_rejected", f"tg:{STAFF}", "unreadable"),
        ("registration", "receipt_rejected", f"tg:{STAFF}", "unreadable"),
        ("payment", "recorded", "telegram", None),
        ("registration", "paid", "telegram", "telegram"),
    ]
    assert (history.state, [p[2] for p in history.payments]) == ("paid", ["rejected", "paid"])


async def test_list_paid_returns_only_paid_registrations(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    paid, reference = await register(services, database, 1050)
    await register(services, database, 1051)
    await services.payments.record_telegram_payment(
        f"pay:{paid}:stars", "XTR", 8500, "tg_stars", None
    )
    listed = await services.payments.list_paid("S1")
    assert [(p.reference, p.telegram_id, p.level_code, p.paid_at) for p in listed] == [
        (reference, 1050, "junior", clock.now)
    ]
    assert len(await rows(database, AuditEntry, AuditEntry.entity == "payment")) == 1


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", "1e400", "0", "-5", "12.345", "abc"]
)
def test_statement_amount_that_is_not_a_real_amount_is_refused(text: str) -> None:
    from bot.services.payments_bank import _amount

    assert _amount(text) is None


async def test_other_reason_marker_expires_so_later_chat_text_is_not_a_reason(
    database: Database,
) -> None:
    from datetime import timedelta

    from bot.services.payments import TYPED_REASON_WINDOW

    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1008)
    receipt = await _receipt(services, 1008, rid)
    await services.payments.ask_reason(receipt.payment_id, STAFF)
    clock.now += TYPED_REASON_WINDOW + timedelta(seconds=1)
    assert (
        await services.payments.reject_with_typed_reason(STAFF, "see you tomorrow"),
        await state(database, rid),
    ) == (None, "payment_review")


# --- what the cards and confirmations carry (issue 9, items 15 and 16) ---------------------------


async def test_receipt_sent_again_after_a_rejection_is_marked_on_the_staff_card(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, _ = await register(services, database, 1040)
    first = await _receipt(services, 1040, rid, unique="file-r1")
    await services.payments.decide_receipt(
        first.payment_id, STAFF, approve=False, reason="unreadable"
    )
    second = await _receipt(services, 1040, rid, unique="file-r2")
    cards = {
        m.payload["params"]["payment_id"]: m.payload["params"].get("after_rejection")
        for m in await rows(database, OutboxMessage, OutboxMessage.chat_id == STAFF_CHAT)
    }
    assert cards == {
        first.payment_id: None,
        second.payment_id: {"payment_id": first.payment_id, "reason": "unreadable"},
    }


async def test_statement_import_names_the_receipt_cards_it_made_moot(database: Database) -> None:
    clock = Clock()
    services, _ = await world(database, clock)
    rid, reference = await register(services, database, 1041)
    receipt = await _receipt(services, 1041, rid)
    async with UnitOfWork(database.sessions) as uow:  # the sender sent the card: message 77
        [card] = await uow.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.idempotency_key == f"receipt_card:{receipt.payment_id}"
            )
        )
        card.status, card.message_id = "sent", 77
        await uow.commit()
    preview = await services.statements.preview(
        STAFF, "nov.csv", _csv([f"2026-11-27,800.00,{reference},张三"])
    )
    applied = await services.statements.apply(preview.import_id, STAFF)
    [payment] = await rows(database, Payment, Payment.id == receipt.payment_id)
    assert (applied.paid, applied.settled_cards, payment.status) == (
        1,
        ((STAFF_CHAT, 77),),
        "superseded",
    )


async def test_payment_confirmation_carries_when_the_ticket_comes(database: Database) -> None:
    clock = Clock()
    services, session_id = await world(database, clock)
    rid, _ = await register(services, database, 1042)
    receipt = await _receipt(services, 1042, rid)
    await services.payments.decide_receipt(receipt.payment_id, STAFF, approve=True)
    [session] = await rows(database, ExamSession, ExamSession.id == session_id)
    [told] = [
        m.payload["params"]
        for m in await rows(database, OutboxMessage, OutboxMessage.chat_id == 1042)
    ]
    assert (told["tickets_from"], told["timezone"]) == (
        session.tickets_from_at.isoformat(),
        "Asia/Shanghai",
    )
