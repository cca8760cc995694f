"""Certificates flow: the certificate record (证书信息记录) as a one-page A4 PDF (presentation
only).

Entry point: `render_certificate_record(record, zh, en) -> bytes`.

It is a record of the certificate examdesk knows, not the certificate itself (the evaluation
organisation issues that); the page says so under its title. Bilingual whatever the
holder's language: Chinese first, English beneath, as on the admission ticket, with which
it shares fonts (the Chinese one embedded as a subset), the QR code and the page helpers
(`handlers/pdf.py`). A revoked certificate carries REVOKED in large letters with the date.
The QR code holds the verification link (`bot.services.certificates.certificate_link`),
printed beneath it too.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from reportlab.graphics import renderPDF
from reportlab.lib.colors import Color, black
from reportlab.lib.units import mm

from bot.i18n import N_, Translator
from bot.services.certificates import CertificateRecord
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

RED = Color(0.75, 0.1, 0.1)


def render_certificate_record(record: CertificateRecord, zh: Translator, en: Translator) -> bytes:
    """The holder's certificate record as PDF bytes."""
    buffer, canvas = new_document(
        f"{zh.gettext('Certificate record')} {record.number}",
        author=both(record.organisation_names)[0],
    )
    page = Page(canvas)

    def label(msgid: str, **params: object) -> tuple[str, str]:
        return zh.gettext(msgid, **params), en.gettext(msgid, **params)

    # --- heading: what this is, and what it is not
    page.heading(*label(N_("Certificate record")))
    note_zh, note_en = label(
        N_("This is a record of the certificate, not the certificate itself.")
    )
    page.text(PAGE_W / 2, page.y - 54, note_zh, 9.5, align="center")
    page.text(PAGE_W / 2, page.y - 65, note_en, 8, color=GREY, align="center")
    page.y -= 80
    canvas.setStrokeColor(black)
    canvas.line(MARGIN, page.y, PAGE_W - MARGIN, page.y)
    page.y -= 16

    # --- revoked: large, before anything else is read
    if record.revoked and record.revoked_at is not None:
        canvas.setFillColor(Color(1, 0.93, 0.93))
        canvas.setStrokeColor(RED)
        canvas.rect(MARGIN, page.y - 58, PAGE_W - 2 * MARGIN, 58, stroke=1, fill=1)
        canvas.setStrokeColor(black)
        revoked_zh, revoked_en = label(N_("REVOKED"))
        page.text(
            PAGE_W / 2, page.y - 30, f"{revoked_zh}  {revoked_en}", 28, color=RED, align="center"
        )
        day = record.revoked_at.astimezone(ZoneInfo(record.timezone)).date()
        when_zh = zh.gettext("Revoked on {date}", date=zh.date(day))
        when_en = en.gettext("Revoked on {date}", date=en.date(day))
        page.text(PAGE_W / 2, page.y - 50, f"{when_zh} · {when_en}", 9, color=RED, align="center")
        page.y -= 74

    # --- the certificate
    occupation = both(record.occupation_names)
    level = both(record.level_names)
    direction = both(record.direction_names) if record.direction_names else ("—", "—")
    status = label(N_("Revoked")) if record.revoked else label(N_("Valid"))
    passport = record.id_doc_type == "passport"
    rows = [
        (label(N_("Certificate holder")), (record.holder_name, "")),
        (
            label(N_("Passport number")) if passport else label(N_("ID number")),
            (record.id_number_masked or "—", ""),
        ),
        (label(N_("Occupation")), occupation),
        (label(N_("Level")), level),
        (label(N_("Direction")), direction),
        (label(N_("Certificate number")), (record.number, "")),
        (label(N_("Issue date")), (zh.date(record.issued_on), en.date(record.issued_on))),
        (label(N_("Status")), status),
        (label(N_("Evaluation organisation")), both(record.organisation_names)),
    ]
    value_x = MARGIN + 40 * mm
    for name, value in rows:
        page.field(
            name, value, value_x, PAGE_W - MARGIN - value_x, bold=value[0] == record.number, gap=7
        )

    # --- where to check it
    page.y -= 6
    canvas.setStrokeColor(LIGHT)
    canvas.line(MARGIN, page.y + 6, PAGE_W - MARGIN, page.y + 6)
    canvas.setStrokeColor(black)
    top = page.y - 8
    qr_x = PAGE_W - MARGIN - QR_SIZE
    text_width = qr_x - MARGIN - 8 * mm
    page.y = top - 6
    check_zh, check_en = label(
        N_(
            "Anyone can check this certificate by scanning the QR code. The certificate is "
            "also recorded in the national human-resources database."
        )
    )
    page.y -= page.pair(MARGIN, page.y, check_zh, check_en, 10, width=text_width) + 4
    if record.link:
        renderPDF.draw(qr_drawing(record.link), canvas, qr_x, top - QR_SIZE)
        canvas.setFont(MONO, 7)
        canvas.drawString(MARGIN, page.y - 4, record.link)

    # --- footer
    made_zh, made_en = label(N_("Made by the exam centre's bot from its own records."))
    page.footer(made_zh, made_en)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
