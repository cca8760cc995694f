"""Payments flow, the candidate's side: the fee and methods, Telegram invoices and payments,
bank-transfer receipts, and the payment notices candidates get. Staff review of receipts,
bank-statement imports and /history are in `handlers.payments_staff`.

Entry points: `setup(application)`; handlers `on_pay`, `on_invoice`, `on_pre_checkout`,
`on_successful_payment`, `on_receipt_button`, `on_receipt`. The offer itself
(`handlers.render.send_offer`) is shared with registration, which sends it after a submit.
Callback data: `pay:<registration id>` (show the offer), `pay:inv:<id>:telegram|stars`,
`pay:receipt:<id>`. Ids are only hints: the service re-checks ownership and state.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    MessageHandler,
    PreCheckoutQueryHandler,
    filters,
)

from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import AlreadyPaid, PaymentUnavailable, StaleStep
from bot.services.notify import Template
from bot.services.payments import FLOW, PaymentOutcome
from handlers.callbacks import ID, Button, one_of
from handlers.context import ExamContext
from handlers.render import (
    PAYMENT_REFUSALS,
    level_label,
    level_names,
    reason_label,
    refusal_text,
    refusals,
    send_offer,
    stale_button,
    ticket_availability,
    why_label,
)

MAX_RECEIPT_BYTES = 10 * 1024 * 1024
RECEIPT_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/webp", "image/heic")


PAY = Button("pay", ID)  # pay:<registration id>: how to pay it
INVOICE = Button("pay:inv", ID, one_of("telegram", "stars"))  # pay:inv:<id>:<method>
RECEIPT = Button("pay:receipt", ID)  # pay:receipt:<registration id>


# --- offer, invoices, Telegram payments --------------------------------------------------------


async def on_pay(update: Update, context: ExamContext) -> None:
    """`pay:<id>`: show how to pay this registration."""
    query = update.callback_query
    registration_id = PAY.parse_one(query.data)
    if registration_id is None:
        await stale_button(query, context.tr)
        return
    await query.answer()
    await send_offer(update, context, registration_id)


async def on_invoice(update: Update, context: ExamContext) -> None:
    """`pay:inv:<id>:<method>`: send a Telegram invoice (CNY through the provider, or Stars)."""
    query, tr = update.callback_query, context.tr
    parsed = INVOICE.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    registration_id, method = parsed
    async with refusals(update, tr, {PAYMENT_REFUSALS: refusal_text}) as refused:
        spec = await context.services.payments.invoice(
            update.effective_user.id, registration_id, method
        )
    if refused.error:
        return
    await query.answer()
    token = context.settings.payment_provider_token
    level = level_label(tr, spec.level_code, (await level_names(context)).get(spec.level_code))
    await context.bot.send_invoice(
        update.effective_chat.id,
        title=tr.gettext("Exam fee {reference}", reference=spec.reference),
        description=tr.gettext(
            "{level}, session {session}. Registration reference {reference}.",
            level=level,
            session=spec.session_code,
            reference=spec.reference,
        ),
        payload=spec.payload,
        currency=spec.currency,
        prices=[LabeledPrice(tr.gettext("Exam fee"), spec.amount_minor)],
        provider_token=token.get_secret_value()
        if token is not None and method == "telegram"
        else None,
    )


async def on_pre_checkout(update: Update, context: ExamContext) -> None:
    """Answer within Telegram's 10 s: seat still held, amount and currency right, not paid yet."""
    query = update.pre_checkout_query
    try:
        await context.services.payments.check_pre_checkout(
            query.invoice_payload, query.currency, query.total_amount
        )
    except (AlreadyPaid, PaymentUnavailable) as exc:
        await query.answer(ok=False, error_message=refusal_text(context.tr, exc))
        return
    await query.answer(ok=True)


def paid_text(
    tr: Translator, reference: str, tickets_from: datetime | None, zone: str | None
) -> str:
    """The confirmation of a paid registration, with when its admission ticket comes."""
    return tr.gettext(
        "✅ Payment received for registration {reference}. Your registration is paid: "
        "see /status.\n{ticket}",
        reference=reference,
        ticket=ticket_availability(tr, tickets_from, zone),
    )


def _moment(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def outcome_text(tr: Translator, o: PaymentOutcome) -> str:
    if o.status == "paid":
        return paid_text(tr, o.reference or "-", o.tickets_from, o.timezone)
    return tr.gettext(
        "We received your payment for registration {reference}, but the registration can no "
        "longer be paid (it expired, was cancelled or was already paid). "
        "The exam centre has been told and will refund it.",
        reference=o.reference or "-",
    )


async def on_successful_payment(update: Update, context: ExamContext) -> None:
    """Record a Telegram payment once per charge id; late or double money is flagged for refund."""
    payment = update.effective_message.successful_payment
    outcome = await context.services.payments.record_telegram_payment(
        payment.invoice_payload,
        payment.currency,
        payment.total_amount,
        payment.telegram_payment_charge_id,
        payment.provider_payment_charge_id,
    )
    await update.effective_message.reply_text(outcome_text(context.tr, outcome))


# --- bank-transfer receipt -----------------------------------------------------------------------


async def on_receipt_button(update: Update, context: ExamContext) -> None:
    """`pay:receipt:<id>`: wait for the receipt (the step is kept in the database)."""
    query, tr = update.callback_query, context.tr
    registration_id = RECEIPT.parse_one(query.data)
    if registration_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, {PAYMENT_REFUSALS: refusal_text}) as refused:
        reference = await context.services.payments.start_receipt(
            update.effective_user.id, registration_id
        )
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(
        tr.gettext(
            "Send the receipt of your bank transfer for {reference} now, as a photo or a PDF "
            "file. /cancel stops.",
            reference=reference,
        )
    )


def _no_receipt_step(tr: Translator, _exc: StaleStep) -> str:
    return tr.gettext("Send /status and press Pay to upload a receipt.")


async def on_receipt(update: Update, context: ExamContext) -> None:
    """A photo or PDF while the candidate is uploading a receipt; anything else gets a hint."""
    message, tr = update.effective_message, context.tr
    upload = message.photo[-1] if message.photo else message.document
    mime = (
        "image/jpeg"
        if message.photo
        else (message.document.mime_type if message.document else None)
    )
    if upload is None or mime not in RECEIPT_TYPES:
        await message.reply_text(
            tr.gettext("Please send the receipt as a photo or a PDF file. /cancel stops.")
        )
        return
    if upload.file_size and upload.file_size > MAX_RECEIPT_BYTES:
        await message.reply_text(
            tr.gettext(
                "That file is larger than {limit} MB. Please send a smaller photo or PDF.",
                limit=MAX_RECEIPT_BYTES // 2**20,
            )
        )
        return
    # The content's hash finds the same receipt uploaded again for another registration
    # (a re-upload gets a new file_unique_id; a forwarded file keeps it).
    content = await (await context.bot.get_file(upload.file_id)).download_as_bytearray()
    explain = {StaleStep: _no_receipt_step, PAYMENT_REFUSALS: refusal_text}
    async with refusals(update, tr, explain) as refused:
        result = await context.services.payments.submit_receipt(
            update.effective_user.id,
            file_id=upload.file_id,
            file_unique_id=upload.file_unique_id,
            kind="photo" if message.photo else "document",
            mime_type=mime,
            content_sha256=hashlib.sha256(content).hexdigest(),
        )
    if refused.error:
        return
    await message.reply_text(
        tr.gettext(
            "📨 Receipt received for {reference}. It is under review by the exam centre staff; "
            "I will tell you the outcome here.",
            reference=result.reference,
        )
    )


# --- notification templates (rendered by the outbox sender at send time) -------------------------


def receipt_decided(params: dict[str, Any], tr: Translator) -> Rendered:
    ref = params["reference"]
    if params.get("refund"):
        return Rendered(
            tr.gettext(
                "Your bank transfer for {reference} was confirmed, but the registration can no "
                "longer be paid. The exam centre will refund it.",
                reference=ref,
            )
        )
    if params.get("approved"):
        return Rendered(
            tr.gettext(
                "✅ Your bank transfer for {reference} is confirmed. "
                "Your registration is paid: see /status.\n{ticket}",
                reference=ref,
                ticket=ticket_availability(
                    tr, _moment(params.get("tickets_from")), params.get("timezone")
                ),
            )
        )
    reason = reason_label(tr, params.get("reason"))
    if params.get("state") == "expired":
        return Rendered(
            tr.gettext(
                "❌ Your receipt for {reference} was not accepted ({reason}), and the payment "
                "deadline has passed, so the registration has expired.",
                reference=ref,
                reason=reason,
            )
        )
    zone = params.get("timezone") or tr.zone  # the session's, if the notice carries it
    deadline = tr.datetime(datetime.fromisoformat(params["deadline_at"]), zone)
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("💳 Pay"), callback_data=f"pay:{params['registration_id']}"
                )
            ]
        ]
    )
    return Rendered(
        tr.gettext(
            "❌ Your receipt for {reference} was not accepted: {reason}. "
            "Please upload a correct receipt or pay another way by {deadline}.",
            reference=ref,
            reason=reason,
            deadline=deadline,
        ),
        keyboard,
    )


def payment_received(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(
        paid_text(
            tr,
            params["reference"],
            _moment(params.get("tickets_from")),
            params.get("timezone"),
        )
    )


def refund_due(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(
        tr.gettext(
            "We received a payment for registration {reference} that cannot be used ({why}). "
            "The exam centre has been told and will refund it.",
            reference=params["reference"],
            why=why_label(tr, params.get("why")),
        )
    )


def payment_expired(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(
        tr.gettext(
            "⌛ Registration {reference} (session {session}) was not paid by the deadline and has "
            "expired; its seat went to the next person in line. "
            "A payment that still arrives will be refunded. Send /register to register again.",
            reference=params["reference"],
            session=params.get("session_code", ""),
        )
    )


TEMPLATES = {
    Template.PAYMENT_RECEIPT_DECIDED: receipt_decided,
    Template.PAYMENT_RECEIVED: payment_received,
    Template.PAYMENT_REFUND_DUE: refund_due,
    Template.PAYMENT_EXPIRED: payment_expired,
}
INPUTS = {FLOW: on_receipt}


def setup(application: Application) -> None:
    # Before flows.setup: the generic private-message router would take these otherwise.
    application.add_handler(PreCheckoutQueryHandler(on_pre_checkout))
    application.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, on_successful_payment))
    application.add_handler(CallbackQueryHandler(on_pay, pattern=PAY.matches))
    application.add_handler(CallbackQueryHandler(on_invoice, pattern=INVOICE.matches))
    application.add_handler(CallbackQueryHandler(on_receipt_button, pattern=RECEIPT.matches))
