"""Cancel and refund end to end against the sandbox (issue 14, point 3): finance cancel a paid
Stars registration by command and by the find card's `desk:cancel` button, the sandbox records
`refundStarPayment`, the candidate is told in their language; /refunds settles a card payment
with the typed reference; a reviewer is refused with the role named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devtools.sandbox import Sandbox
from bot.domain.roles import Role
from handlers.staff_roles import refresh_staff
from storage.models import Payment, Registration
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, exchange, sqlite_url
from tests.e2e.test_payments import (
    PaymentsHarness,
    db_rows,
    invoice_of,
    pay_harness_for,
    reg_state,
    registered,
)
from tests.e2e.test_registration import Person

REVIEWER_ID = 90100


@pytest.fixture
async def desk_bot(sandbox: Sandbox, database_url: str) -> AsyncIterator[PaymentsHarness]:
    """examdesk with every payment method, on SQLite and on PostgreSQL."""
    async for harness in pay_harness_for(sandbox, database_url):
        yield harness


@pytest.fixture
async def desk_bot_sqlite(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[PaymentsHarness]:
    async for harness in pay_harness_for(sandbox, sqlite_url(tmp_path)):
        yield harness


async def paid(bot: PaymentsHarness, user_id: int, language: str, name: str, method: str):  # type: ignore[no-untyped-def]
    """A candidate whose junior registration is paid by `method`; (person, id, reference,
    payment)."""
    p, rid, _ = await registered(bot, user_id, language, name)
    invoice = await invoice_of(bot, p, rid, method)
    await exchange(bot, p.user, p.user.pay(invoice["message_id"]))
    [registration] = await db_rows(bot.database_url, Registration, Registration.id == rid)
    [payment] = await db_rows(bot.database_url, Payment, Payment.registration_id == rid)
    assert (registration.state, payment.status) == ("paid", "paid")
    return p, rid, registration.reference, payment


async def test_cancel_by_command_refunds_the_stars_through_telegram_and_tells_the_candidate(
    desk_bot: PaymentsHarness,
) -> None:
    bot = desk_bot
    p, rid, reference, payment = await paid(bot, 801, "en", "Ann Smith", "stars")
    staff = bot.sandbox.user(STAFF_ID, first_name="Fay", language_code="en")

    preview = await exchange(
        bot,
        staff,
        staff.send_command("/cancel_registration", f"{reference} The session is moved"),
    )
    done = await exchange(bot, staff, staff.press(f"rf:go:{rid}"))
    again = await staff.press_data(preview[-1]["message_id"], f"rf:go:{rid}")
    answer = await staff.wait_for_callback_answer(again, timeout=10)
    refunded = await p.user.wait_for_message(
        lambda m: "Stars are back" in m.get("text", ""), timeout=15
    )
    left = await exchange(bot, staff, staff.send_command("/refunds"))

    assert preview[-1]["text"].startswith(f"Cancel registration {reference}?\nAnn Smith")
    assert (
        "Reason: The session is moved" in preview[-1]["text"]
        and f"Refund due: #{payment.id} 8500 Stars, Telegram Stars" in preview[-1]["text"]
    )
    assert done[-1]["text"] == (
        f"✅ Registration {reference} cancelled by Fay. Reason: The session is moved\n"
        "The candidate is told.\n"
        "⭐ 8500 Stars refunded through Telegram. The candidate is told."
    )
    [call] = bot.sandbox.calls_of("refundStarPayment")
    assert (call.params, call.status) == (
        {"user_id": 801, "telegram_payment_charge_id": payment.external_id},
        200,
    )
    assert bot.sandbox.star_charges[payment.external_id]["refunded"] is True
    assert answer["text"] == "This registration is cancelled: there is nothing to cancel."
    assert len(bot.sandbox.calls_of("refundStarPayment")) == 1
    cancelled = next(
        m for m in p.user.messages() if "cancelled your registration" in m.get("text", "")
    )
    assert cancelled["text"].startswith(
        f"❌ The exam centre cancelled your registration {reference} (Junior (初级), session "
    )
    assert (
        "Reason: The session is moved\nYour refund of 8500 Stars is being arranged"
        in (cancelled["text"])
    )
    assert refunded["text"] == (
        f"💸 Your refund of 8500 Stars for registration {reference} has been made: the Stars "
        "are back in your Telegram balance."
    )
    assert (left[-1]["text"], await reg_state(bot.database_url, rid)) == (
        "No refunds are open.",
        "cancelled",
    )
    [settled] = await db_rows(bot.database_url, Payment, Payment.id == payment.id)
    assert (settled.refund_status, settled.refund_reference) == ("refunded", payment.external_id)


async def test_desk_cancel_button_in_the_staff_chat_asks_the_reason_in_chinese(
    desk_bot: PaymentsHarness,
) -> None:
    bot = desk_bot
    p, rid, reference, payment = await paid(bot, 802, "zh-hans", "张三", "stars")
    staff = bot.sandbox.user(STAFF_ID, first_name="Fay", language_code="en")
    await exchange(bot, staff, staff.send_command("/refunds", chat=STAFF_CHAT_ID))
    card = bot.sandbox.chat_messages(STAFF_CHAT_ID)[-1]  # stands in for the find card

    await exchange(
        bot, staff, staff.press_data(card["message_id"], f"desk:cancel:{rid}", chat=STAFF_CHAT_ID)
    )
    asked = bot.sandbox.chat_messages(STAFF_CHAT_ID)[-1]
    await exchange(bot, staff, staff.send_text("考场调整，无法安排", chat=STAFF_CHAT_ID))
    preview = bot.sandbox.chat_messages(STAFF_CHAT_ID)[-1]
    await exchange(bot, staff, staff.press(f"rf:go:{rid}", chat=STAFF_CHAT_ID))
    done = bot.sandbox.chat_messages(STAFF_CHAT_ID)[-1]
    refunded = await p.user.wait_for_message(lambda m: "💸" in m.get("text", ""), timeout=15)

    assert card["text"] == "没有待处理的退款。"
    assert asked["text"].startswith(f"Fay，请在本群发送取消 {reference}（张三）的原因")
    assert preview["text"].startswith(f"取消报名 {reference}？") and (
        "原因：考场调整，无法安排" in preview["text"]
    )
    assert "原因：-" not in preview["text"]  # the refund line has no reason of its own yet
    assert done["text"].endswith("⭐ 已通过 Telegram 退还 8500 颗星。已通知考生。")
    [call] = bot.sandbox.calls_of("refundStarPayment")
    assert call.params == {"user_id": 802, "telegram_payment_charge_id": payment.external_id}
    cancelled = next(m for m in p.user.messages() if m.get("text", "").startswith("❌"))
    assert cancelled["text"].startswith(f"❌ 考试中心已取消你的报名 {reference}（初级，")
    assert "原因：考场调整，无法安排" in cancelled["text"]
    assert "请发送 /ask 联系考试中心" in cancelled["text"]
    assert refunded["text"] == (
        f"💸 报名 {reference} 的退款 8500 颗星已退还，星星已回到你的 Telegram 余额。"
    )
    assert await reg_state(bot.database_url, rid) == "cancelled"


async def test_refunds_lists_a_card_payment_and_finance_marks_it_with_the_typed_reference(
    desk_bot_sqlite: PaymentsHarness,
) -> None:
    bot = desk_bot_sqlite
    p, rid, reference, payment = await paid(bot, 803, "en", "Bob Lee", "telegram")
    staff = bot.sandbox.user(STAFF_ID, first_name="Fay", language_code="en")
    await exchange(
        bot, staff, staff.send_command("/cancel_registration", f"{reference} moved abroad")
    )
    await exchange(bot, staff, staff.press(f"rf:go:{rid}"))

    listed = await exchange(bot, staff, staff.send_command("/refunds"))
    buttons = staff.inline_buttons(listed[-1])
    await exchange(bot, staff, staff.press(f"rf:done:{payment.id}"))
    typed = await exchange(bot, staff, staff.send_text("UNIONPAY-2026-0042"))
    told = await p.user.wait_for_message(lambda m: "💸" in m.get("text", ""), timeout=15)

    assert listed[-1]["text"] == (
        f"1 refund open:\n#{payment.id} CN¥800.00, card payment in Telegram, {reference} "
        "(Bob Lee). Why: moved abroad"
    )
    assert buttons == [
        (f"💸 #{payment.id}: refunded", f"rf:done:{payment.id}"),
        (f"❌ #{payment.id}: refuse", f"rf:no:{payment.id}"),
    ]
    assert typed[-1]["text"] == (
        f"💸 Refund #{payment.id} (CN¥800.00, {reference}) marked refunded by Fay. "
        "Refund reference: UNIONPAY-2026-0042. The candidate is told."
    )
    assert told["text"] == (
        f"💸 Your refund of CN¥800.00 for registration {reference} has been made. Refund "
        "reference: UNIONPAY-2026-0042."
    )
    assert bot.sandbox.calls_of("refundStarPayment") == []


async def test_a_reviewer_is_refused_cancel_with_the_role_named(
    desk_bot_sqlite: PaymentsHarness,
) -> None:
    bot = desk_bot_sqlite
    _p, rid, reference, _ = await paid(bot, 804, "en", "Cy Wu", "stars")
    await bot.runtime.services.staff.grant(STAFF_ID, REVIEWER_ID, Role.REVIEWER)
    await refresh_staff(bot.runtime.application)
    reviewer = Person(bot, REVIEWER_ID, "en", "Rex")

    said = await reviewer.do(
        reviewer.user.send_command("/cancel_registration", f"{reference} not mine")
    )
    pressed = await reviewer.user.press_data(
        reviewer.user.messages()[-1]["message_id"], f"desk:cancel:{rid}"
    )
    answer = await reviewer.user.wait_for_callback_answer(pressed, timeout=10)

    needed = (
        "This needs the role: finance (payments, statements, refunds). "
        "An admin can grant it with /staff."
    )
    assert (said[-1], answer["text"]) == (needed, needed)
    assert await reg_state(bot.database_url, rid) == "paid"
    assert bot.sandbox.calls_of("refundStarPayment") == []


async def test_a_stars_refund_telegram_refuses_stays_open_with_the_error_and_a_retry_settles_it(
    desk_bot_sqlite: PaymentsHarness,
) -> None:
    bot = desk_bot_sqlite
    p, rid, reference, payment = await paid(bot, 805, "en", "Di Ma", "stars")
    staff = bot.sandbox.user(STAFF_ID, first_name="Fay", language_code="en")
    charge = bot.sandbox.star_charges.pop(payment.external_id)  # Telegram does not know it
    await exchange(bot, staff, staff.send_command("/cancel_registration", f"{reference} ill"))

    done = await exchange(bot, staff, staff.press(f"rf:go:{rid}"))
    listed = await exchange(bot, staff, staff.send_command("/refunds"))
    bot.sandbox.star_charges[payment.external_id] = charge  # known again
    retried = await exchange(bot, staff, staff.press(f"rf:star:{payment.id}"))
    again = await staff.press_data(listed[-1]["message_id"], f"rf:star:{payment.id}")
    answer = await staff.wait_for_callback_answer(again, timeout=10)
    told = await p.user.wait_for_message(lambda m: "Stars are back" in m.get("text", ""), 15)

    failure = "⚠️ Telegram did not refund the Stars: Charge_not_found. The refund stays open"
    assert done[-1]["text"].endswith(f"{failure} in /refunds.")
    assert listed[-1]["text"].endswith("Why: ill. Last attempt: Charge_not_found")
    assert retried[-1]["text"] == (
        f"💸 Refund #{payment.id} (8500 Stars, {reference}) marked refunded by Fay. "
        f"Refund reference: {payment.external_id}. The candidate is told."
    )
    assert answer["text"] == f"This refund is already settled (refunded) by user {STAFF_ID}."
    assert [c.error for c in bot.sandbox.calls_of("refundStarPayment")] == [
        "Bad Request: CHARGE_NOT_FOUND",
        None,
    ]
    assert told["text"].startswith(f"💸 Your refund of 8500 Stars for registration {reference}")


async def test_sandbox_refund_star_payment_answers_as_telegram_does(
    desk_bot_sqlite: PaymentsHarness,
) -> None:
    from telegram.error import BadRequest

    bot = desk_bot_sqlite
    p, _rid, _reference, payment = await paid(bot, 806, "en", "Ed Ng", "stars")
    api = bot.runtime.application.bot
    errors = []
    for user_id, charge_id in ((p.user.id, "tg_unknown"), (p.user.id + 1, payment.external_id)):
        with pytest.raises(BadRequest) as refused:
            await api.refund_star_payment(user_id, charge_id)
        errors.append(refused.value.message)
    first = await api.refund_star_payment(p.user.id, payment.external_id)
    with pytest.raises(BadRequest) as twice:
        await api.refund_star_payment(p.user.id, payment.external_id)

    assert (errors, first, twice.value.message) == (
        ["Charge_not_found", "User_id_invalid"],
        True,
        "Charge_already_refunded",
    )
