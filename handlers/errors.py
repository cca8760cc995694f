"""Error flow: log the failure with context, tell the user in their language, tell staff.

Entry point: `on_error` (PTB's error handler). A user who blocked the bot before their
reply is no failure of ours: they are marked unreachable, with no apology and no alert.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import Chat, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application, ApplicationHandlerStop

from bot.i18n import Translator
from handlers.context import ExamContext

log = logging.getLogger("examdesk.errors")

#: 403s that mean the user can no longer be written to (Telegram's wording, lower-cased).
_USER_GONE = ("bot was blocked by the user", "user is deactivated")


def _user_gone(update: Update, error: Exception | None) -> bool:
    """The reply to a private chat was refused because the user blocked the bot (or left).

    Handlers write only to the chat of their update (everything else goes through the
    outbox), so the refused chat is this one.
    """
    chat = update.effective_chat
    return (
        isinstance(error, Forbidden)
        and chat is not None
        and chat.type == Chat.PRIVATE
        and any(words in error.message.lower() for words in _USER_GONE)
    )


async def _translator(update: Update, context: ExamContext) -> Translator:
    """The user's language, chosen again: PTB gives the error handler a fresh context."""
    user = update.effective_user
    if user is None:
        return context.tr  # the site default
    stored = None
    try:
        stored = await context.services.candidates.language(user.id)
    except Exception:  # the failure may be the database itself: Telegram's language then
        log.warning("could not read the language of user %s", user.id, exc_info=True)
    return context.i18n.translator(context.i18n.negotiate(stored, user.language_code))


async def on_error(update: object, context: ExamContext) -> None:
    """Log first (no personal data: ids only), then apologise without internals."""
    update_id = update.update_id if isinstance(update, Update) else None
    user_id = (
        update.effective_user.id if isinstance(update, Update) and update.effective_user else None
    )
    if update_id is not None:
        context.bot_data.failed_updates.add(update_id)  # see bot.runtime.dispatch: may be retried
    if isinstance(update, Update) and user_id is not None and _user_gone(update, context.error):
        log.info("update %s: user %s blocked the bot; marked unreachable", update_id, user_id)
        await context.services.candidates.mark_unreachable(user_id)
        raise ApplicationHandlerStop  # nobody to apologise to, nothing for staff to do
    log.error("update %s from user %s failed", update_id, user_id, exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.callback_query:
        # TelegramError: already answered by the handler before it failed
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    tr = await _translator(update, context)
    try:
        await context.bot.send_message(
            update.effective_chat.id,
            tr.gettext(
                "Sorry, something went wrong on our side. Your answers are saved. "
                "Please try again in a minute, or send /start."
            ),
        )
    except TelegramError:
        log.warning("could not tell user %s about the error", user_id)
    staff_chat = context.settings.staff_chat_id
    if staff_chat:
        staff_tr = context.i18n.translator(context.i18n.default_language)
        try:
            await context.bot.send_message(
                staff_chat,
                staff_tr.gettext(
                    "⚠️ An update could not be handled (update {update_id}, {error}). "
                    "See the logs.",
                    update_id=update_id,
                    error=type(context.error).__name__,
                ),
            )
        except TelegramError:
            log.warning("could not report the error to the staff chat")
    # The user has had their answer: no later handler group may reply to this update too.
    raise ApplicationHandlerStop


def setup(application: Application) -> None:
    application.add_error_handler(on_error)
