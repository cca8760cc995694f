"""Corrections flow: a candidate whose name or ID number is frozen (a registration paid or
its payment under review) asks the staff to correct it; staff correct it with /correct.

Entry points: `setup(application)`; handlers `on_request_button`, `on_request_text` (the
typed request, flow `correction`), `cmd_correct` (staff only, like /history:
`/correct <reference> name|id|resident_id|passport <value> | <reason>`); templates
`correction_request` (the staff card) and `identity_corrected` (the candidate's notice).
Callback data: `fix:<registration id>`, a hint only: the service checks that the
registration belongs to the presser and is frozen.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.corrections import FIELDS, FLOW
from bot.services.errors import InvalidAnswer, InvalidState, NotFound
from bot.services.notify import Template
from handlers.callbacks import ID, Button
from handlers.context import ExamContext
from handlers.render import (
    answer_error,
    group_tr,
    level_label,
    refusals,
    stale_button,
    state_label,
    ticket_button,
)
from handlers.staff_roles import requires


def request_prompt(tr: Translator) -> str:
    return tr.gettext(
        "What is wrong, and what should it be? Type it in one message, e.g. “My name is 张三丰, "
        "not 张三”. The exam centre staff check it against your ID document and correct it. "
        "Send /cancel to stop."
    )


def _not_frozen(tr: Translator, _exc: InvalidState) -> str:
    return tr.gettext(
        "This registration is not paid yet: you can still change your name and ID number "
        "yourself with /register."
    )


REQUEST = Button("fix", ID)  # fix:<registration id>: request a correction


async def on_request_button(update: Update, context: ExamContext) -> None:
    """`fix:<id>`: the candidate's next typed message is their correction request."""
    query, tr = update.callback_query, context.tr
    registration_id = REQUEST.parse_one(query.data)
    if registration_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, {InvalidState: _not_frozen}, alert=False) as refused:
        await context.services.corrections.begin(update.effective_user.id, registration_id)
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(request_prompt(tr))


async def on_request_text(update: Update, context: ExamContext) -> None:
    """The typed request (flow `correction`): a card to the staff chat."""
    tr = context.tr
    explain = {InvalidAnswer: answer_error, NotFound: _registration_gone}
    async with refusals(update, tr, explain) as refused:
        sent = await context.services.corrections.request(
            update.effective_user.id,
            update.effective_message.text,
            context.settings.staff_chat_id,
        )
    if refused.error:
        return
    await update.effective_message.reply_text(
        tr.gettext(
            "Sent to the exam centre staff (registration {reference}). They check it against "
            "your ID document and tell you here once it is corrected.",
            reference=sent.reference,
        )
    )


def _registration_gone(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("That registration is no longer there. See /status.")


async def resume_request(update: Update, context: ExamContext) -> None:
    """After /start: still waiting for the request."""
    await update.effective_message.reply_text(request_prompt(context.tr))


# --- staff: /correct -----------------------------------------------------------------------


def parse_correct(text: str) -> tuple[str, str, str, str] | None:
    """`<reference> <field> <value> | <reason>` → its four parts, or None."""
    head, bar, reason = text.partition("|")
    parts = head.split(maxsplit=2)
    if not bar or len(parts) != 3 or parts[1] not in FIELDS or not reason.strip():
        return None
    reference, field, value = parts
    return reference, field, value.strip(), reason.strip()


def field_name(tr: Translator, field: str) -> str:
    return {
        "name": tr.gettext("name"),
        "id": tr.gettext("ID number"),
        "resident_id": tr.gettext("PRC resident ID card"),
        "passport": tr.gettext("Passport (foreign candidates)"),
    }.get(field, field)


def correction_error(tr: Translator, exc: InvalidAnswer) -> str:
    """Why staff's correction was refused (the value checked as the form checks it)."""
    if exc.reason == "unchanged":
        return tr.gettext("Nothing to correct: that is what is stored already.")
    if exc.reason == "name_characters":
        return tr.gettext("A name has letters only, as on the ID document.")
    if exc.reason == "id_in_use":
        return tr.gettext("This ID number is registered with another Telegram account.")
    if exc.step == "id_number":
        return tr.gettext(
            "That is not a valid number for this ID document: check it and send the command again."
        )
    return answer_error(tr, exc)


def _usage(tr: Translator) -> str:
    return tr.gettext(
        "Usage: /correct <reference> name <new name> | <reason>\n"
        "or /correct <reference> id <number> | <reason>\n"
        "(resident_id or passport instead of id also changes the ID document)"
    )


def _no_such_registration(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("No registration with that reference.")


@requires(Role.ADMIN)
async def cmd_correct(update: Update, context: ExamContext) -> None:
    """Staff: correct a candidate's name or ID number, with a reason (audited)."""
    tr = group_tr(update, context)
    _command, _, rest = (update.effective_message.text or "").partition(" ")
    parsed = parse_correct(rest)
    if parsed is None:
        await update.effective_message.reply_text(_usage(tr))
        return
    explain = {NotFound: _no_such_registration, InvalidAnswer: correction_error}
    async with refusals(update, tr, explain) as refused:
        done = await context.services.corrections.correct(update.effective_user.id, *parsed)
    if refused.error:
        return
    tickets = tr.join(tr.gettext("{old} → {new}", old=old, new=new) for old, new in done.tickets)
    await update.effective_message.reply_text(
        tr.gettext(
            "✅ {reference}: {field} corrected from {old} to {new}. Re-issued tickets: "
            "{tickets}. {told}",
            reference=done.reference,
            field=field_name(tr, done.field),
            old=done.old or "-",
            new=done.new,
            tickets=tickets or "-",
            told=tr.gettext("The candidate is told.")
            if done.notified
            else tr.gettext("The candidate has no chat with the bot: tell them another way."),
        )
    )


# --- notification templates ----------------------------------------------------------------


def correction_request(params: dict[str, Any], tr: Translator) -> Rendered:
    """The staff card: who asks, for which registration, what they say, how to correct."""
    return Rendered(
        tr.gettext(
            "📝 Correction request for {reference} ({state})\n"
            "Candidate: {name} (Telegram {telegram_id}), ID {id_number}\n"
            "{level}, session {session}\n"
            "Request: {request}\n"
            "Correct with /correct {reference} name <new name> | <reason>, "
            "or /correct {reference} id <number> | <reason>.",
            reference=params.get("reference", ""),
            state=state_label(tr, params.get("state", "")),
            name=params.get("name", ""),
            telegram_id=params.get("telegram_id", ""),
            id_number=params.get("id_number") or "-",
            level=level_label(tr, params.get("level_code", ""), params.get("level_names")),
            session=params.get("session_code", ""),
            request=params.get("request", ""),
        )
    )


def identity_corrected(params: dict[str, Any], tr: Translator) -> Rendered:
    """The candidate's notice: what staff corrected and why, and the re-issued ticket."""
    values = {
        "field": field_name(tr, params.get("field", "")),
        "value": params.get("value", ""),
        "reference": params.get("reference", ""),
        "reason": params.get("reason", ""),
    }
    tickets = params.get("tickets") or []
    if not tickets:
        return Rendered(
            tr.gettext(
                "✏️ The exam centre corrected the {field} of your registration {reference}: "
                "now {value}. Reason: {reason}.",
                **values,
            )
        )
    button = ticket_button(tr, int(params["registration_id"]))
    return Rendered(
        tr.gettext(
            "✏️ The exam centre corrected the {field} of your registration {reference}: "
            "now {value}. Reason: {reason}. Your admission ticket was re-issued as {tickets}; "
            "the old one is no longer valid.",
            tickets=tr.join(tickets),
            **values,
        ),
        InlineKeyboardMarkup([[button]]),
    )


TEMPLATES = {
    Template.CORRECTION_REQUEST: correction_request,
    Template.IDENTITY_CORRECTED: identity_corrected,
}
INPUTS = {FLOW: on_request_text}
RESUMES = {FLOW: resume_request}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CallbackQueryHandler(on_request_button, pattern=REQUEST.matches))
    application.add_handler(CommandHandler("correct", cmd_correct, staff))
