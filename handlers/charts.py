"""The chart of the day's figures (docs/staff.md "Figures"): registrations and payments
per day over the last 30 days, and seats per session, as one PNG.

Entry points: `draw(figures, tr) -> bytes` (PNG); `chart(figures, tr)`, the same as a
matplotlib figure not drawn yet (tests read its labels). Drawing is CPU work (a few
hundred milliseconds): callers run it off the event loop (`asyncio.to_thread`). Drawn
with matplotlib's object API on the Agg canvas (no pyplot, no display, no global figure
state). Labels are in the translator's language; Chinese needs the CJK font the project
embeds (`handlers/fonts/wqy-microhei.ttc`), registered with matplotlib's font manager on
first use, so no glyph is missing (a missing one would be drawn as a box). Drawing holds
a lock: matplotlib's settings (`rc_context`) are process-wide, and drawing is rare.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import matplotlib
from babel.dates import format_skeleton
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.i18n import Translator
from bot.services.stats import Figures

CJK_FILE = Path(__file__).resolve().parent / "fonts" / "wqy-microhei.ttc"
SIZE = (8.0, 7.5)  # inches; at DPI a sharp photo on a phone, well under Telegram's limits
DPI = 110
REGISTRATIONS, PAYMENTS = "#4C78A8", "#54A24B"
PAID, TAKEN, LEFT = "#54A24B", "#F58518", "#D9D9D9"

_lock = threading.Lock()
_family: list[str] = []  # the CJK font's family name, once registered


def draw(figures: Figures, tr: Translator) -> bytes:
    """The chart as PNG bytes."""
    out = io.BytesIO()
    with _lock, matplotlib.rc_context(_rc()):
        FigureCanvasAgg(_build(figures, tr)).print_png(out)
    return out.getvalue()


def chart(figures: Figures, tr: Translator) -> Figure:
    """The chart as a matplotlib figure, not drawn yet (what `draw` renders)."""
    with _lock, matplotlib.rc_context(_rc()):
        return _build(figures, tr)


def _rc() -> dict[str, object]:
    return {
        "font.family": [_cjk_family(), "DejaVu Sans"],
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def _build(figures: Figures, tr: Translator) -> Figure:
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 2))
    figure.suptitle(
        tr.gettext("Figures at {when}", when=tr.datetime(figures.at, figures.timezone))
    )
    _per_day(top, figures, tr)
    _seats(bottom, figures, tr)
    return figure


def _cjk_family() -> str:
    if not _family:
        font_manager.fontManager.addfont(str(CJK_FILE))
        _family.append(font_manager.FontProperties(fname=str(CJK_FILE)).get_name())
    return _family[0]


def _per_day(ax, figures: Figures, tr: Translator) -> None:  # type: ignore[no-untyped-def]
    days = figures.days
    xs = range(len(days))
    ax.bar(
        [x - 0.2 for x in xs],
        [d.registrations for d in days],
        width=0.4,
        color=REGISTRATIONS,
        label=tr.gettext("Registrations"),
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [d.payments for d in days],
        width=0.4,
        color=PAYMENTS,
        label=tr.gettext("Payments received"),
    )
    ax.set_title(
        tr.ngettext(
            "Registrations and payments per day, last {count} day",
            "Registrations and payments per day, last {count} days",
            len(days),
        ),
        loc="left",
    )
    # A label every fifth day, today's always: the newest is what staff look for.
    ticks = [x for x in xs if (len(days) - 1 - x) % 5 == 0]
    ax.set_xticks(ticks, [format_skeleton("Md", days[x].day, locale=tr.locale) for x in ticks])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right", frameon=False, ncols=2, bbox_to_anchor=(1, 1.0))


def _seats(ax, figures: Figures, tr: Translator) -> None:  # type: ignore[no-untyped-def]
    ax.set_title(tr.gettext("Seats per session"), loc="left")
    sessions = list(reversed(figures.sessions))  # soonest at the top
    if not sessions:
        ax.set_axis_off()
        ax.text(0.5, 0.5, tr.gettext("No exam sessions ahead."), ha="center", va="center")
        return
    ys = range(len(sessions))
    paid = [min(s.expected, s.seats_taken) for s in sessions]
    taken = [s.seats_taken - p for s, p in zip(sessions, paid, strict=True)]
    left = [s.seats_left for s in sessions]
    ax.barh(ys, paid, color=PAID, label=tr.gettext("Paid"))
    ax.barh(ys, taken, left=paid, color=TAKEN, label=tr.gettext("Taken, not paid yet"))
    starts = [p + t for p, t in zip(paid, taken, strict=True)]
    ax.barh(ys, left, left=starts, color=LEFT, label=tr.gettext("Left"))
    ax.set_yticks(list(ys), [s.code for s in sessions])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    widest = max(max(s.capacity, s.seats_taken) for s in sessions)
    for y, s in zip(ys, sessions, strict=True):
        note = tr.gettext("{taken} of {capacity}", taken=s.seats_taken, capacity=s.capacity)
        if s.waitlisted:
            note = tr.gettext(
                "{taken} of {capacity}, waitlist {count}",
                taken=s.seats_taken,
                capacity=s.capacity,
                count=s.waitlisted,
            )
        ax.text(max(s.capacity, s.seats_taken) + widest * 0.01, y, note, va="center")
    ax.set_xlim(0, widest * 1.3 or 1)
    ax.legend(loc="lower right", frameon=False, ncols=3, bbox_to_anchor=(1, 1.02))
