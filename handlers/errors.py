"""Error flow: log the failure with context, tell the user in their language, tell staff."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop

from handlers.context import ExamContext

log = logging.getLogger("examdesk.errors")


async def on_error(update: object, context: ExamContext) -> None:
    """Log first (no personal data: ids only), then apologise without internals."""
    update_id = update.update_id if isinstance(update, Update) else None
    user_id = (
        update.effective_user.id if isinstance(update, Update) and update.effective_user else None
    )
    log.error("update %s from user %s failed", update_id, user_id, exc_info=context.error)
    if update_id is not None:
        context.bot_data.failed_updates.add(update_id)  # see bot.runtime.dispatch: may be retried
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.callback_query:
        # TelegramError: already answered by the handler before it failed
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    try:
        await context.bot.send_message(
            update.effective_chat.id,
            context.tr.gettext(
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
