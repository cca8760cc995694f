"""Forged and oversized callback data on every button prefix, end to end on both databases.

Anyone can send any callback data. A press whose data has a button's shape but a forged
value — an id past the Integer column (2^31, 2^63, 30 digits), negative, zero, not a
number, an unknown or empty word — reaches that button's own handler, whose parser
refuses it: the stale-button answer, and nothing else. Data of no button's shape, and a
staff button pressed by anyone else, get the catch-all's answer. Never an error, an
apology or a staff alert, and no Bot API call but the answer.
"""

from __future__ import annotations

import logging

import pytest

from bot.i18n import I18n
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, Harness
from tests.unit.test_callbacks import button_of, callback_handlers

STALE = "This button is no longer valid."
UNKNOWN = "This button is no longer valid. Send /start for the menu."
# Staff press in the staff chat and read Chinese, the site's language, as its cards do.
STALE_ZH = I18n("zh_Hans").translator("zh_Hans").gettext(STALE)
FORGED_IDS = (str(2**31), str(2**63), "9" * 30, "-1", "0", "x", "")

# Every button that carries an id: `{}` is where the id goes.
CANDIDATE_ID_BUTTONS = (
    "pay:{}",
    "pay:inv:{}:stars",
    "pay:receipt:{}",
    "reg:cancel:{}",
    "reg:cancel_yes:{}",
    "reg:move:{}",
    "reg:move_to:{}:2027-01",
    "reg:move_yes:{}:2027-01",
    "reg:offer:accept:{}",
    "reg:offer:decline:{}",
    "tk:get:{}",
    "rem:ack:{}",
    "fix:{}",
    "rmk:ask:{}",
    "rmk:send:{}",
    "sup:send:{}",
    "sup:drop:{}",
    "sup:reply:{}",
)
STAFF_ID_BUTTONS = (
    "elig:ok:{}",
    "elig:no:{}",
    "elig:no:{}:documents_missing",
    "pay:ok:{}",
    "pay:no:{}",
    "pay:no:{}:unreadable",
    "pay:back:{}",
    "pay:csv:ok:{}",
    "pay:csv:no:{}",
    "bc:aud:{}:all",
    "bc:aud:{}:session:2027-01",
    "bc:now:{}",
    "bc:at:{}",
    "bc:when:{}",
    "bc:pause:{}",
    "bc:resume:{}",
    "bc:stop:{}",
    "bc:stop!:{}",
    "bc:keep:{}",
    "bc:drop:{}",
    "bc:csv:{}",
    "rem:un:2027-01:{}",
    "ri:ok:{}",
    "ri:no:{}",
    "ct:ok:{}",
    "ct:no:{}",
    "rmk:fee:{}",
    "rmk:same:{}",
    "rmk:new:{}",
    "desk:card:{}",
    "desk:fullid:{}",
    "ci:ok:{}",
    "desk:msg:{}",
    "desk:cancel:{}",
    "rf:go:{}",
    "rf:star:{}",
    "rf:done:{}",
    "rf:no:{}",
)
# Buttons without an id: a forged word (empty, or one no keyboard offers).
CANDIDATE_WORD_BUTTONS = (
    "lang:",
    "lang:xx",
    "elig:fresh:",
    "elig:change:",
    "elig:edit:junior:",
    "elig:a:level:",
    "elig:review:",
    "reg:start:",
    "reg:c:session:",
    "reg:edit:",
    "reg:move_to:1:",
    "pay:inv:1:cash",
)
STAFF_WORD_BUTTONS = (
    "elig:no:1:forged",
    "pay:no:1:forged",
    "pay:no:1:",
    "bc:aud:1:nobody",
    "rem:un::1",
    "rr:ok:2027-01:x",
    "rr:ok::0",
    "rr:ok:nosuch:0",
    # /staff cards: a Telegram id (up to 2^52) is not a row id, so forged ones are listed here
    "staff:grant::admin",
    "staff:revoke:0:finance",
    "staff:grant:x:checkin",
    "staff:revoke:9999999999999999999:admin",
)
# No button has these shapes; staff buttons pressed by a candidate.
CANDIDATE_UNKNOWN = (
    "menu:nothing",
    "menu:help:1",
    "place:map:1",
    "menu:language:x",
    "menu:eligibility:1",
    "menu:register:2147483648",
    "menu:status:-1",
    "elig:start:1",
    "reg:submit:9223372036854775808",
    "reg:waitlist:x",
    "nosuch:1",
    "pay:ok:9223372036854775808",
    "elig:no:2147483648",
    "bc:now:9223372036854775808",
    "rem:un:2027-01:2147483648",
    "rr:ok:2027-01:0",
    "rmk:list:x",
    "rmk:stop:x",
    "rmk:skip:x",
    "menu:ask:x",
    "rf:stop:x",
    "place:map:x",
    "rmk:same:1",
    "ct:ok:1",
    "staff:grant:1:admin",
    "desk:card:1",
    "desk:fullid:1",
    "ci:ok:1",
)


def candidate_cases() -> list[tuple[str, str]]:
    forged = [b.format(i) for b in CANDIDATE_ID_BUTTONS for i in FORGED_IDS]
    return [(d, STALE) for d in forged + list(CANDIDATE_WORD_BUTTONS)] + [
        (d, UNKNOWN) for d in CANDIDATE_UNKNOWN
    ]


def staff_cases() -> list[tuple[str, str]]:
    forged = [b.format(i) for b in STAFF_ID_BUTTONS for i in FORGED_IDS]
    return [(d, STALE_ZH) for d in forged + list(STAFF_WORD_BUTTONS)]


def test_forged_cases_cover_every_button_prefix() -> None:
    cases = [d for d, _ in candidate_cases() + staff_cases()]
    prefixes = {button_of(h).prefix for h in callback_handlers() if button_of(h) is not None}
    uncovered = sorted(p for p in prefixes if not any(d.startswith(p + ":") for d in cases))
    assert uncovered == []


async def _press_all(
    bot: Harness, user, chat_id: int, message_id: int, cases: list[tuple[str, str]]
) -> list[tuple[str, str | None, bool | None]]:  # type: ignore[no-untyped-def]
    """Press every case on one message, then wait: one user's presses run in order."""
    presses = [await user.press_data(message_id, data, chat=chat_id) for data, _ in cases]
    await bot.sandbox.wait_idle(timeout=60, quiet=0.2)
    assert bot.runtime is not None and await bot.runtime.dispatcher.drain(60)
    answers = [await user.wait_for_callback_answer(p, timeout=15) for p in presses]
    return [
        (d, a.get("text"), a.get("show_alert")) for (d, _), a in zip(cases, answers, strict=True)
    ]


async def test_forged_or_oversized_button_data_gets_the_stale_answer_and_nothing_else(
    any_bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = any_bot.sandbox
    candidate = sandbox.user(5101, first_name="Ann", language_code="en")
    staff = sandbox.user(STAFF_ID, first_name="Staff", language_code="zh-hans")
    await candidate.send_command("/start")
    menu = await candidate.wait_for_message()
    await staff.send_command("/help", chat=STAFF_CHAT_ID)
    card = await sandbox.wait_for_message(STAFF_CHAT_ID)
    await sandbox.wait_idle(timeout=15)
    before = len(sandbox.calls)
    caplog.set_level(logging.ERROR)

    answered = await _press_all(
        any_bot, candidate, candidate.id, menu["message_id"], candidate_cases()
    ) + await _press_all(any_bot, staff, STAFF_CHAT_ID, card["message_id"], staff_cases())

    expected = [(d, text, True) for d, text in candidate_cases() + staff_cases()]
    assert answered == expected
    calls = {c.method for c in sandbox.calls[before:]} - {"getUpdates"}
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert (calls, errors) == ({"answerCallbackQuery"}, [])
