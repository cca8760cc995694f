"""Admission ticket flow: /ticket (and its button) sends the PDF; /checkticket for staff;
the `ticket_ready` notification the scheduler queues once the ticket date has come.

Entry points: `setup(application)`; handlers `cmd_ticket`, `on_ticket_button`,
`cmd_checkticket`; template `ticket_ready`. Callback data: `tk:get:<registration id>`, a
hint only: the service checks that the registration belongs to the presser.
The PDF is made here, as a direct reply, never by the outbox sender (docs/tickets.md).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import NotFound, NotPaid, TicketNotYetAvailable
from bot.services.notify import Template
from bot.services.tickets import TicketCheck, TicketData
from handlers.callbacks import ID, Button
from handlers.context import ExamContext
from handlers.render import (
    LevelNames,
    level_label,
    level_names,
    refusals,
    stale_button,
    ticket_button,
)
from handlers.staff_roles import requires
from handlers.tickets_pdf import render_ticket

log = logging.getLogger(__name__)


async def cmd_ticket(update: Update, context: ExamContext) -> None:
    """/ticket: the admission ticket of the candidate's next paid sitting, as a PDF."""
    await _send_ticket(update, context, None)


GET_TICKET = Button("tk:get", ID)  # tk:get:<registration id>


async def on_ticket_button(update: Update, context: ExamContext) -> None:
    """`tk:get:<id>`: the ticket of that registration."""
    query = update.callback_query
    registration_id = GET_TICKET.parse_one(query.data)
    if registration_id is None:
        await stale_button(query, context.tr)
        return
    await query.answer()
    await _send_ticket(update, context, registration_id)


def _no_ticket(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("You have no registration with an admission ticket. See /status.")


def _not_paid(tr: Translator, _exc: NotPaid) -> str:
    return tr.gettext(
        "Your admission ticket is issued once your registration is paid. See /status."
    )


def _not_yet(tr: Translator, exc: TicketNotYetAvailable) -> str:
    return tr.gettext(
        "Your admission ticket will be available from {when}. I will send you a message then.",
        when=tr.datetime(exc.available_from, exc.timezone),
    )


NO_TICKET = {NotFound: _no_ticket, NotPaid: _not_paid, TicketNotYetAvailable: _not_yet}


async def _send_ticket(update: Update, context: ExamContext, registration_id: int | None) -> None:
    tr = context.tr
    message = update.effective_message
    async with refusals(update, tr, NO_TICKET, as_message=True) as refused:
        data = await context.services.tickets.ticket(update.effective_user.id, registration_id)
    if refused.error:
        return
    await context.bot.send_chat_action(message.chat_id, ChatAction.UPLOAD_DOCUMENT)
    photo = await _photo(context, data)
    # reportlab is CPU-bound (tens of ms): keep the event loop free for other users meanwhile.
    pdf = await asyncio.to_thread(
        render_ticket,
        data,
        context.i18n.translator("zh_Hans"),
        context.i18n.translator("en"),
        photo=photo,
    )
    caption = (
        tr.gettext(
            "🎫 Your admission ticket {number} for {date}. Print it (or keep it on your phone) "
            "and bring it with your passport.",
            number=data.ticket_number,
            date=tr.date(data.exam_date),
        )
        if data.id_doc_type == "passport"
        else tr.gettext(
            "🎫 Your admission ticket {number} for {date}. Print it (or keep it on your phone) "
            "and bring it with your ID card.",
            number=data.ticket_number,
            date=tr.date(data.exam_date),
        )
    )
    await message.reply_document(
        pdf, filename=f"admission-ticket-{data.ticket_number}.pdf", caption=caption
    )


async def _photo(context: ExamContext, data: TicketData) -> bytes | None:
    """The registration photo's bytes, or None: the ticket then shows "photo on file"."""
    if not data.photo_file_id:
        return None
    try:
        file = await context.bot.get_file(data.photo_file_id)
        return bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("photo for ticket %s not downloaded: %s", data.ticket_number, exc)
        return None


@requires(Role.CHECKIN)
async def cmd_checkticket(update: Update, context: ExamContext) -> None:
    """Staff: /checkticket <reference or check URL> — is this ticket genuine, and whose is it?"""
    tr = context.tr
    if not context.args:
        await update.effective_message.reply_text(
            tr.gettext("Usage: /checkticket <reference from the QR code>")
        )
        return
    check = await context.services.tickets.verify(" ".join(context.args))
    await update.effective_message.reply_text(check_text(tr, check, await level_names(context)))


def check_text(tr: Translator, check: TicketCheck, levels: LevelNames) -> str:
    if check.reason in ("forged", "unknown"):
        return tr.gettext(
            "❌ Not a valid admission ticket: the reference is unknown or has been altered."
        )
    details = tr.gettext(
        "Ticket {number}: {name}, ID {id_number}\n"
        "Session {session} ({date}), {level}, seat {seat}",
        number=check.ticket_number,
        name=check.full_name,
        id_number=check.id_number_masked,
        session=check.session_code,
        date=tr.date(check.exam_date) if check.exam_date else "-",
        level=level_label(tr, check.level_code or "", levels.get(check.level_code or "")),
        seat=check.seat,
    )
    if check.reason == "replaced":
        return replaced_text(tr, check)
    if not check.valid:
        return tr.gettext(
            "❌ This ticket is no longer valid: the registration is not paid (cancelled?).\n"
            "{details}",
            details=details,
        )
    return tr.gettext("✅ Valid admission ticket.\n{details}", details=details)


def replaced_text(tr: Translator, check: TicketCheck) -> str:
    """An old ticket: moved to another session or corrected by staff; what replaced it."""
    values = {
        "number": check.ticket_number,
        "name": check.full_name,
        "id_number": check.id_number_masked,
        "session": check.session_code,
        "date": tr.date(check.exam_date) if check.exam_date else "-",
    }
    if check.replaced_by:
        return tr.gettext(
            "❌ Ticket {number} was replaced by ticket {new}: it no longer admits anyone.\n"
            "{name}, ID {id_number}, session {session} ({date})",
            new=check.replaced_by,
            **values,
        )
    return tr.gettext(
        "❌ Ticket {number} was replaced: the registration moved to session {session} "
        "({date}), whose new ticket is not issued yet. It no longer admits anyone.\n"
        "{name}, ID {id_number}",
        **values,
    )


def ticket_ready(params: dict[str, Any], tr: Translator) -> Rendered:
    text = tr.gettext(
        "🎫 Your admission ticket for the exam on {date} ({level}) is ready: ticket number "
        "{number}. Press the button or send /ticket to get the PDF.",
        date=tr.date(date.fromisoformat(params["exam_date"])) if params.get("exam_date") else "-",
        level=level_label(tr, params.get("level_code", ""), params.get("level_names")),
        number=params.get("ticket_number", ""),
    )
    button = ticket_button(tr, int(params["registration_id"]))
    return Rendered(text, InlineKeyboardMarkup([[button]]))


TEMPLATES = {Template.TICKET_READY: ticket_ready}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CommandHandler("ticket", cmd_ticket, filters.ChatType.PRIVATE))
    application.add_handler(CallbackQueryHandler(on_ticket_button, pattern=GET_TICKET.matches))
    application.add_handler(CommandHandler("checkticket", cmd_checkticket, staff))
