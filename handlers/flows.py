"""Flow input routing: every new private message that is not a command goes to the
`FlowRouter` (`handlers.context`), which hands it to the flow the candidate is in."""

from __future__ import annotations

from telegram.ext import Application, MessageHandler, filters

from handlers.context import FlowRouter


def setup(application: Application, router: FlowRouter) -> None:
    application.bot_data.flows = router
    # New messages only: an edited earlier message is not an answer to the current step.
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE
            & filters.ChatType.PRIVATE
            & ~filters.COMMAND
            & ~filters.StatusUpdate.ALL,
            router.on_private_message,
        )
    )
