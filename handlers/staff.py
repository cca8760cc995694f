"""Staff members and their roles (issue 14; docs/staff.md, "Roles"): admins only.

* `/staff`: every member (EXAMDESK_ADMIN_IDS first) with their roles;
* `/staff <telegram id>`: one person's card, a button per role showing whether they hold
  it; a press grants or revokes that role (`/staff grant|revoke <telegram id> <role>`
  does the same in words). The service audits each change and tells the member in the bot
  when a role is granted (`Template.STAFF_ROLE_GRANTED`); this instance's staff filter is
  refreshed at once, other instances' within a tick. The EXAMDESK_ADMIN_IDS admins keep
  admin.

`/staff` by anyone else (a private chat) answers with their Telegram id, which a new
member gives to an admin.

Entry points: `setup(application)`; handlers `cmd_staff`, `cmd_whoami`, `on_role_button`.
Callback data (behind `StaffCallbackQueryHandler`, admin only):
`staff:grant|revoke:<telegram id>:<role>`. The button says what it will do, so two admins
pressing at once both get what they saw (granting twice changes nothing).
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CommandHandler, filters

from bot.domain.roles import Role, parse_role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.notify import Template
from bot.services.staff import EnvironmentAdmin, StaffMember
from handlers.callbacks import Button, StaffCallbackQueryHandler, number, one_of
from handlers.context import ExamContext
from handlers.render import edit_message, group_tr, stale_button
from handlers.staff_roles import refresh_staff, requires, role_label

#: Telegram user ids have up to 52 significant bits (Bot API: "fits in a double").
TELEGRAM_ID = number(1, 2**52)
ROLE = Button("staff", one_of("grant", "revoke"), TELEGRAM_ID, one_of(*(r.value for r in Role)))


def _name(tr: Translator, member: StaffMember) -> str:
    return member.name or tr.gettext("(has not written to the bot yet)")


def _roles_text(tr: Translator, roles: frozenset[Role]) -> str:
    if not roles:
        return tr.gettext("no role")
    return tr.join(role_label(tr, r) for r in Role if r in roles)


def members_text(tr: Translator, members: list[StaffMember]) -> str:
    lines = [tr.gettext("Staff members and their roles:")]
    for m in members:
        lines.append(
            tr.gettext(
                "• {name} ({telegram_id}): {roles}",
                name=_name(tr, m),
                telegram_id=m.telegram_id,
                roles=_roles_text(tr, m.roles),
            )
        )
    lines.append(
        tr.gettext(
            "Send /staff <telegram id> for a member's card with a button per role. A new "
            "member sends /staff to this bot to learn their Telegram id."
        )
    )
    return "\n".join(lines)


def card_text(tr: Translator, member: StaffMember) -> str:
    values = {
        "name": _name(tr, member),
        "telegram_id": member.telegram_id,
        "roles": _roles_text(tr, member.roles),
    }
    if member.configured:
        return tr.gettext(
            "Staff member {name} ({telegram_id})\nRoles: {roles}\n"
            "An admin by configuration (EXAMDESK_ADMIN_IDS): keeps admin.\n"
            "Press a role to grant (➕) or revoke (✅) it.",
            **values,
        )
    return tr.gettext(
        "Staff member {name} ({telegram_id})\nRoles: {roles}\n"
        "Press a role to grant (➕) or revoke (✅) it.",
        **values,
    )


def card_keyboard(tr: Translator, member: StaffMember) -> InlineKeyboardMarkup:
    rows = []
    for role in Role:
        name = role_label(tr, role)
        if role in member.roles:
            label, action = tr.gettext("✅ {role}", role=name), "revoke"
        else:
            label, action = tr.gettext("➕ {role}", role=name), "grant"
        data = f"{ROLE.prefix}:{action}:{member.telegram_id}:{role.value}"
        rows.append([InlineKeyboardButton(label, callback_data=data)])
    return InlineKeyboardMarkup(rows)


def _usage(tr: Translator) -> str:
    return tr.gettext(
        "Usage: /staff, /staff <telegram id>, /staff grant <telegram id> <role> or "
        "/staff revoke <telegram id> <role>. Roles: {roles}.",
        roles=", ".join(r.value for r in Role),
    )


@requires(Role.ADMIN)
async def cmd_staff(update: Update, context: ExamContext) -> None:
    """Admin: `/staff`, `/staff <telegram id>`, `/staff grant|revoke <telegram id> <role>`."""
    tr, message, args = group_tr(update, context), update.effective_message, context.args or []
    staff = context.services.staff
    if not args:
        await message.reply_text(members_text(tr, await staff.members()))
        return
    if len(args) == 1 and TELEGRAM_ID.convert(args[0]) is not None:
        member = await staff.member(int(args[0]))
        await message.reply_text(card_text(tr, member), reply_markup=card_keyboard(tr, member))
        return
    action = args[0].lower() if len(args) == 3 else ""
    telegram_id = TELEGRAM_ID.convert(args[1]) if len(args) == 3 else None
    role = parse_role(args[2]) if len(args) == 3 else None
    if action not in ("grant", "revoke") or telegram_id is None or role is None:
        await message.reply_text(_usage(tr))
        return
    done = await _change(update, context, action, telegram_id, role)
    if done is not None:
        await message.reply_text(done)
        member = await staff.member(telegram_id)
        await message.reply_text(card_text(tr, member), reply_markup=card_keyboard(tr, member))


async def cmd_whoami(update: Update, context: ExamContext) -> None:
    """`/staff` by someone who is not staff: their Telegram id, to give to an admin."""
    await update.effective_message.reply_text(
        context.tr.gettext(
            "Your Telegram id is {telegram_id}. To work at the exam centre's desk, give it "
            "to an admin; they grant you a role with /staff.",
            telegram_id=update.effective_user.id,
        )
    )


@requires(Role.ADMIN)
async def on_role_button(update: Update, context: ExamContext) -> None:
    """`staff:grant|revoke:<telegram id>:<role>`: do it, show the card again."""
    query, tr = update.callback_query, group_tr(update, context)
    parsed = ROLE.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    action, telegram_id, role_value = parsed
    done = await _change(update, context, action, telegram_id, Role(role_value))
    if done is None:
        return
    await query.answer(done)
    member = await context.services.staff.member(telegram_id)
    await edit_message(query, card_text(tr, member), reply_markup=card_keyboard(tr, member))


async def _change(
    update: Update, context: ExamContext, action: str, telegram_id: int, role: Role
) -> str | None:
    """Grant or revoke; the text saying what happened, or None when refused (said)."""
    tr, staff, actor = context.tr, context.services.staff, update.effective_user.id
    values: dict[str, Any] = {"role": role_label(tr, role), "telegram_id": telegram_id}
    if action == "grant":
        changed = await staff.grant(actor, telegram_id, role)
        text = (
            tr.gettext(
                "Granted {role} to {telegram_id}; they are told in the bot if they have "
                "written to it.",
                **values,
            )
            if changed
            else tr.gettext("{telegram_id} already has the role {role}.", **values)
        )
    else:
        try:
            changed = await staff.revoke(actor, telegram_id, role)
        except EnvironmentAdmin:
            text = tr.gettext(
                "{telegram_id} is an admin by configuration (EXAMDESK_ADMIN_IDS) and keeps "
                "admin; change the setting to remove them.",
                **values,
            )
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            else:
                await update.effective_message.reply_text(text)
            return None
        text = (
            tr.gettext("Revoked {role} from {telegram_id}.", **values)
            if changed
            else tr.gettext("{telegram_id} does not have the role {role}.", **values)
        )
    await refresh_staff(context.application)  # this instance routes by it at once
    return text


def staff_role_granted(params: dict[str, Any], tr: Translator) -> Rendered:
    role = parse_role(params.get("role", ""))
    return Rendered(
        tr.gettext(
            "You now have the role {role} at the exam centre's desk. Send /help for the "
            "staff commands it allows.",
            role=role_label(tr, role) if role is not None else params.get("role", ""),
        )
    )


TEMPLATES = {Template.STAFF_ROLE_GRANTED: staff_role_granted}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CommandHandler("staff", cmd_staff, staff))
    application.add_handler(CommandHandler("staff", cmd_whoami, filters.ChatType.PRIVATE))
    application.add_handler(StaffCallbackQueryHandler(on_role_button, ROLE, staff))
