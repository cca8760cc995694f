"""What a new user and the staff read, end to end (issue 9, items 13 to 16): staff cards in the
site's language with names instead of codes, one date style with the zone named, eligibility
wording from the catalogue, changing one answer, receipt cards that say what happened, and
when the admission ticket comes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.devtools.sandbox import Sandbox
from storage.db import Database
from storage.models import OutboxMessage, Registration
from storage.uow import UnitOfWork
from tests.e2e.conftest import (
    STAFF_CHAT_ID,
    STAFF_ID,
    Harness,
    exchange,
    sqlite_url,
)
from tests.e2e.test_payments import (
    PaymentsHarness,
    _upload_receipt,
    db_rows,
    pay_harness_for,
    registered,
)
from tests.e2e.test_registration import Person, check_with_an_unlisted_major
from tests.sandbox.images import png

# The January session: exam on 2027-01-09, tickets from E−7 at 09:00 Beijing time.
TICKETS_FROM_EN = "Sat 2 Jan 2027, 09:00 (China time)"


@pytest.fixture
async def pay_bot(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[PaymentsHarness]:
    """examdesk with confirmed fees and every payment method, as in the payments tests."""
    async for harness in pay_harness_for(sandbox, sqlite_url(tmp_path)):
        yield harness


# --- eligibility --------------------------------------------------------------------------------


async def test_change_my_answers_lists_the_answers_and_asks_only_the_one_chosen(
    bot: Harness,
) -> None:
    p = Person(bot, 801, "en", "Ann")
    verdict = await check_with_an_unlisted_major(p)
    assert verdict[-1].startswith("🟡 The automatic check cannot confirm Junior")

    listed = await exchange(bot, p.user, p.user.press("✏️ Change my answers"))
    assert [m["text"] for m in listed] == ["Which answer do you want to change?"]
    assert p.user.inline_buttons(listed[-1]) == [
        ("✏️ Education: Bachelor's degree", "elig:edit:junior:education"),
        ("✏️ Graduation: Fri 30 Jun 2023", "elig:edit:junior:graduation_date"),
        ("✏️ Major: Underwater Basket Weaving", "elig:edit:junior:major"),
        ("✏️ Title: No title", "elig:edit:junior:title"),
        ("✏️ Work since: Not working yet", "elig:edit:junior:work_start"),
        ("🔁 Start over with every question", "elig:fresh:junior"),
    ]
    asked = await p.press("elig:edit:junior:major")
    again = await p.press("elig:a:major:automation")

    assert asked == ["What is your major? Choose it below, or type it if it is not listed."]
    assert again[-1].startswith("✅ You are eligible for Junior")


async def test_holder_of_intermediate_is_pointed_to_senior_with_its_own_training_hours(
    bot: Harness,
) -> None:
    p = Person(bot, 802, "en", "Bo")
    await p.command("/eligibility")
    await p.press("elig:a:level:auto")
    await p.press("elig:a:education:bachelor")
    await p.say("2015-06-30")
    await p.press("elig:a:major:automation")
    await p.press("elig:a:title:none")
    await p.press("elig:a:prior_level:intermediate")
    await p.say("2025-06-01")
    verdict = (await p.press("elig:a:work_start:none"))[-1]

    parts = verdict.split("\n\n")
    assert parts[0] == "The level that fits you best: Senior."
    assert parts[1].startswith("❌ By the automatic check you are not yet eligible for Senior")
    assert parts[-1] == "Senior also needs proof of 160 training hours (培训学时证明)."
    assert ("Junior" in verdict, "128" in verdict, "Every level" in verdict) == (
        False,
        False,
        False,
    )


async def test_chinese_verdict_lists_what_is_missing_the_chinese_way(bot: Harness) -> None:
    p = Person(bot, 803, "zh-hans", "李")
    await p.command("/eligibility")
    await p.press("elig:a:level:intermediate")
    await p.press("elig:a:education:bachelor")
    await p.say("2015-06-30")
    await p.press("elig:a:major:automation")
    await p.press("elig:a:title:none")
    verdict = (await p.press("elig:a:prior_level:none"))[-1]

    assert (
        "• M3（硕士或第二学士学历，取得初级证书满1年）还需要：学历：第二学士或硕士和初级证书"
        in (verdict.split("\n\n"))
    )
    assert verdict.split("\n\n")[-1] == "报考中级还需提供 128 学时的培训学时证明。"


async def test_review_card_names_the_answers_and_stays_in_the_site_language(bot: Harness) -> None:
    p = Person(bot, 804, "en", "Ann")
    await check_with_an_unlisted_major(p)
    await p.press("elig:review:junior")
    card = await bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "资格审核 #" in m.get("text", ""), timeout=15
    )
    lines = card["text"].splitlines()
    assert lines[3:] == [
        "学历：本科（学士），专业：Underwater Basket Weaving，毕业时间：2023年6月30日（周五）",
        "职称：无职称（-）；已有等级：-（-）；参加工作：尚未工作",
        "自动核验结果：需人工审核",
    ]
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    review_id = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split(":")[2]
    await exchange(
        bot,
        staff,
        staff.press_data(card["message_id"], f"elig:ok:{review_id}", chat=STAFF_CHAT_ID),
    )

    decided = bot.sandbox.message(STAFF_CHAT_ID, card["message_id"])
    assert decided["text"].endswith("✅ 已通过（处理人：Staff）")


# --- receipts, the statement import, the ticket date --------------------------------------------


async def _message_id_kept(url: str, key: str) -> int | None:
    database = Database(url)
    try:
        for _ in range(100):
            async with UnitOfWork(database.sessions) as uow:
                found = await uow.session.scalar(
                    select(OutboxMessage.message_id).where(OutboxMessage.idempotency_key == key)
                )
            if found is not None:
                return found
            await asyncio.sleep(0.05)
        return None
    finally:
        await database.dispose()


def _payment_id(card: dict[str, Any]) -> str:
    return card["reply_markup"]["inline_keyboard"][0][0]["callback_data"].rsplit(":", 1)[1]


async def test_receipt_card_stays_in_the_site_language_and_a_resend_after_rejection_is_marked(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 811)
    card = await _upload_receipt(pay_bot, p, rid)
    first_id = _payment_id(card)
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(
        pay_bot,
        staff,
        staff.press_data(card["message_id"], f"pay:no:{first_id}", chat=STAFF_CHAT_ID),
    )
    reasons = pay_bot.sandbox.message(STAFF_CHAT_ID, card["message_id"])["reply_markup"]
    await exchange(
        pay_bot,
        staff,
        staff.press_data(card["message_id"], f"pay:no:{first_id}:unreadable", chat=STAFF_CHAT_ID),
    )
    rejected = pay_bot.sandbox.message(STAFF_CHAT_ID, card["message_id"])
    await p.user.wait_for_message(lambda m: m.get("text", "").startswith("❌"), timeout=15)
    await p.press(f"pay:{rid}")
    await p.press(f"pay:receipt:{rid}")
    await p.do(p.user.send_photo(png(600, 800)))
    second = await pay_bot.sandbox.wait_for_message(
        STAFF_CHAT_ID, lambda m: "🔁" in (m.get("caption") or ""), timeout=15
    )

    assert [row[0]["text"] for row in reasons["inline_keyboard"]][-2:] == [
        "✍️ 其他（手动填写）",
        "↩️ 返回",
    ]
    assert rejected["caption"].endswith("❌ 已由 Staff 驳回：凭证无法辨认")
    assert second["caption"].splitlines()[-1] == (
        f"🔁 凭证 #{first_id} 被驳回后重新上传（驳回原因：凭证无法辨认）。"
    )


async def test_approved_receipt_says_when_the_ticket_comes_and_status_says_it_too(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 812)
    card = await _upload_receipt(pay_bot, p, rid)
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff")
    await staff.press_data(card["message_id"], f"pay:ok:{_payment_id(card)}", chat=STAFF_CHAT_ID)
    told = await p.user.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ Your bank transfer"), timeout=15
    )
    status = await p.command("/status")

    assert told["text"].splitlines()[-1] == (
        f"Your admission ticket will be available from {TICKETS_FROM_EN}; "
        "I will send you a message then."
    )
    assert (
        f"Your admission ticket will be available from {TICKETS_FROM_EN}; "
        "I will send you a message then."
    ) in status[-1].splitlines()


async def test_statement_import_takes_the_buttons_off_the_receipt_card_it_settled(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 813)
    card = await _upload_receipt(pay_bot, p, rid)
    assert (
        await _message_id_kept(pay_bot.database_url, f"receipt_card:{_payment_id(card)}")
        == card["message_id"]
    )
    [registration] = await db_rows(pay_bot.database_url, Registration, Registration.id == rid)
    csv_text = f"date,amount,reference,payer\n2026-11-27,800.00,{registration.reference},Ann\n"
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(
        pay_bot, staff, staff.send_document(csv_text.encode(), "statement.csv", "text/csv")
    )
    await exchange(pay_bot, staff, staff.press("✅ Record 1 matched payment"))
    told = await p.user.wait_for_message(
        lambda m: m.get("text", "").startswith("✅ Payment received"), timeout=15
    )

    settled = pay_bot.sandbox.message(STAFF_CHAT_ID, card["message_id"])
    assert ("reply_markup" in settled, told["text"].splitlines()[-1]) == (
        False,
        f"Your admission ticket will be available from {TICKETS_FROM_EN}; "
        "I will send you a message then.",
    )


async def test_history_shows_states_actions_and_methods_in_words(
    pay_bot: PaymentsHarness,
) -> None:
    p, rid, _ = await registered(pay_bot, 814)
    card = await _upload_receipt(pay_bot, p, rid)
    staff = pay_bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    await exchange(
        pay_bot,
        staff,
        staff.press_data(card["message_id"], f"pay:ok:{_payment_id(card)}", chat=STAFF_CHAT_ID),
    )
    [registration] = await db_rows(pay_bot.database_url, Registration, Registration.id == rid)

    history = await exchange(
        pay_bot, staff, staff.send_command("/history", payload=registration.reference)
    )

    text = history[-1]["text"]
    assert text.splitlines()[0] == f"History of {registration.reference} (now: paid):"
    for code in ("payment_review", "receipt_submitted", "pending_review", "bank_transfer", "tg:"):
        assert (code, code in text) == (code, False)
    assert "receipt uploaded (registered, not paid yet → payment under review)" in text
