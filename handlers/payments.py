"""Payments flow: the fee and methods, Telegram invoices, bank receipts, staff review of
receipts, bank-statement CSV imports, /history, and the payment notification templates.

Entry points: `setup(application)`; `send_offer` (called after a registration is submitted);
handlers `on_pay`, `on_invoice`, `on_pre_checkout`, `on_successful_payment`, `on_receipt_button`,
`on_receipt`, `on_staff_decision`, `on_staff_reason_text`, `on_statement_file`, `on_statement_decision`,
`cmd_history`. Callback data: `pay:<registration id>` (show the offer), `pay:inv:<id>:telegram|stars`,
`pay:receipt:<id>`; staff: `pay:ok:<payment id>`, `pay:no:<payment id>[:<reason code>|other]`,
`pay:csv:ok|no:<import id>`. Ids are only hints: the service re-checks ownership and state.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, PreCheckoutQueryHandler, filters

from bot.services.notify import Template
from handlers.context import ExamContext
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import AlreadyDecided, AlreadyPaid, InvalidAnswer, InvalidState, NotFound, PaymentUnavailable, StaleStep
from bot.services.payments import FLOW, REJECT_REASONS, STARS, PaymentOffer, PaymentOutcome
from bot.services.payments_bank import StatementPreview
from handlers import broadcasts, flows
from handlers.notifications import level_label
from handlers.render import stale_button, state_label
from handlers.staff import StaffCallbackQueryHandler

SITE_ZONE = "Asia/Shanghai"
PREVIEW_LINES = 25
MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_RECEIPT_BYTES = 10 * 1024 * 1024
RECEIPT_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/webp", "image/heic")


# --- texts -----------------------------------------------------------------------------------


def amount_text(tr: Translator, amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return "-"
    if currency == STARS:
        return tr.ngettext("{count} Star", "{count} Stars", amount_minor)
    return tr.money(amount_minor, currency)


def offer_text(tr: Translator, o: PaymentOffer) -> str:
    level = level_label(tr, o.level_code)
    if o.amount is not None:
        fee = tr.gettext("Exam fee for {level}: {amount}.", level=level, amount=tr.money(int(o.amount * 100), o.currency))
    else:
        fee = tr.gettext("The exam fee for {level} is not confirmed yet: the exam centre will confirm the amount before you pay.", level=level)
    parts = [
        fee,
        tr.gettext(
            "Please pay by {due}. A registration still unpaid at {deadline} expires and its seat goes to the next person in line.",
            due=tr.datetime(o.due_at, o.timezone, "short"), deadline=tr.datetime(o.deadline_at, o.timezone, "short"),
        ),
    ]
    if "bank_transfer" in o.methods and o.bank is not None:
        parts.append(tr.gettext(
            "Bank transfer:\nAccount name: {name}\nBank: {bank}\nAccount number: {number}\n"
            "Write this reference in the transfer remark: {reference}\nThen upload the receipt with the button below.",
            name=o.bank.account_name, bank=o.bank.bank_name, number=o.bank.account_number, reference=o.reference,
        ))
        if o.bank.placeholder:
            parts.append(tr.gettext("⚠️ These bank details are not final yet. Please wait for the exam centre to confirm them before you transfer."))
    if not o.methods:
        parts.append(tr.gettext("No payment method is open yet. The exam centre will tell you here how to pay."))
    return "\n\n".join(parts)


def offer_keyboard(tr: Translator, o: PaymentOffer) -> InlineKeyboardMarkup | None:
    buttons = []
    if "telegram" in o.methods and o.amount is not None:
        buttons.append(InlineKeyboardButton(
            tr.gettext("💳 Pay {amount} in Telegram", amount=tr.money(int(o.amount * 100), o.currency)),
            callback_data=f"pay:inv:{o.registration_id}:telegram"))
    if "stars" in o.methods and o.stars is not None:
        buttons.append(InlineKeyboardButton(
            tr.gettext("⭐ Pay with {amount}", amount=amount_text(tr, o.stars, STARS)),
            callback_data=f"pay:inv:{o.registration_id}:stars"))
    if "bank_transfer" in o.methods:
        buttons.append(InlineKeyboardButton(
            tr.gettext("🧾 I paid by bank transfer: upload the receipt"), callback_data=f"pay:receipt:{o.registration_id}"))
    return InlineKeyboardMarkup([[b] for b in buttons]) if buttons else None


def refusal_text(tr: Translator, exc: Exception) -> str:
    if isinstance(exc, AlreadyPaid):
        return tr.gettext("This registration is already paid. See /status.")
    reason = getattr(exc, "reason", None) or getattr(exc, "state", None)
    return {
        "fee_unconfirmed": tr.gettext("The fee is not confirmed yet, so I cannot take a payment in Telegram. Please wait for the exam centre."),
        "method_disabled": tr.gettext("This payment method is not available. Send /status to see how you can pay."),
        "deadline_passed": tr.gettext("The payment deadline of this registration has passed."),
        "eligibility_pending": tr.gettext("Your eligibility is not settled yet. You can pay once the exam centre has confirmed it."),
        "amount_mismatch": tr.gettext("The amount does not match the fee of this registration. Please start the payment again from /status."),
        "unknown_invoice": tr.gettext("This invoice is no longer valid. Please start the payment again from /status."),
        "payment_review": tr.gettext("Your receipt for this registration is already under review. I will tell you the outcome here."),
        "receipt_already_reviewed": tr.gettext(
            "The exam centre has already reviewed this very file for this registration. Please send a new "
            "receipt (press 🧾 again in /status), or contact the staff."),
    }.get(reason or "", tr.gettext("This registration cannot be paid any more. See /status."))


def decided_text(tr: Translator, exc: AlreadyDecided) -> str:
    if exc.decided_by is None:  # settled by a payment, not by a person
        return tr.gettext("Already settled ({status}).", status=exc.status)
    return tr.gettext("Already decided ({status}) by user {user}.", status=exc.status, user=exc.decided_by)


def reason_label(tr: Translator, reason: str | None) -> str:
    labels = {
        "amount_wrong": tr.gettext("the amount is wrong"),
        "reference_missing": tr.gettext("the reference is missing from the transfer remark"),
        "unreadable": tr.gettext("the receipt cannot be read"),
        "not_received": tr.gettext("the transfer has not arrived in the centre's account"),
    }
    return labels.get(reason or "", reason or "-")


def why_label(tr: Translator, why: str | None) -> str:
    labels = {
        "bad_date": tr.gettext("date not readable"),
        "bad_amount": tr.gettext("amount not readable"),
        "no_reference": tr.gettext("no reference in the row"),
        "unknown_reference": tr.gettext("unknown reference"),
        "reference_repeated": tr.gettext("the same reference is on several rows"),
        "amount_differs": tr.gettext("amount differs from the fee"),
        "already_paid": tr.gettext("already paid"),
        "double_payment": tr.gettext("already paid: a second payment"),
        "amount_mismatch": tr.gettext("amount or currency differs from the fee"),
    }
    if why and why.startswith("registration_"):
        return tr.gettext("registration is {state}", state=state_label(tr, why.removeprefix("registration_")))
    return labels.get(why or "", why or "")


# --- candidate: offer, invoices, Telegram payments --------------------------------------------


def _id(text: str, index: int = -1) -> int:
    part = text.split(":")[index]
    return int(part) if part.isdigit() else 0


async def send_offer(update: Update, context: ExamContext, registration_id: int) -> None:
    """The fee, deadline and methods of a registration (after submitting, or from /status)."""
    tr = context.tr
    try:
        offer = await context.services.payments.offer(update.effective_user.id, registration_id)
    except NotFound:
        await update.effective_message.reply_text(tr.gettext("This button is no longer valid."))
        return
    except (AlreadyPaid, InvalidState, PaymentUnavailable) as exc:
        await update.effective_message.reply_text(refusal_text(tr, exc))
        return
    await update.effective_message.reply_text(offer_text(tr, offer), reply_markup=offer_keyboard(tr, offer))


async def on_pay(update: Update, context: ExamContext) -> None:
    """`pay:<id>`: show how to pay this registration."""
    await update.callback_query.answer()
    await send_offer(update, context, _id(update.callback_query.data))


async def on_invoice(update: Update, context: ExamContext) -> None:
    """`pay:inv:<id>:<method>`: send a Telegram invoice (CNY through the provider, or Stars)."""
    query = update.callback_query
    tr = context.tr
    method = query.data.rsplit(":", 1)[-1]
    try:
        spec = await context.services.payments.invoice(update.effective_user.id, _id(query.data, 2), method)
    except NotFound:
        await stale_button(query, tr)
        return
    except (AlreadyPaid, InvalidState, PaymentUnavailable) as exc:
        await query.answer(refusal_text(tr, exc), show_alert=True)
        return
    await query.answer()
    token = context.settings.payment_provider_token
    await context.bot.send_invoice(
        update.effective_chat.id,
        title=tr.gettext("Exam fee {reference}", reference=spec.reference),
        description=tr.gettext("{level}, session {session}. Registration reference {reference}.",
                               level=level_label(tr, spec.level_code), session=spec.session_code, reference=spec.reference),
        payload=spec.payload, currency=spec.currency,
        prices=[LabeledPrice(tr.gettext("Exam fee"), spec.amount_minor)],
        provider_token=token.get_secret_value() if token is not None and method == "telegram" else None,
    )


async def on_pre_checkout(update: Update, context: ExamContext) -> None:
    """Answer within Telegram's 10 s: seat still held, amount and currency right, not paid yet."""
    query = update.pre_checkout_query
    try:
        await context.services.payments.check_pre_checkout(query.invoice_payload, query.currency, query.total_amount)
    except (AlreadyPaid, PaymentUnavailable) as exc:
        await query.answer(ok=False, error_message=refusal_text(context.tr, exc))
        return
    await query.answer(ok=True)


def outcome_text(tr: Translator, o: PaymentOutcome) -> str:
    if o.status == "paid":
        return tr.gettext("✅ Payment received for registration {reference}. Your registration is paid: see /status.", reference=o.reference)
    return tr.gettext(
        "We received your payment for registration {reference}, but the registration can no longer be paid "
        "(it expired, was cancelled or was already paid). The exam centre has been told and will refund it.",
        reference=o.reference or "-",
    )


async def on_successful_payment(update: Update, context: ExamContext) -> None:
    """Record a Telegram payment once per charge id; late or double money is flagged for refund."""
    payment = update.effective_message.successful_payment
    outcome = await context.services.payments.record_telegram_payment(
        payment.invoice_payload, payment.currency, payment.total_amount,
        payment.telegram_payment_charge_id, payment.provider_payment_charge_id,
    )
    await update.effective_message.reply_text(outcome_text(context.tr, outcome))


# --- candidate: bank-transfer receipt ----------------------------------------------------------


async def on_receipt_button(update: Update, context: ExamContext) -> None:
    """`pay:receipt:<id>`: wait for the receipt (the step is kept in the database)."""
    query = update.callback_query
    tr = context.tr
    try:
        reference = await context.services.payments.start_receipt(update.effective_user.id, _id(query.data))
    except NotFound:
        await stale_button(query, tr)
        return
    except (AlreadyPaid, InvalidState, PaymentUnavailable) as exc:
        await query.answer(refusal_text(tr, exc), show_alert=True)
        return
    await query.answer()
    await update.effective_message.reply_text(tr.gettext(
        "Send the receipt of your bank transfer for {reference} now, as a photo or a PDF file. /cancel stops.", reference=reference))


async def on_receipt(update: Update, context: ExamContext) -> None:
    """A photo or PDF while the candidate is uploading a receipt; anything else gets a hint."""
    message, tr = update.effective_message, context.tr
    upload = message.photo[-1] if message.photo else message.document
    mime = "image/jpeg" if message.photo else (message.document.mime_type if message.document else None)
    if upload is None or mime not in RECEIPT_TYPES:
        await message.reply_text(tr.gettext("Please send the receipt as a photo or a PDF file. /cancel stops."))
        return
    if upload.file_size and upload.file_size > MAX_RECEIPT_BYTES:
        await message.reply_text(tr.gettext("That file is larger than {limit} MB. Please send a smaller photo or PDF.", limit=MAX_RECEIPT_BYTES // 2**20))
        return
    # The content's hash finds the same receipt uploaded again for another registration
    # (a re-upload gets a new file_unique_id; a forwarded file keeps it).
    content = await (await context.bot.get_file(upload.file_id)).download_as_bytearray()
    try:
        result = await context.services.payments.submit_receipt(
            update.effective_user.id, file_id=upload.file_id, file_unique_id=upload.file_unique_id,
            kind="photo" if message.photo else "document", mime_type=mime, content_sha256=hashlib.sha256(content).hexdigest())
    except StaleStep:
        await message.reply_text(tr.gettext("Send /status and press Pay to upload a receipt."))
        return
    except (AlreadyPaid, InvalidState, PaymentUnavailable) as exc:
        await message.reply_text(refusal_text(tr, exc))
        return
    await message.reply_text(tr.gettext(
        "📨 Receipt received for {reference}. It is under review by the exam centre staff; I will tell you the outcome here.",
        reference=result.reference))


# --- staff: receipt review ----------------------------------------------------------------------


async def on_staff_decision(update: Update, context: ExamContext) -> None:
    """`pay:ok:<id>` / `pay:no:<id>[:<reason>]`: the first staff decision wins."""
    query, tr = update.callback_query, context.tr
    parts = query.data.split(":")
    payment_id, approve = _id(query.data, 2), parts[1] == "ok"
    reason = parts[3] if len(parts) > 3 else None
    if not approve and reason is None:
        buttons = [InlineKeyboardButton(reason_label(tr, code), callback_data=f"pay:no:{payment_id}:{code}") for code in REJECT_REASONS]
        buttons.append(InlineKeyboardButton(tr.gettext("✍️ Other (type it)"), callback_data=f"pay:no:{payment_id}:other"))
        buttons.append(InlineKeyboardButton(tr.gettext("↩️ Back"), callback_data=f"pay:back:{payment_id}"))
        await query.answer()
        await query.edit_message_reply_markup(InlineKeyboardMarkup([[b] for b in buttons]))
        return
    services = context.services.payments
    try:
        if reason == "other":
            reference = await services.ask_reason(payment_id, update.effective_user.id)
        else:
            decision = await services.decide_receipt(payment_id, update.effective_user.id, approve=approve, reason=reason)
    except NotFound:
        await stale_button(query, tr)
        return
    except AlreadyDecided as exc:
        await query.answer(decided_text(tr, exc), show_alert=True)
        return
    await query.answer()
    if reason == "other":
        await update.effective_message.reply_text(tr.gettext(
            "{staff}, type the reason for rejecting the receipt of {reference} as your next message in this chat.",
            staff=update.effective_user.full_name, reference=reference))
        return
    verdict = tr.gettext("✅ Approved by {staff}", staff=update.effective_user.full_name) if decision.approved else tr.gettext(
        "❌ Rejected by {staff}: {reason}", staff=update.effective_user.full_name, reason=reason_label(tr, decision.reason))
    await query.edit_message_caption(caption=tr.gettext("{card}\n\n{verdict}", card=query.message.caption or "", verdict=verdict), reply_markup=None)


async def on_staff_back(update: Update, context: ExamContext) -> None:
    """`pay:back:<id>`: the approve / reject buttons again."""
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(review_keyboard(context.tr, _id(update.callback_query.data)))


async def on_staff_reason_text(update: Update, context: ExamContext) -> None:
    """Text in the staff chat: the typed reason of a staff member who chose "other"."""
    decision = await context.services.payments.reject_with_typed_reason(update.effective_user.id, update.effective_message.text or "")
    if decision is None:
        return  # ordinary staff chat: no reason was owed
    await update.effective_message.reply_text(context.tr.gettext(
        "❌ Receipt of {reference} rejected: {reason}. The candidate is told.", reference=decision.reference, reason=decision.reason))


# --- staff: bank statement CSV, history -------------------------------------------------------


def preview_text(tr: Translator, p: StatementPreview, file_name: str) -> str:
    lines = [tr.gettext(
        "📄 Bank statement {file}: {matched} matched, {ambiguous} ambiguous, {unmatched} unmatched, {recorded} already recorded.",
        file=file_name, matched=p.count("matched"), ambiguous=p.count("ambiguous"), unmatched=p.count("unmatched"),
        recorded=p.count("recorded"))]
    marks = {"matched": "✅", "ambiguous": "❔", "unmatched": "✖️", "recorded": "↩️"}
    for row in p.rows[:PREVIEW_LINES]:
        lines.append(tr.gettext(
            "{mark} line {line}: {date} {amount} {reference} {payer} {why}", mark=marks[row.status], line=row.line,
            date=row.date, amount=amount_text(tr, row.amount_minor, p.currency), reference=row.reference or "-",
            payer=row.payer, why=why_label(tr, row.why)).rstrip())
    if len(p.rows) > PREVIEW_LINES:
        lines.append(tr.ngettext("…and {count} more row.", "…and {count} more rows.", len(p.rows) - PREVIEW_LINES))
    lines.append(tr.gettext("Only matched rows are recorded. Ambiguous and unmatched rows need a manual check."))
    return "\n".join(lines)


async def on_statement_file(update: Update, context: ExamContext) -> None:
    """A staff member sent a bank-statement CSV: classify the rows, ask for confirmation."""
    message, tr = update.effective_message, context.tr
    if context.candidate is not None and context.candidate.flow == broadcasts.FLOW:
        # A staff member composing a broadcast with a CSV attachment: the file is the
        # announcement, not a bank statement.
        if update.effective_chat.type == update.effective_chat.PRIVATE:
            await context.flows.on_private_message(update, context)
        return
    document = message.document
    if document.file_size and document.file_size > MAX_CSV_BYTES:
        await message.reply_text(tr.gettext("That file is too large for a bank statement (2 MB at most)."))
        return
    data = bytes(await (await context.bot.get_file(document.file_id)).download_as_bytearray())
    try:
        preview = await context.services.statements.preview(update.effective_user.id, document.file_name, data)
    except InvalidAnswer:
        await message.reply_text(tr.gettext(
            "I could not read this file as a bank statement. It must be a CSV file whose first line is "
            "date,amount,reference,payer (see docs/payments.md)."))
        return
    buttons = [InlineKeyboardButton(tr.gettext("✖️ Discard"), callback_data=f"pay:csv:no:{preview.import_id}")]
    if preview.count("matched"):
        buttons.insert(0, InlineKeyboardButton(
            tr.ngettext("✅ Record {count} matched payment", "✅ Record {count} matched payments", preview.count("matched")),
            callback_data=f"pay:csv:ok:{preview.import_id}"))
    await message.reply_text(preview_text(tr, preview, document.file_name or ""), reply_markup=InlineKeyboardMarkup([buttons]))


async def on_statement_decision(update: Update, context: ExamContext) -> None:
    """`pay:csv:ok|no:<id>`: record the matched rows, or drop the preview; once."""
    query, tr = update.callback_query, context.tr
    import_id = _id(query.data)
    try:
        if query.data.startswith("pay:csv:ok:"):
            applied = await context.services.statements.apply(import_id, update.effective_user.id)
            text = tr.gettext("Recorded: {paid} paid, {flagged} flagged for refund, {recorded} already recorded before.",
                              paid=applied.paid, flagged=applied.flagged, recorded=applied.already_recorded)
        else:
            await context.services.statements.discard(import_id, update.effective_user.id)
            text = tr.gettext("Discarded: nothing was recorded.")
    except NotFound:
        await stale_button(query, tr)
        return
    except AlreadyDecided as exc:
        await query.answer(decided_text(tr, exc), show_alert=True)
        return
    await query.answer()
    await query.edit_message_reply_markup(None)
    await update.effective_message.reply_text(text)


async def cmd_history(update: Update, context: ExamContext) -> None:
    """Staff: /history <reference>: every state change of a registration and its payments."""
    tr = context.tr
    if not context.args:
        await update.effective_message.reply_text(tr.gettext("Usage: /history <registration reference>"))
        return
    try:
        h = await context.services.payments.history(context.args[0])
    except NotFound:
        await update.effective_message.reply_text(tr.gettext("No registration with that reference."))
        return
    lines = [tr.gettext("History of {reference} (now: {state}):", reference=h.reference, state=h.state)]
    for e in h.entries:
        change = "→".join((e.from_state or "", e.to_state)) if e.to_state else ""
        lines.append(tr.gettext(
            "{at} {actor}: {entity} {action} {change} {reason}", at=tr.datetime(e.at, SITE_ZONE, "short"), actor=e.actor,
            entity=e.entity, action=e.action, change=change, reason=e.reason or "").rstrip())
    for pid, method, status, amount, currency, refund in h.payments:
        lines.append(tr.gettext("Payment #{id}: {method}, {amount}, {status}{refund}", id=pid, method=method,
                                amount=amount_text(tr, amount, currency), status=status,
                                refund=tr.gettext(" (to refund)") if refund else ""))
    await update.effective_message.reply_text("\n".join(lines)[:4000])


# --- notification templates (rendered by the outbox sender at send time) --------------------------


def review_keyboard(tr: Translator, payment_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(tr.gettext("✅ Approve"), callback_data=f"pay:ok:{payment_id}"),
        InlineKeyboardButton(tr.gettext("❌ Reject"), callback_data=f"pay:no:{payment_id}"),
    ]])


def receipt_review(params: dict[str, Any], tr: Translator) -> Rendered:
    amount = tr.money(int(Decimal(params["amount"]) * 100), params["currency"])
    text = tr.gettext(
        "🧾 Bank transfer receipt #{payment_id}\nReference: {reference}\nCandidate: {name} (Telegram {telegram_id})\n"
        "{level}, session {session}\nFee: {amount}{unconfirmed}",
        payment_id=params["payment_id"], reference=params["reference"], name=params.get("name", ""),
        telegram_id=params.get("telegram_id", ""), level=level_label(tr, params.get("level_code", "")),
        session=params.get("session_code", ""), amount=amount,
        unconfirmed="" if params.get("fee_confirmed") else tr.gettext(" (not confirmed in the catalogue)"),
    )
    if params.get("same_file_on"):
        text += "\n" + tr.gettext("⚠️ The same file was already sent for: {references}", references=", ".join(params["same_file_on"]))
    photo = params["file_id"] if params.get("kind") == "photo" else None
    document = None if photo else params["file_id"]
    return Rendered(text, review_keyboard(tr, params["payment_id"]), photo=photo, document=document)


def receipt_decided(params: dict[str, Any], tr: Translator) -> Rendered:
    ref = params["reference"]
    if params.get("refund"):
        return Rendered(tr.gettext(
            "Your bank transfer for {reference} was confirmed, but the registration can no longer be paid. "
            "The exam centre will refund it.", reference=ref))
    if params.get("approved"):
        return Rendered(tr.gettext("✅ Your bank transfer for {reference} is confirmed. Your registration is paid: see /status.", reference=ref))
    reason = reason_label(tr, params.get("reason"))
    if params.get("state") == "expired":
        return Rendered(tr.gettext(
            "❌ Your receipt for {reference} was not accepted ({reason}), and the payment deadline has passed, "
            "so the registration has expired.", reference=ref, reason=reason))
    deadline = tr.datetime(datetime.fromisoformat(params["deadline_at"]), params.get("timezone", SITE_ZONE), "short")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(tr.gettext("💳 Pay"), callback_data=f"pay:{params['registration_id']}")]])
    return Rendered(tr.gettext(
        "❌ Your receipt for {reference} was not accepted: {reason}. Please upload a correct receipt or pay another way by {deadline}.",
        reference=ref, reason=reason, deadline=deadline), keyboard)


def payment_received(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(tr.gettext(
        "✅ Payment received for registration {reference}. Your registration is paid: see /status.", reference=params["reference"]))


def refund_due(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(tr.gettext(
        "We received a payment for registration {reference} that cannot be used ({why}). "
        "The exam centre has been told and will refund it.", reference=params["reference"], why=why_label(tr, params.get("why"))))


def payment_flagged(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(tr.gettext(
        "⚠️ Payment #{payment_id} needs a refund or a manual check: {why}.\nReference: {reference}\n"
        "Method: {method}, transaction {external_id}\nAmount: {amount} (expected {expected})\nSee /history {reference}",
        payment_id=params["payment_id"], why=why_label(tr, params.get("why")), reference=params.get("reference") or "-",
        method=params.get("method", ""), external_id=params.get("external_id", ""),
        amount=amount_text(tr, params.get("amount_minor"), params.get("currency", "")),
        expected=amount_text(tr, params.get("expected"), params.get("currency", ""))))


def payment_expired(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(tr.gettext(
        "⌛ Registration {reference} (session {session}) was not paid by the deadline and has expired; its seat went to "
        "the next person in line. A payment that still arrives will be refunded. Send /register to register again.",
        reference=params["reference"], session=params.get("session_code", "")))


TEMPLATES = {
    Template.PAYMENT_RECEIPT_REVIEW: receipt_review,
    Template.PAYMENT_RECEIPT_DECIDED: receipt_decided,
    Template.PAYMENT_RECEIVED: payment_received,
    Template.PAYMENT_REFUND_DUE: refund_due,
    Template.PAYMENT_FLAGGED: payment_flagged,
    Template.PAYMENT_EXPIRED: payment_expired,
}
INPUTS = {FLOW: on_receipt}


def setup(application: Application) -> None:
    settings = application.bot_data.settings
    staff_ids = settings.admin_ids
    staff = filters.User(user_id=staff_ids)
    # Before flows.setup: the generic private-message router would take these otherwise.
    application.add_handler(PreCheckoutQueryHandler(on_pre_checkout))
    application.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, on_successful_payment))
    application.add_handler(CallbackQueryHandler(on_pay, pattern=r"^pay:\d+$"))
    application.add_handler(CallbackQueryHandler(on_invoice, pattern=r"^pay:inv:\d+:(telegram|stars)$"))
    application.add_handler(CallbackQueryHandler(on_receipt_button, pattern=r"^pay:receipt:\d+$"))
    # Staff-only: a press by anyone else falls through to "no longer valid".
    application.add_handler(StaffCallbackQueryHandler(on_staff_decision, r"^pay:(ok|no):\d+(:[a-z_]+)?$", staff_ids))
    application.add_handler(StaffCallbackQueryHandler(on_staff_back, r"^pay:back:\d+$", staff_ids))
    application.add_handler(StaffCallbackQueryHandler(on_statement_decision, r"^pay:csv:(ok|no):\d+$", staff_ids))
    application.add_handler(CommandHandler("history", cmd_history, staff))
    application.add_handler(MessageHandler(
        filters.UpdateType.MESSAGE & staff & filters.Document.FileExtension("csv"), on_statement_file))
    if settings.staff_chat_id is not None:  # its own group: other staff-chat text handlers still run
        application.add_handler(MessageHandler(
            filters.UpdateType.MESSAGE & filters.Chat(chat_id=settings.staff_chat_id) & staff & filters.TEXT
            & ~filters.COMMAND, on_staff_reason_text),
            group=1)
