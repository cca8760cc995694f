"""Shared rendering for handlers: the main menu, names from the catalogue, keyboards, error
hints, the "did not understand" reply and the eligibility verdict text.

Flow modules never import each other; what two of them show alike lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, TypeVar

from bot.domain.catalog import Catalog
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.i18n import Translator
from bot.services.eligibility import Outcome
from bot.services.errors import InvalidAnswer
from handlers.context import ExamContext

T = TypeVar("T")


def start_menu(tr: Translator) -> InlineKeyboardMarkup:
    """The main menu shown after /start and whenever a candidate seems lost."""
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(tr.gettext("✅ Check my eligibility"), callback_data="menu:eligibility")],
            [
                InlineKeyboardButton(tr.gettext("📝 Register"), callback_data="menu:register"),
                InlineKeyboardButton(tr.gettext("📋 My registrations"), callback_data="menu:status"),
            ],
            [
                InlineKeyboardButton(tr.gettext("🌐 Language"), callback_data="menu:language"),
                InlineKeyboardButton(tr.gettext("❓ Help"), callback_data="menu:help"),
            ],
        ]
    )


async def on_unknown_message(update: Update, context: ExamContext) -> None:
    """Anything no flow expects: say so and show the menu."""
    await update.effective_message.reply_text(
        context.tr.gettext("Sorry, I did not understand that. Please choose from the menu, or send /help."),
        reply_markup=start_menu(context.tr),
    )


def name_of(item: Any, language: str) -> str:
    """The localized name of a catalogue item (level, title, major, …)."""
    return item.name.get(language)


def rows(buttons: Sequence[T], per_row: int) -> list[list[T]]:
    return [list(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def state_label(tr: Translator, state: str) -> str:
    return {
        "waitlisted": tr.gettext("on the waitlist"),
        "offered": tr.gettext("seat offered to you"),
        "submitted": tr.gettext("registered, not paid yet"),
        "awaiting_payment": tr.gettext("awaiting payment"),
        "payment_review": tr.gettext("payment under review"),
        "paid": tr.gettext("paid"),
        "cancelled": tr.gettext("cancelled"),
        "expired": tr.gettext("expired (not paid in time)"),
        "rejected": tr.gettext("rejected"),
    }.get(state, state)


async def stale_button(query: Any, tr: Translator) -> None:
    """Answer a press on an old button, or on forged callback data: nothing was changed."""
    await query.answer(tr.gettext("This button is no longer valid."), show_alert=True)


def answer_error(tr: Translator, exc: InvalidAnswer) -> str:
    """A translated hint saying what was wrong with an answer and what to do instead."""
    hints = {
        "date_expected": tr.gettext("Please type a date, e.g. 2025-06-30."),
        "date_format": tr.gettext("I could not read that date. Please type it like 2025-06-30 or 2025-06."),
        "date_impossible": tr.gettext("That date does not exist. Please check the day and the month."),
        "date_in_future": tr.gettext("That date is in the future. Please type the date it actually happened."),
        "date_too_old": tr.gettext("That date is too far in the past. Please check the year."),
        "date_too_far": tr.gettext("That date is too far in the future. Please check the year."),
        "not_an_option": tr.gettext("Please choose one of the buttons."),
        "text_expected": tr.gettext("Please type your answer as text."),
        "too_long": tr.gettext("That is too long. Please keep it to {limit} characters.", limit=exc.params.get("limit", 60)),
        "nothing_to_review": tr.gettext("There is nothing to review for this level. Check it first."),
    }
    return hints.get(exc.reason) or tr.gettext("That answer was not accepted. Please try again.")


def _missing_line(tr: Translator, catalog: Catalog, missing: Any) -> str:
    lang = tr.language
    need, have = missing.need, missing.have
    code = missing.code
    if code == "education":
        names = "、".join(catalog.education_level(c).name.get(lang) for c in need) if lang.startswith("zh") else ", ".join(
            catalog.education_level(c).name.get(lang) for c in need
        )
        text = tr.gettext("education: {levels}", levels=names)
    elif code == "graduation":
        text = tr.gettext("graduation before the exam ({date})", date=tr.date(need))
    elif code == "graduation_window":
        text = tr.ngettext(
            "as a student, graduation within {count} month after the exam",
            "as a student, graduation within {count} months after the exam",
            need,
        )
    elif code == "related_major":
        text = (
            tr.gettext("a related major (yours is not on the list, so staff can review it)")
            if missing.reviewable
            else tr.gettext("a related major")
        )
    elif code == "title":
        text = tr.gettext("the title {title} or higher", title=catalog.title(need).name.get(lang))
    elif code == "years_since_title":
        text = tr.ngettext(
            "{count} full year since the title (you have {have})", "{count} full years since the title (you have {have})",
            need, have=have if have is not None else 0,
        )
    elif code == "prior_level":
        text = tr.gettext("the {level} certificate", level=catalog.level(need).name.get(lang))
    elif code == "years_since_prior_level":
        text = tr.ngettext(
            "{count} full year since the previous level (you have {have})",
            "{count} full years since the previous level (you have {have})",
            need, have=have if have is not None else 0,
        )
    elif code == "work_years":
        text = tr.ngettext(
            "{count} full year of relevant work (you have {have})",
            "{count} full years of relevant work (you have {have})",
            need, have=have if have is not None else 0,
        )
    else:
        text = code
    if isinstance(missing.met_on, date):
        text = tr.gettext("{requirement}: met on {date}", requirement=text, date=tr.date(missing.met_on))
    return text


def eligibility_text(tr: Translator, catalog: Catalog, outcome: Outcome) -> str:
    """The verdict: the route that matched, or per route what is missing and what to do."""
    lang = tr.language
    verdict = outcome.verdict
    level = catalog.level(outcome.level).name.get(lang)
    exam = tr.date(verdict.exam_date)
    hours = catalog.level(outcome.level).training_hours_required
    parts = []
    if outcome.suggested_from_auto:
        parts.append(tr.gettext("The level that fits you best: {level}.", level=level))
    if verdict.status.value == "eligible":
        route = catalog.route(verdict.matched_route)
        description = route.description.get(lang) if route.description else route.code
        parts.append(
            tr.gettext(
                "✅ You are eligible for {level} (exam on {date}) by route {route}: {description}.",
                level=level, date=exam, route=route.code, description=description,
            )
        )
    else:
        headline = (
            tr.gettext(
                "🟡 The automatic check cannot confirm {level} (exam on {date}). Staff can review your case.",
                level=level, date=exam,
            )
            if verdict.status.value == "manual_review"
            else tr.gettext("❌ By the automatic check you are not yet eligible for {level} (exam on {date}).", level=level, date=exam)
        )
        parts.append(headline)
        for result in verdict.routes:
            route = catalog.route(result.route)
            description = route.description.get(lang) if route.description else route.code
            if result.manual_review and not result.missing:
                needs = tr.gettext("decided by staff in a manual review")
            else:
                needs = "; ".join(_missing_line(tr, catalog, m) for m in result.missing)
            parts.append(tr.gettext("• {route} ({description}) needs: {needs}", route=route.code, description=description, needs=needs))
    for suggestion in verdict.suggestions:
        if suggestion.kind == "apply_level":
            parts.append(
                tr.gettext(
                    "👉 You can apply for {level} now (route {route}).",
                    level=catalog.level(suggestion.level).name.get(lang), route=suggestion.route or "",
                )
            )
        elif suggestion.kind == "eligible_from" and suggestion.on:
            parts.append(tr.gettext("👉 You will meet route {route} on {date}.", route=suggestion.route or "", date=tr.date(suggestion.on)))
    parts.append(tr.gettext("Every level also needs proof of {hours} training hours (培训学时证明).", hours=hours))
    return "\n\n".join(parts)
