"""Eligibility flow: /eligibility, the questions, the verdict, manual review, staff override.

Entry points: `setup(application)`; handlers `cmd_eligibility`, `on_answer_button`,
`on_text_answer`, `on_change`, `on_edit`, `on_request_review`, `on_staff_decision`,
`cmd_override`. Staff cards are in the site's language whoever presses (`group_tr`).
The verdict (`outcome_text`) first names the levels passed here that the check counted.
Callback data: `elig:start`, `elig:a:<step>:<value>`, `elig:change:<level>` (the answers, to
pick one), `elig:edit:<level>:<step>` (ask that one again), `elig:fresh:<level>` (start over),
`elig:review:<level>`, staff `elig:ok:<review id>` / `elig:no:<review id>:<reason>`.
The service re-checks every value against the database; nothing in a button is trusted.
"""

from __future__ import annotations

from datetime import date

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.domain.catalog import Catalog
from bot.domain.roles import Role
from bot.i18n import Translator
from bot.services.eligibility import AUTO_LEVEL, FLOW, NONE, Answer, Outcome, Question
from bot.services.errors import AlreadyDecided, InvalidAnswer, NotFound, StaleStep
from handlers.callbacks import ID, WORD, Button, StaffCallbackQueryHandler, one_of, optional
from handlers.context import ExamContext
from handlers.render import (
    answer_error,
    edit_message,
    eligibility_text,
    group_tr,
    name_of,
    refusals,
    rows,
    stale_button,
    verdict_label,
)
from handlers.staff_roles import requires

REJECT_REASONS = ("major_not_related", "documents_missing", "experience_not_proven", "other")

START = (Button("menu:eligibility"), Button("elig:start"))
FRESH = Button("elig:fresh", WORD)  # elig:fresh:<level>
CHANGE = Button("elig:change", WORD)  # elig:change:<level>
EDIT = Button("elig:edit", WORD, WORD)  # elig:edit:<level>:<step>
ANSWER = Button("elig:a", WORD, WORD)  # elig:a:<step>:<value>
REVIEW = Button("elig:review", WORD)  # elig:review:<level>
# elig:ok:<review id>, elig:no:<review id>[:<reason>] (staff)
DECISION = Button("elig", one_of("ok", "no"), ID, optional(one_of(*REJECT_REASONS)))


def question_text(tr: Translator, q: Question) -> str:
    prompts = {
        "level": tr.gettext("Which level do you want to check?"),
        "education": tr.gettext("What is your highest education (completed or in progress)?"),
        "graduation_date": tr.gettext(
            "When did you graduate, or when will you? Type the date, e.g. 2025-06-30 or 2025-06."
        ),
        "major": tr.gettext(
            "What is your major? Choose it below, or type it if it is not listed."
        ),
        "title": tr.gettext("Do you hold a professional title (职称)?"),
        "title_date": tr.gettext(
            "When did you obtain this title? Type the date, e.g. 2022-09-01."
        ),
        "prior_level": tr.gettext("Do you already hold a level certificate of this occupation?"),
        "prior_level_date": tr.gettext(
            "When did you obtain that certificate? Type the date, e.g. 2023-12-20."
        ),
        "work_start": tr.gettext(
            "When did you start technical work in this occupation? Type the date, e.g. "
            "2021-07-01, or press the button if you have not started yet."
        ),
    }
    return prompts[q.step]


def question_keyboard(
    tr: Translator, catalog: Catalog, q: Question
) -> InlineKeyboardMarkup | None:
    lang = tr.language
    labels = {
        "level": lambda code: (
            tr.gettext("Which level fits me?")
            if code == AUTO_LEVEL
            else name_of(catalog.level(code), lang)
        ),
        "education": lambda code: name_of(catalog.education_level(code), lang),
        "major": lambda code: name_of(
            next(m for m in catalog.related_majors[q.list_name or "degree"] if m.code == code),
            lang,
        ),
        "title": lambda code: name_of(catalog.title(code), lang),
        "prior_level": lambda code: name_of(catalog.level(code), lang),
    }
    buttons = [
        InlineKeyboardButton(labels[q.step](code), callback_data=f"elig:a:{q.step}:{code}")
        for code in q.options
        if q.step in labels
    ]
    if q.allow_none:
        none_label = {
            "title": tr.gettext("No title"),
            "prior_level": tr.gettext("None yet"),
            "work_start": tr.gettext("Not working yet"),
        }[q.step]
        buttons.append(InlineKeyboardButton(none_label, callback_data=f"elig:a:{q.step}:{NONE}"))
    if not buttons:
        return None
    return InlineKeyboardMarkup(rows(buttons, 2 if q.step in ("major", "education") else 1))


async def _show(update: Update, context: ExamContext, result: Question | Outcome) -> None:
    tr = context.tr
    catalog = await context.services.catalog.current()
    if isinstance(result, Question):
        await update.effective_message.reply_text(
            question_text(tr, result), reply_markup=question_keyboard(tr, catalog, result)
        )
        return
    await update.effective_message.reply_text(
        outcome_text(tr, catalog, result), reply_markup=_outcome_keyboard(tr, result)
    )


def outcome_text(tr: Translator, catalog: Catalog, outcome: Outcome) -> str:
    """The verdict, after the levels passed here that the check counted as held."""
    held = [
        tr.gettext(
            "🎓 You passed {level} here on {date}; the check counts it as your {level} "
            "certificate from that day.",
            level=name_of(catalog.level(p.level), tr.language),
            date=tr.date(p.passed_on),
        )
        for p in outcome.passed_here
    ]
    return "\n\n".join([*held, eligibility_text(tr, catalog, outcome)])


def _outcome_keyboard(tr: Translator, outcome: Outcome) -> InlineKeyboardMarkup:
    status = outcome.verdict.status.value
    buttons = []
    if status == "eligible":
        buttons.append(
            InlineKeyboardButton(
                tr.gettext("📝 Register for this level"),
                callback_data=f"reg:start:{outcome.level}",
            )
        )
    if status in ("manual_review", "not_eligible"):
        buttons.append(
            InlineKeyboardButton(
                tr.gettext("🙋 Ask staff to review"), callback_data=f"elig:review:{outcome.level}"
            )
        )
    buttons.append(
        InlineKeyboardButton(tr.gettext("🔁 Check another level"), callback_data="elig:start")
    )
    buttons.append(
        InlineKeyboardButton(
            tr.gettext("✏️ Change my answers"), callback_data=f"elig:change:{outcome.level}"
        )
    )
    return InlineKeyboardMarkup(rows(buttons, 1))


def answer_label(tr: Translator, catalog: Catalog, answer: Answer) -> str:
    """One answer as a button: the question in a word or two and what was answered."""
    lang, value = tr.language, answer.value
    questions = {
        "education": tr.gettext("Education"),
        "graduation_date": tr.gettext("Graduation"),
        "major": tr.gettext("Major"),
        "title": tr.gettext("Title"),
        "title_date": tr.gettext("Title obtained"),
        "prior_level": tr.gettext("Level certificate"),
        "prior_level_date": tr.gettext("Certificate obtained"),
        "work_start": tr.gettext("Work since"),
    }
    nones = {
        "title": tr.gettext("No title"),
        "prior_level": tr.gettext("None yet"),
        "work_start": tr.gettext("Not working yet"),
    }
    if value == NONE and answer.step in nones:
        shown = nones[answer.step]
    elif answer.step == "education":
        shown = name_of(catalog.education_level(value), lang)
    elif answer.step == "title":
        shown = name_of(catalog.title(value), lang)
    elif answer.step == "prior_level":
        shown = name_of(catalog.level(value), lang)
    elif answer.step == "major":
        listed = [m for ms in catalog.related_majors.values() for m in ms if m.code == answer.code]
        shown = name_of(listed[0], lang) if listed else value
    elif answer.step.endswith("_date") or answer.step == "work_start":
        shown = tr.date(date.fromisoformat(value))
    else:
        shown = value
    return tr.gettext(
        "✏️ {question}: {answer}", question=questions.get(answer.step, answer.step), answer=shown
    )


async def on_change(update: Update, context: ExamContext) -> None:
    """`elig:change:<level>`: the answers this check used, one button each, to change one."""
    query, tr = update.callback_query, context.tr
    parsed = CHANGE.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    level = parsed[0]
    async with refusals(update, tr, stale=(InvalidAnswer,)) as refused:
        answers = await context.services.eligibility.answers(update.effective_user.id, level)
    if refused.error:
        return
    await query.answer()
    catalog = await context.services.catalog.current()
    buttons = [
        InlineKeyboardButton(
            answer_label(tr, catalog, a), callback_data=f"elig:edit:{level}:{a.step}"
        )
        for a in answers
    ]
    buttons.append(
        InlineKeyboardButton(
            tr.gettext("🔁 Start over with every question"), callback_data=f"elig:fresh:{level}"
        )
    )
    await update.effective_message.reply_text(
        tr.gettext("Which answer do you want to change?"),
        reply_markup=InlineKeyboardMarkup(rows(buttons, 1)),
    )


async def on_edit(update: Update, context: ExamContext) -> None:
    """`elig:edit:<level>:<step>`: ask that one question again, keep the other answers."""
    query, tr = update.callback_query, context.tr
    parsed = EDIT.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    level, step = parsed
    async with refusals(update, tr, stale=(InvalidAnswer, StaleStep)) as refused:
        result = await context.services.eligibility.change(update.effective_user.id, level, step)
    if refused.error:
        return
    await query.answer()
    await _show(update, context, result)


async def cmd_eligibility(update: Update, context: ExamContext) -> None:
    """Start a check: first the level (or "which level fits me?")."""
    if update.callback_query:
        await update.callback_query.answer()
    result = await context.services.eligibility.start(update.effective_user.id, None)
    await _show(update, context, result)


async def on_fresh(update: Update, context: ExamContext) -> None:
    """Check again from the first question, forgetting the earlier answers."""
    parsed = FRESH.parse(update.callback_query.data)
    if parsed is None:
        await stale_button(update.callback_query, context.tr)
        return
    await update.callback_query.answer()
    level = parsed[0]
    try:
        result = await context.services.eligibility.start(
            update.effective_user.id, level, fresh=True
        )
    except InvalidAnswer:
        result = await context.services.eligibility.start(
            update.effective_user.id, None, fresh=True
        )
    await _show(update, context, result)


async def on_answer_button(update: Update, context: ExamContext) -> None:
    """A choice button: `elig:a:<step>:<value>`."""
    query = update.callback_query
    parsed = ANSWER.parse(query.data)
    if parsed is None:
        await stale_button(query, context.tr)
        return
    step, value = parsed
    await _answer(update, context, step, value)


async def on_text_answer(update: Update, context: ExamContext) -> None:
    """Typed input while in the eligibility flow answers the current question."""
    step = context.candidate.step if context.candidate else None
    await _answer(update, context, step or "", update.effective_message.text)


def _start_again(tr: Translator, _exc: StaleStep) -> str:
    return tr.gettext("Send /eligibility to start the check again.")


async def _answer(update: Update, context: ExamContext, step: str, value: str | None) -> None:
    tr = context.tr
    # An old button: stale; typed text for a step left behind: how to go on; a refused answer:
    # the hint, then the current question again.
    explain = {StaleStep: _start_again, InvalidAnswer: answer_error}
    async with refusals(update, tr, explain, alert=False) as refused:
        result = await context.services.eligibility.answer(update.effective_user.id, step, value)
    if isinstance(refused.error, InvalidAnswer):
        current = await context.services.eligibility.current(update.effective_user.id)
        if current is not None:
            await _show(update, context, current)
    if refused.error:
        return
    if update.callback_query:
        await update.callback_query.answer()
        await edit_message(update.callback_query)  # answered: no second tap
    await _show(update, context, result)


async def resume(update: Update, context: ExamContext) -> None:
    """After /start: ask the question the candidate was on."""
    question = await context.services.eligibility.current(update.effective_user.id)
    if question is not None:
        await _show(update, context, question)


def _nothing_to_review(tr: Translator, _exc: Exception) -> str:
    return tr.gettext("There is nothing to review for this level. Check it first.")


async def on_request_review(update: Update, context: ExamContext) -> None:
    """Send the last check of a level to the staff for manual review."""
    query, tr = update.callback_query, context.tr
    parsed = REVIEW.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    explain = {(InvalidAnswer, NotFound): _nothing_to_review}
    async with refusals(update, tr, explain, stale=()) as refused:
        ticket = await context.services.eligibility.request_review(
            update.effective_user.id, parsed[0], context.settings.staff_chat_id
        )
    if refused.error:
        return
    await query.answer()
    text = (
        tr.gettext(
            "Your request was sent to the exam centre staff. I will tell you their decision here."
        )
        if ticket.created
        else tr.gettext(
            "Your request is already with the staff. I will tell you their decision here."
        )
    )
    await update.effective_message.reply_text(text)


def _no_such_review(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("This review does not exist.")


def _decided(tr: Translator, exc: AlreadyDecided) -> str:
    return tr.gettext(
        "Already decided ({status}) by user {user}.",
        status=verdict_label(tr, exc.status),
        user=exc.decided_by,
    )


@requires(Role.REVIEWER)
async def on_staff_decision(update: Update, context: ExamContext) -> None:
    """A staff member approves or rejects a review; the first decision wins."""
    query, tr = update.callback_query, context.tr
    parsed = DECISION.parse(query.data)
    if parsed is None:
        await stale_button(query, tr)
        return
    verb, review_id, reason = parsed
    approve = verb == "ok"
    card_tr = group_tr(update, context)  # the card itself: one language in the staff chat
    if not approve and reason is None:
        buttons = [
            InlineKeyboardButton(
                reject_reason(card_tr, code), callback_data=f"elig:no:{review_id}:{code}"
            )
            for code in REJECT_REASONS
        ]
        await query.answer()
        await edit_message(query, reply_markup=InlineKeyboardMarkup(rows(buttons, 1)))
        return
    explain = {NotFound: _no_such_review, AlreadyDecided: _decided}
    async with refusals(update, tr, explain, stale=()) as refused:
        decision = await context.services.eligibility.decide_review(
            review_id, update.effective_user.id, approve=approve, reason=reason
        )
    if refused.error:
        return
    await query.answer()
    verdict = (
        card_tr.gettext("✅ Approved") if decision.approved else card_tr.gettext("❌ Rejected")
    )
    await edit_message(
        query,
        card_tr.gettext(
            "{card}\n\n{verdict} by {staff}",
            card=query.message.text,
            verdict=verdict,
            staff=update.effective_user.full_name,
        ),
    )


def reject_reason(tr: Translator, code: str) -> str:
    return {
        "major_not_related": tr.gettext("Major is not related"),
        "documents_missing": tr.gettext("Documents missing or unclear"),
        "experience_not_proven": tr.gettext("Work experience not proven"),
        "other": tr.gettext("Other (staff will write)"),
    }[code]


def _no_such_candidate(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("No candidate with that Telegram id.")


@requires(Role.REVIEWER)
async def cmd_override(update: Update, context: ExamContext) -> None:
    """Staff: /override <telegram id> <level> <yes|no> <reason>."""
    tr = context.tr
    args = context.args or []
    usage = tr.gettext("Usage: /override <telegram id> <level code> <yes|no> <reason>")
    if len(args) < 4 or not args[0].lstrip("-").isdigit() or args[2] not in ("yes", "no"):
        await update.effective_message.reply_text(usage)
        return
    explain = {NotFound: _no_such_candidate, InvalidAnswer: lambda _tr, _exc: usage}
    async with refusals(update, tr, explain) as refused:
        await context.services.eligibility.override(
            update.effective_user.id,
            int(args[0]),
            args[1],
            eligible=args[2] == "yes",
            reason=" ".join(args[3:]),
        )
    if refused.error:
        return
    await update.effective_message.reply_text(
        tr.gettext("Recorded. The override and its reason are in the audit log.")
    )


INPUTS = {FLOW: on_text_answer}
RESUMES = {FLOW: resume}


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(
        CommandHandler("eligibility", cmd_eligibility, filters.ChatType.PRIVATE)
    )
    for start in START:
        application.add_handler(CallbackQueryHandler(cmd_eligibility, pattern=start.matches))
    application.add_handler(CallbackQueryHandler(on_fresh, pattern=FRESH.matches))
    application.add_handler(CallbackQueryHandler(on_change, pattern=CHANGE.matches))
    application.add_handler(CallbackQueryHandler(on_edit, pattern=EDIT.matches))
    application.add_handler(CallbackQueryHandler(on_answer_button, pattern=ANSWER.matches))
    application.add_handler(CallbackQueryHandler(on_request_review, pattern=REVIEW.matches))
    # Staff-only: a non-staff press does not match and falls through to "no longer valid".
    application.add_handler(StaffCallbackQueryHandler(on_staff_decision, DECISION, staff))
    application.add_handler(CommandHandler("override", cmd_override, staff))
