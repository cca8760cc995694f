"""Live messages: a message the bot edits in place as something progresses (a broadcast's
progress). Entry point: `edit_live_message(bot, chat_id, message_id, rendered)`.

An edit that changes nothing ("message is not modified") is success, not an error; any
other failure is logged and left for the next change to edit again.
"""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import BadRequest, TelegramError

from bot.runtime.notifications import Rendered

log = logging.getLogger(__name__)


async def edit_live_message(
    bot: Bot, chat_id: int | None, message_id: int | None, rendered: Rendered
) -> bool:
    """Edit the message to show `rendered`; False when it could not be edited."""
    if chat_id is None or message_id is None:
        return False
    try:
        await bot.edit_message_text(
            rendered.text,
            chat_id=chat_id,
            message_id=message_id,
            reply_markup=rendered.reply_markup,
        )
    except BadRequest as exc:
        if "not modified" in exc.message.lower():
            return True
        log.warning("live message %s/%s not edited (%s)", chat_id, message_id, exc.message)
        return False
    except TelegramError as exc:  # the next change edits it again
        log.warning("live message %s/%s not edited (%s)", chat_id, message_id, exc)
        return False
    return True
