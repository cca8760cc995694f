"""The figures' chart (handlers/charts.py): a PNG in both languages; Chinese labels drawn
with the embedded CJK font, so matplotlib warns of no missing glyph (the warnings are
captured; the last test shows the capture sees one when the font is not there); a chart
with no session ahead says so."""

from __future__ import annotations

import io
import struct
import warnings
from datetime import UTC, date, datetime, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from bot.i18n import I18n
from bot.services.stats import DayCount, Figures, Money, SessionFigures
from handlers import charts

PNG = b"\x89PNG\r\n\x1a\n"
I18N = I18n("zh_Hans")
AT = datetime(2026, 12, 24, 1, 0, tzinfo=UTC)
DAYS = tuple(
    DayCount(date(2026, 12, 24) - timedelta(days=29 - n), n % 7, n % 3) for n in range(30)
)
SESSION = SessionFigures(
    code="2027-01",
    exam_date=date(2027, 1, 9),
    timezone="Asia/Shanghai",
    capacity=120,
    seats_taken=97,
    waitlisted=14,
    unpaid=20,
    payment_deadline=datetime(2026, 12, 26, 10, 0, tzinfo=UTC),
    unpaid_due_soon=20,
    receipts_waiting=3,
    refunds_open=1,
    checked_in=0,
    expected=70,
    received=(Money("stars", "XTR", 85000, 10),),
)
FIGURES = Figures(AT, "Asia/Shanghai", (SESSION,), False, DAYS, 3, 1)
EMPTY = Figures(AT, "Asia/Shanghai", (), False, DAYS, 0, 0)


def _missing_glyphs(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def _size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])  # the IHDR chunk: width, height


def _labels(figures: Figures, language: str) -> set[str]:
    figure = charts.chart(figures, I18N.translator(language))
    return {t.get_text() for t in figure.findobj(Text) if t.get_text()}


def test_draw_chinese_chart_has_no_missing_glyph() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = charts.draw(FIGURES, I18N.translator("zh_Hans"))

    assert png[:8] == PNG
    assert _size(png) == (880, 825)  # 8 × 7.5 inches at 110 dpi
    assert _missing_glyphs(caught) == []


def test_chart_labels_chinese_in_chinese() -> None:
    labels = _labels(FIGURES, "zh_Hans")

    assert {
        "数据概览（2026年12月24日（周四）09:00（北京时间））",
        "近 30 天每日报名与收款",
        "报名",
        "收款",
        "各场次座位",
        "已缴费",
        "已占座，未缴费",
        "剩余",
        "97/120，候补 14",
        "12/24",
    } <= labels


def test_chart_labels_english_in_english() -> None:
    labels = _labels(FIGURES, "en")

    assert {
        "Figures at Thu 24 Dec 2026, 09:00 (China time)",
        "Registrations and payments per day, last 30 days",
        "Seats per session",
        "97 of 120, waitlist 14",
    } <= labels


def test_draw_without_sessions_says_so() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = charts.draw(EMPTY, I18N.translator("zh_Hans"))

    assert png[:8] == PNG
    assert _missing_glyphs(caught) == []
    assert "暂无即将举行的考试场次。" in _labels(EMPTY, "zh_Hans")


def test_missing_glyph_without_the_cjk_font_is_caught() -> None:
    """The check above can fail: Chinese in a font without it warns, and is caught."""
    figure = Figure()
    figure.text(0.5, 0.5, "各场次座位", family="DejaVu Sans")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FigureCanvasAgg(figure).print_png(io.BytesIO())

    assert len(_missing_glyphs(caught)) == 5
