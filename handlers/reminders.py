"""Reminders flow: the reminder template (rendered at send time), "I have read the rules",
and the staff list of who has not acknowledged them.

Entry points: `setup(application)`; templates `reminder` (`render_reminder`) and `venue`
(`render_venue`: the exam site's map pin that follows the ticket notice and the last exam
reminders, one outbox row of its own); handlers
`on_acknowledge`, `cmd_unacknowledged`, `on_unacknowledged_page`.
Callback data: `rem:ack:<registration id>` (the service checks it is the presser's own
PAID registration), staff `rem:un:<session code>:<page>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered, Venue
from bot.services.errors import InvalidState, NotFound
from bot.services.notify import Template
from bot.services.reminders import UnacknowledgedPage
from handlers.callbacks import ID, WORD, Button, StaffCallbackQueryHandler
from handlers.context import ExamContext
from handlers.render import (
    LevelNames,
    edit_message,
    level_label,
    level_names,
    refusals,
    stale_button,
)
from handlers.staff_roles import requires

ACKNOWLEDGE = Button("rem:ack", ID)  # rem:ack:<registration id>
UNACKNOWLEDGED_PAGE = Button("rem:un", WORD, ID)  # rem:un:<session code>:<page> (staff)


def when(tr: Translator, iso: str, zone: str) -> str:
    """A moment in the session's zone, in the reader's language: date and time."""
    return tr.datetime(datetime.fromisoformat(iso), zone)


def exam_rules(tr: Translator) -> str:
    return tr.gettext(
        "Exam-day rules:\n"
        "• Arrive 30 minutes before the start.\n"
        "• Bring the ID document you registered with (ID card or passport) and your "
        "admission ticket.\n"
        "• No mobile phones in the exam room.\n"
        "• No entry later than 15 minutes after the start."
    )


def _localized(tr: Translator, names: dict[str, str]) -> str:
    return names.get(tr.language) or names.get("en") or ""


def render_reminder(params: dict[str, Any], tr: Translator) -> Rendered:
    """A reminder in the recipient's current language, times in the session's zone."""
    kind, session, zone = params["kind"], params["session_code"], params["timezone"]
    moment = when(tr, params["moment"], zone)
    level = level_label(tr, params.get("level_code", ""), params.get("level_names"))
    if kind == "registration_closing":
        return Rendered(
            tr.gettext(
                "⏰ Registration for exam session {session} closes on {moment}. "
                "You may register but have not done so yet: send /register.",
                session=session,
                moment=moment,
            )
        )
    if kind == "payment_due":
        return Rendered(
            tr.gettext(
                "💳 The fee for your {level} registration in session {session} (reference "
                "{reference}) is due on {moment}. Send /status to see how to pay.",
                level=level,
                session=session,
                reference=params.get("reference", ""),
                moment=moment,
            )
        )
    if kind == "ticket_available":
        return Rendered(
            tr.gettext(
                "🎫 Your admission ticket for session {session} is ready: send /ticket to get it. "
                "The exam starts on {moment}.",
                session=session,
                moment=moment,
            )
        )
    if kind == "results_released":
        # Only ahead of the release ("-1d"): the release itself sends the results.
        return Rendered(
            tr.gettext(
                "📊 The results of exam session {session} come out on {moment}. "
                "I will send you yours then; /results shows them too.",
                session=session,
                moment=moment,
            )
        )
    # Only the components the registration booked (a retake carries the others over);
    # rows planned before `booked` existed list them all.
    booked = params.get("booked") or [c["component"] for c in params.get("components", [])]
    components = [c for c in params.get("components", []) if c["component"] in booked]
    if components:
        moment = when(
            tr, min((c["starts_at"] for c in components), key=datetime.fromisoformat), zone
        )
    parts = "\n".join(
        tr.gettext(
            "{component}: {period}, {room}",
            component=_localized(tr, c.get("name", {})),
            period=tr.period(
                datetime.fromisoformat(c["starts_at"]), datetime.fromisoformat(c["ends_at"]), zone
            ),
            room=_localized(tr, c.get("room", {})),
        )
        for c in components
    )
    text = tr.gettext(
        "📝 Your {level} exam (session {session}) starts on {moment}.\n{components}\n\n{rules}\n\n"
        "Please confirm that you have read the rules.",
        level=level,
        session=session,
        moment=moment,
        components=parts,
        rules=exam_rules(tr),
    )
    button = InlineKeyboardButton(
        tr.gettext("✅ I have read the rules"),
        callback_data=f"rem:ack:{params['registration_id']}",
    )
    return Rendered(text, InlineKeyboardMarkup([[button]]))


async def on_acknowledge(update: Update, context: ExamContext) -> None:
    """The candidate confirms the exam-day rules; a second tap changes nothing."""
    query = update.callback_query
    tr = context.tr
    registration_id = ACKNOWLEDGE.parse_one(query.data)
    if registration_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, stale=(NotFound, InvalidState)) as refused:
        ack = await context.services.reminders.acknowledge_rules(
            update.effective_user.id, registration_id
        )
    if refused.error:
        return
    await query.answer(tr.gettext("Thank you. Good luck in your exam!"))
    await edit_message(query)  # the button goes; a double tap finds it gone already
    if ack.first:
        await update.effective_message.reply_text(
            tr.gettext(
                "Noted: you have read the exam-day rules for session {session}.",
                session=ack.session_code,
            )
        )


def unacknowledged_text(tr: Translator, page: UnacknowledgedPage, levels: LevelNames) -> str:
    if page.total == 0:
        return tr.gettext(
            "Everyone paid in session {session} has confirmed the exam-day rules.",
            session=page.session_code,
        )
    header = tr.ngettext(
        "{count} candidate in session {session} has not confirmed the exam-day rules:",
        "{count} candidates in session {session} have not confirmed the exam-day rules:",
        page.total,
        session=page.session_code,
    )
    lines = [
        tr.gettext(
            "• {name} (Telegram {telegram_id}, {level})",
            name=p.name,
            telegram_id=p.telegram_id,
            level=level_label(tr, p.level_code, levels.get(p.level_code)),
        )
        for p in page.people
    ]
    footer = tr.gettext("Page {page} of {pages}", page=page.page, pages=page.pages)
    return "\n".join([header, *lines, footer])


def unacknowledged_keyboard(
    tr: Translator, page: UnacknowledgedPage
) -> InlineKeyboardMarkup | None:
    buttons = []
    if page.page > 1:
        buttons.append(
            InlineKeyboardButton(
                tr.gettext("◀️ Previous"),
                callback_data=f"rem:un:{page.session_code}:{page.page - 1}",
            )
        )
    if page.page < page.pages:
        buttons.append(
            InlineKeyboardButton(
                tr.gettext("Next ▶️"), callback_data=f"rem:un:{page.session_code}:{page.page + 1}"
            )
        )
    return InlineKeyboardMarkup([buttons]) if buttons else None


@requires(Role.ADMIN)
async def cmd_unacknowledged(update: Update, context: ExamContext) -> None:
    """Staff: /unacknowledged <session code> [page]."""
    tr = context.tr
    args = context.args or []
    if not args or (len(args) > 1 and not args[1].isdigit()):
        await update.effective_message.reply_text(
            tr.gettext("Usage: /unacknowledged <session code> [page]")
        )
        return

    def no_session(tr: Translator, _exc: NotFound) -> str:
        return tr.gettext("There is no session {session}.", session=args[0])

    async with refusals(update, tr, {NotFound: no_session}) as refused:
        page = await context.services.reminders.unacknowledged(
            args[0], int(args[1]) if len(args) > 1 else 1
        )
    if refused.error:
        return
    text = unacknowledged_text(tr, page, await level_names(context))
    await update.effective_message.reply_text(text, reply_markup=unacknowledged_keyboard(tr, page))


@requires(Role.ADMIN)
async def on_unacknowledged_page(update: Update, context: ExamContext) -> None:
    """Staff: another page of the list, in place."""
    query, tr = update.callback_query, context.tr
    parsed = UNACKNOWLEDGED_PAGE.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    session, number = parsed
    async with refusals(update, tr) as refused:
        page = await context.services.reminders.unacknowledged(session, number)
    if refused.error:
        return
    await query.answer()
    text = unacknowledged_text(tr, page, await level_names(context))
    await edit_message(query, text, reply_markup=unacknowledged_keyboard(tr, page))


def render_venue(params: dict[str, Any], tr: Translator) -> Rendered:
    """The exam site as a map pin, named in the recipient's language (the planner put the
    catalogue's site and point in the params)."""
    return Rendered(
        "",
        venue=Venue(
            latitude=float(params["latitude"]),
            longitude=float(params["longitude"]),
            title=_localized(tr, params.get("title", {})),
            address=_localized(tr, params.get("address", {})),
        ),
    )


TEMPLATES = {Template.REMINDER: render_reminder, Template.VENUE: render_venue}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CallbackQueryHandler(on_acknowledge, pattern=ACKNOWLEDGE.matches))
    application.add_handler(CommandHandler("unacknowledged", cmd_unacknowledged, staff))
    application.add_handler(
        StaffCallbackQueryHandler(on_unacknowledged_page, UNACKNOWLEDGED_PAGE, staff)
    )
