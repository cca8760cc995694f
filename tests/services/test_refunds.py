"""RefundService on real databases (SQLite and PostgreSQL): staff cancel with a reason, the
seat to the waitlist, money paid becomes a refund (due → refunded | refused), Stars through
the Bot API port, flagged late money in the same list, first decision wins, roles."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.domain.catalog import parse_catalog
from bot.domain.roles import Role
from bot.services import Services, build_services
from bot.services.errors import AlreadyDecided, InvalidAnswer, InvalidState, StaleStep
from bot.services.payments import PaymentConfig
from bot.services.refunds import RefundCallFailed, StarsByHand
from bot.services.staff import NotAllowed
from storage.db import Database
from storage.models import (
    AdmissionTicket,
    AuditEntry,
    ExamSession,
    OutboxMessage,
    Payment,
    Registration,
)
from storage.uow import UnitOfWork
from tests.factories import Clock, make_candidates, make_session
from tests.services.test_payments import (
    STAFF,
    STAFF_CHAT,
    catalog_document,
    register,
    rows,
    state,
)

FINANCE = 7001
REVIEWER = 7002
CHAT = -100777  # where staff pressed the button


async def desk(database: Database, clock: Clock, *, capacity: int = 20) -> Services:
    """Services with a catalogue and a session, STAFF an admin, FINANCE and REVIEWER granted."""
    services = build_services(
        database,
        clock,
        staff_ids=frozenset({STAFF}),
        payment_config=PaymentConfig(staff_chat_id=STAFF_CHAT, telegram=True, stars=True),
    )
    await services.catalog.load(parse_catalog(catalog_document()))
    await make_session(database, "S1", capacity=capacity, now=clock.now)
    await make_candidates(database, [STAFF, FINANCE, REVIEWER])
    await services.staff.grant(STAFF, FINANCE, Role.FINANCE)
    await services.staff.grant(STAFF, REVIEWER, Role.REVIEWER)
    return services


async def paid_with_stars(services: Services, database: Database, tid: int) -> tuple[int, str]:
    rid, reference = await register(services, database, tid)
    outcome = await services.payments.record_telegram_payment(
        f"pay:{rid}:stars", "XTR", 8500, f"charge-{tid}", None
    )
    assert outcome.status == "paid"
    return rid, reference


async def paid_by_bank(services: Services, database: Database, tid: int) -> tuple[int, int]:
    rid, _ = await register(services, database, tid)
    await services.payments.start_receipt(tid, rid)
    receipt = await services.payments.submit_receipt(
        tid, file_id=f"file-{tid}", file_unique_id=f"u-{tid}", kind="photo"
    )
    await services.payments.decide_receipt(receipt.payment_id, STAFF, approve=True)
    return rid, receipt.payment_id


async def notices(database: Database, telegram_id: int) -> list[tuple[str, dict]]:
    found = await rows(database, OutboxMessage, OutboxMessage.chat_id == telegram_id)
    return [(m.payload["template"], m.payload["params"]) for m in found]


async def payment(database: Database, payment_id: int) -> Payment:
    return (await rows(database, Payment, Payment.id == payment_id))[0]


class Port:
    """The Stars refund port as the handler builds it, answering as Telegram would."""

    def __init__(self, *answers: bool | str) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[int, str]] = []

    async def __call__(self, user_id: int, charge_id: str) -> bool:
        self.calls.append((user_id, charge_id))
        answer = self.answers.pop(0)
        if isinstance(answer, str):
            raise RefundCallFailed(answer)
        return answer


# --- cancel and refund ---------------------------------------------------------------------------


async def test_cancel_paid_stars_registration_refunds_through_telegram_and_tells_the_candidate(
    database: Database,
) -> None:
    clock = Clock()
    services = await desk(database, clock)
    rid, reference = await paid_with_stars(services, database, 1001)

    cancelled = await services.refunds.cancel(FINANCE, rid, "  The session moved,  sorry ")
    [refund] = cancelled.refunds
    due = await payment(database, refund.payment_id)
    port = Port(True)
    decision = await services.refunds.refund_stars(FINANCE, refund.payment_id, port)
    done = await payment(database, refund.payment_id)

    assert (cancelled.reason, cancelled.from_state, await state(database, rid)) == (
        "The session moved, sorry",
        "paid",
        "cancelled",
    )
    assert (due.refund_status, due.refund_reason, due.refund_requested_by) == (
        "due",
        "The session moved, sorry",
        f"tg:{FINANCE}",
    )
    assert port.calls == [(1001, "charge-1001")]
    assert (
        decision.status,
        done.refund_status,
        done.refund_reference,
        done.refund_decided_by,
    ) == (
        "refunded",
        "refunded",
        "charge-1001",
        f"tg:{FINANCE}",
    )
    told = await notices(database, 1001)
    assert [t for t, _ in told][-2:] == ["registration_cancelled_by_staff", "refund_refunded"]
    assert told[-2][1]["refunds"] == [{"amount_minor": 8500, "currency": "XTR", "method": "stars"}]
    assert (told[-2][1]["reference"], told[-2][1]["reason"]) == (
        reference,
        "The session moved, sorry",
    )
    [entry] = await rows(
        database,
        AuditEntry,
        AuditEntry.entity == "registration",
        AuditEntry.action == "staff_cancel",
    )
    assert (entry.actor, entry.from_state, entry.to_state, entry.reason, entry.at) == (
        f"tg:{FINANCE}",
        "paid",
        "cancelled",
        "The session moved, sorry",
        clock.now,
    )


async def test_failed_stars_call_leaves_the_refund_due_with_the_error_then_a_retry_settles_it(
    database: Database,
) -> None:
    services = await desk(database, Clock())
    rid, _ = await paid_with_stars(services, database, 1002)
    [refund] = (await services.refunds.cancel(FINANCE, rid, "duplicate booking")).refunds
    # First Telegram refuses; then it says the charge was refunded already (a timed-out call
    # that went through): the refund is settled, saying so.
    port = Port("Bad Request: CHARGE_NOT_FOUND", False)

    with pytest.raises(RefundCallFailed):
        await services.refunds.refund_stars(FINANCE, refund.payment_id, port)
    failed = await payment(database, refund.payment_id)
    listed = await services.refunds.open_refunds(FINANCE)
    decision = await services.refunds.refund_stars(FINANCE, refund.payment_id, port)

    assert (failed.refund_status, failed.refund_note) == (
        "due",
        "Bad Request: CHARGE_NOT_FOUND",
    )
    assert [(r.payment_id, r.note) for r in listed] == [
        (refund.payment_id, "Bad Request: CHARGE_NOT_FOUND")
    ]
    assert (decision.status, decision.note) == ("refunded", "already refunded")
    assert [
        e.action
        for e in await rows(
            database, AuditEntry, AuditEntry.entity == "payment", AuditEntry.action.like("refund%")
        )
    ] == ["refund_requested", "refund_failed", "refunded"]


async def test_bank_payment_is_marked_refunded_with_the_reference_and_stars_are_not(
    database: Database,
) -> None:
    services = await desk(database, Clock())
    rid, pid = await paid_by_bank(services, database, 1003)
    stars_rid, _ = await paid_with_stars(services, database, 1004)
    await services.refunds.cancel(FINANCE, rid, "withdrawn at the candidate's request")
    [stars] = (await services.refunds.cancel(FINANCE, stars_rid, "withdrawn")).refunds

    decision = await services.refunds.mark_refunded(FINANCE, pid, " ICBC 2026-11-30 0042 ")
    with pytest.raises(StarsByHand):
        await services.refunds.mark_refunded(FINANCE, stars.payment_id, "by hand")
    with pytest.raises(InvalidAnswer):
        await services.refunds.mark_refunded(FINANCE, stars.payment_id, "   ")

    done = await payment(database, pid)
    assert (done.method, done.refund_status, done.refund_reference) == (
        "bank_transfer",
        "refunded",
        "ICBC 2026-11-30 0042",
    )
    assert (decision.told, (await payment(database, stars.payment_id)).refund_status) == (
        True,
        "due",
    )
    template, params = (await notices(database, 1003))[-1]
    assert (template, params["refund_reference"], params["amount_minor"]) == (
        "refund_refunded",
        "ICBC 2026-11-30 0042",
        80000,
    )


async def test_refused_refund_keeps_the_reason_tells_the_candidate_and_later_decisions_lose(
    database: Database,
) -> None:
    services = await desk(database, Clock())
    rid, pid = await paid_by_bank(services, database, 1005)
    await services.refunds.cancel(FINANCE, rid, "misconduct at another sitting")

    decision = await services.refunds.refuse(FINANCE, pid, "fee not refundable after the cut-off")
    with pytest.raises(AlreadyDecided) as late:
        await services.refunds.mark_refunded(STAFF, pid, "REF-1")

    refused = await payment(database, pid)
    assert (decision.status, refused.refund_status, refused.refund_note) == (
        "refused",
        "refused",
        "fee not refundable after the cut-off",
    )
    assert (late.value.decided_by, late.value.status) == (FINANCE, "refused")
    template, params = (await notices(database, 1005))[-1]
    assert (template, params["reason"]) == (
        "refund_refused",
        "fee not refundable after the cut-off",
    )
    assert await services.refunds.open_refunds(FINANCE) == []


async def test_flagged_late_payment_and_an_old_flagged_one_appear_in_open_refunds(
    database: Database,
) -> None:
    services = await desk(database, Clock())
    rid, reference = await register(services, database, 1006)
    await services.registration.cancel(1006, rid)
    late = await services.payments.record_telegram_payment(
        f"pay:{rid}:telegram", "CNY", 80000, "late-charge", "prov-1"
    )
    # A payment flagged before refunds had states: needs_refund, no refund status.
    old_rid, _ = await register(services, database, 1007)
    async with UnitOfWork(database.sessions) as uow:
        old = Payment(
            registration_id=old_rid,
            method="bank_statement",
            external_id="row-1",
            amount_minor=80000,
            currency="CNY",
            status="refund_due",
            needs_refund=True,
            reason="double_payment",
            decided_at=Clock().now,
        )
        uow.session.add(old)
        await uow.commit()
        old_id = old.id

    listed = await services.refunds.open_refunds(FINANCE)
    await services.refunds.mark_refunded(FINANCE, old_id, "BOC-77")
    settled = await payment(database, old_id)

    assert late.status == "refund_due"
    assert [(r.payment_id, r.reference, r.status, r.reason) for r in listed] == [
        (late.payment_id, reference, "due", "registration_cancelled"),
        (old_id, listed[1].reference, "due", "double_payment"),
    ]
    assert (settled.refund_status, settled.refund_reason, settled.refund_reference) == (
        "refunded",
        "double_payment",
        "BOC-77",
    )
    assert [r.payment_id for r in await services.refunds.open_refunds(FINANCE)] == [
        late.payment_id
    ]


# --- first decision wins, roles -----------------------------------------------------------------


async def test_a_double_press_cancels_once_and_concurrent_refund_decisions_settle_once(
    database: Database,
) -> None:
    services = await desk(database, Clock())
    rid, pid = await paid_by_bank(services, database, 1008)
    reference = (await rows(database, Registration, Registration.id == rid))[0].reference
    await services.refunds.prepare_cancel(FINANCE, reference, "no longer needed", CHAT)

    await services.refunds.confirm_cancel(FINANCE, rid)
    with pytest.raises(InvalidState) as again:
        await services.refunds.confirm_cancel(FINANCE, rid)
    with pytest.raises(InvalidState):
        await services.refunds.cancel(STAFF, rid, "me too")
    outcomes = await asyncio.gather(
        services.refunds.mark_refunded(FINANCE, pid, "REF-A"),
        services.refunds.refuse(STAFF, pid, "no"),
        return_exceptions=True,
    )

    assert again.value.state == "cancelled"
    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyDecided", "RefundDecision"]
    assert [t for t, _ in await notices(database, 1008)].count(
        "registration_cancelled_by_staff"
    ) == 1
    assert (
        len(
            await rows(
                database,
                AuditEntry,
                AuditEntry.entity == "payment",
                AuditEntry.action.in_(["refunded", "refund_refused"]),
            )
        )
        == 1
    )


async def test_a_reviewer_cannot_cancel_or_see_refunds(database: Database) -> None:
    services = await desk(database, Clock())
    rid, pid = await paid_by_bank(services, database, 1009)

    with pytest.raises(NotAllowed) as refused:
        await services.refunds.cancel(REVIEWER, rid, "not my job")
    with pytest.raises(NotAllowed):
        await services.refunds.open_refunds(REVIEWER)
    with pytest.raises(NotAllowed):
        await services.refunds.ask_cancel(REVIEWER, rid, CHAT)

    assert (refused.value.roles, await state(database, rid)) == ((Role.FINANCE,), "paid")
    assert (await payment(database, pid)).refund_status is None


async def test_cancelling_a_seat_offers_it_to_the_first_in_line(database: Database) -> None:
    services = await desk(database, Clock(), capacity=1)
    rid, _ = await paid_with_stars(services, database, 1010)
    waiting, _ = await register(services, database, 1011, waitlist=True)

    cancelled = await services.refunds.cancel(FINANCE, rid, "ill")

    [session] = await rows(database, ExamSession, ExamSession.code == "S1")
    assert (cancelled.offered_to, await state(database, waiting), session.seats_taken) == (
        waiting,
        "offered",
        1,
    )
    assert [t for t, _ in await notices(database, 1011)][-1] == "waitlist_offer"


async def test_cancelling_a_waitlisted_registration_frees_no_seat(database: Database) -> None:
    services = await desk(database, Clock(), capacity=1)
    await paid_with_stars(services, database, 1012)
    waiting, _ = await register(services, database, 1013, waitlist=True)

    cancelled = await services.refunds.cancel(FINANCE, waiting, "asked by phone")

    [session] = await rows(database, ExamSession, ExamSession.code == "S1")
    assert (cancelled.refunds, cancelled.offered_to, session.seats_taken) == ((), None, 1)


# --- the typed conversation and the level change -------------------------------------------------


async def test_desk_button_asks_the_reason_then_confirms_and_an_old_question_expires(
    database: Database,
) -> None:
    clock = Clock()
    services = await desk(database, clock)
    rid, reference = await paid_with_stars(services, database, 1014)

    asked = await services.refunds.ask_cancel(FINANCE, rid, CHAT)
    elsewhere = await services.refunds.take_text(FINANCE, CHAT - 1, "not here")
    with pytest.raises(InvalidAnswer):
        await services.refunds.take_text(FINANCE, CHAT, "   ")
    preview = await services.refunds.take_text(FINANCE, CHAT, "exam centre closed that day")
    with pytest.raises(StaleStep):
        await services.refunds.confirm_cancel(STAFF, rid)  # someone else's confirmation
    cancelled = await services.refunds.confirm_cancel(FINANCE, rid)
    second, _ = await paid_with_stars(services, database, 1015)
    await services.refunds.ask_cancel(FINANCE, second, CHAT)
    clock.now += timedelta(minutes=16)
    expired = await services.refunds.take_text(FINANCE, CHAT, "too late")

    assert (asked.reference, asked.state, [r.amount_minor for r in asked.refunds]) == (
        reference,
        "paid",
        [8500],
    )
    assert elsewhere is None
    assert (preview.reason, preview.registration_id) == ("exam centre closed that day", rid)
    assert (cancelled.reason, await state(database, rid)) == (
        "exam centre closed that day",
        "cancelled",
    )
    assert (expired, await state(database, second)) == (None, "paid")


async def test_change_level_cancels_and_refunds_and_tells_the_candidate_to_register_again(
    database: Database,
) -> None:
    services = await desk(database, Clock())
    rid, reference = await paid_with_stars(services, database, 1016)

    with pytest.raises(InvalidAnswer) as unknown:
        await services.refunds.prepare_cancel(
            FINANCE, reference, "wrong level", CHAT, new_level="expert"
        )
    with pytest.raises(InvalidAnswer) as same:
        await services.refunds.prepare_cancel(
            FINANCE, reference, "wrong level", CHAT, new_level="初级"
        )
    preview = await services.refunds.prepare_cancel(
        FINANCE, reference, "holds an engineer title", CHAT, new_level="Intermediate"
    )
    cancelled = await services.refunds.confirm_cancel(FINANCE, rid)

    assert (unknown.value.reason, same.value.reason) == ("unknown_level", "same_level")
    assert (preview.new_level, cancelled.new_level, len(cancelled.refunds)) == (
        "intermediate",
        "intermediate",
        1,
    )
    template, params = (await notices(database, 1016))[-1]
    assert (template, params["new_level"], params["new_level_names"]["zh_Hans"]) == (
        "registration_cancelled_by_staff",
        "intermediate",
        "中级",
    )
    [entry] = await rows(database, AuditEntry, AuditEntry.action == "level_change")
    assert (entry.reason, entry.details["new_level"]) == (
        "holds an engineer title",
        "intermediate",
    )


async def test_cancel_registration_finds_it_by_admission_ticket_number(database: Database) -> None:
    services = await desk(database, Clock())
    rid, _ = await paid_with_stars(services, database, 1017)
    [session] = await rows(database, ExamSession, ExamSession.code == "S1")
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(
            AdmissionTicket(
                registration_id=rid, session_id=session.id, ticket_number="S1-J-0001", seat=1
            )
        )
        await uow.commit()

    found = await services.refunds.find(FINANCE, "s1-j-0001")
    preview = await services.refunds.prepare_cancel(FINANCE, "S1-J-0001", "moved away", CHAT)

    assert (found, preview.registration_id) == (rid, rid)
