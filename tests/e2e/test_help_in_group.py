"""/help in a group (the staff chat): never the candidate's menu, whose buttons would run
candidate flows in the group; staff get the commands their roles allow."""

from __future__ import annotations

from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, Harness


async def _help_in_group(bot: Harness, user) -> list[dict]:  # type: ignore[no-untyped-def]
    before = len(bot.sandbox.calls)
    await user.send_command("/help", chat=STAFF_CHAT_ID)
    await bot.sandbox.wait_idle(timeout=15, quiet=0.2)
    assert bot.runtime is not None and await bot.runtime.dispatcher.drain(15)
    return [
        c.params
        for c in bot.sandbox.calls[before:]
        if c.method == "sendMessage" and c.params.get("chat_id") == STAFF_CHAT_ID
    ]


async def test_help_in_the_staff_group_lists_staff_commands_without_the_candidate_menu(
    bot: Harness,
) -> None:
    staff = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    stranger = bot.sandbox.user(5301, first_name="Ann", language_code="en")

    by_staff = await _help_in_group(bot, staff)
    by_stranger = await _help_in_group(bot, stranger)

    assert (
        [p["text"].splitlines()[0] for p in by_staff],
        [p.get("reply_markup") for p in by_staff],
        [p["text"] for p in by_stranger],
    ) == (
        ["Staff commands for your roles (admin):"],
        [None],
        ["Send me /help in a private chat: I answer candidates there."],
    )
