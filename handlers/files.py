"""A spreadsheet a staff member sends to the bot (results, certificate numbers): check the
document before downloading it, download it, and word the service's `ResultsFileInvalid`.

One `StaffFile` per kind of file says what differs (the caption to send it with, what
its rows are called, its header columns); the checks and the texts of the file's problems
are the same for every kind. `bot/cli.py` words the same refusals with `invalid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Update

from bot.i18n import N_, Translator
from bot.services.errors import ResultsFileInvalid
from bot.services.results_file import MAX_BYTES
from handlers.context import ExamContext

EXTENSIONS = (".csv", ".xlsx", ".xlsm")
FILE_PROBLEMS = {
    "too_large": N_("The file is larger than {limit} MB."),
    "encoding": N_("The file is neither UTF-8 nor GB18030 text."),
    "unreadable": N_("The file is not a readable CSV or XLSX file."),
    "too_many_rows": N_("The file has more than {limit} rows."),
}


@dataclass(frozen=True)
class StaffFile:
    """What is particular to one kind of staff file; all texts are msgids (`N_`)."""

    not_a_file: str  # the message carries no document
    not_a_spreadsheet: str  # a document that is not CSV/XLSX; `{name}`
    empty: str  # the file has no rows
    header_columns: dict[str, str]  # column code → what it is called

    def document_problem(self, tr: Translator, document: Any) -> str | None:
        """Why the message cannot be this kind of file, before downloading it."""
        if document is None:
            return tr.gettext(self.not_a_file)
        name = document.file_name or ""
        if not name.lower().endswith(EXTENSIONS):
            return tr.gettext(self.not_a_spreadsheet, name=name)
        if document.file_size and document.file_size > MAX_BYTES:
            return tr.gettext(FILE_PROBLEMS["too_large"], limit=MAX_BYTES // (1024 * 1024))
        return None

    async def download(
        self, update: Update, context: ExamContext, tr: Translator
    ) -> tuple[str, bytes] | None:
        """The file's name and bytes; None after telling the sender why it is not one."""
        message = update.effective_message
        document = message.document
        problem = self.document_problem(tr, document)
        if problem:
            await message.reply_text(problem)
            return None
        file = await context.bot.get_file(document.file_id)
        return document.file_name or "", bytes(await file.download_as_bytearray())

    def invalid(self, tr: Translator, exc: ResultsFileInvalid) -> str:
        """The service's refusal of the whole file."""
        if exc.reason == "header":
            missing = [tr.gettext(self.header_columns[c]) for c in exc.params["missing"]]
            return tr.gettext("The header row lacks: {columns}.", columns=tr.join(missing))
        if exc.reason == "empty":
            return tr.gettext(self.empty)
        limit = exc.params.get("limit", 0)
        if exc.reason == "too_large":
            limit = int(limit) // (1024 * 1024)
        return tr.gettext(FILE_PROBLEMS[exc.reason], limit=limit)
