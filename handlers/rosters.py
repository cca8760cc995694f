"""Rosters and exports (issue 14 point 6; docs/staff.md "Rosters and exports"): staff's
/roster, /signin and /export, answered with documents.

Entry points: `setup(application)`; handlers `cmd_roster` (role checkin; `full`: admin,
in a private chat only), `cmd_signin` (role checkin), `cmd_export` (role finance). No
buttons, no templates. The service checks the roles again and audits every export.

Spreadsheets are written here with openpyxl (XLSX) and the csv module (UTF-8 with a BOM,
so Excel reads the Chinese right). No cell ever starts a formula: text beginning with
= + - @, a tab or a carriage return is a string cell with the quote prefix in XLSX and
gets a leading apostrophe in CSV (`csv_text`, `xlsx_cell`). Texts are in the reader's
language (the site's in the staff chat: `group_tr`); times are the session's (roster) or
the site's (exports), as YYYY-MM-DD HH:MM. The sign-in sheets are PDFs drawn by
`handlers/signin_pdf.py`, one per component's room, with the registration photos
downloaded through the bot.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from telegram import Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler

from bot.domain.roles import Role
from bot.i18n import N_, Translator
from bot.services.errors import NotFound
from bot.services.payments import STARS
from bot.services.rosters import (
    PAYMENT_STATUSES,
    REGISTRATION_STATES,
    Export,
    Names,
    PaymentLine,
    RegistrationLine,
    Roster,
    RosterEntry,
    SigninSheet,
)
from bot.services.staff import NotAllowed
from handlers.context import ExamContext
from handlers.render import group_tr, method_label, no_session, payment_status_label, refusals
from handlers.signin_pdf import render_signin
from handlers.staff_roles import not_allowed_text, requires

log = logging.getLogger(__name__)

#: What makes a spreadsheet cell a formula (or lets one start after a tab or line break).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PHOTO_DOWNLOADS = 4  # photos fetched at once for the sign-in sheets
EXPORT_KINDS = ("registrations", "payments")

Cell = str | int | Decimal | None


# --- spreadsheets: one table, two formats -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    title: str  # the worksheet's name
    headers: list[str]
    rows: list[list[Cell]]


def csv_text(value: str) -> str:
    """A text cell as CSV carries it: a leading apostrophe keeps a formula a text."""
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return "'" + value if value.startswith(FORMULA_START) else value


def xlsx_cell(sheet: WriteOnlyWorksheet, value: Cell, *, bold: bool = False) -> WriteOnlyCell:
    """A cell whose text is always a string, never a formula (openpyxl takes any text
    starting with "=" for one): data type "s" and Excel's quote prefix."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(FORMULA_START):
            cell.quotePrefix = True
    if bold:
        cell.font = Font(bold=True)
    return cell


def to_xlsx(table: Table) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(re.sub(r"[\[\]:*?/\\]", " ", table.title)[:31] or "Sheet")
    for index, width in enumerate(_widths(table), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append([xlsx_cell(sheet, h, bold=True) for h in table.headers])
    for row in table.rows:
        sheet.append([xlsx_cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def to_csv(table: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in [table.headers, *table.rows]:
        writer.writerow(
            ["" if v is None else csv_text(v) if isinstance(v, str) else v for v in row]
        )
    return buffer.getvalue().encode("utf-8-sig")


def _widths(table: Table) -> list[float]:
    """Column widths from the longest text (a Chinese character counts twice), capped."""
    widths = []
    for index, header in enumerate(table.headers):
        values = [header, *(str(r[index]) for r in table.rows[:500] if r[index] is not None)]
        longest = max(sum(2 if ord(ch) > 0x2E7F else 1 for ch in v) for v in values)
        widths.append(min(max(longest + 2, 8), 48))
    return widths


# --- what the cells say -------------------------------------------------------------------

#: A registration's state as staff say it (the candidate-facing words address the candidate).
STATE_WORDS = {
    "waitlisted": N_("on the waitlist"),
    "offered": N_("seat offered, not taken yet"),
    "submitted": N_("not paid"),
    "awaiting_payment": N_("not paid"),
    "payment_review": N_("receipt under review"),
    "paid": N_("paid"),
    "cancelled": N_("cancelled"),
    "expired": N_("expired (not paid in time)"),
    "rejected": N_("rejected"),
    "completed": N_("paid, sitting completed"),
}
REFUND_WORDS = {
    "due": N_("refund due"),
    "refunded": N_("refunded"),
    "refused": N_("refund refused"),
}
GENDERS = {"male": N_("Male"), "female": N_("Female")}
# fmt: off
REGISTRATION_HEADERS = (
    N_("Reference"), N_("Session"), N_("Name"), N_("ID number"), N_("Phone"), N_("E-mail"),
    N_("Level"), N_("Direction"), N_("Components"), N_("State"), N_("State code"),
    N_("Created"), N_("Submitted"), N_("State changed"),
)
PAYMENT_HEADERS = (
    N_("Payment"), N_("Reference"), N_("Session"), N_("Name"), N_("Method"), N_("External ID"),
    N_("Amount"), N_("Currency"), N_("State"), N_("State code"), N_("Received"),
    N_("Decided"), N_("Reason"), N_("Refund"), N_("Refund reference"),
)
# fmt: on


def _name(tr: Translator, names: Names | None) -> str:
    names = names or {}
    return names.get(tr.language) or names.get("en") or next(iter(names.values()), "")


def _when(value: datetime | None, zone: str) -> str | None:
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") if value else None


def _words(tr: Translator, table: dict[str, str], code: str | None) -> str:
    return tr.gettext(table[code]) if code in table else code or ""


def _payment(tr: Translator, entry: RosterEntry) -> str:
    state = _words(tr, STATE_WORDS, entry.state)
    if entry.paid_by:
        return tr.gettext(
            "{state} ({method})", state=state, method=method_label(tr, entry.paid_by)
        )
    return state


def roster_table(tr: Translator, roster: Roster) -> Table:
    headers = [
        tr.gettext("Ticket number"),
        tr.gettext("Name"),
        tr.gettext("Gender"),
        tr.gettext("ID number (full)") if roster.full_ids else tr.gettext("ID number"),
        tr.gettext("Phone"),
        tr.gettext("Level"),
        tr.gettext("Direction"),
        tr.gettext("Components"),
        *(tr.gettext("Room: {component}", component=_name(tr, c.name)) for c in roster.components),
        tr.gettext("Seat"),
        tr.gettext("Payment"),
        tr.gettext("Checked in"),
    ]
    component_names = {c.code: _name(tr, c.name) for c in roster.components}
    rows: list[list[Cell]] = []
    for e in roster.entries:
        id_number = e.id_masked
        if roster.full_ids:
            id_number = e.id_full or tr.gettext(
                "(cannot be decrypted) {masked}", masked=e.id_masked
            )
        rows.append(
            [
                e.ticket_number,
                e.full_name,
                _words(tr, GENDERS, e.gender),
                id_number,
                e.phone,
                _name(tr, e.level_name),
                _name(tr, e.direction_name),
                tr.join(component_names.get(c, c) for c in e.components),
                *(
                    _name(tr, c.room) if c.code in e.components else None
                    for c in roster.components
                ),
                e.seat,
                _payment(tr, e),
                _when(e.checked_in_at, roster.timezone),
            ]
        )
    return Table(tr.gettext("Roster {session}", session=roster.session_code), headers, rows)


def registrations_table(tr: Translator, export: Export) -> Table:
    headers = [tr.gettext(h) for h in REGISTRATION_HEADERS]
    zone = export.timezone
    rows: list[list[Cell]] = []
    for r in export.rows:
        assert isinstance(r, RegistrationLine)
        rows.append(
            [
                r.reference,
                r.session_code,
                r.full_name,
                r.id_masked,
                r.phone,
                r.email,
                _name(tr, r.level_name),
                _name(tr, r.direction_name),
                ", ".join(r.components),
                _words(tr, STATE_WORDS, r.state),
                r.state,
                _when(r.created_at, zone),
                _when(r.submitted_at, zone),
                _when(r.state_changed_at, zone),
            ]
        )
    return Table(tr.gettext("Registrations"), headers, rows)


def payments_table(tr: Translator, export: Export) -> Table:
    headers = [tr.gettext(h) for h in PAYMENT_HEADERS]
    zone = export.timezone
    rows: list[list[Cell]] = []
    for p in export.rows:
        assert isinstance(p, PaymentLine)
        # Stars have no minor unit; yuan are kept in fen.
        amount = Decimal(p.amount_minor) if p.currency == STARS else Decimal(p.amount_minor) / 100
        rows.append(
            [
                p.payment_id,
                p.reference,
                p.session_code,
                p.full_name,
                method_label(tr, p.method),
                p.external_id,
                amount,
                p.currency,
                payment_status_label(tr, p.status),
                p.status,
                _when(p.created_at, zone),
                _when(p.decided_at, zone),
                p.reason,
                _words(tr, REFUND_WORDS, p.refund_status) or None,
                p.refund_reference,
            ]
        )
    return Table(tr.gettext("Payments"), headers, rows)


# --- /roster SESSION [full]


def _not_allowed(tr: Translator, exc: NotAllowed) -> str:
    return not_allowed_text(tr, exc.roles)


EXPLAIN = {NotFound: no_session, NotAllowed: _not_allowed}


@requires(Role.CHECKIN)
async def cmd_roster(update: Update, context: ExamContext) -> None:
    """Staff: the roster of a session as XLSX and CSV (`full`: admins, full ID numbers)."""
    tr, args, message = group_tr(update, context), context.args or [], update.effective_message
    full = len(args) == 2 and args[1].lower() == "full"
    if len(args) not in (1, 2) or (len(args) == 2 and not full):
        await message.reply_text(tr.gettext("Usage: /roster SESSION (or /roster SESSION full)"))
        return
    if full and update.effective_chat.type != update.effective_chat.PRIVATE:
        await message.reply_text(
            tr.gettext(
                "Full ID numbers are sent only in a private chat with the bot: "
                "send /roster {session} full to me there.",
                session=args[0],
            )
        )
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        roster = await context.services.rosters.roster(
            update.effective_user.id, args[0], full_ids=full
        )
    if refused.error:
        return
    if not roster.entries:
        await message.reply_text(
            tr.gettext("Nobody holds a seat at session {session}.", session=roster.session_code)
        )
        return
    await context.bot.send_chat_action(message.chat_id, ChatAction.UPLOAD_DOCUMENT)
    table = roster_table(tr, roster)
    xlsx, text = await asyncio.to_thread(lambda: (to_xlsx(table), to_csv(table)))
    name = f"roster-{_safe(roster.session_code)}" + ("-full-ids" if full else "")
    caption = tr.ngettext(
        "Roster of session {session}: {count} candidate, by ticket number.",
        "Roster of session {session}: {count} candidates, by ticket number.",
        len(roster.entries),
        session=roster.session_code,
    )
    if full:
        caption = tr.gettext(
            "{caption}\n⚠️ Full ID numbers: keep these files safe and delete them when done.",
            caption=caption,
        )
    await message.reply_document(xlsx, filename=f"{name}.xlsx", caption=caption)
    await message.reply_document(text, filename=f"{name}.csv")


# --- /signin SESSION


@requires(Role.CHECKIN)
async def cmd_signin(update: Update, context: ExamContext) -> None:
    """Staff: the printable sign-in sheets of a session, one PDF per component's room."""
    tr, args, message = group_tr(update, context), context.args or [], update.effective_message
    if len(args) != 1:
        await message.reply_text(tr.gettext("Usage: /signin SESSION"))
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        sheets = await context.services.rosters.signin_sheets(update.effective_user.id, args[0])
    if refused.error:
        return
    if not any(sheet.entries for sheet in sheets):
        await message.reply_text(
            tr.gettext("No paid candidates at session {session} yet.", session=args[0])
        )
        return
    await context.bot.send_chat_action(message.chat_id, ChatAction.UPLOAD_DOCUMENT)
    photos = await _photos(context, sheets)
    zh, en = context.i18n.translator("zh_Hans"), context.i18n.translator("en")
    for sheet in sheets:
        if not sheet.entries:
            continue
        # reportlab is CPU-bound: keep the event loop free for other users meanwhile.
        pdf = await asyncio.to_thread(render_signin, sheet, zh, en, photos)
        component, room = _name(tr, sheet.component.name), _name(tr, sheet.component.room)
        await message.reply_document(
            pdf,
            filename=f"signin-{_safe(sheet.session_code)}-{_safe(sheet.component.code)}.pdf",
            caption=tr.ngettext(
                "Sign-in sheet, session {session}, {component}, {room}: {count} candidate.",
                "Sign-in sheet, session {session}, {component}, {room}: {count} candidates.",
                len(sheet.entries),
                session=sheet.session_code,
                component=component,
                room=room,
            ),
        )


async def _photos(context: ExamContext, sheets: Iterable[SigninSheet]) -> dict[str, bytes]:
    """The registration photos, by file id; one that cannot be fetched leaves its box empty."""
    wanted = {e.photo_file_id for s in sheets for e in s.entries if e.photo_file_id}
    gate = asyncio.Semaphore(PHOTO_DOWNLOADS)

    async def fetch(file_id: str) -> tuple[str, bytes | None]:
        async with gate:
            try:
                file = await context.bot.get_file(file_id)
                return file_id, bytes(await file.download_as_bytearray())
            except TelegramError as exc:
                log.warning("sign-in sheet photo %s not downloaded: %s", file_id, exc)
                return file_id, None

    fetched = await asyncio.gather(*(fetch(f) for f in sorted(wanted)))
    return {file_id: data for file_id, data in fetched if data}


# --- /export registrations|payments [SESSION] [STATE]


def _usage(tr: Translator) -> str:
    return tr.gettext(
        "Usage: /export registrations|payments [SESSION] [STATE]\n"
        "Registration states: {registration_states}\n"
        "Payment states: {payment_states}",
        registration_states=", ".join(REGISTRATION_STATES),
        payment_states=", ".join(PAYMENT_STATUSES),
    )


def parse_export(args: Sequence[str]) -> tuple[str, str | None, str | None] | None:
    """(kind, session code, state) from the command's words, or None when they do not fit:
    a word that is one of the kind's states is the state, another word the session."""
    if not 1 <= len(args) <= 3 or args[0].lower() not in EXPORT_KINDS:
        return None
    kind = args[0].lower()
    states = REGISTRATION_STATES if kind == "registrations" else PAYMENT_STATUSES
    session: str | None = None
    state: str | None = None
    for word in args[1:]:
        if word.lower() in states and state is None:
            state = word.lower()
        elif session is None:
            session = word
        else:
            return None
    return kind, session, state


@requires(Role.FINANCE)
async def cmd_export(update: Update, context: ExamContext) -> None:
    """Staff (finance): registrations or payments as XLSX, filtered by session and state."""
    tr, message = group_tr(update, context), update.effective_message
    parsed = parse_export(context.args or [])
    if parsed is None:
        await message.reply_text(_usage(tr))
        return
    kind, session, state = parsed
    rosters, staff_id = context.services.rosters, update.effective_user.id
    async with refusals(update, tr, EXPLAIN) as refused:
        if kind == "registrations":
            export = await rosters.export_registrations(staff_id, session, state)
        else:
            export = await rosters.export_payments(staff_id, session, state)
    if refused.error:
        return
    filters_text = tr.gettext(
        "session: {session}; state: {state}",
        session=session or tr.gettext("all"),
        state=state or tr.gettext("all"),
    )
    if not export.rows:
        await message.reply_text(
            tr.gettext("Nothing to export ({filters}).", filters=filters_text)
        )
        return
    await context.bot.send_chat_action(message.chat_id, ChatAction.UPLOAD_DOCUMENT)
    table = (payments_table if export.kind == "payments" else registrations_table)(tr, export)
    xlsx = await asyncio.to_thread(to_xlsx, table)
    name = "-".join(_safe(part) for part in (kind, session, state) if part)
    caption = tr.ngettext(
        "{title}: {count} row ({filters}).",
        "{title}: {count} rows ({filters}).",
        len(export.rows),
        title=table.title,
        filters=filters_text,
    )
    await message.reply_document(xlsx, filename=f"{name}.xlsx", caption=caption)


def _safe(text: str) -> str:
    """A file name part: letters, digits, - and _ only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:40]


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CommandHandler("roster", cmd_roster, staff))
    application.add_handler(CommandHandler("signin", cmd_signin, staff))
    application.add_handler(CommandHandler("export", cmd_export, staff))
