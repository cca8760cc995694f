"""Identity: before any handler runs, know who is writing and pick their translator."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, TypeHandler

from handlers.context import ExamContext


async def load_candidate(update: Update, context: ExamContext) -> None:
    """Record the sender and choose the language: stored choice → Telegram's → default."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    chat = update.effective_chat
    candidate = await context.services.candidates.touch(
        user.id,
        chat_id=chat.id if chat is not None and chat.type == chat.PRIVATE else None,
        first_name=user.first_name or "",
        username=user.username,
        telegram_language=user.language_code,
    )
    context.candidate = candidate
    context.tr = context.i18n.translator(
        context.i18n.negotiate(candidate.language, user.language_code)
    )


def setup(application: Application) -> None:
    # Group -1 runs before every flow's handlers (group 0) for every update.
    application.add_handler(TypeHandler(Update, load_candidate), group=-1)
