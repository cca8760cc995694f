"""Eligibility end to end: the questions in both languages, bad input, forged buttons, verdicts."""

from __future__ import annotations

from tests.e2e.conftest import Harness


def new(predicate=None):  # type: ignore[no-untyped-def]
    """Match a newly sent message (not an edit of an earlier one), optionally filtered."""
    return lambda m: "edit_date" not in m and (predicate is None or predicate(m))


async def test_eligibility_journey_in_chinese_ends_with_route_j2(bot: Harness) -> None:
    user = bot.sandbox.user(201, first_name="王", language_code="zh-hans")
    await user.send_command("/eligibility")
    assert (await user.wait_for_message(new()))["text"] == "您想查询哪个等级？"
    await user.press("elig:a:level:junior")
    assert (await user.wait_for_message(new()))["text"] == "您的最高学历是什么（已毕业或在读）？"
    await user.press("elig:a:education:bachelor")
    await user.wait_for_message(new())
    await user.send_text("2027年6月")
    major_question = await user.wait_for_message(new())
    await user.press("elig:a:major:automation")
    await user.wait_for_message(new())
    await user.press("elig:a:title:none")
    await user.wait_for_message(new())
    await user.press("elig:a:work_start:none")
    verdict = await user.wait_for_message(new(lambda m: "✅" in m.get("text", "")))
    assert major_question["text"].startswith("您的专业是什么")
    assert "依据条件 J2" in verdict["text"] and "128 学时" in verdict["text"]
    assert ("📝 报名该等级", "reg:start:junior") in user.inline_buttons(verdict)


async def test_eligibility_journey_in_english_explains_what_is_missing(bot: Harness) -> None:
    user = bot.sandbox.user(202, first_name="Ann", language_code="en")
    await user.send_command("/eligibility")
    await user.wait_for_message(new())
    await user.press("elig:a:level:intermediate")
    await user.wait_for_message(new())
    await user.press("elig:a:education:master")
    await user.wait_for_message(new())
    await user.send_text("2025-06-30")
    await user.wait_for_message(new())
    await user.send_text("Mechanical Engineering")
    await user.wait_for_message(new())
    await user.press("elig:a:title:none")
    await user.wait_for_message(new())
    await user.press("elig:a:prior_level:none")
    verdict = await user.wait_for_message(new(lambda m: "❌" in m.get("text", "")))
    assert "not yet eligible for" in verdict["text"]
    assert "You can apply for" in verdict["text"] and "(route J2)" in verdict["text"]


async def test_eligibility_bad_input_gets_a_hint_and_the_same_question_again(bot: Harness) -> None:
    user = bot.sandbox.user(203, language_code="en")
    await user.send_command("/eligibility")
    await user.wait_for_message(new())
    await user.press("elig:a:level:junior")
    await user.wait_for_message(new())
    await user.press("elig:a:education:bachelor")
    question = await user.wait_for_message(new())
    await user.send_sticker()
    sticker_hint = await user.wait_for_message(new())
    await user.send_text("2027-02-30")
    impossible = await user.wait_for_message(new(lambda m: "does not exist" in m.get("text", "")))
    await user.send_text("sometime soon")
    unreadable = await user.wait_for_message(new(lambda m: "could not read" in m.get("text", "")))
    again = await user.wait_for_message(new(lambda m: m["text"] == question["text"]))
    assert sticker_hint["text"] == "Please type a date, e.g. 2025-06-30."
    assert (impossible["text"], unreadable["text"].startswith("I could not read that date")) == (
        "That date does not exist. Please check the day and the month.",
        True,
    )
    assert again["text"] == question["text"]


async def test_eligibility_forged_and_old_buttons_change_nothing(bot: Harness) -> None:
    user = bot.sandbox.user(204, language_code="en")
    await user.send_command("/eligibility")
    level_question = await user.wait_for_message(new())
    await user.press("elig:a:level:junior")
    education_question = await user.wait_for_message(new())
    forged = await user.press_data(education_question["message_id"], "elig:a:education:astronaut")
    hint = await user.wait_for_message(
        new(lambda m: m.get("text") == "Please choose one of the buttons.")
    )
    old = await user.press_data(level_question["message_id"], "elig:a:level:senior")
    old_answer = await user.wait_for_callback_answer(old)
    await user.press("elig:a:education:bachelor")
    next_question = await user.wait_for_message(
        new(lambda m: m.get("text", "").startswith("When did you graduate"))
    )
    assert (hint["text"], old_answer.get("text"), forged["update_id"] > 0) == (
        "Please choose one of the buttons.",
        "This button is no longer valid.",
        True,
    )
    assert next_question["text"].startswith("When did you graduate")


async def test_eligibility_resumes_at_the_same_question_after_restart(bot: Harness) -> None:
    user = bot.sandbox.user(205, language_code="en")
    await user.send_command("/eligibility")
    await user.wait_for_message(new())
    await user.press("elig:a:level:junior")
    await user.wait_for_message(new())
    await user.press("elig:a:education:associate")
    question = await user.wait_for_message(new())
    await bot.restart()
    await user.send_text("2019-07-01")
    next_question = await user.wait_for_message(new())
    assert question["text"].startswith("When did you graduate")
    assert next_question["text"].startswith("What is your major?")


async def test_cancel_mid_check_keeps_answers_and_the_check_continues_later(bot: Harness) -> None:
    user = bot.sandbox.user(206, language_code="en")
    await user.send_command("/eligibility")
    await user.wait_for_message(new())
    await user.press("elig:a:level:junior")
    await user.wait_for_message(new())
    await user.press("elig:a:education:bachelor")
    await user.wait_for_message(new())
    await user.send_command("/cancel")
    stopped = await user.wait_for_message(new())
    await user.send_text("2024-06-30")  # outside any flow now: not taken as an answer
    hint = await user.wait_for_message(new())
    await user.send_command("/eligibility")
    await user.wait_for_message(new())
    await user.press("elig:a:level:junior")
    resumed = await user.wait_for_message(new())
    assert stopped["text"].startswith("Stopped. Your answers so far are saved")
    # Outside a flow typed text is offered to the exam centre, never taken as an answer.
    assert hint["text"].startswith("I am the exam centre's bot and cannot answer that myself")
    assert resumed["text"].startswith("When did you graduate")  # education was kept
