"""Results flow, the staff's side in the chat: a results file sent to the bot, its
preview and decision, and a release's progress (docs/results.md).

Entry points: `setup(application)`; `STAFF_FILES["results_import"]` = `results_import`
(`/results_import SESSION` + a CSV or XLSX file, routed by `handlers.staff_files`);
handlers `on_import_decision` (staff only), `cmd_results_status` (staff only),
`cmd_results_correct` (role results: `/results_correct <ticket|reference> <component>
<score|absent|disqualified> <reason…>`); templates `results_release_report` (the staff
chat, when a release's messages are all settled) and `result_corrected` (the candidate,
after a correction of a released result).
Callback data: `ri:ok:<import id>` (save), `ri:no:<import id>` (discard); the first
decision wins, the service says who was first.
The preview lists refused rows with their spreadsheet line and reason, then the rows that
disagree with the door's check-ins (warnings), as `examdesk results import` does (same
texts), cut to fit one Telegram message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CommandHandler

from bot.domain.roles import Role
from bot.i18n import N_, Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import (
    AlreadyDecided,
    CatalogMissing,
    InvalidAnswer,
    NotFound,
    ResultsFileInvalid,
    ResultsReleased,
)
from bot.services.notify import Template
from bot.services.results import (
    Correction,
    ImportConfirmed,
    ImportPreview,
    RefusedRow,
    RowWarning,
    UnknownComponent,
)
from bot.services.results_release import ReleaseProgress, Unreached
from handlers.callbacks import ID, Button, StaffCallbackQueryHandler, one_of
from handlers.context import ExamContext, FileCommand
from handlers.files import StaffFile
from handlers.render import (
    edit_message,
    group_tr,
    level_label,
    no_catalog,
    no_session,
    refusals,
    stale_button,
)
from handlers.staff_roles import requires

DECISION = Button("ri", one_of("ok", "no"), ID)  # ri:ok|no:<import id>
MESSAGE_LIMIT = 4096  # Telegram's, in characters
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
FILE = StaffFile(
    not_a_file=N_(
        "Send the results as a file (CSV or XLSX), not as a photo or a video: "
        "📎 → File, with the caption /results_import SESSION."
    ),
    not_a_spreadsheet=N_(
        "“{name}” is not a CSV or XLSX file. Save the results as .csv or .xlsx and send that."
    ),
    empty=N_("The file has no result rows."),
    header_columns={
        "ticket_or_reference": N_("ticket number or registration reference"),
        "id_last4": N_("last 4 characters of the ID number"),
        "component": N_("a score column for a component"),
    },
)


# --- /results_import SESSION + a file


@requires(Role.RESULTS)
async def results_import(update: Update, context: ExamContext, args: list[str]) -> None:
    """The file of `/results_import SESSION`: check it, show the preview with buttons."""
    message, tr = update.effective_message, group_tr(update, context)
    if len(args) != 1:
        await message.reply_text(
            tr.gettext("Send the results file with the caption /results_import SESSION.")
        )
        return
    sent = await FILE.download(update, context, tr)
    if sent is None:
        return
    name, data = sent
    async with refusals(update, tr, EXPLAIN) as refused:
        preview = await context.services.results.preview(
            args[0], name, data, update.effective_user.id
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
    if preview.warnings:
        lines.append(
            tr.ngettext(
                "⚠️ {count} row disagrees with the check-in at the door (saved all the same):",
                "⚠️ {count} rows disagree with the check-in at the door (saved all the same):",
                len(preview.warnings),
            )
        )
        lines += [
            tr.gettext("line {line}: {reason}", line=w.line, reason=warning(tr, w, names))
            for w in preview.warnings
        ]
    return _fit(tr, head, lines, [footer])


def warning(tr: Translator, w: RowWarning, names: dict[str, str]) -> str:
    """A row that disagrees with the door: scored but never checked in, or checked in but
    marked absent."""
    components = tr.join(names.get(c, c) for c in w.params.get("components", []))
    if w.reason == "checked_in_absent":
        return tr.gettext(
            "{components}: marked absent, but checked in at the door at {time}",
            components=components,
            time=tr.time(datetime.fromisoformat(w.params["at"])),
        )
    return tr.gettext(
        "{components}: a score or disqualification, but never checked in at the door",
        components=components,
    )


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


@requires(Role.RESULTS)
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


def _released(tr: Translator, exc: ResultsReleased) -> str:
    return tr.gettext(
        "The results of session {session} were released on {released_at}: "
        "an import can no longer change them.",
        session=exc.session_code,
        released_at=tr.datetime(exc.released_at),
    )


def _decided(tr: Translator, _exc: AlreadyDecided) -> str:
    return tr.gettext("Someone else decided on this import first: nothing was saved.")


EXPLAIN = {
    ResultsFileInvalid: FILE.invalid,
    ResultsReleased: _released,
    AlreadyDecided: _decided,
    NotFound: no_session,
    CatalogMissing: no_catalog,
}


# --- /results_status SESSION


@requires(Role.RESULTS)
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


# --- /results_correct <ticket|reference> <component> <score|absent|disqualified> <reason…>


@requires(Role.RESULTS)
async def cmd_results_correct(update: Update, context: ExamContext) -> None:
    """Staff: correct one component result by hand, with a reason (audited)."""
    tr, args = group_tr(update, context), context.args or []
    if len(args) < 4:
        await update.effective_message.reply_text(_correct_usage(tr))
        return
    code, component, value = args[:3]
    async with refusals(update, tr, CORRECT_REFUSALS) as refused:
        done = await context.services.results.correct(
            update.effective_user.id, code, component, value, " ".join(args[3:])
        )
    if refused.error:
        return
    await update.effective_message.reply_text(correction_text(tr, done))


def _correct_usage(tr: Translator) -> str:
    return tr.gettext(
        "Usage: /results_correct <ticket number or reference> <component> "
        "<score, absent or disqualified> <reason>\n"
        "For example: /results_correct 2027-01-J-0007 theory 65 marking error on question 12"
    )


def _mark_text(tr: Translator, mark: str, score: str | None) -> str:
    if mark == "absent":
        return tr.gettext("absent")
    if mark == "disqualified":
        return tr.gettext("disqualified")
    return score or "-"


def correction_text(tr: Translator, c: Correction) -> str:
    values = {
        "component": _name(tr, c.component_names),
        "who": c.ticket_number or c.reference,
        "old": _mark_text(tr, c.old_mark, c.old_score),
        "new": _mark_text(tr, c.new_mark, c.new_score),
    }
    if not c.changed:
        return tr.gettext("{component} of {who} already is {new}: nothing was changed.", **values)
    if not c.released:
        return tr.gettext(
            "✏️ {component} of {who}: {old} → {new} (not released yet: the candidate sees it "
            "at the release). Recorded with your reason.",
            **values,
        )
    lines = [
        tr.gettext(
            "✏️ {component} of {who}: {old} → {new}, after release. Recorded with your reason.",
            **values,
        )
    ]
    if c.level_passed and not c.level_passed_before:
        lines.append(tr.gettext("The level is now passed."))
    elif c.level_passed_before and not c.level_passed:
        lines.append(
            tr.gettext(
                "The level is no longer passed. If a certificate was issued for it, "
                "revoke it with /certificate_revoke."
            )
        )
    lines.append(
        tr.gettext("The candidate is told.")
        if c.notified
        else tr.gettext("The candidate could not be told in the bot (no private chat).")
    )
    return "\n".join(lines)


def _name(tr: Translator, names: dict[str, str]) -> str:
    return names.get(tr.language) or names.get("en") or ""


def _no_result(tr: Translator, exc: NotFound) -> str:
    if str(exc) == "result":
        return tr.gettext(
            "This registration has no result for that component yet: import the results first."
        )
    return tr.gettext("No registration has this ticket number or reference.")


def _unknown_component(tr: Translator, exc: UnknownComponent) -> str:
    return tr.gettext(
        "“{text}” is not a component. Use its code, e.g. theory or practical.", text=exc.text
    )


def _bad_value(tr: Translator, exc: InvalidAnswer) -> str:
    if exc.step == "reason":
        if exc.reason == "too_long":
            return tr.gettext(
                "The reason is too long: keep it to {limit} characters.",
                limit=exc.params.get("limit", 500),
            )
        return _correct_usage(tr)
    return tr.gettext(
        "That is not a result. Type a score from 0 to {max} with at most one decimal, "
        "or absent, or disqualified.",
        max=exc.params.get("max", 100),
    )


CORRECT_REFUSALS = {
    NotFound: _no_result,
    UnknownComponent: _unknown_component,
    InvalidAnswer: _bad_value,
    CatalogMissing: no_catalog,
}


def result_corrected(params: dict[str, Any], tr: Translator) -> Rendered:
    """The candidate's message: the corrected result and what it means for the level."""
    level = level_label(tr, params.get("level_code", ""), params.get("level_names"))
    outcome = tr.gettext("passed") if params.get("component_passed") else tr.gettext("not passed")
    lines = [
        tr.gettext(
            "✏️ The exam centre corrected your result for {component}, session {session}: "
            "{old} → {new} ({outcome}).",
            component=_name(tr, params.get("component_names") or {}),
            session=params.get("session_code", ""),
            old=_mark_text(tr, params.get("old_mark", ""), params.get("old")),
            new=_mark_text(tr, params.get("new_mark", ""), params.get("new")),
            outcome=outcome,
        )
    ]
    if params.get("level_passed") and not params.get("level_passed_before"):
        lines.append(tr.gettext("✅ You have now passed {level}; see /results.", level=level))
    elif params.get("level_passed_before") and not params.get("level_passed"):
        lines.append(
            tr.gettext(
                "With this result {level} is no longer passed: see /results for what to sit "
                "again.",
                level=level,
            )
        )
    else:
        lines.append(tr.gettext("See /results for all your results."))
    return Rendered("\n".join(lines))


STAFF_FILES = {"results_import": FileCommand(results_import, needs_args=True)}
TEMPLATES = {
    Template.RESULTS_RELEASE_REPORT: results_release_report,
    Template.RESULT_CORRECTED: result_corrected,
}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(StaffCallbackQueryHandler(on_import_decision, DECISION, staff))
    application.add_handler(CommandHandler("results_status", cmd_results_status, staff))
    application.add_handler(CommandHandler("results_correct", cmd_results_correct, staff))
