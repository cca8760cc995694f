"""Payments flow, the staff's side: review of bank-transfer receipts (approve, reject with a
reason or a typed one), bank-statement CSV imports, /history, and the staff notices (the
receipt review card, a payment flagged for refund).

Entry points: `setup(application)`; handlers `on_staff_decision`, `on_staff_back`,
`on_staff_reason_text`, `on_statement_file`, `on_statement_decision`, `cmd_history`.
Callback data (every one behind `StaffCallbackQueryHandler`): `pay:ok:<payment id>`,
`pay:no:<payment id>[:<reason code>|other]`, `pay:back:<payment id>`,
`pay:csv:ok|no:<import id>`. The first staff decision wins; the service says who was first.
What the bot writes into the staff chat (cards, verdicts, reason prompts) is in the site's
language whoever pressed (`group_tr`); receipt cards a statement import made moot lose their
buttons; /history names states, actions and methods in words.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, MessageHandler, filters

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.broadcasts import FLOW as BROADCAST_FLOW
from bot.services.errors import AlreadyDecided, InvalidAnswer, NotFound
from bot.services.notify import Template
from bot.services.payments import REJECT_REASONS, HistoryEntry
from bot.services.payments_bank import StatementPreview
from bot.services.staff_files import FLOW as STAFF_FILE_FLOW
from handlers.callbacks import (
    ID,
    Button,
    StaffCallbackQueryHandler,
    add_staff_chat_input,
    one_of,
    optional,
)
from handlers.context import ExamContext
from handlers.render import (
    action_label,
    actor_label,
    already_decided,
    amount_text,
    edit_message,
    group_tr,
    level_label,
    method_label,
    payment_status_label,
    reason_label,
    refusals,
    stale_button,
    state_label,
    why_label,
)
from handlers.staff_roles import requires

log = logging.getLogger(__name__)

PREVIEW_LINES = 25

# pay:ok:<payment id>, pay:no:<payment id>[:<reason>]: "other" asks staff to type one
DECISION = Button("pay", one_of("ok", "no"), ID, optional(one_of(*REJECT_REASONS, "other")))
BACK = Button("pay:back", ID)  # pay:back:<payment id>: the approve / reject buttons again
STATEMENT = Button("pay:csv", one_of("ok", "no"), ID)  # pay:csv:ok|no:<import id>
MAX_CSV_BYTES = 2 * 1024 * 1024


def decided_text(tr: Translator, exc: AlreadyDecided) -> str:
    return already_decided(tr, exc, payment_status_label(tr, exc.status))


# --- receipt review ------------------------------------------------------------------------------


@requires(Role.REVIEWER)
async def on_staff_decision(update: Update, context: ExamContext) -> None:
    """`pay:ok:<id>` / `pay:no:<id>[:<reason>]`: the first staff decision wins."""
    query, tr = update.callback_query, context.tr
    parsed = DECISION.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    verb, payment_id, reason = parsed
    approve = verb == "ok"
    card_tr = group_tr(update, context)  # the card and its buttons: one language in the group
    if not approve and reason is None:
        buttons = [
            InlineKeyboardButton(
                reason_label(card_tr, code), callback_data=f"pay:no:{payment_id}:{code}"
            )
            for code in REJECT_REASONS
        ]
        buttons.append(
            InlineKeyboardButton(
                card_tr.gettext("✍️ Other (type it)"), callback_data=f"pay:no:{payment_id}:other"
            )
        )
        buttons.append(
            InlineKeyboardButton(card_tr.gettext("↩️ Back"), callback_data=f"pay:back:{payment_id}")
        )
        await query.answer()
        await edit_message(query, reply_markup=InlineKeyboardMarkup([[b] for b in buttons]))
        return
    services = context.services.payments
    async with refusals(update, tr, {AlreadyDecided: decided_text}) as refused:
        if reason == "other":
            reference = await services.ask_reason(payment_id, update.effective_user.id)
        else:
            decision = await services.decide_receipt(
                payment_id, update.effective_user.id, approve=approve, reason=reason
            )
    if refused.error:
        return
    await query.answer()
    if reason == "other":
        await update.effective_message.reply_text(
            card_tr.gettext(
                "{staff}, type the reason for rejecting the receipt of {reference} as your next "
                "message in this chat.",
                staff=update.effective_user.full_name,
                reference=reference,
            )
        )
        return
    verdict = (
        card_tr.gettext("✅ Approved by {staff}", staff=update.effective_user.full_name)
        if decision.approved
        else card_tr.gettext(
            "❌ Rejected by {staff}: {reason}",
            staff=update.effective_user.full_name,
            reason=reason_label(card_tr, decision.reason),
        )
    )
    await edit_message(
        query,
        caption=card_tr.gettext(
            "{card}\n\n{verdict}", card=query.message.caption or "", verdict=verdict
        ),
        reply_markup=None,
    )


@requires(Role.REVIEWER)
async def on_staff_back(update: Update, context: ExamContext) -> None:
    """`pay:back:<id>`: the approve / reject buttons again."""
    query = update.callback_query
    payment_id = BACK.parse_one(query.data)
    if payment_id is None:
        await stale_button(query, context.tr)
        return
    await query.answer()
    await edit_message(query, reply_markup=review_keyboard(group_tr(update, context), payment_id))


@requires(Role.REVIEWER, quiet=True)
async def on_staff_reason_text(update: Update, context: ExamContext) -> None:
    """Text in the staff chat: the typed reason of a staff member who chose "other"."""
    decision = await context.services.payments.reject_with_typed_reason(
        update.effective_user.id, update.effective_message.text or ""
    )
    if decision is None:
        return  # ordinary staff chat: no reason was owed
    await update.effective_message.reply_text(
        group_tr(update, context).gettext(
            "❌ Receipt of {reference} rejected: {reason}. The candidate is told.",
            reference=decision.reference,
            reason=decision.reason,
        )
    )


# --- bank statement CSV, history -----------------------------------------------------------------


def preview_text(tr: Translator, p: StatementPreview, file_name: str) -> str:
    lines = [
        tr.gettext(
            "📄 Bank statement {file}: {matched} matched, {ambiguous} ambiguous, {unmatched} "
            "unmatched, {recorded} already recorded.",
            file=file_name,
            matched=p.count("matched"),
            ambiguous=p.count("ambiguous"),
            unmatched=p.count("unmatched"),
            recorded=p.count("recorded"),
        )
    ]
    marks = {"matched": "✅", "ambiguous": "❔", "unmatched": "✖️", "recorded": "↩️"}
    for row in p.rows[:PREVIEW_LINES]:
        lines.append(
            tr.gettext(
                "{mark} line {line}: {date} {amount} {reference} {payer} {why}",
                mark=marks[row.status],
                line=row.line,
                date=row.date,
                amount=amount_text(tr, row.amount_minor, p.currency),
                reference=row.reference or "-",
                payer=row.payer,
                why=why_label(tr, row.why),
            ).rstrip()
        )
    if len(p.rows) > PREVIEW_LINES:
        lines.append(
            tr.ngettext(
                "…and {count} more row.", "…and {count} more rows.", len(p.rows) - PREVIEW_LINES
            )
        )
    lines.append(
        tr.gettext(
            "Only matched rows are recorded. Ambiguous and unmatched rows need a manual check."
        )
    )
    return "\n".join(lines)


def _unreadable_statement(tr: Translator, _exc: InvalidAnswer) -> str:
    return tr.gettext(
        "I could not read this file as a bank statement. It must be a CSV file whose first line "
        "is date,amount,reference,payer (see docs/payments.md)."
    )


async def on_statement_file(update: Update, context: ExamContext) -> None:
    """A staff member sent a CSV: a broadcast's attachment, a waiting file command's file,
    else a bank statement (`preview_statement`)."""
    if context.candidate is not None and context.candidate.flow == BROADCAST_FLOW:
        # A staff member composing a broadcast with a CSV attachment: the file is the
        # announcement, not a bank statement.
        if update.effective_chat.type == update.effective_chat.PRIVATE:
            await context.flows.on_private_message(update, context)
        return
    if context.candidate is not None and context.candidate.flow == STAFF_FILE_FLOW:
        # `/results_import CODE` (or another file command) came first: the file is for it.
        await context.flows.on_private_message(update, context)
        return
    await preview_statement(update, context)


@requires(Role.FINANCE)
async def preview_statement(update: Update, context: ExamContext) -> None:
    """The statement itself: only finance reads it (the routing above is anyone's)."""
    message, tr = update.effective_message, group_tr(update, context)
    document = message.document
    if document.file_size and document.file_size > MAX_CSV_BYTES:
        await message.reply_text(
            tr.gettext("That file is too large for a bank statement (2 MB at most).")
        )
        return
    data = bytes(await (await context.bot.get_file(document.file_id)).download_as_bytearray())
    async with refusals(update, tr, {InvalidAnswer: _unreadable_statement}) as refused:
        preview = await context.services.statements.preview(
            update.effective_user.id, document.file_name, data
        )
    if refused.error:
        return
    buttons = [
        InlineKeyboardButton(
            tr.gettext("✖️ Discard"), callback_data=f"pay:csv:no:{preview.import_id}"
        )
    ]
    if preview.count("matched"):
        buttons.insert(
            0,
            InlineKeyboardButton(
                tr.ngettext(
                    "✅ Record {count} matched payment",
                    "✅ Record {count} matched payments",
                    preview.count("matched"),
                ),
                callback_data=f"pay:csv:ok:{preview.import_id}",
            ),
        )
    await message.reply_text(
        preview_text(tr, preview, document.file_name or ""),
        reply_markup=InlineKeyboardMarkup([buttons]),
    )


@requires(Role.FINANCE)
async def on_statement_decision(update: Update, context: ExamContext) -> None:
    """`pay:csv:ok|no:<id>`: record the matched rows, or drop the preview; once."""
    query, tr = update.callback_query, group_tr(update, context)
    parsed = STATEMENT.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    verb, import_id = parsed
    async with refusals(update, tr, {AlreadyDecided: decided_text}) as refused:
        if verb == "ok":
            applied = await context.services.statements.apply(import_id, update.effective_user.id)
            text = tr.gettext(
                "Recorded: {paid} paid, {flagged} flagged for refund, {recorded} already "
                "recorded before.",
                paid=applied.paid,
                flagged=applied.flagged,
                recorded=applied.already_recorded,
            )
        else:
            await context.services.statements.discard(import_id, update.effective_user.id)
            text = tr.gettext("Discarded: nothing was recorded.")
    if refused.error:
        return
    await query.answer()
    await edit_message(query)
    await update.effective_message.reply_text(text)
    if verb == "ok":
        await _clear_cards(context, applied.settled_cards)


async def _clear_cards(context: ExamContext, cards: tuple[tuple[int, int], ...]) -> None:
    """Take the approve / reject buttons off receipt cards the import made moot: the
    registration is paid, nothing is left to decide on them."""
    for chat_id, message_id in cards:
        try:
            await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
        except TelegramError as exc:  # deleted, too old, or already without buttons
            log.info("receipt card %s/%s kept its buttons: %s", chat_id, message_id, exc)


def _no_such_registration(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("No registration with that reference.")


@requires(Role.FINANCE, Role.REVIEWER)
async def cmd_history(update: Update, context: ExamContext) -> None:
    """Staff: /history <reference>: every state change of a registration and its payments."""
    tr = group_tr(update, context)
    if not context.args:
        await update.effective_message.reply_text(
            tr.gettext("Usage: /history <registration reference>")
        )
        return
    async with refusals(update, tr, {NotFound: _no_such_registration}) as refused:
        h = await context.services.payments.history(context.args[0])
    if refused.error:
        return
    zone = context.settings.timezone
    lines = [
        tr.gettext(
            "History of {reference} (now: {state}):",
            reference=h.reference,
            state=state_label(tr, h.state),
        )
    ]
    for e in h.entries:
        lines.append(history_line(tr, e, zone))
    for pid, method, status, amount, currency, refund in h.payments:
        lines.append(
            tr.gettext(
                "Payment #{id}: {method}, {amount}, {status}",
                id=pid,
                method=method_label(tr, method),
                amount=amount_text(tr, amount, currency),
                status=payment_status_label(tr, status)
                if not refund or status == "refund_due"
                else tr.gettext("{status}, to refund", status=payment_status_label(tr, status)),
            )
        )
    await update.effective_message.reply_text("\n".join(lines)[:4000])


def history_line(tr: Translator, e: HistoryEntry, zone: str) -> str:
    """One audit entry in words: when, who, what, the state change and the reason."""
    label = payment_status_label if e.entity == "payment" else state_label
    what = tr.gettext(
        "{at}, {actor}: {action}",
        at=tr.datetime(e.at, zone),
        actor=actor_label(tr, e.actor),
        action=action_label(tr, e.action),
    )
    if e.to_state:
        what = tr.gettext(
            "{event} ({old} → {new})",
            event=what,
            old=label(tr, e.from_state) if e.from_state else "-",
            new=label(tr, e.to_state),
        )
    if e.reason:
        what = tr.gettext(
            "{event}. Reason: {reason}", event=what, reason=history_reason(tr, e.reason)
        )
    return what


def history_reason(tr: Translator, reason: str) -> str:
    """A coded reason in words (a payment method, a rejection, a refund cause); a reason
    staff typed is shown as typed."""
    for words in (method_label, reason_label, why_label):
        worded = words(tr, reason)
        if worded != reason:
            return worded
    return {
        "payment_deadline_passed": tr.gettext("the payment deadline passed"),
        "receipt_rejected_after_deadline": tr.gettext(
            "the receipt was rejected after the payment deadline"
        ),
    }.get(reason, reason)


# --- notification templates (rendered by the outbox sender at send time) -------------------------


def review_keyboard(tr: Translator, payment_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("✅ Approve"), callback_data=f"pay:ok:{payment_id}"
                ),
                InlineKeyboardButton(
                    tr.gettext("❌ Reject"), callback_data=f"pay:no:{payment_id}"
                ),
            ]
        ]
    )


def receipt_review(params: dict[str, Any], tr: Translator) -> Rendered:
    amount = tr.money(int(Decimal(params["amount"]) * 100), params["currency"])
    text = tr.gettext(
        "🧾 Bank transfer receipt #{payment_id}\nReference: {reference}\n"
        "Candidate: {name} (Telegram {telegram_id})\n"
        "{level}, session {session}\nFee: {amount}{unconfirmed}",
        payment_id=params["payment_id"],
        reference=params["reference"],
        name=params.get("name", ""),
        telegram_id=params.get("telegram_id", ""),
        level=level_label(tr, params.get("level_code", ""), params.get("level_names")),
        session=params.get("session_code", ""),
        amount=amount,
        unconfirmed=""
        if params.get("fee_confirmed")
        else tr.gettext(" (not confirmed in the catalogue)"),
    )
    lines = [text]
    earlier = params.get("after_rejection")
    if earlier:
        lines.append(
            tr.gettext(
                "🔁 Sent again after receipt #{previous} was rejected: {reason}.",
                previous=earlier.get("payment_id", ""),
                reason=reason_label(tr, earlier.get("reason")),
            )
        )
    if params.get("same_file_on"):
        lines.append(
            tr.gettext(
                "⚠️ The same file was already sent for: {references}",
                references=tr.join(params["same_file_on"]),
            )
        )
    text = "\n".join(lines)
    photo = params["file_id"] if params.get("kind") == "photo" else None
    document = None if photo else params["file_id"]
    return Rendered(
        text, review_keyboard(tr, params["payment_id"]), photo=photo, document=document
    )


def payment_flagged(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(
        tr.gettext(
            "⚠️ Payment #{payment_id} needs a refund or a manual check: {why}.\n"
            "Reference: {reference}\n"
            "Method: {method}, transaction {external_id}\nAmount: {amount} (expected {expected})\n"
            "See /history {reference}",
            payment_id=params["payment_id"],
            why=why_label(tr, params.get("why")),
            reference=params.get("reference") or "-",
            method=method_label(tr, params.get("method")),
            external_id=params.get("external_id", ""),
            amount=amount_text(tr, params.get("amount_minor"), params.get("currency", "")),
            expected=amount_text(tr, params.get("expected"), params.get("currency", "")),
        )
    )


TEMPLATES = {
    Template.PAYMENT_RECEIPT_REVIEW: receipt_review,
    Template.PAYMENT_FLAGGED: payment_flagged,
}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    # Staff-only: a press by anyone else falls through to "no longer valid".
    application.add_handler(StaffCallbackQueryHandler(on_staff_decision, DECISION, staff))
    application.add_handler(StaffCallbackQueryHandler(on_staff_back, BACK, staff))
    application.add_handler(StaffCallbackQueryHandler(on_statement_decision, STATEMENT, staff))
    application.add_handler(CommandHandler("history", cmd_history, staff))
    # Before flows.setup: a CSV from staff is a bank statement, not a typed answer.
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE & staff & filters.Document.FileExtension("csv"),
            on_statement_file,
        )
    )
    # Its own group: other staff-chat text handlers still run.
    add_staff_chat_input(application, on_staff_reason_text, group=1)
