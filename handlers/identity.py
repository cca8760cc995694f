"""Identity: before any handler runs, know who is writing and pick their translator; notice
when a user blocks or unblocks the bot (`my_chat_member` in their private chat).

Entry points: `load_candidate` (group -1, every update), `on_my_chat_member`.
"""

from __future__ import annotations

from telegram import ChatMember, Update
from telegram.ext import Application, ChatMemberHandler, TypeHandler

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
        # A block arrives as an update from the user too, yet shows the opposite.
        reached=update.my_chat_member is None,
    )
    context.candidate = candidate
    context.tr = context.i18n.translator(
        context.i18n.negotiate(candidate.language, user.language_code)
    )


async def on_my_chat_member(update: Update, context: ExamContext) -> None:
    """The user blocked the bot (kicked) or unblocked it (member) in their private chat."""
    change = update.my_chat_member
    if change is None or change.chat.type != change.chat.PRIVATE:
        return  # groups: the staff chat's membership is not a candidate's reachability
    candidates = context.services.candidates
    if change.new_chat_member.status == ChatMember.BANNED:
        await candidates.mark_unreachable(change.from_user.id)
    elif change.new_chat_member.status == ChatMember.MEMBER:
        await candidates.mark_reachable(change.from_user.id)


def setup(application: Application) -> None:
    # Group -1 runs before every flow's handlers (group 0) for every update.
    application.add_handler(TypeHandler(Update, load_candidate), group=-1)
    # Known before the next send, so the outbox and broadcasts skip a user who blocked us.
    application.add_handler(ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
