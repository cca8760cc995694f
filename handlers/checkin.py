"""Check-in at the door (issue 14 point 7; docs/staff.md, "Check-in").

Entry points: `setup(application)`; handlers `on_checkin_link` (`/start ci_<code>`: the
ticket's QR code opened by a phone camera), `cmd_checkin` (`/checkin <code or ticket
number>`), `on_present` (the "✅ Present" button) and `cmd_checkin_status`
(`/checkin_status SESSION`: present / expected per room). Callback data: `ci:ok:<registration
id>`, a hint only: the service checks the registration, its ticket and the day again.

Roles: everything here needs the check-in role (`@requires(Role.CHECKIN)`), except the
deep link, which anyone may open by scanning a ticket: a member holding the role gets the
card; other staff are told the role they lack; anyone else (a candidate scanning their own
ticket) gets the public check, the name masked, as the public check page gives it.

Order: this module comes before `common` in `FLOW_MODULES`, so its `/start ci_…` handler
sees the deep link before the plain `/start` does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, filters

from bot.domain.roles import Role, allows
from bot.i18n import Translator
from bot.services.checkin import (
    CHECKED_IN,
    NO_SESSION_TODAY,
    WRONG_SESSION,
    AlreadyCheckedIn,
    CheckinCard,
    CheckinStatus,
    Presence,
    TicketForged,
    TicketNotAdmitted,
    TicketReplaced,
    WrongSession,
)
from bot.services.errors import NotFound
from handlers.callbacks import ID, Button, StaffCallbackQueryHandler
from handlers.context import ExamContext
from handlers.render import (
    LevelNames,
    edit_message,
    group_tr,
    level_label,
    level_names,
    no_session,
    refusals,
    stale_button,
    state_label,
)
from handlers.staff_roles import not_allowed_text, requires

log = logging.getLogger(__name__)

DEEP_LINK = filters.Regex(r"^/start(@\w+)?\s+ci_")
PRESENT = Button("ci:ok", ID)  # ci:ok:<registration id>


# --- scanning


async def on_checkin_link(update: Update, context: ExamContext) -> None:
    """`/start ci_<code>`: the card for check-in staff, the public check for anyone else."""
    tr, code = context.tr, (context.args or [""])[0]
    roles = await context.services.staff.roles_of(update.effective_user.id)
    if allows(roles, Role.CHECKIN):
        await _scan(update, context, code)
    elif roles:
        await update.effective_message.reply_text(not_allowed_text(tr, Role.CHECKIN))
    else:
        check = await context.services.tickets.verify(code)
        await update.effective_message.reply_text(
            _public_text(tr, check, await level_names(context))
        )


@requires(Role.CHECKIN)
async def cmd_checkin(update: Update, context: ExamContext) -> None:
    """Staff: /checkin <code from the QR, or the ticket number> — the candidate's card."""
    if not context.args:
        await update.effective_message.reply_text(
            group_tr(update, context).gettext(
                "Usage: /checkin <code from the ticket's QR code, or the ticket number>\n"
                "Or scan the QR code with the phone's camera: it opens this chat."
            )
        )
        return
    await _scan(update, context, " ".join(context.args))


async def _scan(update: Update, context: ExamContext, text: str) -> None:
    tr, message = group_tr(update, context), update.effective_message
    async with refusals(update, tr, SCAN_REFUSALS) as refused:
        card = await context.services.checkin.scan(text)
    if refused.error:
        return
    caption = card_text(tr, card, await level_names(context))
    keyboard = (
        InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        tr.gettext("✅ Present"),
                        callback_data=PRESENT.example({0: str(card.registration_id)}),
                    )
                ]
            ]
        )
        if card.admissible
        else None
    )
    if card.photo_file_id:
        try:
            await message.reply_photo(card.photo_file_id, caption=caption, reply_markup=keyboard)
            return
        except TelegramError as exc:  # a file id Telegram no longer knows: the text will do
            log.warning("check-in photo of %s not sent: %s", card.ticket_number, exc)
    await message.reply_text(caption, reply_markup=keyboard)


def card_text(tr: Translator, card: CheckinCard, levels: LevelNames) -> str:
    """The candidate as the door sees them, then what to do (one caption: ≤ 1,024)."""
    lines = [
        tr.gettext(
            "🎫 Ticket {number}, seat {seat}\n{name}, ID {id_number}\n"
            "Session {session} ({date}), {level}",
            number=card.ticket_number,
            seat=card.seat,
            name=card.full_name or "-",
            id_number=card.id_number_masked or "-",
            session=card.session_code,
            date=tr.date(card.exam_date),
            level=level_label(tr, card.level_code, levels.get(card.level_code)),
        )
    ]
    for c in card.components:
        lines.append(
            tr.gettext(
                "• {component}: {time}, {room}",
                component=_name(tr, c.names),
                time=tr.time(c.starts_at, card.timezone),
                room=_name(tr, c.room),
            )
        )
    lines.append(_verdict(tr, card))
    if card.typed and card.admissible:
        lines.append(
            tr.gettext(
                "Typed ticket number: there was no QR signature to check. "
                "Compare the photo and the ID card with care."
            )
        )
    return "\n".join(lines)


def _verdict(tr: Translator, card: CheckinCard) -> str:
    if card.status == CHECKED_IN:
        assert card.checked_in_at is not None and card.checked_in_by is not None
        return _already(
            tr, card.checked_in_at, card.timezone, card.checked_in_by, card.checked_in_by_name
        )
    if card.status == WRONG_SESSION:
        return tr.gettext(
            "⛔ Wrong session: this ticket is for session {session} on {date}; "
            "today's session is {held}. Do not admit.",
            session=card.session_code,
            date=tr.date(card.exam_date),
            held=tr.join(card.held_today),
        )
    if card.status == NO_SESSION_TODAY:
        return tr.gettext(
            "⚠️ No exam session is held today; this ticket is for {date}. "
            "You can still check the candidate in.",
            date=tr.date(card.exam_date),
        )
    return tr.gettext("✅ Valid for today. Compare the photo and the ID card, then press Present.")


def _already(tr: Translator, at: Any, zone: str, by: int, name: str | None) -> str:
    return tr.gettext(
        "ℹ️ Already checked in at {time} by {who}.",
        time=tr.time(at, zone),
        who=name or tr.gettext("user {id}", id=by),
    )


def _public_text(tr: Translator, check: Any, levels: LevelNames) -> str:
    """What anyone without a staff role sees for a ticket's deep link (masked)."""
    if not check.valid:
        return tr.gettext("❌ This is not a valid admission ticket (any more).")
    return tr.gettext(
        "✅ Valid admission ticket {number}: {name}, session {session} ({date}), {level}.",
        number=check.ticket_number,
        name=check.name_masked,
        session=check.session_code,
        date=tr.date(check.exam_date),
        level=level_label(tr, check.level_code or "", levels.get(check.level_code or "")),
    )


def _name(tr: Translator, names: Mapping[str, str]) -> str:
    return names.get(tr.language) or names.get("en") or ""


# --- refusals


def _forged(tr: Translator, _exc: TicketForged) -> str:
    return tr.gettext(
        "❌ Not a valid admission ticket: the code is unknown or has been altered. "
        "Do not admit; ask for the ID card and find the candidate another way."
    )


def _replaced(tr: Translator, exc: TicketReplaced) -> str:
    check = exc.check
    if check.replaced_by:
        return tr.gettext(
            "❌ Ticket {number} was replaced by ticket {new}: it no longer admits anyone. "
            "Ask for the new ticket.\n{name}, ID {id_number}",
            number=check.ticket_number,
            new=check.replaced_by,
            name=check.full_name,
            id_number=check.id_number_masked,
        )
    return tr.gettext(
        "❌ Ticket {number} was replaced: the registration moved to session {session} "
        "({date}). It no longer admits anyone.\n{name}, ID {id_number}",
        number=check.ticket_number,
        session=check.session_code,
        date=tr.date(check.exam_date) if check.exam_date else "-",
        name=check.full_name,
        id_number=check.id_number_masked,
    )


def _not_admitted(tr: Translator, exc: TicketNotAdmitted) -> str:
    return tr.gettext(
        "❌ Ticket {number} no longer admits anyone: the registration is {state}.\n"
        "{name}, ID {id_number}",
        number=exc.check.ticket_number,
        state=state_label(tr, exc.state),
        name=exc.check.full_name or "-",
        id_number=exc.check.id_number_masked or "-",
    )


def _wrong_session(tr: Translator, exc: WrongSession) -> str:
    return tr.gettext(
        "⛔ Not checked in: this ticket is for session {session}; today's session is {held}.",
        session=exc.session_code,
        held=tr.join(exc.held),
    )


def _already_in(tr: Translator, exc: AlreadyCheckedIn) -> str:
    return _already(tr, exc.at, exc.timezone, exc.by, exc.by_name)


def _no_ticket(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("❌ This registration has no admission ticket for its session.")


SCAN_REFUSALS = {
    TicketForged: _forged,
    TicketReplaced: _replaced,
    TicketNotAdmitted: _not_admitted,
    NotFound: _no_ticket,
}
PRESENT_REFUSALS = {
    TicketNotAdmitted: _not_admitted,
    WrongSession: _wrong_session,
    AlreadyCheckedIn: _already_in,
}


# --- "Present"


@requires(Role.CHECKIN)
async def on_present(update: Update, context: ExamContext) -> None:
    """`ci:ok:<registration id>`: check the candidate in; the first press wins."""
    query, tr = update.callback_query, group_tr(update, context)
    registration_id = PRESENT.parse_one(query.data)
    if registration_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, PRESENT_REFUSALS) as refused:
        presence = await context.services.checkin.present(
            update.effective_user.id, registration_id
        )
    if refused.error:
        return
    await query.answer(tr.gettext("✅ Checked in."))
    await edit_message(query)  # the button goes: one press is all it takes
    await update.effective_message.reply_text(presence_text(tr, presence))


def presence_text(tr: Translator, p: Presence) -> str:
    lines = [
        tr.gettext(
            "✅ Present: {name} ({number}) at {time}.",
            name=p.full_name or "-",
            number=p.ticket_number,
            time=tr.time(p.at, p.timezone),
        ),
        tr.gettext(
            "Session {session}: {present} of {expected} checked in.",
            session=p.session_code,
            present=p.present,
            expected=p.expected,
        ),
    ]
    if p.warning == NO_SESSION_TODAY:
        lines.append(tr.gettext("⚠️ Recorded on a day no exam session is held."))
    return "\n".join(lines)


# --- /checkin_status SESSION


@requires(Role.CHECKIN)
async def cmd_checkin_status(update: Update, context: ExamContext) -> None:
    """Staff: present / expected per room of a session."""
    tr, args = group_tr(update, context), context.args or []
    if len(args) != 1:
        await update.effective_message.reply_text(tr.gettext("Usage: /checkin_status SESSION"))
        return
    async with refusals(update, tr, {NotFound: no_session}) as refused:
        status = await context.services.checkin.status(args[0])
    if refused.error:
        return
    await update.effective_message.reply_text(status_text(tr, status))


def status_text(tr: Translator, s: CheckinStatus) -> str:
    lines = [
        tr.gettext(
            "🚪 Check-in, session {session} ({date}): {present} of {expected} present.",
            session=s.session_code,
            date=tr.date(s.exam_date),
            present=s.present,
            expected=s.expected,
        )
    ]
    for room in s.rooms:
        lines.append(
            tr.gettext(
                "• {room}: {present} of {expected}",
                room=_name(tr, room.room),
                present=room.present,
                expected=room.expected,
            )
        )
    if not s.held_today:
        lines.append(tr.gettext("This session is not held today."))
    return "\n".join(lines)


def setup(application: Application) -> None:
    staff = application.bot_data.staff  # the live staff filter (handlers.staff_roles)
    # Before common's /start (FLOW_MODULES order): only the ci_ deep link is taken here.
    application.add_handler(
        CommandHandler("start", on_checkin_link, filters.ChatType.PRIVATE & DEEP_LINK)
    )
    application.add_handler(CommandHandler("checkin", cmd_checkin, staff))
    application.add_handler(CommandHandler("checkin_status", cmd_checkin_status, staff))
    application.add_handler(StaffCallbackQueryHandler(on_present, PRESENT, staff))
