"""Rosters flow: the printable sign-in sheet of one component's room, as an A4 PDF
(presentation only; docs/staff.md "Rosters and exports").

Entry point: `render_signin(sheet, zh, en, photos) -> bytes`.

Bilingual like the admission ticket (Chinese first, English beneath): invigilators read
Chinese, the sheet must also serve foreign staff. Every page repeats the header (session,
exam date, component, time, room) and the table head, and carries "page n of m"; each
row has the candidate's registration photo (or an empty box), name, ticket number,
masked ID number, seat and a box to sign in. Rows have one fixed height, so the page
count is known before drawing. Fonts and drawing helpers come from `handlers/pdf.py`
(the Chinese font embedded as a subset).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from reportlab.lib.colors import black
from reportlab.lib.units import mm

from bot.i18n import N_, Translator
from bot.services.rosters import RosterEntry, SigninSheet
from handlers.pdf import (
    GREY,
    LIGHT,
    MARGIN,
    PAGE_H,
    PAGE_W,
    Page,
    both,
    font_for,
    new_document,
    wrap,
)

ROW_H = 24 * mm
PHOTO_W, PHOTO_H = 15 * mm, 21 * mm  # the 2-inch photo, small
HEAD_H = 30.0  # the table head's height
TOP = PAGE_H - MARGIN - 96  # where the table head starts, below the page header
BOTTOM = MARGIN + 16  # above the page number
ROWS_PER_PAGE = int((TOP - HEAD_H - BOTTOM) // ROW_H)

#: Column (label, x offset from the margin); the signature box takes what is left.
COLUMNS = (
    (N_("No."), 0.0),
    (N_("Photo"), 20.0),
    (N_("Name"), 70.0),
    (N_("Ticket number"), 172.0),
    (N_("ID number"), 252.0),
    (N_("Seat"), 350.0),
    (N_("Signature"), 386.0),
)
TABLE_W = PAGE_W - 2 * MARGIN


def render_signin(
    sheet: SigninSheet, zh: Translator, en: Translator, photos: Mapping[str, bytes]
) -> bytes:
    """The sheet as PDF bytes; `photos` maps a photo's file id to its bytes (JPEG/PNG)."""
    component_zh, component_en = both(sheet.component.name)
    room_zh, room_en = both(sheet.component.room)
    buffer, canvas = new_document(
        f"{zh.gettext('Sign-in sheet')} {sheet.session_code} {component_zh}"
    )
    pages = max(1, math.ceil(len(sheet.entries) / ROWS_PER_PAGE))
    for number in range(pages):
        page = Page(canvas)
        _header(page, sheet, zh, en, (component_zh, component_en), (room_zh, room_en))
        chunk = sheet.entries[number * ROWS_PER_PAGE : (number + 1) * ROWS_PER_PAGE]
        for index, entry in enumerate(chunk, start=number * ROWS_PER_PAGE + 1):
            y = TOP - HEAD_H - (index - 1 - number * ROWS_PER_PAGE) * ROW_H
            _row(page, y, index, entry, photos.get(entry.photo_file_id or ""), zh, en)
        if not sheet.entries:
            page.pair(
                MARGIN + 4,
                TOP - HEAD_H - 16,
                zh.gettext("No paid candidates booked this component."),
                en.gettext("No paid candidates booked this component."),
                10,
            )
        footer_zh = zh.gettext("Page {page} of {pages}", page=number + 1, pages=pages)
        footer_en = en.gettext("Page {page} of {pages}", page=number + 1, pages=pages)
        page.text(PAGE_W / 2, MARGIN - 2, f"{footer_zh} · {footer_en}", 8, align="center")
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _header(
    page: Page,
    sheet: SigninSheet,
    zh: Translator,
    en: Translator,
    component: tuple[str, str],
    room: tuple[str, str],
) -> None:
    c = page.c
    page.text(PAGE_W / 2, page.y - 16, zh.gettext("Sign-in sheet"), 18, align="center")
    page.text(PAGE_W / 2, page.y - 30, en.gettext("Sign-in sheet"), 10, bold=True, align="center")
    start, end = sheet.component.starts_at, sheet.component.ends_at
    zone = sheet.timezone
    day = start.astimezone(ZoneInfo(zone)).date()
    lines = (
        (
            zh.gettext("Session {session}, {date}", session=sheet.session_code, date=zh.date(day)),
            en.gettext("Session {session}, {date}", session=sheet.session_code, date=en.date(day)),
        ),
        (
            zh.gettext(
                "{component}, {start}–{end}",
                component=component[0],
                start=zh.time(start, zone),
                end=zh.time(end, zone),
            ),
            en.gettext(
                "{component}, {start}–{end}",
                component=component[1],
                start=en.time(start, zone),
                end=en.time(end, zone),
            ),
        ),
        (zh.gettext("Room: {room}", room=room[0]), en.gettext("Room: {room}", room=room[1])),
    )
    y = page.y - 48
    for line_zh, line_en in lines:
        page.text(MARGIN, y, line_zh, 10.5)
        page.text(PAGE_W - MARGIN, y, line_en, 8.5, color=GREY, align="right")
        y -= 14
    # the table head
    c.setFillColor(LIGHT)
    c.rect(MARGIN, TOP - HEAD_H, TABLE_W, HEAD_H, stroke=0, fill=1)
    c.setFillColor(black)
    for msgid, offset in COLUMNS:
        page.pair(MARGIN + 3 + offset, TOP - 11, zh.gettext(msgid), en.gettext(msgid), 8.5)


def _row(
    page: Page,
    top: float,
    index: int,
    entry: RosterEntry,
    photo: bytes | None,
    zh: Translator,
    en: Translator,
) -> None:
    c = page.c
    x = {msgid: MARGIN + offset for msgid, offset in COLUMNS}
    middle = top - ROW_H / 2
    page.text(x[COLUMNS[0][0]] + 3, middle - 3, str(index), 9)
    _photo(page, photo, x[COLUMNS[1][0]] + 3, top - (ROW_H + PHOTO_H) / 2, zh, en)
    name_x = x[COLUMNS[2][0]] + 3
    name_w = x[COLUMNS[3][0]] - name_x - 4
    lines = wrap(entry.full_name or "—", font_for(entry.full_name), 11, name_w)[:3]
    for n, line in enumerate(lines):
        page.text(name_x, middle - 4 + (len(lines) - 1) * 6.5 - n * 13, line, 11)
    page.text(x[COLUMNS[3][0]] + 3, middle - 3, entry.ticket_number or "—", 9)
    page.text(x[COLUMNS[4][0]] + 3, middle - 3, entry.id_masked or "—", 9)
    page.text(x[COLUMNS[5][0]] + 3, middle - 4, entry.seat or "—", 12, bold=True)
    sign_x = x[COLUMNS[6][0]] + 3
    c.setStrokeColor(GREY)
    c.rect(sign_x, top - ROW_H + 5, PAGE_W - MARGIN - sign_x - 3, ROW_H - 10, stroke=1, fill=0)
    c.setStrokeColor(LIGHT)
    c.line(MARGIN, top - ROW_H, PAGE_W - MARGIN, top - ROW_H)
    c.setStrokeColor(black)


def _photo(
    page: Page, photo: bytes | None, x: float, y: float, zh: Translator, en: Translator
) -> None:
    if page.photo(photo, x, y, PHOTO_W, PHOTO_H):
        return
    c = page.c
    c.setStrokeColor(GREY)
    c.rect(x, y, PHOTO_W, PHOTO_H, stroke=1, fill=0)
    c.setStrokeColor(black)
    page.text(x + PHOTO_W / 2, y + PHOTO_H / 2 + 1, zh.gettext("No photo"), 6.5, align="center")
    page.text(
        x + PHOTO_W / 2,
        y + PHOTO_H / 2 - 7,
        en.gettext("No photo"),
        5.5,
        color=GREY,
        align="center",
    )
