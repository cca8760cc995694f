"""Staff files: one router for the files staff send with a command (docs/results.md,
"Importing a results file").

Flow modules declare `STAFF_FILES = {command: FileCommand(handler, needs_args)}`;
`handlers.setup` collects them into `bot_data.staff_files`. Staff reach a handler two ways:

* a document with the caption `/<command> args…` (any chat);
* `/<command> args…` as a message, then the file (a private chat): the command waits in
  the staff member's flow state (`bot.services.staff_files`, flow `staff_file`) for 15
  minutes, through restarts; /cancel drops it.

Order (handlers/__init__.py): this module registers before `payments_staff`, so a captioned
file is never taken for a bank statement; a CSV without a caption while a command waits
is handed back here by `payments_staff.on_statement_file` through the flow router.

Roles: each handler checks its own (`@requires`, `handlers.staff_roles`) before it reads
the file; `cmd_file_command` checks the same roles before it waits for one.

Entry points: `setup(application)`; handlers `cmd_file_command`, `on_captioned_file`,
`on_pending_file` (the flow input), `resume`.
"""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import Application, CommandHandler, MessageHandler, filters

from bot.services.results_file import MAX_BYTES
from bot.services.staff_files import FLOW, PENDING_FOR
from handlers.context import ExamContext
from handlers.staff_roles import allowed, required_roles

_CAPTION = r"^/({commands})(?:@\w+)?(?:\s+(.*))?$"


def _pattern(commands: list[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(c) for c in sorted(commands, key=len, reverse=True))
    return re.compile(_CAPTION.format(commands=names), re.DOTALL | re.IGNORECASE)


async def cmd_file_command(update: Update, context: ExamContext) -> None:
    """`/<command> args` without a file: wait for the file (private chat)."""
    tr, message = context.tr, update.effective_message
    command = (message.text or "").split()[0].lstrip("/").split("@")[0].lower()
    args = context.args or []
    roles = required_roles(context.bot_data.staff_files[command].handle)
    if roles is not None and not await allowed(update, context, roles):
        return  # refused before the member sends a file the handler would refuse
    if not args and context.bot_data.staff_files[command].needs_args:
        await message.reply_text(
            tr.gettext(
                "Send /{command} with what it needs (for example the session code), "
                "then the file.",
                command=command,
            )
        )
        return
    if update.effective_chat.type != update.effective_chat.PRIVATE:
        await message.reply_text(
            tr.gettext(
                "In this chat, send the file with the caption {invocation}.",
                invocation=_invocation(command, args),
            )
        )
        return
    await context.services.staff_files.await_file(update.effective_user.id, command, args)
    await message.reply_text(_send_now(context, command, args))


def _invocation(command: str, args: list[str] | tuple[str, ...]) -> str:
    """`/results_import 2027-01`, `/certificates_import`: the command as staff typed it."""
    return " ".join(["/" + command, *args])


def _send_now(context: ExamContext, command: str, args: list[str] | tuple[str, ...]) -> str:
    return context.tr.gettext(
        "Send the file for {invocation} now (CSV or XLSX, up to {size} MB), "
        "within {minutes} minutes. /cancel stops.",
        invocation=_invocation(command, args),
        size=MAX_BYTES // (1024 * 1024),
        minutes=int(PENDING_FOR.total_seconds() // 60),
    )


async def on_captioned_file(update: Update, context: ExamContext) -> None:
    """A message whose caption is `/<command> args…`: hand it to the command's handler."""
    match = _pattern(list(context.bot_data.staff_files)).match(
        update.effective_message.caption or ""
    )
    if match is None:  # the filter matched; kept for a caption edited in between
        return
    command, args = match[1].lower(), (match[2] or "").split()
    await context.services.staff_files.clear(update.effective_user.id)
    await context.bot_data.staff_files[command].handle(update, context, args)


async def on_pending_file(update: Update, context: ExamContext) -> None:
    """The flow input while a command waits: the file, or a reminder of what is awaited."""
    tr, message = context.tr, update.effective_message
    pending = await context.services.staff_files.pending(update.effective_user.id)
    if pending is None or pending.command not in context.bot_data.staff_files:
        await context.services.staff_files.clear(update.effective_user.id)
        await context.flows.fallback(update, context)
        return
    if pending.expired:
        await message.reply_text(
            tr.gettext(
                "I waited {minutes} minutes for the file for {invocation} and then "
                "stopped. Send {invocation} again, or send the file with that caption. "
                "A bank statement: send it again.",
                minutes=int(PENDING_FOR.total_seconds() // 60),
                invocation=_invocation(pending.command, pending.args),
            )
        )
        return
    if message.document is None:
        await message.reply_text(
            tr.gettext(
                "I am waiting for the file for {invocation}: send it as a file "
                "(📎 → File), not as a photo or text. /cancel stops.",
                invocation=_invocation(pending.command, pending.args),
            )
        )
        return
    await context.services.staff_files.clear(update.effective_user.id)
    await context.bot_data.staff_files[pending.command].handle(update, context, list(pending.args))


async def resume(update: Update, context: ExamContext) -> None:
    """/start while a command waits: say what is awaited (nothing once it lapsed)."""
    pending = await context.services.staff_files.pending(update.effective_user.id)
    if pending is None or pending.expired:
        return
    await update.effective_message.reply_text(_send_now(context, pending.command, pending.args))


INPUTS = {FLOW: on_pending_file}
RESUMES = {FLOW: resume}


def setup(application: Application) -> None:
    commands = list(application.bot_data.staff_files)
    if not commands:
        return
    staff = application.bot_data.staff
    # Any message with such a caption: a photo or a video too, so its handler can say
    # that the file must be sent as a file.
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE & staff & filters.CaptionRegex(_pattern(commands)),
            on_captioned_file,
        )
    )
    application.add_handler(CommandHandler(commands, cmd_file_command, staff))
