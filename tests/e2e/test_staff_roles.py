"""Staff roles end to end on both databases (issue 14 point 1; docs/staff.md, "Roles").

Every staff command and button is found in the running bot (the handlers routed by the
staff filter), so one added later is covered without editing this file: a member without
its role is refused with the role named, a member with it gets past the check. /staff
grants and revokes (buttons and words), the member is told, a revocation counts at the
next command, configured admins keep admin, and staff /help lists what the roles allow.
"""

from __future__ import annotations

import re
from typing import Any

from telegram.ext import Application, BaseHandler, CommandHandler, filters

from bot.domain.roles import Role, allows_any
from bot.i18n import I18n
from handlers.callbacks import Button, StaffCallbackQueryHandler
from handlers.staff_roles import STAFF_COMMANDS, not_allowed_text, required_roles
from tests.e2e.conftest import STAFF_ID, Harness, exchange

EN = I18n("zh_Hans").translator("en")
# One staff member per role, besides the configured admin STAFF_ID.
MEMBERS = {
    Role.ADMIN: 7100,
    Role.REVIEWER: 7101,
    Role.FINANCE: 7102,
    Role.RESULTS: 7103,
    Role.CHECKIN: 7104,
}


def _filters_in(f: object) -> list[object]:
    """A filter and every filter it is made of (`a & b`, `a | b`, `~a`)."""
    found = [f]
    for name in ("base_filter", "and_filter", "or_filter", "xor_filter", "inv_filter"):
        part = getattr(f, name, None)
        if isinstance(part, filters.BaseFilter):
            found += _filters_in(part)
    return found


def _handlers(application: Application) -> list[BaseHandler]:  # type: ignore[type-arg]
    return [h for group in sorted(application.handlers) for h in application.handlers[group]]


def staff_commands(application: Application) -> dict[str, Any]:
    """command → handler callback, for every command routed by the staff filter."""
    staff = application.bot_data.staff
    found: dict[str, Any] = {}
    for h in _handlers(application):
        if isinstance(h, CommandHandler) and any(f is staff for f in _filters_in(h.filters)):
            for command in h.commands:
                found.setdefault(command, h.callback)
    for command, file_command in application.bot_data.staff_files.items():
        found[command] = file_command.handle
    return found


def staff_buttons(application: Application) -> list[tuple[Button, Any]]:
    return [
        (h.pattern.__self__, h.callback)
        for h in _handlers(application)
        if isinstance(h, StaffCallbackQueryHandler)
    ]


def forged(button: Button) -> str:
    """Data of the button's shape whose values its parser refuses (an empty id or code)."""
    return button.example({i: "" for i, part in enumerate(button.parts) if not part.fixed})


def _member_without(roles: tuple[Role, ...]) -> int | None:
    """A member lacking every one of `roles`; None when any staff member may (`/find`)."""
    return next(
        (m for role, m in MEMBERS.items() if role is not Role.ADMIN and role not in roles), None
    )


def _refusal(roles: tuple[Role, ...]) -> list[str]:
    return [] if _member_without(roles) is None else [not_allowed_text(EN, roles)]


def _member_with(roles: tuple[Role, ...]) -> int:
    return MEMBERS[roles[0]]


async def grant_members(bot: Harness) -> None:
    """Each member gets their role through /staff, as an admin does it."""
    admin = bot.sandbox.user(STAFF_ID, first_name="Admin", language_code="en")
    for role, member in MEMBERS.items():
        await exchange(bot, admin, admin.send_command("/staff", f"grant {member} {role}"))


async def test_every_staff_command_is_refused_without_its_role_and_runs_with_it(
    any_bot: Harness,
) -> None:
    assert any_bot.runtime is not None
    application = any_bot.runtime.application
    await grant_members(any_bot)
    commands = staff_commands(application)
    refused, allowed = {}, {}
    for command, callback in sorted(commands.items()):
        roles = required_roles(callback)
        assert roles is not None, f"/{command} checks no role"
        refused[command] = []
        if (member := _member_without(roles)) is not None:
            without = any_bot.sandbox.user(member, language_code="en")
            replies = await exchange(any_bot, without, without.send_command("/" + command))
            refused[command] = [m.get("text") for m in replies]
        with_role = any_bot.sandbox.user(_member_with(roles), language_code="en")
        replies = await exchange(any_bot, with_role, with_role.send_command("/" + command))
        allowed[command] = not_allowed_text(EN, roles) in [m.get("text") for m in replies]
        await exchange(any_bot, with_role, with_role.send_command("/cancel"))

    assert refused == {c: _refusal(required_roles(cb)) for c, cb in commands.items()}
    assert allowed == dict.fromkeys(commands, False)
    # staff /help lists exactly the commands there are, each with its handler's roles
    assert {c.command: c.roles for c in STAFF_COMMANDS} == {
        c: required_roles(cb) for c, cb in commands.items()
    }


async def test_every_staff_button_is_refused_without_its_role_and_reaches_its_handler_with_it(
    any_bot: Harness,
) -> None:
    assert any_bot.runtime is not None
    buttons = staff_buttons(any_bot.runtime.application)
    await grant_members(any_bot)
    answers: dict[str, tuple[str | None, bool]] = {}
    for button, callback in buttons:
        roles = required_roles(callback)
        assert roles is not None, f"{button} checks no role"
        data = forged(button)  # a button without values (`rf:stop`) is pressed for real
        pressed: list[str | None] = []
        for member in (_member_without(roles), _member_with(roles)):
            if member is None:
                pressed.append(None)
                continue
            user = any_bot.sandbox.user(member, language_code="en")
            await exchange(any_bot, user, user.send_command("/help"))
            press = await user.press_data(user.messages()[-1]["message_id"], data)
            pressed.append((await user.wait_for_callback_answer(press, timeout=15)).get("text"))
        answers[data] = (pressed[0], pressed[1] != not_allowed_text(EN, roles))

    assert answers == {
        forged(b): ((_refusal(required_roles(cb)) or [None])[0], True) for b, cb in buttons
    }


def texts(messages: list[dict]) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in messages]


async def test_staff_card_grants_and_revokes_by_button_and_the_member_is_told(
    any_bot: Harness,
) -> None:
    sandbox = any_bot.sandbox
    admin = sandbox.user(STAFF_ID, first_name="Admin", language_code="en")
    member = sandbox.user(7200, first_name="Mei", language_code="zh-hans")
    whoami = texts(await exchange(any_bot, member, member.send_command("/staff")))
    before = texts(await exchange(any_bot, member, member.send_command("/history", "X")))

    card = (await exchange(any_bot, admin, admin.send_command("/staff", "7200")))[-1]
    grant = await admin.press(f"staff:grant:7200:{Role.FINANCE}", card["message_id"])
    granted = (await admin.wait_for_callback_answer(grant, timeout=15))["text"]
    told = (await member.wait_for_message(timeout=15, after=grant))["text"]
    buttons = admin.inline_buttons(card["message_id"])
    after_grant = texts(await exchange(any_bot, member, member.send_command("/history", "X")))

    revoke = await admin.press(f"staff:revoke:7200:{Role.FINANCE}", card["message_id"])
    revoked = (await admin.wait_for_callback_answer(revoke, timeout=15))["text"]
    await exchange(any_bot, admin, sandbox.wait_idle(timeout=15))
    after_revoke = texts(await exchange(any_bot, member, member.send_command("/history", "X")))

    zh = I18n("zh_Hans").translator("zh_Hans")
    finance_en = EN.gettext("finance (payments, statements, refunds)")
    assert whoami == [
        zh.gettext(
            "Your Telegram id is {telegram_id}. To work at the exam centre's desk, give it "
            "to an admin; they grant you a role with /staff.",
            telegram_id=7200,
        )
    ]
    assert (granted, revoked) == (
        EN.gettext(
            "Granted {role} to {telegram_id}; they are told in the bot if they have written "
            "to it.",
            role=finance_en,
            telegram_id=7200,
        ),
        EN.gettext("Revoked {role} from {telegram_id}.", role=finance_en, telegram_id=7200),
    )
    assert told == zh.gettext(
        "You now have the role {role} at the exam centre's desk. Send /help for the "
        "staff commands it allows.",
        role=zh.gettext("finance (payments, statements, refunds)"),
    )
    assert buttons[2] == (
        EN.gettext("✅ {role}", role=finance_en),
        f"staff:revoke:7200:{Role.FINANCE}",
    )
    assert after_grant == [zh.gettext("No registration with that reference.")]
    # No role left: not staff any more, /history is an unknown command again.
    assert (after_revoke, before != after_grant) == (before, True)


async def test_a_revocation_counts_at_the_next_command_even_before_the_filter_is_refreshed(
    any_bot: Harness,
) -> None:
    assert any_bot.runtime is not None
    services = any_bot.runtime.services
    await grant_members(any_bot)
    member = any_bot.sandbox.user(MEMBERS[Role.FINANCE], language_code="en")
    await services.staff.grant(STAFF_ID, member.id, Role.CHECKIN)
    allowed = texts(await exchange(any_bot, member, member.send_command("/history", "X")))
    # as another instance would: the row goes, this instance's filter still lists them
    await services.staff.revoke(STAFF_ID, member.id, Role.FINANCE)
    refused = texts(await exchange(any_bot, member, member.send_command("/history", "X")))

    assert (allowed, refused) == (
        [EN.gettext("No registration with that reference.")],
        [not_allowed_text(EN, (Role.FINANCE, Role.REVIEWER))],
    )


async def test_staff_in_words_configured_admins_keep_admin_and_help_lists_allowed_commands(
    any_bot: Harness,
) -> None:
    sandbox = any_bot.sandbox
    admin = sandbox.user(STAFF_ID, first_name="Admin", language_code="en")
    await grant_members(any_bot)
    refused = texts(
        await exchange(any_bot, admin, admin.send_command("/staff", f"revoke {STAFF_ID} admin"))
    )
    bad = texts(await exchange(any_bot, admin, admin.send_command("/staff", "grant 7101 boss")))
    listing = texts(await exchange(any_bot, admin, admin.send_command("/staff")))[0]
    finance = sandbox.user(MEMBERS[Role.FINANCE], language_code="en")
    helped = texts(await exchange(any_bot, finance, finance.send_command("/help")))

    assert refused == [
        EN.gettext(
            "{telegram_id} is an admin by configuration (EXAMDESK_ADMIN_IDS) and keeps "
            "admin; change the setting to remove them.",
            telegram_id=STAFF_ID,
        )
    ]
    assert bad[0].startswith("Usage: /staff")
    assert [line.split(" (")[0].lstrip("• ") for line in listing.splitlines()[1:-1]] == [
        "Admin",
        *[str(m) for m in MEMBERS.values()],
    ] or all(str(m) in listing for m in MEMBERS.values())
    staff_help = helped[-1].splitlines()
    assert staff_help[0] == EN.gettext(
        "Staff commands for your roles ({roles}):",
        roles=EN.gettext("finance (payments, statements, refunds)"),
    )
    assert [re.match(r"/\w+", line)[0] for line in staff_help[1:]] == [
        "/" + c.command for c in STAFF_COMMANDS if allows_any({Role.FINANCE}, c.roles)
    ]
