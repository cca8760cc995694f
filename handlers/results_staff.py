"""Results flow, the staff's side in the chat: a results file sent to the bot, its
preview and decision, and a release's progress (docs/results.md).

Entry points: `setup(application)`; `STAFF_FILES["results_import"]` = `results_import`
(`/results_import SESSION` + a CSV or XLSX file, routed by `handlers.staff_files`);
handlers `on_import_decision` (staff only), `cmd_results_status` (staff only); template
`results_release_report` (the staff chat, when a release's messages are all settled).
Callback data: `ri:ok:<import id>` (save), `ri:no:<import id>` (discard); the first
decision wins, the service says who was first.
The preview lists refused rows with their spreadsheet line and reason, as
`examdesk results import` does (same texts), cut to fit one Telegram message.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CommandHandler, filters

from bot.i18n import N_, Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import (
    AlreadyDecided,
    CatalogMissing,
    NotFound,
    ResultsFileInvalid,
    ResultsReleased,
)
from bot.services.notify import Template
from bot.services.results import ImportConfirmed, ImportPreview, RefusedRow
from bot.services.results_file import MAX_BYTES
from bot.services.results_release import ReleaseProgress, Unreached
from handlers.callbacks import ID, Button, StaffCallbackQueryHandler, one_of
from handlers.context import ExamContext, FileCommand
from handlers.render import edit_message, group_tr, refusals, stale_button

DECISION = Button("ri", one_of("ok", "no"), ID)  # ri:ok|no:<import id>
MESSAGE_LIMIT = 4096  # Telegram's, in characters
EXTENSIONS = (".csv", ".xlsx", ".xlsm")
UNREACHED_LINES = 30  # names listed by /results_status; the rest counted

# What each refusal code of `bot.services.results` says (the same texts as the CLI's).
REFUSALS = {
    "no_reference": N_("no ticket number or registration reference"),
    "unknown_reference": N_("no registration has this ticket number or reference"),
    "not_in_session": N_("the registration is for another session"),
    "not_paid": N_("the registration is not paid"),
    "id_missing": N_("the last 4 characters of the ID number are missing"),
    "id_not_on_file": N_("the candidate has no ID number on file to check against"),
    "id_mismatch": N_("the last 4 characters of the ID number do not match"),
    "score_missing": N_("{component}: the score is missing"),
    "component_not_booked": N_(
        "{component}: the candidate did not book this component (carried over); "
        "leave the cell empty"
    ),
    "score_not_a_number": N_("{component}: “{value}” is not a score"),
    "score_out_of_range": N_("{component}: {value} is not between 0 and {max_score}"),
    "score_too_many_decimals": N_("{component}: {value} has more than one decimal place"),
}
FILE_PROBLEMS = {
    "too_large": N_("The file is larger than {limit} MB."),
    "encoding": N_("The file is neither UTF-8 nor GB18030 text."),
    "unreadable": N_("The file is not a readable CSV or XLSX file."),
    "empty": N_("The file has no result rows."),
    "too_many_rows": N_("The file has more than {limit} rows."),
}
HEADER_COLUMNS = {
    "ticket_or_reference": N_("ticket number or registration reference"),
    "id_last4": N_("last 4 characters of the ID number"),
    "component": N_("a score column for a component"),
}


# --- /results_import SESSION + a file


async def results_import(update: Update, context: ExamContext, args: list[str]) -> None:
    """The file of `/results_import SESSION`: check it, show the preview with buttons."""
    message, tr = update.effective_message, group_tr(update, context)
    document = message.document
    if len(args) != 1:
        await message.reply_text(
            tr.gettext("Send the results file with the caption /results_import SESSION.")
        )
        return
    problem = _file_problem(tr, document)
    if problem:
        await message.reply_text(problem)
        return
    data = bytes(await (await context.bot.get_file(document.file_id)).download_as_bytearray())
    async with refusals(update, tr, EXPLAIN) as refused:
        preview = await context.services.results.preview(
            args[0], document.file_name or "", data, update.effective_user.id
        )
        catalog = await context.services.catalog.current()
    if refused.error:
        return
    names = {c.code: c.name.get(tr.language) for c in catalog.components}
    if preview.accepted == 0:
        await context.services.results.cancel(preview.import_id, update.effective_user.id)
        footer = tr.gettext("Nothing to save: every row was refused.")
        await message.reply_text(preview_text(tr, preview, names, footer))
        return
    footer = tr.gettext("Save these results?")
    buttons = [
        InlineKeyboardButton(
            tr.ngettext("✅ Save {count} row", "✅ Save {count} rows", preview.accepted),
            callback_data=DECISION.example({0: "ok", 1: str(preview.import_id)}),
        ),
        InlineKeyboardButton(
            tr.gettext("✖️ Discard"),
            callback_data=DECISION.example({0: "no", 1: str(preview.import_id)}),
        ),
    ]
    await message.reply_text(
        preview_text(tr, preview, names, footer), reply_markup=InlineKeyboardMarkup([buttons])
    )


def _file_problem(tr: Translator, document: Any) -> str | None:
    """Why the message cannot be a results file, before downloading it."""
    if document is None:
        return tr.gettext(
            "Send the results as a file (CSV or XLSX), not as a photo or a video: "
            "📎 → File, with the caption /results_import SESSION."
        )
    name = document.file_name or ""
    if not name.lower().endswith(EXTENSIONS):
        return tr.gettext(
            "“{name}” is not a CSV or XLSX file. Save the results as .csv or .xlsx and send that.",
            name=name,
        )
    if document.file_size and document.file_size > MAX_BYTES:
        return tr.gettext(FILE_PROBLEMS["too_large"], limit=MAX_BYTES // (1024 * 1024))
    return None


def preview_text(
    tr: Translator, preview: ImportPreview, names: dict[str, str], footer: str
) -> str:
    """The CLI's preview: counts, changes to earlier results, each refused row; cut to
    one message with "… and N more"."""
    head = [
        tr.ngettext(
            "{file}: {count} row for session {session}",
            "{file}: {count} rows for session {session}",
            preview.rows,
            file=preview.file_name,
            session=preview.session_code,
        ),
        tr.gettext(
            "Passed {passed}, failed {failed}, absent {absent}, refused {refused}.",
            passed=preview.passed,
            failed=preview.failed,
            absent=preview.absent,
            refused=len(preview.refused),
        ),
    ]
    if preview.replaced or preview.removed:
        head.append(
            tr.gettext(
                "Earlier unreleased results: {replaced} replaced, {removed} removed.",
                replaced=preview.replaced,
                removed=preview.removed,
            )
        )
    lines = [
        tr.gettext("line {line}: {reason}", line=row.line, reason=refusal(tr, row, names))
        for row in preview.refused
    ]
    return _fit(tr, head, lines, [footer])


def _fit(tr: Translator, head: list[str], lines: list[str], tail: list[str]) -> str:
    """head + as many `lines` as fit in one message + "…and N more" + tail."""
    budget = MESSAGE_LIMIT - len("\n".join(head + tail)) - 80  # room for "…and N more"
    shown: list[str] = []
    for line in lines:
        if len(line) + 1 > budget:
            break
        shown.append(line)
        budget -= len(line) + 1
    if len(shown) < len(lines):
        left = len(lines) - len(shown)
        shown.append(tr.ngettext("…and {count} more.", "…and {count} more.", left))
    return "\n".join(head + shown + tail)


def refusal(tr: Translator, row: RefusedRow, names: dict[str, str]) -> str:
    if row.reason == "duplicate":
        lines = row.params["lines"]
        return tr.ngettext(
            "the same registration is also on line {lines}",
            "the same registration is also on lines {lines}",
            len(lines),
            lines=tr.join(str(line) for line in lines),
        )
    params = dict(row.params)
    if "component" in params:
        params["component"] = names.get(params["component"], params["component"])
    return tr.gettext(REFUSALS[row.reason], **params)


async def on_import_decision(update: Update, context: ExamContext) -> None:
    """`ri:ok|no:<import id>`: save the previewed results, or discard them; once."""
    query, tr = update.callback_query, group_tr(update, context)
    parsed = DECISION.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    verb, import_id = parsed
    async with refusals(update, tr, EXPLAIN) as refused:
        if verb == "ok":
            saved = await context.services.results.confirm(import_id, update.effective_user.id)
            text = saved_text(tr, saved)
        else:
            await context.services.results.cancel(import_id, update.effective_user.id)
            text = tr.gettext("Discarded: no result was saved.")
    if refused.error:
        return
    await query.answer()
    await edit_message(query)
    await update.effective_message.reply_text(text)


def saved_text(tr: Translator, saved: ImportConfirmed) -> str:
    text = tr.gettext(
        "Saved: {added} new, {replaced} replaced, {unchanged} unchanged, {removed} removed.",
        added=saved.added,
        replaced=saved.replaced,
        unchanged=saved.unchanged,
        removed=saved.removed,
    )
    if not saved.skipped:
        return text
    skipped = tr.ngettext(
        "{count} row was skipped: its registration changed since the preview.",
        "{count} rows were skipped: their registrations changed since the preview.",
        saved.skipped,
    )
    return "\n".join([text, skipped])


# --- refusals of the whole file or request


def _invalid(tr: Translator, exc: ResultsFileInvalid) -> str:
    if exc.reason == "header":
        missing = [tr.gettext(HEADER_COLUMNS[c]) for c in exc.params["missing"]]
        return tr.gettext("The header row lacks: {columns}.", columns=tr.join(missing))
    limit = exc.params.get("limit", 0)
    if exc.reason == "too_large":
        limit = int(limit) // (1024 * 1024)
    return tr.gettext(FILE_PROBLEMS[exc.reason], limit=limit)


def _released(tr: Translator, exc: ResultsReleased) -> str:
    return tr.gettext(
        "The results of session {session} were released on {released_at}: "
        "an import can no longer change them.",
        session=exc.session_code,
        released_at=tr.datetime(exc.released_at),
    )


def _decided(tr: Translator, _exc: AlreadyDecided) -> str:
    return tr.gettext("Someone else decided on this import first: nothing was saved.")


def _no_session(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("There is no such session.")


def _no_catalog(tr: Translator, _exc: CatalogMissing) -> str:
    return tr.gettext("No exam catalogue is loaded: run `examdesk catalog load FILE` first.")


EXPLAIN = {
    ResultsFileInvalid: _invalid,
    ResultsReleased: _released,
    AlreadyDecided: _decided,
    NotFound: _no_session,
    CatalogMissing: _no_catalog,
}


# --- /results_status SESSION


async def cmd_results_status(update: Update, context: ExamContext) -> None:
    """Staff: a release's time and state, and who its messages did not reach."""
    tr, args = group_tr(update, context), context.args or []
    if len(args) != 1:
        await update.effective_message.reply_text(tr.gettext("Usage: /results_status SESSION"))
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        progress = await context.services.results_release.progress(args[0])
    if refused.error:
        return
    await update.effective_message.reply_text(progress_text(tr, progress))


def state_label(tr: Translator, status: str) -> str:
    return {
        "scheduled": tr.gettext("🕒 scheduled"),
        "releasing": tr.gettext("📤 releasing"),
        "released": tr.gettext("✅ released"),
    }.get(status, status)


def why_label(tr: Translator, why: str) -> str:
    return {
        "unreachable": tr.gettext("blocked the bot"),
        "failed": tr.gettext("sending failed"),
        "no_chat": tr.gettext("has never written to the bot"),
        "cancelled": tr.gettext("not sent"),
    }.get(why, why)


def who(tr: Translator, code: str, id_masked: str | None, why: str) -> str:
    if id_masked:
        return tr.gettext(
            "• {code} (ID {id}): {why}", code=code, id=id_masked, why=why_label(tr, why)
        )
    return tr.gettext("• {code}: {why}", code=code, why=why_label(tr, why))


def _who(tr: Translator, u: Unreached) -> str:
    return who(tr, u.ticket_number or u.reference, u.id_masked, u.why)


def progress_text(tr: Translator, p: ReleaseProgress) -> str:
    head = [
        tr.gettext(
            "📊 Results of session {session}: {state}",
            session=p.session_code,
            state=state_label(tr, p.status),
        )
    ]
    if p.released_at is None:
        head.append(tr.gettext("Release: {when}", when=tr.datetime(p.release_at, p.timezone)))
        head.append(tr.gettext("Candidates to tell: {count}", count=p.recipients))
        return "\n".join(head)
    head += [
        tr.gettext("Released: {when}", when=tr.datetime(p.released_at, p.timezone)),
        tr.gettext("Candidates to tell: {count}", count=p.recipients),
        tr.gettext(
            "Sent {sent} · waiting {waiting} · not reached {unreached}",
            sent=p.sent,
            waiting=p.waiting,
            unreached=len(p.not_reached),
        ),
    ]
    if not p.not_reached:
        return "\n".join(head)
    head.append(tr.gettext("Not reached:"))
    lines = [_who(tr, u) for u in p.not_reached[:UNREACHED_LINES]]
    if len(p.not_reached) > UNREACHED_LINES:
        left = len(p.not_reached) - UNREACHED_LINES
        lines.append(tr.ngettext("…and {count} more.", "…and {count} more.", left))
    return _fit(tr, head, lines, [])


# --- the staff chat's report when a release is settled


def results_release_report(params: dict[str, Any], tr: Translator) -> Rendered:
    """Sent once all messages of a release are settled: how many were told, who was not."""
    lines = [
        tr.gettext(
            "📊 The results of session {session} are out: {sent} of {recipients} "
            "candidates were told.",
            session=params["session"],
            sent=params["sent"],
            recipients=params["recipients"],
        )
    ]
    if params["not_reached_count"]:
        lines.append(
            tr.gettext(
                "Not reached: {count}. Tell them another way:", count=params["not_reached_count"]
            )
        )
        for u in params["not_reached"]:
            lines.append(who(tr, u["ticket"] or u["reference"], u["id"], u["why"]))
        left = params["not_reached_count"] - len(params["not_reached"])
        if left > 0:
            lines.append(tr.ngettext("…and {count} more.", "…and {count} more.", left))
    lines.append(tr.gettext("Details: /results_status {session}", session=params["session"]))
    return Rendered("\n".join(lines))


STAFF_FILES = {"results_import": FileCommand(results_import, needs_args=True)}
TEMPLATES = {Template.RESULTS_RELEASE_REPORT: results_release_report}


def setup(application: Application) -> None:
    staff_ids = application.bot_data.settings.admin_ids
    staff = filters.User(user_id=staff_ids)
    application.add_handler(StaffCallbackQueryHandler(on_import_decision, DECISION, staff_ids))
    application.add_handler(CommandHandler("results_status", cmd_results_status, staff))
