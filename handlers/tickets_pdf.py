"""Admission ticket flow: the ticket as a one-page A4 PDF (presentation only).

Entry point: `render_ticket(data, zh, en, photo=None) -> bytes`.

The ticket is bilingual whatever the candidate's language: Chinese first, English beneath,
because it is shown at the gate to Chinese-speaking invigilators and must also serve
foreign candidates. Every label goes through the translators (English msgids); names from
the catalogue come in both languages. Fonts, the QR code and the page helpers are shared
with the certificate record (`handlers/pdf.py`: the Chinese font is embedded as a subset).

The QR code carries `data.qr_payload` (the signed reference, or the public check URL that
carries it); the reference is also printed beneath it so staff can type it into
/checkticket. Rendering takes about 30-40 ms (see docs/tickets.md).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from reportlab.graphics import renderPDF
from reportlab.lib.colors import black, white
from reportlab.lib.units import mm

from bot.i18n import N_, Translator
from bot.services.tickets import TicketData
from handlers.pdf import (
    GREY,
    LIGHT,
    MARGIN,
    MONO,
    PAGE_W,
    QR_SIZE,
    Page,
    both,
    new_document,
    qr_drawing,
)

PHOTO_W, PHOTO_H = 35 * mm, 49 * mm  # the 2-inch photo
__all__ = ["qr_drawing", "render_ticket"]


def render_ticket(
    data: TicketData, zh: Translator, en: Translator, *, photo: bytes | None = None
) -> bytes:
    """The ticket as PDF bytes; `photo` is the candidate's photo (JPEG/PNG) or None."""
    buffer, canvas = new_document(
        f"{zh.gettext('Admission ticket')} {data.ticket_number}",
        author=both(data.organisation_name)[0],
        subject=data.signed_reference,
    )
    page = Page(canvas)

    def label(msgid: str, **params: object) -> tuple[str, str]:
        return zh.gettext(msgid, **params), en.gettext(msgid, **params)

    # --- heading
    page.heading(*label(N_("Admission ticket")))
    occupation_zh, occupation_en = both(data.occupation_name)
    level_zh, level_en = both(data.level_name)
    page.text(PAGE_W / 2, page.y - 56, f"{occupation_zh} · {level_zh}", 11, align="center")
    page.text(
        PAGE_W / 2, page.y - 69, f"{occupation_en} · {level_en}", 8.5, color=GREY, align="center"
    )
    page.y -= 86
    canvas.setStrokeColor(black)
    canvas.line(MARGIN, page.y, PAGE_W - MARGIN, page.y)
    page.y -= 18

    # --- the candidate (left) and the photo (right)
    top = page.y
    photo_x = PAGE_W - MARGIN - PHOTO_W
    _photo(page, photo, photo_x, top - PHOTO_H, zh, en)
    gender = {"male": label(N_("Male")), "female": label(N_("Female"))}.get(
        data.gender or "", ("—", "—")
    )
    direction = both(data.direction_name) if data.direction_name else ("—", "—")
    passport = data.id_doc_type == "passport"
    rows = [
        (label(N_("Ticket number")), (data.ticket_number, "")),
        (label(N_("Name")), (data.full_name, "")),
        (label(N_("Gender")), gender),
        (
            label(N_("Passport number")) if passport else label(N_("ID number")),
            (data.id_number_masked or "—", ""),
        ),
        (label(N_("Level")), (level_zh, level_en)),
        (label(N_("Direction")), direction),
        (
            label(N_("Exam date")),
            (zh.date(data.exam_date), en.date(data.exam_date)),
        ),
    ]
    value_x = MARGIN + 34 * mm
    value_width = photo_x - value_x - 6 * mm
    for name, value in rows:
        page.field(name, value, value_x, value_width, bold=value[0] == data.ticket_number)
    page.y = min(page.y, top - PHOTO_H - 10)

    # --- components: date, time, room and seat
    page.y -= 6
    columns = [
        (label(N_("Component")), 0),
        (label(N_("Date")), 31 * mm),  # room for "2027年1月16日（周六）" on one line
        (label(N_("Time")), 76 * mm),
        (label(N_("Room")), 104 * mm),
        (label(N_("Seat")), 158 * mm),
    ]
    table_w = PAGE_W - 2 * MARGIN
    offsets = [offset for _, offset in columns]
    widths = [b - a - 6 for a, b in zip(offsets, [*offsets[1:], table_w], strict=True)]
    canvas.setFillColor(LIGHT)
    canvas.rect(MARGIN, page.y - 24, table_w, 30, stroke=0, fill=1)
    canvas.setFillColor(black)
    for (head_zh, head_en), offset in columns:
        page.pair(MARGIN + 3 + offset, page.y - 4, head_zh, head_en, 9.5)
    page.y -= 30
    for component in data.components:
        name_zh, name_en = both(component.name)
        room_zh, room_en = both(component.room)
        day = component.starts_at.astimezone(ZoneInfo(data.timezone)).date()
        cells = [
            (name_zh, name_en),
            (zh.date(day), en.date(day)),
            (
                f"{zh.time(component.starts_at, data.timezone)}–"
                f"{zh.time(component.ends_at, data.timezone)}",
                "",
            ),
            (room_zh, room_en),
            (component.seat, ""),
        ]
        used = 0.0
        for offset, width, (value_zh, value_en) in zip(offsets, widths, cells, strict=True):
            used = max(
                used,
                page.pair(MARGIN + 3 + offset, page.y - 4, value_zh, value_en, 10.5, width=width),
            )
        page.y -= used + 8
        canvas.setStrokeColor(LIGHT)
        canvas.line(MARGIN, page.y + 4, PAGE_W - MARGIN, page.y + 4)
        canvas.setStrokeColor(black)
    page.y -= 10

    # --- where, and who evaluates
    for name, value in (
        (label(N_("Exam site")), both(data.site_name)),
        (label(N_("Address")), both(data.site_address)),
        (label(N_("Evaluation organisation")), both(data.organisation_name)),
    ):
        page.field(name, value, value_x, PAGE_W - MARGIN - value_x, size=11)

    # --- rules (left) and the QR code (right)
    page.y -= 8
    canvas.line(MARGIN, page.y + 6, PAGE_W - MARGIN, page.y + 6)
    rules_top = page.y - 8
    qr_x = PAGE_W - MARGIN - QR_SIZE
    rules_width = qr_x - MARGIN - 8 * mm
    heading_zh, heading_en = label(N_("Rules for candidates"))
    page.y = rules_top - 6
    page.y -= page.pair(MARGIN, page.y, heading_zh, heading_en, 11, bold=True) + 2
    rules = (
        label(N_("Arrive at the exam room 30 minutes before the start.")),
        label(N_("Bring your passport and this admission ticket; both are checked at the door."))
        if passport
        else label(
            N_("Bring your ID card and this admission ticket; both are checked at the door.")
        ),
        label(N_("Mobile phones and other electronic devices are not allowed in the exam room.")),
        label(N_("No entry later than 15 minutes after the start of a component.")),
    )
    for number, (rule_zh, rule_en) in enumerate(rules, start=1):
        page.y -= (
            page.pair(MARGIN + 4, page.y, f"{number}. {rule_zh}", rule_en, 10, width=rules_width)
            + 4
        )

    renderPDF.draw(qr_drawing(data.qr_payload), canvas, qr_x, rules_top - QR_SIZE)
    caption_zh, caption_en = label(N_("Staff: scan to check this ticket"))
    below = rules_top - QR_SIZE - 10
    page.text(PAGE_W - MARGIN, below, caption_zh, 8, align="right")
    page.text(PAGE_W - MARGIN, below - 10, caption_en, 7, color=GREY, align="right")
    canvas.setFont(MONO, 6.5)
    canvas.drawRightString(PAGE_W - MARGIN, below - 20, data.signed_reference)

    # --- footer
    issued_zh = zh.gettext("Issued on {date}", date=zh.datetime(data.issued_at, data.timezone))
    issued_en = en.gettext("Issued on {date}", date=en.datetime(data.issued_at, data.timezone))
    page.footer(issued_zh, issued_en)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _photo(
    page: Page, photo: bytes | None, x: float, y: float, zh: Translator, en: Translator
) -> None:
    if page.photo(photo, x, y, PHOTO_W, PHOTO_H):
        return
    canvas = page.c
    canvas.setFillColor(white)
    canvas.rect(x, y, PHOTO_W, PHOTO_H, stroke=1, fill=1)
    page.text(x + PHOTO_W / 2, y + PHOTO_H / 2 + 2, zh.gettext("Photo on file"), 9, align="center")
    page.text(
        x + PHOTO_W / 2,
        y + PHOTO_H / 2 - 9,
        en.gettext("Photo on file"),
        7,
        color=GREY,
        align="center",
    )
