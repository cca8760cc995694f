"""Broadcasts flow (staff only): /broadcast, the announcement, the audience, preview, confirm,
then one progress message edited while it sends, and a report of who was not reached.

Entry points: `setup(application)`; handlers `cmd_broadcast`, `on_input` (typed or sent
content, or the schedule time: privately through `handlers.flows`, in the staff chat by
`on_staff_chat_input`), `on_audience`, `on_confirm`, `on_ask_schedule`, `on_control`,
`on_csv`; `render_progress` (the progress message, edited by the job in `bot.runtime.jobs`); the
`broadcast_report` notification template.
Callback data (every one behind `StaffCallbackQueryHandler`; the service checks staff
rights and every id again): `bc:aud:<id>:<kind>[:<value>]`, `bc:now:<id>`, `bc:when:<id>`,
`bc:at:<id>`, `bc:pause:<id>`, `bc:resume:<id>`, `bc:stop:<id>`, `bc:stop!:<id>`,
`bc:keep:<id>`, `bc:drop:<id>`, `bc:csv:<id>`.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.ext import Application, CommandHandler, filters

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.live import edit_live_message
from bot.runtime.notifications import Rendered
from bot.services.broadcasts import FLOW, Draft, Preview, Progress
from bot.services.errors import InvalidAnswer, InvalidState, NotFound, StaleStep
from bot.services.notify import Template
from handlers.callbacks import (
    ID,
    WORD,
    Button,
    StaffCallbackQueryHandler,
    add_staff_chat_input,
    one_of,
    optional,
)
from handlers.context import ExamContext
from handlers.render import (
    LevelNames,
    edit_message,
    level_label,
    level_names,
    refusals,
    rows,
    stale_button,
)
from handlers.staff_roles import requires

log = logging.getLogger(__name__)

CONFIRM = Button("bc", one_of("now", "at"), ID)  # bc:now:<id> / bc:at:<id>
ASK_SCHEDULE = Button("bc:when", ID)
NOT_REACHED_CSV = Button("bc:csv", ID)


# -- rendering ------------------------------------------------------------------------


def audience_label(tr: Translator, kind: str, value: str | None, levels: LevelNames) -> str:
    if kind == "session":
        return tr.gettext("candidates registered for session {session}", session=value)
    if kind == "level":
        level = level_label(tr, value or "", levels.get(value or ""))
        return tr.gettext("candidates registered for {level}", level=level)
    states = {
        "unpaid": tr.gettext("candidates who have not paid yet (submitted or awaiting payment)"),
        "waitlisted": tr.gettext("candidates on a waitlist"),
        "paid": tr.gettext("candidates who have paid"),
    }
    return states.get(value or "", tr.gettext("all candidates"))


def status_label(tr: Translator, status: str) -> str:
    return {
        "scheduled": tr.gettext("🕒 scheduled"),
        "sending": tr.gettext("📤 sending"),
        "paused": tr.gettext("⏸ paused"),
        "cancelled": tr.gettext("✖️ cancelled"),
        "done": tr.gettext("✅ finished"),
    }.get(status, status)


def _eta(tr: Translator, seconds: int) -> str:
    if seconds < 60:
        return tr.ngettext("about {count} second", "about {count} seconds", seconds)
    return tr.ngettext("about {count} minute", "about {count} minutes", seconds // 60)


def progress_text(tr: Translator, p: Progress, zone: str, levels: LevelNames) -> str:
    lines = [
        tr.gettext("📣 Broadcast #{id}: {status}", id=p.id, status=status_label(tr, p.status)),
        tr.gettext(
            "To: {audience}",
            audience=audience_label(tr, p.audience_kind, p.audience_value, levels),
        ),
        tr.gettext(
            "Sent {sent} · failed {failed} · unreachable {unreachable} · remaining {remaining}",
            sent=p.sent,
            failed=p.failed,
            unreachable=p.unreachable,
            remaining=p.remaining,
        ),
    ]
    if p.cancelled:
        lines.append(tr.gettext("Cancelled before sending: {count}", count=p.cancelled))
    if p.skipped:
        lines.append(
            tr.ngettext(
                "{count} recipient was already known to be unreachable and was not sent to.",
                "{count} recipients were already known to be unreachable and were not sent to.",
                p.skipped,
            )
        )
    if p.status == "scheduled" and p.scheduled_at is not None:
        lines.append(tr.gettext("Starts at {when}.", when=tr.datetime(p.scheduled_at, zone)))
    if p.eta_seconds is not None:
        lines.append(tr.gettext("Time left: {eta}", eta=_eta(tr, p.eta_seconds)))
    if p.status in ("done", "cancelled") and p.remaining == 0:
        lines.append(tr.gettext("The report follows below."))
    return "\n".join(lines)


def progress_keyboard(tr: Translator, p: Progress) -> InlineKeyboardMarkup | None:
    if p.status in ("sending", "scheduled"):
        first = InlineKeyboardButton(tr.gettext("⏸ Pause"), callback_data=f"bc:pause:{p.id}")
    elif p.status == "paused":
        first = InlineKeyboardButton(tr.gettext("▶️ Resume"), callback_data=f"bc:resume:{p.id}")
    else:
        return None
    return InlineKeyboardMarkup(
        [
            [
                first,
                InlineKeyboardButton(
                    tr.gettext("✖️ Cancel broadcast"), callback_data=f"bc:stop:{p.id}"
                ),
            ]
        ]
    )


def audience_keyboard(tr: Translator, bid: int) -> InlineKeyboardMarkup:
    b = f"bc:aud:{bid}"
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(tr.gettext("👥 All candidates"), callback_data=f"{b}:all")],
            [
                InlineKeyboardButton(tr.gettext("📅 By session"), callback_data=f"{b}:session"),
                InlineKeyboardButton(tr.gettext("🎓 By level"), callback_data=f"{b}:level"),
            ],
            [
                InlineKeyboardButton(
                    tr.gettext("💳 Not paid yet"), callback_data=f"{b}:state:unpaid"
                ),
                InlineKeyboardButton(
                    tr.gettext("⏳ Waitlisted"), callback_data=f"{b}:state:waitlisted"
                ),
                InlineKeyboardButton(tr.gettext("✅ Paid"), callback_data=f"{b}:state:paid"),
            ],
            [
                InlineKeyboardButton(
                    tr.gettext("✖️ Cancel broadcast"), callback_data=f"bc:drop:{bid}"
                )
            ],
        ]
    )


def confirm_text(tr: Translator, p: Preview, zone: str, levels: LevelNames) -> str:
    lines = [
        tr.gettext(
            "📣 Broadcast #{id}: the message above goes to {audience}.",
            id=p.id,
            audience=audience_label(tr, p.audience_kind, p.audience_value, levels),
        ),
        tr.ngettext(
            "Recipients: {count} candidate.", "Recipients: {count} candidates.", p.recipients
        ),
    ]
    if p.unreachable:
        lines.append(
            tr.ngettext(
                "Not included: {count} more who blocked the bot or could not be reached before; "
                "the final report lists them.",
                "Not included: {count} more who blocked the bot or could not be reached before; "
                "the final report lists them.",
                p.unreachable,
            )
        )
    if p.paid:
        lines.append(
            tr.gettext(
                "Paid broadcast: up to 1000 messages per second, charged in Telegram Stars."
            )
        )
    if p.recipients == 0:
        lines.append(tr.gettext("Nobody to send to: choose another audience."))
    elif p.scheduled_at is not None:
        lines.append(
            tr.gettext(
                "It will be sent at {when}. Confirm?",
                when=tr.datetime(p.scheduled_at, zone),
            )
        )
    return "\n".join(lines)


def confirm_keyboard(tr: Translator, p: Preview) -> InlineKeyboardMarkup:
    buttons = []
    if p.recipients and p.scheduled_at is not None:
        buttons.append(
            InlineKeyboardButton(
                tr.gettext("✅ Confirm the schedule"), callback_data=f"bc:at:{p.id}"
            )
        )
    if p.recipients:
        buttons.append(
            InlineKeyboardButton(tr.gettext("▶️ Send now"), callback_data=f"bc:now:{p.id}")
        )
        buttons.append(
            InlineKeyboardButton(tr.gettext("🕒 Schedule"), callback_data=f"bc:when:{p.id}")
        )
    buttons.append(
        InlineKeyboardButton(
            tr.gettext("👥 Another audience"), callback_data=f"bc:aud:{p.id}:menu"
        )
    )
    buttons.append(
        InlineKeyboardButton(tr.gettext("✖️ Cancel broadcast"), callback_data=f"bc:drop:{p.id}")
    )
    return InlineKeyboardMarkup(rows(buttons, 2))


def broadcast_report(params: dict[str, Any], tr: Translator) -> Rendered:
    """The report at the end of a broadcast, sent through the outbox to the chat it came from."""
    total = params["recipients"] + params["skipped"]
    head = (
        tr.gettext("✅ Broadcast #{id} finished.", id=params["broadcast_id"])
        if params["status"] == "done"
        else tr.gettext("✖️ Broadcast #{id} was cancelled.", id=params["broadcast_id"])
    )
    lines = [
        head,
        tr.gettext(
            "Reached {sent} of {total}. Not reached: {missing} (unreachable {unreachable}, failed "
            "{failed}, cancelled {cancelled}).",
            sent=params["sent"],
            total=total,
            missing=params["not_reached_total"],
            unreachable=params["unreachable"],
            failed=params["failed"],
            cancelled=params["cancelled"],
        ),
    ]
    reasons = {
        "unreachable": tr.gettext("unreachable"),
        "failed": tr.gettext("failed"),
        "cancelled": tr.gettext("cancelled"),
    }
    if params["not_reached"]:
        lines.append(tr.gettext("Not reached:"))
        lines += [
            tr.gettext(
                "• {name} (Telegram {telegram_id}): {reason}",
                name=name,
                telegram_id=tid,
                reason=reasons.get(status, status),
            )
            for name, tid, status in params["not_reached"]
        ]
    more = params["not_reached_total"] - len(params["not_reached"])
    if more > 0:
        lines.append(
            tr.ngettext("…and {count} more: see the CSV.", "…and {count} more: see the CSV.", more)
        )
    keyboard = None
    if params["not_reached_total"]:
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        tr.gettext("📄 Not reached, as CSV"),
                        callback_data=f"bc:csv:{params['broadcast_id']}",
                    )
                ]
            ]
        )
    return Rendered("\n".join(lines), keyboard)


def _broadcast_tr(context: ExamContext, p: Progress) -> Translator:
    """Progress messages stay in the language they started in, whoever presses a button."""
    return context.i18n.translator(p.language)


def render_progress(
    p: Progress, tr: Translator, zone: str, *, levels: LevelNames | None = None
) -> Rendered:
    """The progress message of a broadcast (edited in place by `bot.runtime.jobs`, which
    the composition root hands this with the catalogue's level names)."""
    return Rendered(progress_text(tr, p, zone, levels or LevelNames()), progress_keyboard(tr, p))


async def _edit_progress(context: ExamContext, p: Progress) -> None:
    tr = _broadcast_tr(context, p)
    rendered = render_progress(p, tr, context.settings.timezone, levels=await level_names(context))
    await edit_live_message(context.bot, p.chat_id, p.message_id, rendered)


# -- composing ------------------------------------------------------------------------


def _prompt_markup(update: Update) -> ForceReply | None:
    # In a group with privacy mode the bot only sees replies to its own messages.
    return ForceReply(selective=True) if update.effective_chat.type != "private" else None


@requires(Role.ADMIN)
async def cmd_broadcast(update: Update, context: ExamContext) -> None:
    """Staff: start a broadcast, privately or in the staff chat."""
    tr, private = context.tr, update.effective_chat.type == "private"
    # Progress and report speak the chat's language: the staff chat's is the site default
    # (as for every outbox message to a group), a private chat's is the staff member's.
    language = tr.language if private else context.i18n.default_language
    await context.services.broadcasts.start(
        update.effective_user.id, update.effective_chat.id, language
    )
    text = (
        tr.gettext(
            "📣 New broadcast. Send the announcement: text, or a photo or document with a "
            "caption. /cancel stops."
        )
        if private
        else tr.gettext(
            "📣 New broadcast. Reply to this message with the announcement: text, or a photo or "
            "document with a caption."
        )
    )
    await update.effective_message.reply_text(
        text, reply_markup=_prompt_markup(update), do_quote=not private
    )


async def on_input(update: Update, context: ExamContext) -> None:
    """While composing: the announcement, or the time typed after "Schedule"."""
    try:
        if context.candidate is not None and context.candidate.step == "schedule":
            await _on_schedule_time(update, context)
        else:
            await _on_content(update, context)
    except StaleStep:
        if update.effective_chat.type == "private":  # in the staff chat it was ordinary chat
            await update.effective_message.reply_text(
                context.tr.gettext(
                    "Your broadcast is being composed in another chat: continue it "
                    "there, or /cancel."
                )
            )


async def _on_content(update: Update, context: ExamContext) -> None:
    msg, tr = update.effective_message, context.tr
    photo = msg.photo[-1].file_id if msg.photo else None
    document = msg.document.file_id if msg.document else None
    if not (msg.text or photo or document):
        await msg.reply_text(tr.gettext("Please send text, a photo or a document."))
        return
    async with refusals(update, tr, {InvalidAnswer: _answer_error}) as refused:
        draft = await context.services.broadcasts.set_content(
            update.effective_user.id,
            update.effective_chat.id,
            text=msg.text or msg.caption,
            photo=photo,
            document=document,
        )
    if refused.error:
        return
    await msg.reply_text(
        tr.gettext("Who should receive it?"), reply_markup=audience_keyboard(tr, draft.id)
    )


@requires(Role.ADMIN, quiet=True)
async def on_staff_chat_input(update: Update, context: ExamContext) -> None:
    """A staff member's message in the staff chat counts only while they compose there."""
    if context.candidate is not None and context.candidate.flow == FLOW:
        await on_input(update, context)


async def _on_schedule_time(update: Update, context: ExamContext) -> None:
    tr, msg = context.tr, update.effective_message
    try:
        preview = await context.services.broadcasts.set_schedule(
            update.effective_user.id, update.effective_chat.id, msg.text
        )
    except InvalidAnswer as exc:
        await msg.reply_text(_answer_error(tr, exc), reply_markup=_prompt_markup(update))
        return
    text = confirm_text(tr, preview, context.settings.timezone, await level_names(context))
    await msg.reply_text(text, reply_markup=confirm_keyboard(tr, preview))


def _answer_error(tr: Translator, exc: InvalidAnswer) -> str:
    return {
        "empty": tr.gettext("Please send text, a photo or a document."),
        "too_long": tr.gettext(
            "That is too long. Please keep it to {limit} characters.",
            limit=exc.params.get("limit"),
        ),
        "datetime_format": tr.gettext("Please type the date and time like 2026-12-01 09:00."),
        "datetime_past": tr.gettext("That time has passed. Please type a time in the future."),
        "date_too_far": tr.gettext("That is more than a year ahead. Please check the year."),
        "no_recipients": tr.gettext("Nobody to send to: choose another audience."),
        "not_an_option": tr.gettext("Please choose one of the buttons."),
    }.get(exc.reason, tr.gettext("That answer was not accepted. Please try again."))


async def resume(update: Update, context: ExamContext) -> None:
    """After /start: remind a staff member what the draft waits for."""
    draft: Draft | None = await context.services.broadcasts.current(update.effective_user.id)
    if draft is None:
        return
    tr = context.tr
    if draft.step == "content":
        await update.effective_message.reply_text(
            tr.gettext("📣 Your broadcast is waiting for the announcement.")
        )
    elif draft.step == "schedule":
        await update.effective_message.reply_text(
            tr.gettext("Please type the date and time like 2026-12-01 09:00.")
        )
    else:
        await update.effective_message.reply_text(
            tr.gettext("Who should receive it?"), reply_markup=audience_keyboard(tr, draft.id)
        )


async def _preview(update: Update, context: ExamContext, p: Preview) -> None:
    """The message exactly as recipients will see it, then the count and the buttons."""
    chat, tr = update.effective_chat, context.tr
    if p.photo:
        await chat.send_photo(p.photo, caption=p.text)
    elif p.document:
        await chat.send_document(p.document, caption=p.text)
    else:
        await chat.send_message(p.text or "")
    text = confirm_text(tr, p, context.settings.timezone, await level_names(context))
    await chat.send_message(text, reply_markup=confirm_keyboard(tr, p))


def _unchangeable(tr: Translator, _exc: Exception) -> str:
    return tr.gettext("This broadcast can no longer be changed.")


def _already(tr: Translator, exc: InvalidState) -> str:
    return tr.gettext("Already {status}.", status=status_label(tr, exc.state))


AUDIENCES = ("all", "session", "level", "state", "menu")
AUDIENCE = Button("bc:aud", ID, one_of(*AUDIENCES), optional(WORD))


@requires(Role.ADMIN)
async def on_audience(update: Update, context: ExamContext) -> None:
    """`bc:aud:<id>:<kind>[:<value>]`: a sub-list for sessions and levels, else the preview."""
    query, tr = update.callback_query, context.tr
    parsed = AUDIENCE.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    bid, kind, value = parsed
    services = context.services.broadcasts
    if kind in ("session", "level", "menu") and value is None:
        options = await services.audience_options()
        levels = await level_names(context) if kind == "level" else LevelNames()
        buttons = (
            [
                InlineKeyboardButton(code, callback_data=f"bc:aud:{bid}:session:{code}")
                for code in options.sessions
            ]
            if kind == "session"
            else [
                InlineKeyboardButton(
                    level_label(tr, code, levels.get(code)),
                    callback_data=f"bc:aud:{bid}:level:{code}",
                )
                for code in options.levels
            ]
        )
        await query.answer()
        markup = (
            audience_keyboard(tr, bid)
            if kind == "menu"
            else InlineKeyboardMarkup(rows(buttons, 2))
        )
        await edit_message(query, reply_markup=markup)
        return
    unchangeable = {(InvalidState, StaleStep, NotFound, InvalidAnswer): _unchangeable}
    async with refusals(update, tr, unchangeable, stale=()) as refused:
        preview = await services.choose_audience(update.effective_user.id, bid, kind, value)
    if refused.error:
        return
    await query.answer()
    if not await edit_message(query):
        return  # a double tap: the first tap sent the preview
    await _preview(update, context, preview)


@requires(Role.ADMIN)
async def on_ask_schedule(update: Update, context: ExamContext) -> None:
    """`bc:when:<id>`: ask for the time (site time zone)."""
    query, tr = update.callback_query, context.tr
    bid = ASK_SCHEDULE.parse_one(query.data)
    if bid is None:
        await stale_button(query, tr)
        return
    unchangeable = {(InvalidState, StaleStep, NotFound): _unchangeable}
    async with refusals(update, tr, unchangeable, stale=()) as refused:
        await context.services.broadcasts.ask_schedule(update.effective_user.id, bid)
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(
        tr.gettext(
            "When should it go out? Type the date and time ({zone}), e.g. 2026-12-01 09:00.",
            zone=context.settings.timezone,
        ),
        reply_markup=_prompt_markup(update),
    )


@requires(Role.ADMIN)
async def on_confirm(update: Update, context: ExamContext) -> None:
    """`bc:now:<id>` / `bc:at:<id>`: queue it; this message becomes the progress message."""
    query, tr = update.callback_query, context.tr
    parsed = CONFIRM.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    action, bid = parsed
    explain = {
        InvalidState: _already,
        InvalidAnswer: _answer_error,
        (StaleStep, NotFound): _unchangeable,
    }
    async with refusals(update, tr, explain, stale=()) as refused:
        progress = await context.services.broadcasts.confirm(
            update.effective_user.id,
            bid,
            query.message.chat.id,
            query.message.message_id,
            scheduled=action == "at",
        )
    if refused.error:
        return
    await query.answer()
    await _edit_progress(context, progress)


CONTROLS = ("pause", "resume", "stop", "stop!", "keep", "drop")
CONTROL = Button("bc", one_of(*CONTROLS), ID)


@requires(Role.ADMIN)
async def on_control(update: Update, context: ExamContext) -> None:
    """Progress buttons: pause, resume, cancel (asked first), or drop a draft."""
    query, tr = update.callback_query, context.tr
    parsed = CONTROL.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    action, bid = parsed
    if action in ("stop", "keep"):
        await query.answer()
        markup = (
            InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            tr.gettext("Yes, cancel the broadcast"),
                            callback_data=f"bc:stop!:{bid}",
                        ),
                        InlineKeyboardButton(
                            tr.gettext("No, keep it"), callback_data=f"bc:keep:{bid}"
                        ),
                    ]
                ]
            )
            if action == "stop"
            else progress_keyboard(tr, await context.services.broadcasts.progress(bid))
        )
        await edit_message(query, reply_markup=markup)
        return
    services = context.services.broadcasts
    act = {
        "pause": services.pause,
        "resume": services.resume,
        "stop!": services.cancel,
        "drop": services.drop,
    }[action]
    async with refusals(update, tr, {InvalidState: _already}) as refused:
        progress = await act(update.effective_user.id, bid)
    if refused.error:
        return
    await query.answer()
    if action == "drop":
        await edit_message(
            query, tr.gettext("Broadcast #{id} dropped; nothing was sent.", id=progress.id)
        )
        return
    await _edit_progress(context, progress)


def _cell(text: str) -> str:
    """A spreadsheet cell that cannot run as a formula (names come from Telegram profiles)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@requires(Role.ADMIN)
async def on_csv(update: Update, context: ExamContext) -> None:
    """`bc:csv:<id>`: everyone not reached, as a CSV file (opens in a spreadsheet)."""
    query, tr = update.callback_query, context.tr
    bid = NOT_REACHED_CSV.parse_one(query.data)
    if bid is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr) as refused:
        missed = await context.services.broadcasts.not_reached(update.effective_user.id, bid)
    if refused.error:
        return
    reasons = {
        "unreachable": tr.gettext("unreachable"),
        "failed": tr.gettext("failed"),
        "cancelled": tr.gettext("cancelled"),
    }
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            tr.gettext("Name"),
            tr.gettext("Telegram ID"),
            tr.gettext("Status"),
            tr.gettext("Details"),
        ]
    )
    writer.writerows(
        [_cell(m.name), m.telegram_id, reasons.get(m.status, m.status), _cell(m.reason or "")]
        for m in missed
    )
    await query.answer()
    await update.effective_chat.send_document(
        InputFile(out.getvalue().encode("utf-8-sig"), filename=f"broadcast-{bid}-not-reached.csv"),
        caption=tr.ngettext(
            "Broadcast #{id}: {count} not reached.",
            "Broadcast #{id}: {count} not reached.",
            len(missed),
            id=bid,
        ),
    )


TEMPLATES = {Template.BROADCAST_REPORT: broadcast_report}
INPUTS = {FLOW: on_input}
RESUMES = {FLOW: resume}


def setup(application: Application) -> None:
    settings = application.bot_data.settings
    staff = application.bot_data.staff
    where = filters.ChatType.PRIVATE
    if settings.staff_chat_id is not None:
        where = where | filters.Chat(chat_id=settings.staff_chat_id)
    # Its own group (payments uses 1 for typed reasons): acts only while the sender composes
    # a broadcast in the staff chat.
    add_staff_chat_input(application, on_staff_chat_input, group=2, media=True)
    application.add_handler(CommandHandler("broadcast", cmd_broadcast, staff & where))
    application.add_handler(StaffCallbackQueryHandler(on_audience, AUDIENCE, staff))
    application.add_handler(StaffCallbackQueryHandler(on_confirm, CONFIRM, staff))
    application.add_handler(StaffCallbackQueryHandler(on_ask_schedule, ASK_SCHEDULE, staff))
    application.add_handler(StaffCallbackQueryHandler(on_control, CONTROL, staff))
    application.add_handler(StaffCallbackQueryHandler(on_csv, NOT_REACHED_CSV, staff))
