"""Re-marking (复核) flow (docs/remarks.md): the candidate asks for one component of a
released sitting to be re-checked; staff confirm the fee (if any) and decide.

Entry points: `setup(application)`; the candidate's `cmd_remark` (`/remark`: what can be
re-marked), `on_list` (the button under the results notification), `on_ask` (a component
chosen), `on_reason` (the typed reason, flow `remark`), `on_send`, `on_stop`, `resume`;
staff's `cmd_remarks` (`/remarks`: requests waiting, oldest first), `on_fee`,
`on_unchanged`, `on_new_score`, `on_score_text` (the typed score, in the staff chat),
`on_skip_score`; templates `remark_request` (the staff card), `remark_fee_confirmed` and
`remark_decided` (the candidate's notices).

Callback data, hints only (the service checks the presser, the result and its window):
candidate `rmk:list`, `rmk:ask:<component result id>` (also built by `handlers/results.py`
for `/results`), `rmk:send:<component result id>`, `rmk:stop`; staff only (behind
`StaffCallbackQueryHandler`) `rmk:fee:<request id>`, `rmk:same:<request id>`,
`rmk:new:<request id>`, `rmk:skip`. What the bot writes into the staff chat is in the
site's language (`group_tr`).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import AlreadyDecided, InvalidAnswer, InvalidState, NotFound
from bot.services.notify import Template
from bot.services.remarks import (
    FLOW,
    SCORE_FLOW,
    AlreadyRequested,
    Fee,
    NotRemarkable,
    RemarkDraft,
    RemarkOptions,
    RemarkSubmitted,
    RemarkWindowClosed,
)
from handlers.callbacks import ID, Button, StaffCallbackQueryHandler, add_staff_chat_input
from handlers.context import ExamContext
from handlers.render import (
    already_decided,
    answer_error,
    edit_message,
    group_tr,
    level_label,
    level_names,
    refusals,
    stale_button,
)
from handlers.staff_roles import requires

log = logging.getLogger(__name__)

LIST = Button("rmk:list")
ASK = Button("rmk:ask", ID)  # rmk:ask:<component result id>
SEND = Button("rmk:send", ID)  # rmk:send:<component result id>
STOP = Button("rmk:stop")
FEE = Button("rmk:fee", ID)  # rmk:fee:<request id>
UNCHANGED = Button("rmk:same", ID)
NEW_SCORE = Button("rmk:new", ID)
SKIP_SCORE = Button("rmk:skip")


# --- words ---------------------------------------------------------------------------------


def _name(tr: Translator, names: dict[str, str]) -> str:
    return names.get(tr.language) or names.get("en") or ""


def status_label(tr: Translator, status: str) -> str:
    return {
        "awaiting_fee": tr.gettext("waiting for the fee"),
        "open": tr.gettext("with the markers"),
        "unchanged": tr.gettext("decided: score unchanged"),
        "changed": tr.gettext("decided: score changed"),
    }.get(status, status)


def _score(tr: Translator, score: str | None) -> str:
    return score if score is not None else "-"


def _not_remarkable(tr: Translator, exc: NotRemarkable) -> str:
    if exc.mark == "absent":
        return tr.gettext(
            "You were absent from this component (缺考): there is no marking to re-check, "
            "so it cannot be re-marked."
        )
    return tr.gettext(
        "This component was disqualified for misconduct (违纪): it cannot be re-marked."
    )


def _window_closed(tr: Translator, exc: RemarkWindowClosed) -> str:
    return tr.gettext(
        "The re-marking (复核) window closed on {when}: a request can no longer be made.",
        when=tr.datetime(exc.closed_at, exc.timezone),
    )


def _already(tr: Translator, exc: AlreadyRequested) -> str:
    return tr.gettext(
        "You already asked for a re-mark of this component on {date}. Its status: {status}.",
        date=tr.datetime(exc.requested_at, exc.timezone),
        status=status_label(tr, exc.status),
    )


def _reason_error(tr: Translator, exc: InvalidAnswer) -> str:
    if exc.reason == "text_expected":
        return tr.gettext(
            "Please type the reason as text: what do you think was marked wrong? "
            "Send /cancel to stop."
        )
    return answer_error(tr, exc)


def _gone(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("That result is no longer there. See /results.")


CANDIDATE_REFUSALS = {
    NotFound: _gone,
    NotRemarkable: _not_remarkable,
    RemarkWindowClosed: _window_closed,
    AlreadyRequested: _already,
    InvalidAnswer: _reason_error,
}


def _fee_text(tr: Translator, fee: Fee | None) -> str:
    if fee is None:
        return tr.gettext("Re-marking is free.")
    amount = tr.money(fee.amount_minor, fee.currency)
    if fee.confirmed:
        return tr.gettext("Fee: {amount}, paid after you send the request.", amount=amount)
    return tr.gettext(
        "Fee: {amount} (not final yet: the exam centre confirms it), paid after you send the "
        "request.",
        amount=amount,
    )


def reason_prompt(tr: Translator, draft: RemarkDraft) -> str:
    t = draft.target
    return tr.gettext(
        "🔁 Re-mark (复核) of {component}, session {session} (your score: {score}).\n"
        "Why should it be re-checked? Type the reason in one message. Send /cancel to stop.",
        component=_name(tr, t.names),
        session=t.session_code,
        score=_score(tr, t.score),
    )


def confirm_text(tr: Translator, draft: RemarkDraft, level: str) -> str:
    t = draft.target
    return tr.gettext(
        "Please check your re-mark (复核) request:\n{level}, session {session}\n"
        "{component}: {score}\nReason: {reason}\n{fee}\n"
        "The score may go up, go down or stay the same. You can ask once per component.",
        level=level,
        session=t.session_code,
        component=_name(tr, t.names),
        score=_score(tr, t.score),
        reason=draft.reason or "",
        fee=_fee_text(tr, draft.fee),
    )


def confirm_keyboard(tr: Translator, draft: RemarkDraft) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("✅ Send the request"),
                    callback_data=SEND.example({0: str(draft.target.result_id)}),
                ),
                InlineKeyboardButton(tr.gettext("✖️ Don't send"), callback_data=STOP.prefix),
            ]
        ]
    )


def submitted_text(tr: Translator, sent: RemarkSubmitted) -> str:
    component, session = _name(tr, sent.target.names), sent.target.session_code
    if sent.fee is None:
        return tr.gettext(
            "✅ Your re-mark request for {component} (session {session}) was sent to the exam "
            "centre. I will tell you the outcome here.",
            component=component,
            session=session,
        )
    parts = [
        tr.gettext(
            "✅ Your re-mark request for {component} (session {session}) is recorded. It goes "
            "to the markers once the fee of {amount} has arrived.",
            component=component,
            session=session,
            amount=tr.money(sent.fee.amount_minor, sent.fee.currency),
        )
    ]
    if sent.bank is None:
        parts.append(tr.gettext("The exam centre will tell you here how to pay."))
    else:
        # The registration reference finds the candidate in a bank statement; 复核 tells
        # the staff this transfer is not the exam fee (the statement import leaves it to them).
        transfer_remark = f"{sent.reference} 复核"
        parts.append(
            tr.gettext(
                "Pay by bank transfer:\nAccount name: {name}\nBank: {bank}\n"
                "Account number: {number}\nWrite this in the transfer remark: {remark}",
                name=sent.bank.account_name,
                bank=sent.bank.bank_name,
                number=sent.bank.account_number,
                remark=transfer_remark,
            )
        )
        if sent.bank.placeholder:
            parts.append(
                tr.gettext(
                    "⚠️ These bank details are not final yet. Please wait for the exam centre to "
                    "confirm them before you transfer."
                )
            )
    return "\n\n".join(parts)


def options_text(tr: Translator, options: RemarkOptions) -> str:
    lines = []
    if options.open:
        lines.append(tr.gettext("You can ask for a re-mark (复核) of:"))
        lines += [
            tr.gettext(
                "• {component}, session {session} ({score}), until {when}",
                component=_name(tr, t.names),
                session=t.session_code,
                score=_score(tr, t.score),
                when=tr.datetime(t.deadline, t.timezone),
            )
            for t in options.open
        ]
    elif options.closed:
        latest = options.closed[0]
        lines.append(_window_closed(tr, RemarkWindowClosed(latest.deadline, latest.timezone)))
    for asked in options.asked:
        lines.append(
            tr.gettext(
                "• {component}, session {session}: asked on {date}, {status}",
                component=_name(tr, asked.target.names),
                session=asked.target.session_code,
                date=tr.date(asked.requested_at.date()),
                status=status_label(tr, asked.status),
            )
        )
    return "\n".join(lines) or tr.gettext("You have no released results that can be re-marked.")


def options_keyboard(tr: Translator, options: RemarkOptions) -> InlineKeyboardMarkup | None:
    buttons = [
        InlineKeyboardButton(
            tr.gettext(
                "🔁 Re-mark {component} ({session})",
                component=_name(tr, t.names),
                session=t.session_code,
            ),
            callback_data=ASK.example({0: str(t.result_id)}),
        )
        for t in options.open
    ]
    return InlineKeyboardMarkup([[b] for b in buttons]) if buttons else None


# --- the candidate -------------------------------------------------------------------------


async def cmd_remark(update: Update, context: ExamContext) -> None:
    """`/remark`: what can be re-marked now, a button for each; what was asked before."""
    tr = context.tr
    options = await context.services.remarks.options(update.effective_user.id)
    await update.effective_message.reply_text(
        options_text(tr, options), reply_markup=options_keyboard(tr, options)
    )


async def on_list(update: Update, context: ExamContext) -> None:
    """`rmk:list` (under the results notification): the same as `/remark`."""
    await update.callback_query.answer()
    await cmd_remark(update, context)


async def on_ask(update: Update, context: ExamContext) -> None:
    """`rmk:ask:<result id>`: ask for the reason."""
    query, tr = update.callback_query, context.tr
    result_id = ASK.parse_one(query.data)
    if result_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, CANDIDATE_REFUSALS, alert=False) as refused:
        draft = await context.services.remarks.begin(update.effective_user.id, result_id)
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(reason_prompt(tr, draft))


async def on_reason(update: Update, context: ExamContext) -> None:
    """The typed reason (flow `remark`): the request to confirm."""
    tr = context.tr
    async with refusals(update, tr, CANDIDATE_REFUSALS) as refused:
        draft = await context.services.remarks.set_reason(
            update.effective_user.id, update.effective_message.text
        )
    if refused.error:
        return
    await _show_confirmation(update, context, draft)


async def _show_confirmation(update: Update, context: ExamContext, draft: RemarkDraft) -> None:
    tr, code = context.tr, draft.target.level_code
    level = level_label(tr, code, (await level_names(context)).get(code))
    await update.effective_message.reply_text(
        confirm_text(tr, draft, level), reply_markup=confirm_keyboard(tr, draft)
    )


async def resume(update: Update, context: ExamContext) -> None:
    """After /start: the reason is still awaited, or the request still to be sent."""
    draft = await context.services.remarks.current(update.effective_user.id)
    if draft is None:  # its result is gone: what can be asked for now instead
        await context.services.candidates.leave_flow(update.effective_user.id)
        await cmd_remark(update, context)
    elif draft.reason is None:
        await update.effective_message.reply_text(reason_prompt(context.tr, draft))
    else:
        await _show_confirmation(update, context, draft)


async def on_send(update: Update, context: ExamContext) -> None:
    """`rmk:send:<result id>`: send the request written (checked once more)."""
    query, tr = update.callback_query, context.tr
    result_id = SEND.parse_one(query.data)
    if result_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, CANDIDATE_REFUSALS, alert=False) as refused:
        sent = await context.services.remarks.submit(
            update.effective_user.id, result_id, context.settings.staff_chat_id
        )
    if refused.error:
        return
    await query.answer()
    await edit_message(query, reply_markup=None)
    await update.effective_message.reply_text(submitted_text(tr, sent))


async def on_stop(update: Update, context: ExamContext) -> None:
    """`rmk:stop`: drop the request being written."""
    query, tr = update.callback_query, context.tr
    await context.services.candidates.leave_flow(update.effective_user.id)
    await query.answer()
    await edit_message(query, reply_markup=None)
    await update.effective_message.reply_text(tr.gettext("Stopped: no request was sent."))


# --- staff ---------------------------------------------------------------------------------


def decided_text(tr: Translator, exc: AlreadyDecided) -> str:
    return already_decided(tr, exc, status_label(tr, exc.status))


def _fee_first(tr: Translator, _exc: InvalidState) -> str:
    return tr.gettext("The fee for this request is not confirmed yet: press “Fee received” first.")


def _score_error(tr: Translator, exc: InvalidAnswer) -> str:
    return tr.gettext(
        "That is not a score. Type a number from 0 to {max} with at most one decimal, e.g. 72.5.",
        max=exc.params.get("max", 100),
    )


STAFF_REFUSALS = {AlreadyDecided: decided_text, InvalidState: _fee_first}


def _told(tr: Translator, notified: bool) -> str:
    if notified:
        return tr.gettext("The candidate is told.")
    return tr.gettext("The candidate has no chat with the bot: tell them another way.")


@requires(Role.RESULTS)
async def cmd_remarks(update: Update, context: ExamContext) -> None:
    """Staff: `/remarks`, the requests waiting for the fee or a decision, oldest first."""
    tr = group_tr(update, context)
    waiting = await context.services.remarks.open_requests()
    names = await level_names(context)
    lines = [
        tr.gettext(
            "#{id} · {date} · {reference} {name} · {level}, session {session}, {component} · "
            "{status}",
            id=r.request_id,
            date=tr.date(r.requested_at.date()),
            reference=r.reference,
            name=r.name,
            level=level_label(tr, r.level_code, names.get(r.level_code)),
            session=r.session_code,
            component=_name(tr, r.names),
            status=status_label(tr, r.status),
        )
        for r in waiting
    ]
    header = (
        tr.gettext("Re-mark requests waiting (oldest first):")
        if lines
        else tr.gettext("No re-mark requests are waiting.")
    )
    await update.effective_message.reply_text("\n".join([header, *lines]))


@requires(Role.RESULTS)
async def on_fee(update: Update, context: ExamContext) -> None:
    """`rmk:fee:<id>`: the fee arrived; the card gets the decision buttons."""
    query, tr = update.callback_query, group_tr(update, context)
    request_id = FEE.parse_one(query.data)
    if request_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, STAFF_REFUSALS) as refused:
        await context.services.remarks.confirm_fee(request_id, update.effective_user.id)
    if refused.error:
        return
    await query.answer()
    verdict = tr.gettext("💰 Fee received ({staff}).", staff=update.effective_user.full_name)
    await edit_message(
        query,
        tr.gettext("{card}\n\n{verdict}", card=query.message.text or "", verdict=verdict),
        reply_markup=decision_keyboard(tr, request_id),
    )


@requires(Role.RESULTS)
async def on_unchanged(update: Update, context: ExamContext) -> None:
    """`rmk:same:<id>`: the score stays; the first decision wins."""
    query, tr = update.callback_query, group_tr(update, context)
    request_id = UNCHANGED.parse_one(query.data)
    if request_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, STAFF_REFUSALS) as refused:
        decision = await context.services.remarks.decide(
            request_id, update.effective_user.id, None
        )
    if refused.error:
        return
    await query.answer()
    verdict = tr.gettext(
        "✔️ Unchanged ({score}), decided by {staff}. {told}",
        score=_score(tr, decision.old),
        staff=update.effective_user.full_name,
        told=_told(tr, decision.notified),
    )
    await edit_message(
        query,
        tr.gettext("{card}\n\n{verdict}", card=query.message.text or "", verdict=verdict),
        reply_markup=None,
    )


@requires(Role.RESULTS)
async def on_new_score(update: Update, context: ExamContext) -> None:
    """`rmk:new:<id>`: the presser's next message in this chat is the new score."""
    query, tr = update.callback_query, group_tr(update, context)
    request_id = NEW_SCORE.parse_one(query.data)
    if request_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, STAFF_REFUSALS) as refused:
        prompt = await context.services.remarks.ask_score(
            request_id,
            update.effective_user.id,
            update.effective_chat.id,
            query.message.message_id if query.message else None,
        )
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(
        tr.gettext(
            "{staff}, type the new score for {component} of {reference} (now {score}; 0 to "
            "{max}, at most one decimal) as your next message in this chat.",
            staff=update.effective_user.full_name,
            component=_name(tr, prompt.names),
            reference=prompt.reference,
            score=_score(tr, prompt.score),
            max=prompt.max_score,
        ),
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton(tr.gettext("✖️ Stop"), callback_data=SKIP_SCORE.prefix)]]
        ),
    )


@requires(Role.RESULTS)
async def on_skip_score(update: Update, context: ExamContext) -> None:
    """`rmk:skip`: no new score after all (the card keeps its buttons)."""
    query, tr = update.callback_query, group_tr(update, context)
    await context.services.remarks.stop_score(update.effective_user.id)
    await query.answer()
    await edit_message(query, tr.gettext("No new score typed: the request stays open."))


@requires(Role.RESULTS, quiet=True)
async def on_score_text(update: Update, context: ExamContext) -> None:
    """Text in the staff chat: the score of a staff member who pressed "new score"."""
    if context.candidate is None or context.candidate.flow != SCORE_FLOW:
        return  # ordinary staff chat
    tr, message = group_tr(update, context), update.effective_message
    explain = {InvalidAnswer: _score_error, **STAFF_REFUSALS}
    async with refusals(update, tr, explain) as refused:
        decision = await context.services.remarks.decide_typed(
            update.effective_user.id, update.effective_chat.id, message.text
        )
    if refused.error or decision is None:
        return
    await message.reply_text(
        tr.gettext(
            "✅ Re-mark #{id} ({reference}, {component}): {old} → {new}, decided by {staff}. "
            "{told}",
            id=decision.request_id,
            reference=decision.reference,
            component=_name(tr, decision.names),
            old=_score(tr, decision.old),
            new=_score(tr, decision.new or decision.old),
            staff=update.effective_user.full_name,
            told=_told(tr, decision.notified),
        )
    )
    if decision.card is not None:
        try:  # the card's buttons would only say "already decided" now
            await context.bot.edit_message_reply_markup(*decision.card, reply_markup=None)
        except TelegramError as exc:
            log.info("remark card %s not cleared: %s", decision.card, exc)


# --- notification templates (rendered by the outbox sender at send time) -------------------


def decision_keyboard(tr: Translator, request_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("✔️ Unchanged"),
                    callback_data=UNCHANGED.example({0: str(request_id)}),
                ),
                InlineKeyboardButton(
                    tr.gettext("✏️ New score"),
                    callback_data=NEW_SCORE.example({0: str(request_id)}),
                ),
            ]
        ]
    )


def remark_request(params: dict[str, Any], tr: Translator) -> Rendered:
    """The staff card: who asks, for what, why; the fee first if there is one."""
    text = tr.gettext(
        "🔁 Re-mark request #{id} (复核)\nCandidate: {name} (Telegram {telegram_id}), ID "
        "{id_number}\nTicket {ticket}, registration {reference}\n{level}, session {session}\n"
        "{component}: {score}\nReason: {reason}",
        id=params["request_id"],
        name=params.get("name", ""),
        telegram_id=params.get("telegram_id", ""),
        id_number=params.get("id_number") or "-",
        ticket=params.get("ticket") or "-",
        reference=params.get("reference", ""),
        level=level_label(tr, params.get("level_code", ""), params.get("level_names")),
        session=params.get("session_code", ""),
        component=_name(tr, params.get("component_names") or {}),
        score=_score(tr, params.get("score")),
        reason=params.get("reason", ""),
    )
    if params.get("status") != "awaiting_fee":
        return Rendered(text, decision_keyboard(tr, params["request_id"]))
    fee = tr.gettext(
        "Fee: {amount}, not received yet. Press “Fee received” once it has arrived.",
        amount=tr.money(int(params.get("fee_minor") or 0), params.get("currency", "CNY")),
    )
    button = InlineKeyboardButton(
        tr.gettext("💰 Fee received"), callback_data=FEE.example({0: str(params["request_id"])})
    )
    return Rendered(
        tr.gettext("{card}\n\n{verdict}", card=text, verdict=fee),
        InlineKeyboardMarkup([[button]]),
    )


def remark_fee_confirmed(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(
        tr.gettext(
            "💰 The exam centre received your re-mark fee for {component} (session {session}). "
            "Your request is now with the markers; I will tell you the outcome here.",
            component=_name(tr, params.get("component_names") or {}),
            session=params.get("session_code", ""),
        )
    )


def remark_decided(params: dict[str, Any], tr: Translator) -> Rendered:
    """The outcome, and what it means for the level."""
    component = _name(tr, params.get("component_names") or {})
    session = params.get("session_code", "")
    level = level_label(tr, params.get("level_code", ""), params.get("level_names"))
    if params.get("status") == "changed":
        outcome = (
            tr.gettext("passed") if params.get("component_passed") else tr.gettext("not passed")
        )
        lines = [
            tr.gettext(
                "🔁 Re-mark (复核) of {component}, session {session}: your score changed from "
                "{old} to {new} ({outcome}).",
                component=component,
                session=session,
                old=_score(tr, params.get("old")),
                new=_score(tr, params.get("new")),
                outcome=outcome,
            )
        ]
    else:
        lines = [
            tr.gettext(
                "🔁 Re-mark (复核) of {component}, session {session}: the score stays {old}.",
                component=component,
                session=session,
                old=_score(tr, params.get("old")),
            )
        ]
    if params.get("certificates_about"):
        lines.append(
            tr.gettext(
                "✅ You have now passed {level}. Certificates come about {date}; see /results.",
                level=level,
                date=tr.date(date.fromisoformat(params["certificates_about"])),
            )
        )
    elif params.get("level_passed_before") and not params.get("level_passed"):
        lines.append(
            tr.gettext(
                "With this score {level} is no longer passed: see /results for what to sit again.",
                level=level,
            )
        )
    else:
        lines.append(tr.gettext("See /results for all your results."))
    return Rendered("\n".join(lines))


TEMPLATES = {
    Template.REMARK_REQUEST: remark_request,
    Template.REMARK_FEE_CONFIRMED: remark_fee_confirmed,
    Template.REMARK_DECIDED: remark_decided,
}
INPUTS = {FLOW: on_reason}
RESUMES = {FLOW: resume}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("remark", cmd_remark, private))
    application.add_handler(CommandHandler("remarks", cmd_remarks, staff))
    application.add_handler(CallbackQueryHandler(on_list, pattern=LIST.matches))
    application.add_handler(CallbackQueryHandler(on_ask, pattern=ASK.matches))
    application.add_handler(CallbackQueryHandler(on_send, pattern=SEND.matches))
    application.add_handler(CallbackQueryHandler(on_stop, pattern=STOP.matches))
    application.add_handler(StaffCallbackQueryHandler(on_fee, FEE, staff))
    application.add_handler(StaffCallbackQueryHandler(on_unchanged, UNCHANGED, staff))
    application.add_handler(StaffCallbackQueryHandler(on_new_score, NEW_SCORE, staff))
    application.add_handler(StaffCallbackQueryHandler(on_skip_score, SKIP_SCORE, staff))
    # Its own group (payments uses 1, broadcasts 2): acts only while the sender owes a score.
    add_staff_chat_input(application, on_score_text, group=3)
