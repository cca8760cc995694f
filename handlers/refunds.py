"""Cancel and refund, the staff's side (issue 14, point 3; docs/staff.md "Cancel and
refund"), and the candidate's notices about it.

Entry points: `setup(application)`; staff (finance, or admin) handlers `cmd_cancel_registration`
(`/cancel_registration <reference|ticket number> <reason…>`), `cmd_change_level`
(`/change_level <reference> <level> <reason…>`: a cancel and refund, after which the
candidate registers for the new level), `on_desk_cancel` (the find card's button: the
typed reason comes next), `on_confirm`, `on_stop`, `cmd_refunds` (`/refunds`: open refunds
with buttons), `on_stars` (a Stars refund through `refundStarPayment`), `on_refunded` /
`on_refuse` (the external reference or the reason comes next, typed), `on_typed` (that
typed text: in a private chat through the flow router, in the staff chat in group 6).
Templates: `registration_cancelled_by_staff`, `refund_refunded`, `refund_refused`
(candidate notices, rendered in the candidate's language).

Callback data, staff only (behind `StaffCallbackQueryHandler`), hints the service
re-checks: `desk:cancel:<registration id>`, `rf:go:<registration id>`, `rf:stop`,
`rf:star:<payment id>`, `rf:done:<payment id>`, `rf:no:<payment id>`. What the bot
writes into the staff chat is in the site's language (`group_tr`). The Bot API call for
Stars is made here (`stars_refunder`) and handed to the service, which does not know
Telegram.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CommandHandler

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import (
    AlreadyDecided,
    InvalidAnswer,
    InvalidState,
    NotFound,
    ServiceError,
)
from bot.services.notify import Template
from bot.services.refunds import (
    FLOW,
    REFUND_REFERENCE,
    Cancelled,
    CancelPreview,
    NotStars,
    RefundCallFailed,
    RefundDecision,
    RefundView,
    StarsByHand,
    StarsRefunder,
)
from bot.services.staff import NotAllowed
from handlers.callbacks import ID, Button, StaffCallbackQueryHandler, add_staff_chat_input
from handlers.context import ExamContext
from handlers.render import (
    amount_text,
    edit_message,
    group_tr,
    level_label,
    level_names,
    method_label,
    refusals,
    stale_button,
    state_label,
    why_label,
)
from handlers.staff_roles import not_allowed_text, requires

DESK_CANCEL = Button("desk:cancel", ID)  # desk:cancel:<registration id>, on the find card
CONFIRM = Button("rf:go", ID)  # rf:go:<registration id>: cancel with the reason given
STOP = Button("rf:stop")
STARS = Button("rf:star", ID)  # rf:star:<payment id>: give the Stars back through Telegram
REFUNDED = Button("rf:done", ID)  # rf:done:<payment id>: refunded outside; reference next
REFUSE = Button("rf:no", ID)  # rf:no:<payment id>: refused; the reason next
LIST_SHOWN = 20  # refunds one /refunds message lists (the oldest first)


def stars_refunder(bot: Bot) -> StarsRefunder:
    """`refundStarPayment` for the service: True refunded now, False refunded before."""

    async def refund(user_id: int, charge_id: str) -> bool:
        try:
            await bot.refund_star_payment(user_id, charge_id)
        except BadRequest as exc:
            if "CHARGE_ALREADY_REFUNDED" in exc.message.upper():
                return False
            raise RefundCallFailed(exc.message) from None
        except TelegramError as exc:  # timed out, network: it may be retried from /refunds
            raise RefundCallFailed(str(exc)) from None
        return True

    return refund


# --- words -----------------------------------------------------------------------------------


def refund_line(tr: Translator, r: RefundView) -> str:
    line = tr.gettext(
        "#{id} {amount}, {method}",
        id=r.payment_id,
        amount=amount_text(tr, r.amount_minor, r.currency),
        method=method_label(tr, r.method),
    )
    if r.reference:
        line = tr.gettext(
            "{line}, {reference} ({name})", line=line, reference=r.reference, name=r.name or "-"
        )
    if why := why_label(tr, r.reason):
        line = tr.gettext("{line}. Why: {reason}", line=line, reason=why)
    if r.note:
        line = tr.gettext("{line}. Last attempt: {note}", line=line, note=r.note)
    return line


def preview_text(tr: Translator, p: CancelPreview, levels: Any) -> str:
    lines = [
        tr.gettext(
            "Cancel registration {reference}?\n{name} (Telegram {telegram_id}), {level}, "
            "session {session}, now {state}.",
            reference=p.reference,
            name=p.name or "-",
            telegram_id=p.telegram_id,
            level=level_label(tr, p.level_code, levels.get(p.level_code)),
            session=p.session_code,
            state=state_label(tr, p.state),
        ),
        tr.gettext("Reason: {reason}", reason=p.reason or "-"),
    ]
    if p.new_level:
        lines.append(
            tr.gettext(
                "Level change to {level}: the candidate is told to register for it.",
                level=level_label(tr, p.new_level, levels.get(p.new_level)),
            )
        )
    for r in p.refunds:
        lines.append(tr.gettext("Refund due: {refund}", refund=refund_line(tr, r)))
    if not p.refunds:
        lines.append(tr.gettext("No money was paid: nothing to refund."))
    return "\n".join(lines)


def confirm_keyboard(tr: Translator, registration_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("✅ Cancel it"), callback_data=f"rf:go:{registration_id}"
                ),
                InlineKeyboardButton(tr.gettext("✖️ Keep it"), callback_data="rf:stop"),
            ]
        ]
    )


def _stop_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(tr.gettext("✖️ Stop"), callback_data="rf:stop")]]
    )


def decision_text(tr: Translator, d: RefundDecision, staff: str) -> str:
    amount = amount_text(tr, d.amount_minor, d.currency)
    if d.status == "refused":
        text = tr.gettext(
            "❌ Refund #{id} ({amount}, {reference}) refused by {staff}: {reason}.",
            id=d.payment_id,
            amount=amount,
            reference=d.reference or "-",
            staff=staff,
            reason=d.note,
        )
    else:
        text = tr.gettext(
            "💸 Refund #{id} ({amount}, {reference}) marked refunded by {staff}. "
            "Refund reference: {refund_reference}.",
            id=d.payment_id,
            amount=amount,
            reference=d.reference or "-",
            staff=staff,
            refund_reference=d.refund_reference,
        )
    return tr.gettext("{text} {told}", text=text, told=_told(tr, d.told, d.reference))


def _told(tr: Translator, told: bool, reference: str | None) -> str:
    if told:
        return tr.gettext("The candidate is told.")
    if reference is None:
        return tr.gettext("The money named no registration: no one to tell in the bot.")
    return tr.gettext("The candidate has no chat with the bot: tell them another way.")


def _decided(tr: Translator, exc: AlreadyDecided) -> str:
    status = {"refunded": tr.gettext("refunded"), "refused": tr.gettext("refused")}.get(
        exc.status, exc.status
    )
    if exc.decided_by is None:
        return tr.gettext("This refund is already settled ({status}).", status=status)
    return tr.gettext(
        "This refund is already settled ({status}) by user {user}.",
        status=status,
        user=exc.decided_by,
    )


def _not_active(tr: Translator, exc: InvalidState) -> str:
    return tr.gettext(
        "This registration is {state}: there is nothing to cancel.",
        state=state_label(tr, exc.state),
    )


def _no_registration(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("No registration with that reference or ticket number.")


def _bad_answer(tr: Translator, exc: InvalidAnswer) -> str:
    if exc.reason == "unknown_level":
        return tr.gettext(
            "There is no level {level}. Use a level code or name, e.g. junior, intermediate, "
            "senior.",
            level=exc.params.get("level", ""),
        )
    if exc.reason == "same_level":
        return tr.gettext("The registration is already for that level.")
    return tr.gettext("Please type it as text (a few words), or press Stop.")


def _stars_by_hand(tr: Translator, _exc: StarsByHand) -> str:
    return tr.gettext("Stars go back through Telegram: press ⭐ in /refunds instead.")


def _not_stars(tr: Translator, _exc: NotStars) -> str:
    return tr.gettext("Only a Stars payment is refunded through Telegram.")


def _call_failed(tr: Translator, exc: RefundCallFailed) -> str:
    return tr.gettext(
        "⚠️ Telegram did not refund the Stars: {error}. The refund stays open in /refunds.",
        error=exc.description,
    )


def _not_allowed(tr: Translator, exc: NotAllowed) -> str:
    return not_allowed_text(tr, exc.roles)


#: How the service's refusals read, for every handler here.
EXPLAIN = {
    AlreadyDecided: _decided,
    InvalidState: _not_active,
    InvalidAnswer: _bad_answer,
    StarsByHand: _stars_by_hand,
    NotStars: _not_stars,
    RefundCallFailed: _call_failed,
    NotAllowed: _not_allowed,
}
#: Commands name a registration themselves: "not found" is an answer, not a stale button.
COMMAND_EXPLAIN = {**EXPLAIN, NotFound: _no_registration}


# --- cancelling ------------------------------------------------------------------------------


@requires(Role.FINANCE)
async def cmd_cancel_registration(update: Update, context: ExamContext) -> None:
    """Staff: /cancel_registration <reference|ticket number> <reason…>: preview, then confirm."""
    tr, args = group_tr(update, context), context.args or []
    if len(args) < 2:
        await update.effective_message.reply_text(
            tr.gettext(
                "Usage: /cancel_registration <reference or ticket number> <reason>\n"
                "The seat goes to the waitlist and money paid is refunded."
            )
        )
        return
    await _prepare(update, context, args[0], " ".join(args[1:]), None)


@requires(Role.FINANCE)
async def cmd_change_level(update: Update, context: ExamContext) -> None:
    """Staff: /change_level <reference> <level> <reason…>: a cancel and refund; the candidate
    registers for the new level."""
    tr, args = group_tr(update, context), context.args or []
    if len(args) < 3:
        await update.effective_message.reply_text(
            tr.gettext(
                "Usage: /change_level <reference> <level> <reason>\n"
                "The registration is cancelled and refunded; the candidate is told to register "
                "for the new level (their details and answers are kept)."
            )
        )
        return
    await _prepare(update, context, args[0], " ".join(args[2:]), args[1])


async def _prepare(
    update: Update, context: ExamContext, text: str, reason: str, level: str | None
) -> None:
    tr = group_tr(update, context)
    async with refusals(update, tr, COMMAND_EXPLAIN) as refused:
        preview = await context.services.refunds.prepare_cancel(
            update.effective_user.id, text, reason, update.effective_chat.id, new_level=level
        )
    if refused.error:
        return
    await update.effective_message.reply_text(
        preview_text(tr, preview, await level_names(context)),
        reply_markup=confirm_keyboard(tr, preview.registration_id),
    )


@requires(Role.FINANCE)
async def on_desk_cancel(update: Update, context: ExamContext) -> None:
    """`desk:cancel:<registration id>` (the find card): the reason is typed next."""
    query, tr = update.callback_query, group_tr(update, context)
    registration_id = DESK_CANCEL.parse_one(query.data)
    if registration_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        preview = await context.services.refunds.ask_cancel(
            update.effective_user.id, registration_id, update.effective_chat.id
        )
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(
        tr.gettext(
            "{staff}, type the reason for cancelling {reference} ({name}) as your next message "
            "in this chat. The candidate will read it.",
            staff=update.effective_user.full_name,
            reference=preview.reference,
            name=preview.name or "-",
        ),
        reply_markup=_stop_keyboard(tr),
    )


@requires(Role.FINANCE)
async def on_confirm(update: Update, context: ExamContext) -> None:
    """`rf:go:<registration id>`: cancel; the Stars paid go back at once, the rest is listed."""
    query, tr = update.callback_query, group_tr(update, context)
    registration_id = CONFIRM.parse_one(query.data)
    if registration_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        cancelled = await context.services.refunds.confirm_cancel(
            update.effective_user.id, registration_id
        )
    if refused.error:
        return
    await query.answer()
    await edit_message(query, reply_markup=None)
    lines = [cancelled_text(tr, cancelled, update.effective_user.full_name)]
    for r in cancelled.refunds:
        lines.append(await _settle_stars(update, context, tr, r))
    await update.effective_message.reply_text("\n".join(lines))


async def _settle_stars(
    update: Update, context: ExamContext, tr: Translator, r: RefundView
) -> str:
    """A refund just made due: Stars go back now; any other waits for finance in /refunds."""
    if r.method != "stars":
        return tr.gettext(
            "Refund due: {refund}. Mark it in /refunds once made.", refund=refund_line(tr, r)
        )
    try:
        await context.services.refunds.refund_stars(
            update.effective_user.id, r.payment_id, stars_refunder(context.bot)
        )
    except RefundCallFailed as exc:
        return _call_failed(tr, exc)
    except AlreadyDecided as exc:
        return _decided(tr, exc)
    except ServiceError:  # the candidate is unknown now, a role was revoked meanwhile
        return tr.gettext(
            "⭐ {amount} not refunded yet: see /refunds.",
            amount=amount_text(tr, r.amount_minor, r.currency),
        )
    return tr.gettext(
        "⭐ {amount} refunded through Telegram. The candidate is told.",
        amount=amount_text(tr, r.amount_minor, r.currency),
    )


def cancelled_text(tr: Translator, c: Cancelled, staff: str) -> str:
    text = tr.gettext(
        "✅ Registration {reference} cancelled by {staff}. Reason: {reason}",
        reference=c.reference,
        staff=staff,
        reason=c.reason,
    )
    if c.offered_to is not None:
        text = tr.gettext("{text}\nIts seat was offered to the next in line.", text=text)
    return tr.gettext("{text}\n{told}", text=text, told=_told(tr, c.told, c.reference))


@requires(Role.FINANCE)
async def on_stop(update: Update, context: ExamContext) -> None:
    """`rf:stop`: forget the question or the confirmation; nothing changes."""
    query, tr = update.callback_query, group_tr(update, context)
    await context.services.refunds.stop(update.effective_user.id)
    await query.answer(tr.gettext("Stopped: nothing was changed."))
    await edit_message(query, reply_markup=None)


# --- refunds ---------------------------------------------------------------------------------


@requires(Role.FINANCE)
async def cmd_refunds(update: Update, context: ExamContext) -> None:
    """Staff: /refunds: open refunds, oldest first, each with its buttons."""
    tr = group_tr(update, context)
    refunds = await context.services.refunds.open_refunds(update.effective_user.id)
    if not refunds:
        await update.effective_message.reply_text(tr.gettext("No refunds are open."))
        return
    lines = [
        tr.ngettext("{count} refund open:", "{count} refunds open:", len(refunds)),
        *(refund_line(tr, r) for r in refunds[:LIST_SHOWN]),
    ]
    if len(refunds) > LIST_SHOWN:
        lines.append(
            tr.ngettext(
                "…and {count} more: settle these first.",
                "…and {count} more: settle these first.",
                len(refunds) - LIST_SHOWN,
            )
        )
    keyboard = [_refund_buttons(tr, r) for r in refunds[:LIST_SHOWN]]
    await update.effective_message.reply_text(
        "\n".join(lines), reply_markup=InlineKeyboardMarkup(keyboard)
    )


def _refund_buttons(tr: Translator, r: RefundView) -> list[InlineKeyboardButton]:
    pid = r.payment_id
    done = (
        InlineKeyboardButton(
            tr.gettext("⭐ #{id}: refund", id=pid), callback_data=f"rf:star:{pid}"
        )
        if r.method == "stars"
        else InlineKeyboardButton(
            tr.gettext("💸 #{id}: refunded", id=pid), callback_data=f"rf:done:{pid}"
        )
    )
    refuse = InlineKeyboardButton(
        tr.gettext("❌ #{id}: refuse", id=pid), callback_data=f"rf:no:{pid}"
    )
    return [done, refuse]


@requires(Role.FINANCE)
async def on_stars(update: Update, context: ExamContext) -> None:
    """`rf:star:<payment id>`: give the Stars back through `refundStarPayment`."""
    query, tr = update.callback_query, group_tr(update, context)
    payment_id = STARS.parse_one(query.data)
    if payment_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        decision = await context.services.refunds.refund_stars(
            update.effective_user.id, payment_id, stars_refunder(context.bot)
        )
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(
        decision_text(tr, decision, update.effective_user.full_name)
    )


@requires(Role.FINANCE)
async def on_refunded(update: Update, context: ExamContext) -> None:
    """`rf:done:<payment id>`: the external reference of the refund is typed next."""
    await _ask(update, context, REFUNDED)


@requires(Role.FINANCE)
async def on_refuse(update: Update, context: ExamContext) -> None:
    """`rf:no:<payment id>`: the reason for refusing is typed next."""
    await _ask(update, context, REFUSE)


async def _ask(update: Update, context: ExamContext, button: Button) -> None:
    query, tr = update.callback_query, group_tr(update, context)
    payment_id = button.parse_one(query.data)
    if payment_id is None:
        await stale_button(query, tr)
        return
    service, staff_id, chat_id = (
        context.services.refunds,
        update.effective_user.id,
        update.effective_chat.id,
    )
    async with refusals(update, tr, EXPLAIN) as refused:
        if button is REFUNDED:
            prompt = await service.ask_refund_reference(staff_id, payment_id, chat_id)
        else:
            prompt = await service.ask_refusal_reason(staff_id, payment_id, chat_id)
    if refused.error:
        return
    await query.answer()
    what = (
        tr.gettext("the reference of the refund you made (bank or provider)")
        if prompt.step == REFUND_REFERENCE
        else tr.gettext("why the refund is refused (the candidate will read it)")
    )
    await update.effective_message.reply_text(
        tr.gettext(
            "{staff}, type {what} for refund {refund} as your next message in this chat.",
            staff=update.effective_user.full_name,
            what=what,
            refund=refund_line(tr, prompt.refund),
        ),
        reply_markup=_stop_keyboard(tr),
    )


# --- typed answers ---------------------------------------------------------------------------


@requires(Role.FINANCE, quiet=True)
async def on_staff_chat_text(update: Update, context: ExamContext) -> None:
    """Text in the staff chat: what a finance member was asked to type, if anything."""
    if context.candidate is not None and context.candidate.flow == FLOW:
        await on_typed(update, context)


async def on_typed(update: Update, context: ExamContext) -> None:
    """The typed reason, reference or refusal: a preview to confirm, or the refund settled."""
    tr, message = group_tr(update, context), update.effective_message
    async with refusals(update, tr, EXPLAIN) as refused:
        outcome = await context.services.refunds.take_text(
            update.effective_user.id, update.effective_chat.id, message.text
        )
    if refused.error or outcome is None:
        return
    if isinstance(outcome, CancelPreview):
        await message.reply_text(
            preview_text(tr, outcome, await level_names(context)),
            reply_markup=confirm_keyboard(tr, outcome.registration_id),
        )
        return
    await message.reply_text(decision_text(tr, outcome, update.effective_user.full_name))


async def resume(update: Update, context: ExamContext) -> None:
    """/start while asked for a reason or reference: say what is awaited."""
    await update.effective_message.reply_text(
        context.tr.gettext(
            "I am waiting for the text you were asked to type (a reason or a refund reference). "
            "Type it, or send /cancel to stop."
        )
    )


# --- candidate notices (rendered by the outbox sender in the candidate's language) -----------


def cancelled_by_staff(params: dict[str, Any], tr: Translator) -> Rendered:
    lines = [
        tr.gettext(
            "❌ The exam centre cancelled your registration {reference} ({level}, session "
            "{session}).\nReason: {reason}",
            reference=params["reference"],
            level=level_label(tr, params.get("level_code", ""), params.get("level_names")),
            session=params.get("session_code", ""),
            reason=params.get("reason", ""),
        )
    ]
    refunds = params.get("refunds") or []
    if refunds:
        lines.append(
            tr.gettext(
                "Your refund of {amount} is being arranged; I will tell you here when it is made.",
                amount=tr.join(
                    amount_text(tr, r.get("amount_minor"), r.get("currency", "")) for r in refunds
                ),
            )
        )
    names = params.get("new_level_names")
    if params.get("new_level"):
        lines.append(
            tr.gettext(
                "Your level is changed to {level}: register for it with /register. Your details "
                "and answers are kept; the new registration is paid on its own.",
                level=level_label(tr, params["new_level"], names),
            )
        )
    else:
        lines.append(tr.gettext("Questions? Send /ask to reach the exam centre."))
    return Rendered("\n".join(lines))


def refund_refunded(params: dict[str, Any], tr: Translator) -> Rendered:
    amount = amount_text(tr, params.get("amount_minor"), params.get("currency", ""))
    if params.get("method") == "stars":
        text = tr.gettext(
            "💸 Your refund of {amount} for registration {reference} has been made: the Stars "
            "are back in your Telegram balance.",
            amount=amount,
            reference=params["reference"],
        )
    else:
        text = tr.gettext(
            "💸 Your refund of {amount} for registration {reference} has been made. Refund "
            "reference: {refund_reference}.",
            amount=amount,
            reference=params["reference"],
            refund_reference=params.get("refund_reference") or "-",
        )
    return Rendered(text)


def refund_refused(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(
        tr.gettext(
            "Your refund of {amount} for registration {reference} was refused: {reason}\n"
            "If you disagree, send /ask to reach the exam centre.",
            amount=amount_text(tr, params.get("amount_minor"), params.get("currency", "")),
            reference=params["reference"],
            reason=params.get("reason") or "-",
        )
    )


TEMPLATES = {
    Template.REGISTRATION_CANCELLED_BY_STAFF: cancelled_by_staff,
    Template.REFUND_REFUNDED: refund_refunded,
    Template.REFUND_REFUSED: refund_refused,
}
INPUTS = {FLOW: requires(Role.FINANCE)(on_typed)}
RESUMES = {FLOW: resume}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CommandHandler("cancel_registration", cmd_cancel_registration, staff))
    application.add_handler(CommandHandler("change_level", cmd_change_level, staff))
    application.add_handler(CommandHandler("refunds", cmd_refunds, staff))
    for callback, button in (
        (on_desk_cancel, DESK_CANCEL),
        (on_confirm, CONFIRM),
        (on_stop, STOP),
        (on_stars, STARS),
        (on_refunded, REFUNDED),
        (on_refuse, REFUSE),
    ):
        application.add_handler(StaffCallbackQueryHandler(callback, button, staff))
    # Its own group (payments 1, broadcasts 2, remarks 3, support 4): acts only while the
    # sender owes a typed answer.
    add_staff_chat_input(application, on_staff_chat_text, group=6)
