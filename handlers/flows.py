"""Flow input routing: a message that is not a command goes to the flow the candidate is in.

The candidate's current flow is stored in the database (loaded by `handlers.identity`),
so a restart or another instance routes the next message the same way. Flows register
an input handler with `register_input(flow, handler)`; with no flow, the message gets
the "did not understand" hint and the menu.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bot.context import ExamContext

from handlers.menu import on_unknown_message

InputHandler = Callable[[Update, ExamContext], Awaitable[None]]
_INPUTS: dict[str, InputHandler] = {}
_RESUMES: dict[str, InputHandler] = {}


def register_input(flow: str, handler: InputHandler) -> None:
    _INPUTS[flow] = handler


def register_resume(flow: str, handler: InputHandler) -> None:
    """How a flow shows its current step again (after /start, a restart, a break)."""
    _RESUMES[flow] = handler


async def resume(update: Update, context: ExamContext) -> bool:
    """Show the step the candidate left off at; False when they are in no flow."""
    flow = context.candidate.flow if context.candidate else None
    handler = _RESUMES.get(flow or "")
    if handler is None:
        return False
    await handler(update, context)
    return True


async def on_private_message(update: Update, context: ExamContext) -> None:
    """Route a non-command private message to the candidate's current flow."""
    flow = context.candidate.flow if context.candidate else None
    handler = _INPUTS.get(flow or "")
    if handler is None:
        await on_unknown_message(update, context)
        return
    await handler(update, context)


def setup(application: Application) -> None:
    # New messages only: an edited earlier message is not an answer to the current step.
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & ~filters.COMMAND & ~filters.StatusUpdate.ALL,
            on_private_message,
        )
    )
