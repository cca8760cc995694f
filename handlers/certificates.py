"""Certificates flow in the chat (docs/certificates.md): staff import or assign numbers and
revoke; the holder's /certificate (the record PDF) and the two notifications.

Entry points: `setup(application)`; handlers `on_certificates_file` (the file of
`/certificates_import`, through the staff file router: `STAFF_FILES`),
`cmd_certificates_assign`, `on_batch_decision`, `cmd_certificate_revoke` (staff only) and
`cmd_certificate` (private chat); templates `certificate_issued`, `certificate_revoked`.
Callback data (staff only): `ct:ok|no:<batch id>`; the first decision wins, the service
says who was first. What the bot writes into the staff chat is in the site's language
(`group_tr`). `preview_text`, `confirmed_text` and `file_problem` also word the CLI's
report (`examdesk certificates`).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.ext import Application, CommandHandler, filters

from bot.domain.roles import Role
from bot.i18n import N_, Translator
from bot.runtime.notifications import Rendered
from bot.services.certificates import (
    AlreadyRevoked,
    BatchConfirmed,
    BatchPreview,
    CandidateCertificates,
    CertificateRecord,
    NoNumberFormat,
    RefusedRow,
)
from bot.services.errors import (
    AlreadyDecided,
    CatalogMissing,
    NotFound,
    ResultsFileInvalid,
)
from bot.services.notify import Template
from handlers.callbacks import ID, Button, StaffCallbackQueryHandler, one_of
from handlers.certificate_pdf import render_certificate_record
from handlers.context import ExamContext, FileCommand
from handlers.files import StaffFile
from handlers.render import (
    LevelNames,
    edit_message,
    group_tr,
    level_label,
    level_names,
    no_catalog,
    no_session,
    refusals,
    stale_button,
)
from handlers.staff_roles import requires

DECISION = Button("ct", one_of("ok", "no"), ID)  # ct:ok|no:<batch id>
PREVIEW_LINES = 25

# What each refusal code of `bot.services.certificates` says.
REFUSALS = {
    "no_reference": N_("no ticket number or registration reference"),
    "unknown_reference": N_("no registration has this ticket number or reference"),
    "number_missing": N_("the certificate number is missing"),
    "number_format": N_("the certificate number does not have the catalogue's format"),
    "date_missing": N_("the issue date is missing"),
    "date_invalid": N_("“{value}” is not a date (YYYY-MM-DD)"),
    "not_passed": N_("the candidate has not passed this level"),
    "passed_elsewhere": N_("the level was passed through registration {reference}: use that"),
    "issued_before_pass": N_("the issue date is before the pass date ({passed_on})"),
    "other_number": N_("the registration already has certificate {number}"),
    "number_taken": N_("another certificate has this number"),
}
FILE = StaffFile(
    not_a_file=N_(
        "Send the certificate numbers as a file (CSV or XLSX) with the caption "
        "/certificates_import."
    ),
    not_a_spreadsheet=N_(
        "“{name}” is not a CSV or XLSX file. Save the certificate numbers as .csv or "
        ".xlsx and send that."
    ),
    empty=N_("The file has no certificate rows."),
    header_columns={
        "ticket_or_reference": N_("ticket number or registration reference"),
        "number": N_("certificate number"),
        "issue_date": N_("issue date"),
    },
)
file_problem = FILE.invalid


# --- staff: import (a file) and assign (a command), then decide


@requires(Role.RESULTS)
async def on_certificates_file(update: Update, context: ExamContext, args: list[str]) -> None:
    """The file of `/certificates_import`: check it, show the preview with buttons."""
    tr = group_tr(update, context)
    sent = await FILE.download(update, context, tr)
    if sent is None:
        return
    name, data = sent
    async with refusals(update, tr, EXPLAIN) as refused:
        preview = await context.services.certificates.preview_import(
            name, data, update.effective_user.id
        )
    if refused.error:
        return
    await _show_preview(update, context, tr, preview)


@requires(Role.RESULTS)
async def cmd_certificates_assign(update: Update, context: ExamContext) -> None:
    """Staff: `/certificates_assign SESSION YYYY-MM-DD`: who gets a number, with buttons."""
    tr, args = group_tr(update, context), context.args or []
    issued_on = _day(args[1]) if len(args) == 2 else None
    if issued_on is None:
        await update.effective_message.reply_text(
            tr.gettext("Usage: /certificates_assign SESSION YYYY-MM-DD (the issue date)")
        )
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        preview = await context.services.certificates.preview_assign(
            args[0], issued_on, update.effective_user.id
        )
    if refused.error:
        return
    await _show_preview(update, context, tr, preview)


async def _show_preview(
    update: Update, context: ExamContext, tr: Translator, preview: BatchPreview
) -> None:
    user = update.effective_user.id
    if preview.new == 0:
        await context.services.certificates.cancel(preview.batch_id, user)
        await update.effective_message.reply_text(
            "\n".join([preview_text(tr, preview), tr.gettext("Nothing to record.")])
        )
        return
    buttons = [
        InlineKeyboardButton(
            tr.ngettext(
                "✅ Record {count} certificate", "✅ Record {count} certificates", preview.new
            ),
            callback_data=DECISION.example({0: "ok", 1: str(preview.batch_id)}),
        ),
        InlineKeyboardButton(
            tr.gettext("✖️ Discard"),
            callback_data=DECISION.example({0: "no", 1: str(preview.batch_id)}),
        ),
    ]
    await update.effective_message.reply_text(
        preview_text(tr, preview), reply_markup=InlineKeyboardMarkup([buttons])
    )


@requires(Role.RESULTS)
async def on_batch_decision(update: Update, context: ExamContext) -> None:
    """`ct:ok|no:<batch id>`: record the previewed certificates, or drop them; once."""
    query, tr = update.callback_query, group_tr(update, context)
    parsed = DECISION.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    verb, batch_id = parsed
    async with refusals(update, tr, EXPLAIN) as refused:
        if verb == "ok":
            confirmed = await context.services.certificates.confirm(
                batch_id, update.effective_user.id
            )
            text = confirmed_text(tr, confirmed)
        else:
            await context.services.certificates.cancel(batch_id, update.effective_user.id)
            text = tr.gettext("Cancelled: no certificate was recorded.")
    if refused.error:
        return
    await query.answer()
    await edit_message(query)
    await update.effective_message.reply_text(text)


def preview_text(tr: Translator, preview: BatchPreview) -> str:
    """Counts and each refused row (the first 25), for the chat and the CLI."""
    if preview.kind == "assign":
        head = tr.gettext(
            "📜 Certificate numbers for session {session}, issued on {date}: {new} to assign, "
            "{unchanged} already recorded, {refused} refused.",
            session=preview.source,
            date=tr.date(preview.issued_on) if preview.issued_on else "-",
            new=preview.new,
            unchanged=preview.unchanged,
            refused=len(preview.refused),
        )
    else:
        head = tr.ngettext(
            "📜 Certificates file {file}: {count} row, {new} to record, {unchanged} already "
            "recorded, {refused} refused.",
            "📜 Certificates file {file}: {count} rows, {new} to record, {unchanged} already "
            "recorded, {refused} refused.",
            preview.rows,
            file=preview.source,
            new=preview.new,
            unchanged=preview.unchanged,
            refused=len(preview.refused),
        )
    lines = [head] + [refused_line(tr, row) for row in preview.refused[:PREVIEW_LINES]]
    if len(preview.refused) > PREVIEW_LINES:
        left = len(preview.refused) - PREVIEW_LINES
        lines.append(tr.ngettext("…and {count} more.", "…and {count} more.", left))
    return "\n".join(lines)


def refused_line(tr: Translator, row: RefusedRow) -> str:
    if row.reason in ("duplicate_number", "duplicate_registration"):
        lines = row.params["lines"]
        if row.reason == "duplicate_number":
            reason = tr.ngettext(
                "the same number is also on line {lines}",
                "the same number is also on lines {lines}",
                len(lines),
                lines=tr.join(str(line) for line in lines),
            )
        else:
            reason = tr.ngettext(
                "the same registration is also on line {lines}",
                "the same registration is also on lines {lines}",
                len(lines),
                lines=tr.join(str(line) for line in lines),
            )
    else:
        params = dict(row.params)
        if "passed_on" in params:
            params["passed_on"] = tr.date(date.fromisoformat(params["passed_on"]))
        reason = tr.gettext(REFUSALS[row.reason], **params)
    if row.line is None:
        return tr.gettext("{reference}: {reason}", reference=row.code, reason=reason)
    return tr.gettext("line {line}: {reason}", line=row.line, reason=reason)


def confirmed_text(tr: Translator, confirmed: BatchConfirmed) -> str:
    text = tr.gettext(
        "Recorded: {added} new, {unchanged} already recorded. Each new holder is told.",
        added=confirmed.added,
        unchanged=confirmed.unchanged,
    )
    if not confirmed.skipped:
        return text
    skipped = tr.ngettext(
        "{count} row was skipped: it no longer fits (changed since the preview).",
        "{count} rows were skipped: they no longer fit (changed since the preview).",
        confirmed.skipped,
    )
    return "\n".join([text, skipped])


def _day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None


def _decided(tr: Translator, exc: AlreadyDecided) -> str:
    if exc.status == "confirmed":
        return tr.gettext("Someone else recorded these certificates first.")
    return tr.gettext("Someone else cancelled this first: nothing was recorded.")


def _no_format(tr: Translator, _exc: NoNumberFormat) -> str:
    return tr.gettext(
        "The catalogue sets no certificate number format: import the numbers instead "
        "(/certificates_import with the file)."
    )


EXPLAIN = {
    ResultsFileInvalid: file_problem,
    AlreadyDecided: _decided,
    NotFound: no_session,
    NoNumberFormat: _no_format,
    CatalogMissing: no_catalog,
}


# --- staff: /certificate_revoke NUMBER REASON


@requires(Role.RESULTS)
async def cmd_certificate_revoke(update: Update, context: ExamContext) -> None:
    """Staff: revoke a certificate, with a reason (audited; the holder is told)."""
    tr, args = group_tr(update, context), context.args or []
    if len(args) < 2:
        await update.effective_message.reply_text(
            tr.gettext("Usage: /certificate_revoke NUMBER REASON")
        )
        return
    number, reason = args[0], " ".join(args[1:])

    def unknown(tr: Translator, _exc: NotFound) -> str:
        return tr.gettext("No certificate has the number {number}.", number=number)

    async with refusals(update, tr, {NotFound: unknown, AlreadyRevoked: revoked_twice}) as no:
        revoked = await context.services.certificates.revoke(
            number, reason, update.effective_user.id
        )
    if no.error:
        return
    await update.effective_message.reply_text(
        tr.gettext(
            "⛔ Certificate {number} revoked. The holder is told, with your reason; the "
            "verification now says revoked, without the reason.",
            number=revoked.number,
        )
    )


def revoked_twice(tr: Translator, exc: AlreadyRevoked) -> str:
    return tr.gettext(
        "Certificate {number} was already revoked on {date}.",
        number=exc.number,
        date=tr.datetime(exc.revoked_at),
    )


# --- the holder: /certificate


async def cmd_certificate(update: Update, context: ExamContext) -> None:
    """The candidate's certificates, each as its record PDF; or when one is expected."""
    tr, message = context.tr, update.effective_message
    mine = await context.services.certificates.candidate_certificates(update.effective_user.id)
    names = await level_names(context)
    if mine.certificates:
        await context.bot.send_chat_action(message.chat_id, ChatAction.UPLOAD_DOCUMENT)
    for record in mine.certificates:
        # reportlab is CPU-bound (tens of ms): keep the event loop free for other users.
        pdf = await asyncio.to_thread(
            render_certificate_record,
            record,
            context.i18n.translator("zh_Hans"),
            context.i18n.translator("en"),
        )
        await message.reply_document(
            pdf,
            filename=f"certificate-record-{record.number}.pdf",
            caption=record_caption(tr, record, names),
        )
    text = waiting_text(tr, mine, names)
    if text:
        await message.reply_text(text)


def record_caption(tr: Translator, record: CertificateRecord, names: LevelNames) -> str:
    level = level_label(tr, record.level_code, names.get(record.level_code) or record.level_names)
    if record.revoked and record.revoked_at is not None:
        return tr.gettext(
            "⛔ Certificate {number} ({level}) was revoked on {date}.",
            number=record.number,
            level=level,
            date=tr.date(record.revoked_at.astimezone(ZoneInfo(record.timezone)).date()),
        )
    return tr.gettext(
        "📜 Certificate record {number} ({level}), issued on {date}. This is a record of your "
        "certificate, not the certificate itself.",
        number=record.number,
        level=level,
        date=tr.date(record.issued_on),
    )


def waiting_text(tr: Translator, mine: CandidateCertificates, names: LevelNames) -> str:
    """Levels passed without a certificate yet; or, with nothing at all, how one comes."""
    lines = []
    for awaited in mine.awaited:
        level = level_label(tr, awaited.level_code, names.get(awaited.level_code))
        if awaited.expected_at is not None:
            lines.append(
                tr.gettext(
                    "✅ {level}: passed. Certificates of session {session} are expected "
                    "around {date}; I will send you a message when yours is recorded.",
                    level=level,
                    session=awaited.session_code,
                    date=tr.date(
                        awaited.expected_at.astimezone(ZoneInfo(awaited.timezone)).date()
                    ),
                )
            )
        else:
            lines.append(
                tr.gettext(
                    "✅ {level}: passed. Your certificate is not recorded yet; I will send you "
                    "a message when it is.",
                    level=level,
                )
            )
    if not lines and not mine.certificates:
        return tr.gettext(
            "You have no certificate yet. A certificate comes some weeks after you pass "
            "a level (both components); see /results."
        )
    return "\n".join(lines)


# --- the notifications


def certificate_issued(params: dict[str, Any], tr: Translator) -> Rendered:
    level = level_label(tr, params.get("level_code", ""), params.get("level_names"))
    values = {
        "level": level,
        "number": params.get("number", ""),
        "date": tr.date(date.fromisoformat(params["issued_on"])),
    }
    if params.get("link"):
        return Rendered(
            tr.gettext(
                "📜 Your {level} certificate is issued: number {number}, issued on {date}.\n"
                "Anyone can check it here: {link}\n"
                "Send /certificate for the certificate record (PDF).",
                link=params["link"],
                **values,
            )
        )
    return Rendered(
        tr.gettext(
            "📜 Your {level} certificate is issued: number {number}, issued on {date}.\n"
            "Send /certificate for the certificate record (PDF).",
            **values,
        )
    )


def certificate_revoked(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(
        tr.gettext(
            "⛔ Your certificate {number} ({level}) was revoked on {date}.\nReason: {reason}\n"
            "Its verification now says it is revoked. If you think this is a mistake, contact "
            "the exam centre.",
            number=params.get("number", ""),
            level=level_label(tr, params.get("level_code", ""), params.get("level_names")),
            date=tr.datetime(datetime.fromisoformat(params["revoked_at"]), params.get("timezone")),
            reason=params.get("reason", ""),
        )
    )


TEMPLATES = {
    Template.CERTIFICATE_ISSUED: certificate_issued,
    Template.CERTIFICATE_REVOKED: certificate_revoked,
}
STAFF_FILES = {"certificates_import": FileCommand(on_certificates_file)}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CommandHandler("certificates_assign", cmd_certificates_assign, staff))
    application.add_handler(CommandHandler("certificate_revoke", cmd_certificate_revoke, staff))
    application.add_handler(StaffCallbackQueryHandler(on_batch_decision, DECISION, staff))
    application.add_handler(
        CommandHandler("certificate", cmd_certificate, filters.ChatType.PRIVATE)
    )
