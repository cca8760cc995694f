"""Support flow ("Ask the exam centre", issue 14 point 4): candidates write to the exam
centre, staff answer by replying to the ticket card in the staff chat.

Candidate entry points: `/ask [text]` and the menu button (`menu:ask`) wait for the
message (flow `support`, `on_input`); `on_free_message`, the flow router's fallback,
takes a message outside any flow: right after an answer it continues that thread, else it
offers to send it (`sup:send:<message id>` / `sup:drop:<message id>`); "Reply" on an
answer (`sup:reply:<thread id>`) waits for the next message to that thread.

Staff entry points (any staff role): a Telegram reply in the staff chat to a card
(`on_staff_chat_message`, group 4); `/message <reference|telegram id> <text>`; the find
card's `desk:msg:<candidate id>` button, which waits for the text (flow
`support_staff`); `/threads`, the open threads.

Templates: `support_question` (the card: who, their registrations, the message; a photo or
document is sent by file_id with the card as caption) and `support_answer` (the
candidate's "💬 The exam centre answers: …" with a Reply button), `eligibility_overridden`
(a staff `/override`, told to the candidate). Callback data carries ids only; the
service checks ownership and the current draft.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import InvalidAnswer, NotFound, StaleStep
from bot.services.notify import Template
from bot.services.support import (
    CONFIRM_STEP,
    FLOW,
    STAFF_FLOW,
    Answered,
    Content,
    NotACard,
    Offered,
    Posted,
    ThreadSummary,
)
from handlers.callbacks import ID, Button, StaffCallbackQueryHandler, add_staff_chat_input
from handlers.context import ExamContext
from handlers.render import (
    answer_error,
    edit_message,
    group_tr,
    level_label,
    on_unknown_message,
    refusals,
    stale_button,
    state_label,
)
from handlers.staff_roles import requires

ASK = Button("menu:ask")  # the menu's "Ask the exam centre"
SEND = Button("sup:send", ID)  # sup:send:<candidate's message id>: send the offered draft
DROP = Button("sup:drop", ID)  # sup:drop:<candidate's message id>: do not
REPLY = Button("sup:reply", ID)  # sup:reply:<thread id>: on an answer
DESK_MESSAGE = Button("desk:msg", ID)  # desk:msg:<candidate id>: staff, from the find card

ANY_STAFF = tuple(Role)  # talking to candidates is every staff member's job
CAPTION_LIMIT = 1024  # Telegram's limit for a photo's or document's caption
THREADS_SHOWN = 30


def ask_label(tr: Translator) -> str:
    return tr.gettext("💬 Ask the exam centre")


def ask_button(tr: Translator) -> InlineKeyboardButton:
    return InlineKeyboardButton(ask_label(tr), callback_data=ASK.prefix)


def _content(message: Message) -> Content | None:
    """Text, a photo or a document (with its caption); None for anything else."""
    text = message.text or message.caption
    if message.photo:
        return Content(text, message.photo[-1].file_id, "photo", message.message_id)
    if message.document:
        return Content(text, message.document.file_id, "document", message.message_id)
    if message.text:
        return Content(text, message_id=message.message_id)
    return None


def _write_text(tr: Translator) -> str:
    return tr.gettext("Please write text, or send a photo or a document.")


def _content_error(tr: Translator, exc: InvalidAnswer) -> str:
    if exc.reason == "text_expected":
        return _write_text(tr)
    return answer_error(tr, exc)


def _prompt(tr: Translator) -> str:
    return tr.gettext(
        "Write your question to the exam centre in one message: text, or a photo or a "
        "document with a caption. The staff answer here. Send /cancel to stop."
    )


def _posted_text(tr: Translator, posted: Posted) -> str:
    if not posted.queued:
        return tr.gettext(
            "Saved as question #{thread}, but the exam centre has no staff chat set up yet. "
            "Please try again later.",
            thread=posted.thread_id,
        )
    if posted.continued:
        return tr.gettext(
            "📨 Sent to the exam centre (question #{thread}). They answer here.",
            thread=posted.thread_id,
        )
    return tr.gettext(
        "📨 Sent to the exam centre as question #{thread}. They answer here.",
        thread=posted.thread_id,
    )


def _offer_keyboard(tr: Translator, message_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("📨 Send to the exam centre"),
                    callback_data=f"{SEND.prefix}:{message_id}",
                ),
                InlineKeyboardButton(
                    tr.gettext("✖️ No"), callback_data=f"{DROP.prefix}:{message_id}"
                ),
            ]
        ]
    )


def _offer_text(tr: Translator) -> str:
    return tr.gettext(
        "I am the exam centre's bot and cannot answer that myself. Shall I send your message "
        "to the exam centre staff? They answer here. For the menu, send /start."
    )


# --- the candidate ---------------------------------------------------------------------------


async def cmd_ask(update: Update, context: ExamContext) -> None:
    """/ask: wait for the question; `/ask <text>` sends it at once."""
    tr, msg = context.tr, update.effective_message
    await context.services.support.begin(update.effective_user.id)
    if context.args:
        text = msg.text.split(maxsplit=1)[1]
        await _post(update, context, Content(text, message_id=msg.message_id))
        return
    await msg.reply_text(_prompt(tr))


async def on_ask_button(update: Update, context: ExamContext) -> None:
    """The menu's "Ask the exam centre"."""
    await update.callback_query.answer()
    await context.services.support.begin(update.effective_user.id)
    await update.effective_message.reply_text(_prompt(context.tr))


async def on_reply_button(update: Update, context: ExamContext) -> None:
    """ "Reply" on an answer: the next message goes to that thread."""
    query, tr = update.callback_query, context.tr
    thread_id = REPLY.parse_one(query.data)
    if thread_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr) as refused:
        await context.services.support.begin(update.effective_user.id, thread_id)
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(_prompt(tr))


async def on_input(update: Update, context: ExamContext) -> None:
    """A message in the support flow: the question, or (a draft on offer) a new draft."""
    step = context.candidate.step if context.candidate else None
    content = _content(update.effective_message)
    if content is None:
        await update.effective_message.reply_text(_write_text(context.tr))
        return
    if step == CONFIRM_STEP:
        await _route_free(update, context, content)
        return
    await _post(update, context, content)


async def _post(update: Update, context: ExamContext, content: Content) -> None:
    tr = context.tr
    explain = {InvalidAnswer: _content_error, StaleStep: lambda tr, _e: _prompt(tr)}
    async with refusals(update, tr, explain) as refused:
        posted = await context.services.support.post(update.effective_user.id, content)
    if refused.error:
        return
    await update.effective_message.reply_text(_posted_text(tr, posted))


async def on_free_message(update: Update, context: ExamContext) -> None:
    """Outside any flow (the flow router's fallback): offer to send it to the exam centre."""
    content = _content(update.effective_message)
    if content is None:
        await on_unknown_message(update, context)
        return
    await _route_free(update, context, content)


async def _route_free(update: Update, context: ExamContext, content: Content) -> None:
    tr = context.tr
    async with refusals(update, tr, {InvalidAnswer: _content_error}) as refused:
        routed = await context.services.support.route_free(update.effective_user.id, content)
    if refused.error:
        return
    if isinstance(routed, Posted):
        await update.effective_message.reply_text(_posted_text(tr, routed))
        return
    assert isinstance(routed, Offered)
    await update.effective_message.reply_text(
        _offer_text(tr), reply_markup=_offer_keyboard(tr, routed.message_id)
    )


async def on_send(update: Update, context: ExamContext) -> None:
    """`sup:send:<message id>`: send the draft offered for that message."""
    query, tr = update.callback_query, context.tr
    message_id = SEND.parse_one(query.data)
    if message_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr) as refused:
        posted = await context.services.support.confirm(update.effective_user.id, message_id)
    if refused.error:
        return
    await query.answer()
    await edit_message(query, _posted_text(tr, posted))


async def on_drop(update: Update, context: ExamContext) -> None:
    """`sup:drop:<message id>`: forget the draft."""
    query, tr = update.callback_query, context.tr
    message_id = DROP.parse_one(query.data)
    if message_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr) as refused:
        await context.services.support.drop(update.effective_user.id, message_id)
    if refused.error:
        return
    await query.answer()
    await edit_message(query, tr.gettext("Not sent. Send /start for the menu."))


async def resume(update: Update, context: ExamContext) -> None:
    """After /start: still waiting for the question (a draft on offer is simply kept)."""
    step = context.candidate.step if context.candidate else None
    if step != CONFIRM_STEP:
        await update.effective_message.reply_text(_prompt(context.tr))


# --- staff ----------------------------------------------------------------------------------


def _answered_text(tr: Translator, answered: Answered) -> str:
    if not answered.delivered:
        return tr.gettext(
            "Saved in question #{thread}, but {name} has no private chat with the bot: "
            "it was not delivered.",
            thread=answered.thread_id,
            name=answered.candidate_name,
        )
    return tr.gettext(
        "✅ Sent to {name} (question #{thread}).",
        name=answered.candidate_name,
        thread=answered.thread_id,
    )


def _no_candidate(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("No candidate with that registration reference or Telegram id.")


@requires(*ANY_STAFF, quiet=True)
async def on_staff_chat_message(update: Update, context: ExamContext) -> None:
    """In the staff chat: a reply to a card answers it; else the text `desk:msg` waits for."""
    msg, tr = update.effective_message, group_tr(update, context)
    content = _content(msg)
    if content is None:
        return
    if msg.reply_to_message is not None:
        try:
            answered = await context.services.support.answer(
                update.effective_user.id, msg.reply_to_message.message_id, content
            )
        except NotACard:
            pass  # a reply to some other message: not ours
        except InvalidAnswer as exc:
            await msg.reply_text(_content_error(tr, exc))
            return
        else:
            await msg.reply_text(_answered_text(tr, answered))
            return
    if context.candidate is not None and context.candidate.flow == STAFF_FLOW:
        try:
            answered = await context.services.support.message_pending(
                update.effective_user.id, content, update.effective_chat.id
            )
        except StaleStep:
            return  # `desk:msg` was pressed in another chat: this is just talk
        except (InvalidAnswer, NotFound) as exc:
            await msg.reply_text(_pending_error(tr, exc))
            return
        await msg.reply_text(_answered_text(tr, answered))


@requires(*ANY_STAFF)
async def on_staff_input(update: Update, context: ExamContext) -> None:
    """In a private chat (flow `support_staff`): the text for the candidate."""
    msg, tr = update.effective_message, context.tr
    content = _content(msg)
    if content is None:
        await msg.reply_text(_write_text(tr))
        return
    explain = {InvalidAnswer: _pending_error, NotFound: _pending_error, StaleStep: _elsewhere}
    async with refusals(update, tr, explain) as refused:
        answered = await context.services.support.message_pending(
            update.effective_user.id, content, update.effective_chat.id
        )
    if refused.error:
        return
    await msg.reply_text(_answered_text(tr, answered))


def _pending_error(tr: Translator, exc: Exception) -> str:
    if isinstance(exc, InvalidAnswer):
        return _content_error(tr, exc)
    return _no_candidate(tr, NotFound("candidate"))


def _elsewhere(tr: Translator, _exc: StaleStep) -> str:
    return tr.gettext(
        "Type the message in the chat where you pressed the button, or send /cancel."
    )


async def resume_staff(update: Update, context: ExamContext) -> None:
    """After /start: the message for a candidate is still awaited."""
    target = await context.services.support.waiting_for(update.effective_user.id)
    if target is not None:
        await update.effective_message.reply_text(_message_prompt(context.tr, target.name))


def _message_prompt(tr: Translator, name: str) -> str:
    return tr.gettext(
        "Type your message to {name} (text, or a photo or a document with a caption). "
        "Send /cancel to stop.",
        name=name,
    )


@requires(*ANY_STAFF)
async def cmd_message(update: Update, context: ExamContext) -> None:
    """Staff: /message <reference|telegram id> <text>."""
    msg, tr = update.effective_message, group_tr(update, context)
    parts = (msg.text or "").split(maxsplit=2)
    if len(parts) < 3:
        await msg.reply_text(
            tr.gettext("Usage: /message <registration reference or Telegram id> <text>")
        )
        return
    explain = {InvalidAnswer: _content_error, NotFound: _no_candidate}
    async with refusals(update, tr, explain) as refused:
        answered = await context.services.support.message(
            update.effective_user.id, parts[1], Content(parts[2], message_id=msg.message_id)
        )
    if refused.error:
        return
    await msg.reply_text(_answered_text(tr, answered))


@requires(*ANY_STAFF)
async def on_desk_message(update: Update, context: ExamContext) -> None:
    """`desk:msg:<candidate id>` (the find card): ask for the text."""
    query, tr = update.callback_query, group_tr(update, context)
    candidate_id = DESK_MESSAGE.parse_one(query.data)
    if candidate_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr) as refused:
        target = await context.services.support.begin_message(
            update.effective_user.id, candidate_id, update.effective_chat.id
        )
    if refused.error:
        return
    await query.answer()
    await update.effective_message.reply_text(_message_prompt(tr, target.name))


@requires(*ANY_STAFF)
async def cmd_threads(update: Update, context: ExamContext) -> None:
    """Staff: /threads, the questions waiting for an answer."""
    tr = group_tr(update, context)
    threads, total = await context.services.support.open_threads(THREADS_SHOWN)
    if not threads:
        await update.effective_message.reply_text(tr.gettext("No question waits for an answer."))
        return
    lines = [
        tr.ngettext(
            "{count} question waits for an answer (reply to its card in the staff chat, or "
            "use /message):",
            "{count} questions wait for an answer (reply to their cards in the staff chat, "
            "or use /message):",
            total,
        )
    ]
    lines += [_thread_line(tr, t) for t in threads]
    await update.effective_message.reply_text("\n".join(lines))


def _thread_line(tr: Translator, thread: ThreadSummary) -> str:
    username = f" @{thread.username}" if thread.username else ""
    return tr.ngettext(
        "#{thread} {name}{username}: {count} message, last {when}",
        "#{thread} {name}{username}: {count} messages, last {when}",
        thread.messages,
        thread=thread.thread_id,
        name=thread.name,
        username=username,
        when=tr.datetime(thread.updated_at, tr.zone),
    )


# --- templates ------------------------------------------------------------------------------


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _registration_line(tr: Translator, r: dict[str, Any]) -> str:
    return tr.gettext(
        "• {reference}: {level}, session {session}, {state}",
        reference=r.get("reference", ""),
        level=level_label(tr, r.get("level_code", ""), r.get("level_names")),
        session=r.get("session_code") or "-",
        state=state_label(tr, r.get("state", "")),
    )


def support_question(params: dict[str, Any], tr: Translator) -> Rendered:
    """The ticket card in the staff chat."""
    username = params.get("username")
    telegram_name = f"@{username}" if username else params.get("first_name") or "-"
    head = (
        tr.gettext("↩️ Question #{thread} continues", thread=params["thread_id"])
        if params.get("continued")
        else tr.gettext("❓ New question #{thread}", thread=params["thread_id"])
    )
    lines = [
        head,
        tr.gettext(
            "From: {name} (Telegram: {telegram_name}), ID {id_number}",
            name=params.get("name", ""),
            telegram_name=telegram_name,
            id_number=params.get("id_masked") or "-",
        ),
    ]
    registrations = params.get("registrations") or []
    if registrations:
        lines.append(tr.gettext("Registrations:"))
        lines += [_registration_line(tr, r) for r in registrations]
        more = int(params.get("more_registrations") or 0)
        if more:
            lines.append(tr.ngettext("and {count} more", "and {count} more", more))
    else:
        lines.append(tr.gettext("No registrations."))
    if params.get("last_answer"):
        lines.append(tr.gettext("Last answer: “{text}”", text=params["last_answer"]))
    elif params.get("last_answer_file"):
        lines.append(tr.gettext("Last answer: a file."))
    footer = tr.gettext("Reply to this message to answer.")
    kind, file_id, text = params.get("file_kind"), params.get("file_id"), params.get("text")
    if kind in ("photo", "document") and file_id:
        lines.append(footer)
        header = "\n".join(lines)
        if text:
            room = CAPTION_LIMIT - len(header) - 2
            header = _fit(f"{header}\n\n{_fit(text, max(room, 40))}", CAPTION_LIMIT)
        header = _fit(header, CAPTION_LIMIT)
        if kind == "photo":
            return Rendered(header, photo=file_id)
        return Rendered(header, document=file_id)
    lines += ["", text or "", "", footer]
    return Rendered("\n".join(lines))


def support_answer(params: dict[str, Any], tr: Translator) -> Rendered:
    """The staff's message as the candidate sees it, with a Reply button."""
    text = params.get("text")
    body = (
        tr.gettext("💬 The exam centre answers: {text}", text=text)
        if text
        else tr.gettext("💬 The exam centre sent you this.")
    )
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("↩️ Reply"), callback_data=f"{REPLY.prefix}:{params['thread_id']}"
                )
            ]
        ]
    )
    kind, file_id = params.get("file_kind"), params.get("file_id")
    if kind == "photo" and file_id:
        return Rendered(_fit(body, CAPTION_LIMIT), keyboard, photo=file_id)
    if kind == "document" and file_id:
        return Rendered(_fit(body, CAPTION_LIMIT), keyboard, document=file_id)
    return Rendered(body, keyboard)


def eligibility_overridden(params: dict[str, Any], tr: Translator) -> Rendered:
    """A staff `/override`, told to the candidate with its reason."""
    level = level_label(tr, params.get("level_code", ""), params.get("level_names"))
    if params.get("eligible"):
        text = tr.gettext(
            "✅ The exam centre decided that you may take {level}. Reason: {reason}\n"
            "You can register now: send /register.",
            level=level,
            reason=params.get("reason", ""),
        )
    else:
        text = tr.gettext(
            "❌ The exam centre decided that you may not take {level}. Reason: {reason}\n"
            "Questions? Send /ask.",
            level=level,
            reason=params.get("reason", ""),
        )
    return Rendered(text)


TEMPLATES = {
    Template.SUPPORT_QUESTION: support_question,
    Template.SUPPORT_ANSWER: support_answer,
    Template.ELIGIBILITY_OVERRIDDEN: eligibility_overridden,
}
INPUTS = {FLOW: on_input, STAFF_FLOW: on_staff_input}
RESUMES = {FLOW: resume, STAFF_FLOW: resume_staff}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("ask", cmd_ask, private))
    application.add_handler(CallbackQueryHandler(on_ask_button, pattern=ASK.matches))
    application.add_handler(CallbackQueryHandler(on_reply_button, pattern=REPLY.matches))
    application.add_handler(CallbackQueryHandler(on_send, pattern=SEND.matches))
    application.add_handler(CallbackQueryHandler(on_drop, pattern=DROP.matches))
    application.add_handler(CommandHandler("message", cmd_message, staff))
    application.add_handler(CommandHandler("threads", cmd_threads, staff))
    application.add_handler(StaffCallbackQueryHandler(on_desk_message, DESK_MESSAGE, staff))
    # Its own group (payments 1, broadcasts 2, remarks 3): acts on a reply to a card, or
    # while `desk:msg` waits.
    add_staff_chat_input(application, on_staff_chat_message, group=4, media=True)
