"""Results flow, release and the candidate's view: staff's /results_release, the
candidate's /results and the `results_released` notification (docs/results.md).

Entry points: `setup(application)`; handlers `cmd_results_release` (staff only),
`on_release_confirm` (staff only), `cmd_results`; template `results_released`.
Callback data: `rr:ok:<session code>:<release time, Unix seconds; 0 = the catalogue's>`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CommandHandler, filters

from bot.domain.roles import Role
from bot.domain.scoring import ComponentStatus, LevelStanding, SittingResult
from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.errors import NotFound, ResultsReleased
from bot.services.notify import Template
from bot.services.remarks import RemarkTarget
from bot.services.results_release import CandidateResults, ReleasePreview
from handlers.callbacks import WORD, Button, StaffCallbackQueryHandler, number
from handlers.context import ExamContext
from handlers.render import (
    LevelNames,
    edit_message,
    level_label,
    level_names,
    no_session,
    refusals,
    stale_button,
)
from handlers.staff_roles import requires

CONFIRM = Button("rr:ok", WORD, number(0, 2**40))  # rr:ok:<session>:<unix seconds | 0>


# --- staff: /results_release CODE [YYYY-MM-DD HH:MM]


@requires(Role.RESULTS)
async def cmd_results_release(update: Update, context: ExamContext) -> None:
    """Staff: preview a session's release (how many, when) with a confirm button."""
    tr, args = context.tr, context.args or []
    at = _parse_time(args[1:]) if len(args) in (1, 3) else False
    if at is False:
        await update.effective_message.reply_text(
            tr.gettext("Usage: /results_release SESSION [YYYY-MM-DD HH:MM] (the session's time)")
        )
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        preview = await context.services.results_release.preview_release(args[0], at)
    if refused.error:
        return
    seconds = int(preview.release_at.timestamp()) if preview.chosen else 0
    button = InlineKeyboardButton(
        tr.gettext("✅ Schedule the release"),
        callback_data=CONFIRM.example({0: preview.session_code, 1: str(seconds)}),
    )
    await update.effective_message.reply_text(
        _preview_text(tr, preview, scheduled=False),
        reply_markup=InlineKeyboardMarkup([[button]]),
    )


@requires(Role.RESULTS)
async def on_release_confirm(update: Update, context: ExamContext) -> None:
    """`rr:ok:<session>:<seconds>`: schedule the release previewed."""
    query, tr = update.callback_query, context.tr
    parsed = CONFIRM.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    code, seconds = parsed
    at = datetime.fromtimestamp(seconds, UTC) if seconds else None
    async with refusals(update, tr, EXPLAIN) as refused:
        preview = await context.services.results_release.schedule_release(
            code, at, update.effective_user.id
        )
    if refused.error:
        return
    await query.answer()
    await edit_message(query, _preview_text(tr, preview, scheduled=True))


def _parse_time(parts: list[str]) -> datetime | bool | None:
    """None: the catalogue's time; False: not a time."""
    if not parts:
        return None
    try:
        return datetime.strptime(" ".join(parts), "%Y-%m-%d %H:%M")
    except ValueError:
        return False


def _preview_text(tr: Translator, preview: ReleasePreview, *, scheduled: bool) -> str:
    when = tr.datetime(preview.release_at, preview.timezone)
    told = tr.ngettext(
        "{count} candidate will be told.",
        "{count} candidates will be told.",
        preview.recipients,
    )
    if scheduled:
        return tr.gettext(
            "📅 The results of session {session} will be released on {when}. {told}",
            session=preview.session_code,
            when=when,
            told=told,
        )
    source = (
        tr.gettext("the time you gave")
        if preview.chosen
        else tr.gettext("the catalogue's release time")
    )
    return tr.gettext(
        "Release the results of session {session} on {when} ({source})? {told}",
        session=preview.session_code,
        when=when,
        source=source,
        told=told,
    )


def _released(tr: Translator, exc: ResultsReleased) -> str:
    return tr.gettext(
        "The results of session {session} were already released on {when}.",
        session=exc.session_code,
        when=tr.datetime(exc.released_at),
    )


EXPLAIN = {ResultsReleased: _released, NotFound: no_session}


# --- candidate: /results


async def cmd_results(update: Update, context: ExamContext) -> None:
    """The candidate's released results across sittings, or when they will come out."""
    tr = context.tr
    try:
        mine = await context.services.results_release.candidate_results(update.effective_user.id)
    except NotFound:
        mine = CandidateResults((), (), "UTC", {})
    remarkable = await context.services.remarks.options(update.effective_user.id)
    await update.effective_message.reply_text(
        results_text(tr, mine, await level_names(context)),
        reply_markup=_remark_buttons(tr, remarkable.open),
    )


def _remark_buttons(
    tr: Translator, targets: tuple[RemarkTarget, ...]
) -> InlineKeyboardMarkup | None:
    """One "re-mark" button per component whose window is open (handled by
    handlers/remarks.py, `rmk:ask:<component result id>`)."""
    buttons = [
        InlineKeyboardButton(
            tr.gettext(
                "🔁 Re-mark {component} ({session})",
                component=_name(tr, t.names),
                session=t.session_code,
            ),
            callback_data=f"rmk:ask:{t.result_id}",
        )
        for t in targets
    ]
    return InlineKeyboardMarkup([[b] for b in buttons]) if buttons else None


def results_text(tr: Translator, mine: CandidateResults, names: LevelNames) -> str:
    parts = []
    for level in mine.levels:
        label = level_label(tr, level.level_code, names.get(level.level_code))
        lines = [_level_line(tr, label, level.standing)]
        lines += [
            _sitting_line(tr, s, passed, mine.names)
            for s, passed in zip(level.sittings, level.passed, strict=True)
        ]
        lines += [_state_line(tr, level.standing, mine.names)]
        parts.append("\n".join(line for line in lines if line))
    for session, when in mine.pending:
        parts.append(
            tr.gettext(
                "The results of session {session} will be released on {when}.",
                session=session,
                when=tr.datetime(when, mine.timezone),
            )
        )
    return "\n\n".join(parts) or tr.gettext("You have no exam results yet.")


def _level_line(tr: Translator, label: str, standing: LevelStanding) -> str:
    if standing.passed and standing.passed_at is not None:
        return tr.gettext(
            "✅ {level}: passed on {date}.", level=label, date=tr.date(standing.passed_at.date())
        )
    return tr.gettext("{level}: not passed yet.", level=label)


def _sitting_line(
    tr: Translator, result: SittingResult, passed: bool, names: dict[str, Any]
) -> str:
    return tr.gettext(
        "• {date}, {component}: {mark} ({outcome})",
        date=tr.date(result.sat_on),
        component=_name(tr, names.get(result.component, {"en": result.component})),
        mark=_mark(tr, result.mark.value, None if result.score is None else str(result.score)),
        outcome=tr.gettext("passed") if passed else tr.gettext("not passed"),
    )


def _state_line(tr: Translator, standing: LevelStanding, names: dict[str, Any]) -> str:
    lines = []
    for state in standing.components:
        if state.status == ComponentStatus.PASSED and state.carries_over_until:
            lines.append(
                tr.gettext(
                    "{component}: passed, carries over until {date}.",
                    component=_name(tr, names.get(state.component, {"en": state.component})),
                    date=tr.date(state.carries_over_until),
                )
            )
        elif state.status == ComponentStatus.EXPIRED and state.carries_over_until:
            lines.append(
                tr.gettext(
                    "{component}: the pass expired on {date}; sit it again.",
                    component=_name(tr, names.get(state.component, {"en": state.component})),
                    date=tr.date(state.carries_over_until),
                )
            )
    return "\n".join(lines)


def _mark(tr: Translator, mark: str, score: str | None) -> str:
    if mark == "absent":
        return tr.gettext("absent")
    if mark == "disqualified":
        return tr.gettext("disqualified")
    return score or "-"


# --- the release notification


def _name(tr: Translator, names: dict[str, str]) -> str:
    return names.get(tr.language) or names.get("en") or ""


def results_released(params: dict[str, Any], tr: Translator) -> Rendered:
    """One candidate's results of one session, in their language at send time."""
    level = level_label(tr, params.get("level_code", ""), params.get("level_names"))
    lines = [tr.gettext("📊 Your results for {level}:", level=level)]
    for c in params.get("components", []):
        outcome = tr.gettext("passed") if c["outcome"] == "passed" else tr.gettext("not passed")
        lines.append(
            tr.gettext(
                "• {component}: {mark} ({outcome})",
                component=_name(tr, c["name"]),
                mark=_mark(tr, c["mark"], c.get("score")),
                outcome=outcome,
            )
        )
    if params.get("passed"):
        lines.append(
            tr.gettext(
                "✅ You passed {level}. Your certificate follows; see /results.", level=level
            )
        )
    else:
        retake = tr.join(_name(tr, c["name"]) for c in params.get("retake", []))
        lines.append(
            tr.gettext("To pass {level}, sit again: {retake}.", level=level, retake=retake)
        )
        for c in params.get("carry_over", []):
            lines.append(
                tr.gettext(
                    "Your pass in {component} carries over to sittings until {date}.",
                    component=_name(tr, c["name"]),
                    date=tr.date(date.fromisoformat(c["until"])),
                )
            )
        lines.append(
            tr.gettext(
                "To sit again, register for a later session with /register: while a pass "
                "carries over, you book only what is left."
            )
        )
    lines.append(
        tr.gettext(
            "You can ask for a re-mark (复核) until {when}.",
            when=tr.datetime(datetime.fromisoformat(params["recheck_until"]), params["timezone"]),
        )
    )
    if not any(c["mark"] == "scored" for c in params.get("components", [])):
        return Rendered("\n".join(lines))  # absent or disqualified: nothing to re-mark
    # handlers/remarks.py answers `rmk:list` with what can be re-marked (and, once the
    # window has closed, when it did).
    ask = InlineKeyboardButton(tr.gettext("🔁 Ask for a re-mark (复核)"), callback_data="rmk:list")
    return Rendered("\n".join(lines), InlineKeyboardMarkup([[ask]]))


TEMPLATES = {Template.RESULTS_RELEASED: results_released}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CommandHandler("results_release", cmd_results_release, staff))
    application.add_handler(StaffCallbackQueryHandler(on_release_confirm, CONFIRM, staff))
    application.add_handler(CommandHandler("results", cmd_results, filters.ChatType.PRIVATE))
