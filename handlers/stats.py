"""The day's figures for staff (docs/staff.md "Figures"): `/stats` and the daily digest.

Entry points: `setup(application)`; handler `cmd_stats` (any staff role; admins always):
the figures as text at once, then the chart as a photo (drawn off the event loop);
templates `staff_digest` (the same text, rendered at send time from the figures in the
params) and `staff_digest_chart` (the chart the digest tick drew, a PNG in the params);
`stats_text(tr, figures)`. The chart itself: `handlers/charts.py`. No callback data.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import Application, CommandHandler

from bot.domain.roles import Role
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.notify import Template
from bot.services.stats import Figures, Money, SessionFigures, chart_png
from handlers import charts
from handlers.context import ExamContext
from handlers.render import amount_text, group_tr, method_label
from handlers.staff_roles import requires

#: Every role may see the figures (an admin passes any check); staff /help lists it so.
ANY_ROLE = (Role.REVIEWER, Role.FINANCE, Role.RESULTS, Role.CHECKIN)


@requires(*ANY_ROLE)
async def cmd_stats(update: Update, context: ExamContext) -> None:
    """Staff: how each session ahead stands, then the chart."""
    tr, message = group_tr(update, context), update.effective_message
    figures = await context.services.stats.figures()
    await message.reply_text(stats_text(tr, figures))
    await message.chat.send_action(ChatAction.UPLOAD_PHOTO)
    png = await asyncio.to_thread(charts.draw, figures, tr)
    await message.reply_photo(png, caption=chart_caption(tr, figures.days[-1].day))


def stats_text(tr: Translator, f: Figures) -> str:
    lines = [tr.gettext("📊 Figures at {when}", when=tr.datetime(f.at, f.timezone))]
    if not f.sessions:
        lines.append(tr.gettext("No exam sessions ahead."))
    for s in f.sessions:
        lines += ["", *_session_lines(tr, f, s)]
    if f.more_sessions:
        lines += ["", tr.gettext("Later sessions are not shown.")]
    registered = sum(d.registrations for d in f.days)
    paid = sum(d.payments for d in f.days)
    lines += [
        "",
        tr.gettext(
            "All sessions: receipts waiting {receipts} · refunds open {refunds}",
            receipts=f.receipts_waiting,
            refunds=f.refunds_open,
        ),
        tr.ngettext(
            "Last {count} day: {registered} registrations, {paid} payments received",
            "Last {count} days: {registered} registrations, {paid} payments received",
            len(f.days),
            registered=registered,
            paid=paid,
        ),
    ]
    return "\n".join(lines)


def _session_lines(tr: Translator, f: Figures, s: SessionFigures) -> list[str]:
    return [
        tr.gettext("🗓 {session} · exam {date}", session=s.code, date=tr.date(s.exam_date)),
        tr.gettext(
            "Seats: {taken} taken · {left} left of {capacity}",
            taken=s.seats_taken,
            left=s.seats_left,
            capacity=s.capacity,
        ),
        tr.gettext("Waitlist: {count}", count=s.waitlisted),
        _unpaid_line(tr, f, s),
        tr.gettext(
            "Receipts waiting: {receipts} · refunds open: {refunds}",
            receipts=s.receipts_waiting,
            refunds=s.refunds_open,
        ),
        tr.gettext(
            "Check-in: {present} of {expected} present", present=s.checked_in, expected=s.expected
        ),
        *_money_lines(tr, s.received),
    ]


def _unpaid_line(tr: Translator, f: Figures, s: SessionFigures) -> str:
    deadline = tr.datetime(s.payment_deadline, s.timezone)
    if s.unpaid_due_soon:
        return tr.gettext(
            "⚠️ Unpaid: {count}, deadline within 48 h: {deadline}",
            count=s.unpaid,
            deadline=deadline,
        )
    if s.payment_deadline < f.at:
        return tr.gettext("Unpaid: {count} (the payment deadline has passed)", count=s.unpaid)
    return tr.gettext("Unpaid: {count} · deadline {deadline}", count=s.unpaid, deadline=deadline)


def _money_lines(tr: Translator, received: tuple[Money, ...]) -> list[str]:
    if not received:
        return [tr.gettext("Received: nothing yet")]
    return [tr.gettext("Received:")] + [
        tr.ngettext(
            "• {method}: {amount}, {count} payment",
            "• {method}: {amount}, {count} payments",
            m.count,
            method=method_label(tr, m.method),
            amount=amount_text(tr, m.amount_minor, m.currency),
        )
        for m in received
    ]


def chart_caption(tr: Translator, day: date) -> str:
    return tr.gettext("📈 The day's figures, {date}", date=tr.date(day))


# --- the daily digest, through the outbox


def staff_digest(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(text=stats_text(tr, Figures.from_params(params["figures"])))


def staff_digest_chart(params: dict[str, Any], tr: Translator) -> Rendered:
    day = date.fromisoformat(params["day"])
    return Rendered(text=chart_caption(tr, day), photo=chart_png(params))


TEMPLATES = {
    Template.STAFF_DIGEST: staff_digest,
    Template.STAFF_DIGEST_CHART: staff_digest_chart,
}


def setup(application: Application) -> None:
    application.add_handler(CommandHandler("stats", cmd_stats, application.bot_data.staff))
