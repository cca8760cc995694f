"""PDF helpers shared by the documents the bot renders (admission ticket, certificate record,
sign-in sheet).

Entry points: `register_fonts()` (once per process), `new_document(title, ...)` (an A4
canvas writing into a buffer, fonts registered), `Page` (a canvas with a cursor and
`text` / `pair`: Chinese line, English beneath in grey; `heading`, `field`, `photo`,
`footer`), `qr_drawing(payload, size)`, `both(names)` (a catalogue name as its Chinese
and English text), and the page's measures and colours.

Text with any character beyond Latin-1 uses WenQuanYi Micro Hei (`handlers/fonts/`,
Apache-2.0), embedded as a TrueType subset of the glyphs used, so every viewer shows the
Chinese, with or without a Chinese font of its own; text with no character beyond
Latin-1 uses Helvetica.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from pathlib import Path

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

CJK = "WenQuanYiMicroHei"
# TrueType outlines (reportlab embeds and subsets those, not CFF/OpenType ones); the
# collection's first face is the proportional one. Shipped with the code: see docs/tickets.md.
CJK_FILE = Path(__file__).resolve().parent / "fonts" / "wqy-microhei.ttc"
LATIN = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
MONO = "Courier"
GREY = Color(0.45, 0.45, 0.45)
LIGHT = Color(0.93, 0.93, 0.93)
PAGE_W, PAGE_H = A4
MARGIN = 18 * mm
QR_SIZE = 34 * mm

log = logging.getLogger(__name__)

_registered = False


def register_fonts() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(TTFont(CJK, str(CJK_FILE), subfontIndex=0))
        _registered = True


def new_document(
    title: str, *, author: str | None = None, subject: str | None = None
) -> tuple[io.BytesIO, Canvas]:
    """An A4 canvas (reproducible: `invariant`) writing into the returned buffer."""
    register_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True, pageCompression=1)
    canvas.setTitle(title)
    if author is not None:
        canvas.setAuthor(author)
    if subject is not None:
        canvas.setSubject(subject)
    canvas.setCreator("examdesk")
    return buffer, canvas


def font_for(text: str, bold: bool = False) -> str:
    """The CJK font for anything beyond Latin-1 (Chinese, full-width punctuation; it has
    Latin letters and digits too), else Helvetica."""
    if any(ord(ch) > 0xFF for ch in text):
        return CJK
    return LATIN_BOLD if bold else LATIN


def qr_drawing(payload: str, size: float = QR_SIZE) -> Drawing:
    """The QR code as a reportlab drawing of `size` points (error correction M)."""
    widget = QrCodeWidget(payload, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy wrap: by words for Latin text, by characters for Chinese."""
    lines: list[str] = []
    current = ""
    tokens: Iterable[str] = text.split(" ") if font != CJK else list(text)
    joiner = " " if font != CJK else ""
    for token in tokens:
        candidate = f"{current}{joiner}{token}" if current else token
        if pdfmetrics.stringWidth(candidate, font, size) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = token
    if current:
        lines.append(current)
    return lines


class Page:
    """A canvas with a cursor moving down the page."""

    def __init__(self, canvas: Canvas) -> None:
        self.c = canvas
        self.y = PAGE_H - MARGIN

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        *,
        bold: bool = False,
        color: Color = black,
        align: str = "left",
    ) -> None:
        font = font_for(text, bold)
        self.c.setFillColor(color)
        self.c.setFont(font, size)
        if align == "center":
            self.c.drawCentredString(x, y, text)
        elif align == "right":
            self.c.drawRightString(x, y, text)
        else:
            self.c.drawString(x, y, text)
        self.c.setFillColor(black)

    def pair(
        self,
        x: float,
        y: float,
        zh: str,
        en: str,
        size: float,
        *,
        width: float | None = None,
        bold: bool = False,
    ) -> float:
        """Chinese line, English beneath in grey (skipped when identical);
        returns the height used."""
        used = 0.0
        for line in wrap(zh, font_for(zh), size, width) if width else [zh]:
            self.text(x, y - used, line, size, bold=bold)
            used += size * 1.25
        if en and en != zh:
            small = size * 0.78
            for line in wrap(en, font_for(en), small, width) if width else [en]:
                self.text(x, y - used, line, small, color=GREY)
                used += small * 1.25
        return used

    def heading(self, zh: str, en: str) -> None:
        """The document's title, centred: Chinese large, English beneath."""
        self.text(PAGE_W / 2, self.y - 20, zh, 26, align="center")
        self.text(PAGE_W / 2, self.y - 38, en, 12, bold=True, align="center")

    def field(
        self,
        label: tuple[str, str],
        value: tuple[str, str],
        value_x: float,
        value_width: float,
        *,
        size: float = 12,
        bold: bool = False,
        gap: float = 5,
    ) -> None:
        """A label at the margin and its value from `value_x`, each Chinese over English;
        the cursor moves below the taller of the two, and `gap` more."""
        used_label = self.pair(MARGIN, self.y, *label, 10, width=value_x - MARGIN - 3 * mm)
        used_value = self.pair(value_x, self.y, *value, size, width=value_width, bold=bold)
        self.y -= max(used_label, used_value) + gap

    def photo(self, photo: bytes | None, x: float, y: float, w: float, h: float) -> bool:
        """The photo fitted in a framed box; False (nothing drawn) when there is none or
        it cannot be read, for the caller to draw its empty box."""
        if not photo:
            return False
        try:
            self.c.drawImage(
                ImageReader(io.BytesIO(photo)), x, y, w, h, preserveAspectRatio=True, anchor="c"
            )
        except Exception:
            log.warning("a photo could not be drawn; leaving its box empty")
            return False
        self.c.rect(x, y, w, h, stroke=1, fill=0)
        return True

    def footer(self, zh: str, en: str) -> None:
        """The small grey lines at the foot of the page, Chinese over English."""
        self.text(MARGIN, MARGIN - 4, zh, 7.5, color=GREY)
        self.text(MARGIN, MARGIN - 13, en, 7, color=GREY)


def both(names: dict[str, str] | None) -> tuple[str, str]:
    names = names or {}
    zh = names.get("zh_Hans") or names.get("en") or ""
    return zh, names.get("en") or zh
