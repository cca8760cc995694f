"""Notification templates: what outbox rows of each template look like to the recipient.

Declared in `TEMPLATES` (eligibility reviews and waitlist offers; other flows declare
their own); rendered by the outbox sender at send time, in the recipient's language of
that moment (see `bot.runtime.notifications`). Level names come from the catalogue, in
`params["level_names"]` (see `handlers.templates`); times are shown in the session's zone
when the params carry one (`params["timezone"]`), else in the site's (`Translator.zone`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import Translator
from bot.runtime.notifications import Rendered
from bot.services.notify import Template
from handlers.render import level_label, level_name, verdict_label


def _answer(tr: Translator, params: dict[str, Any], key: str) -> str:
    """A coded answer of the review's profile by its catalogue name in the reader's language
    (the code itself on a card queued before names were carried); "none" and dates in words."""
    value = params.get("profile", {}).get(key)
    if value in (None, ""):
        return "-"
    if value == "none":
        return {
            "title": tr.gettext("No title"),
            "prior_level": tr.gettext("None yet"),
            "work_start": tr.gettext("Not working yet"),
        }.get(key, "-")
    names = params.get("names", {}).get(key)
    if names:
        return names.get(tr.language) or names.get("en") or str(value)
    if key.endswith("_date") or key == "work_start":
        try:
            return tr.date(date.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    return str(value)


def review_request(params: dict[str, Any], tr: Translator) -> Rendered:
    text = tr.gettext(
        "🙋 Eligibility review #{review_id}\n"
        "Candidate: {name} (Telegram {telegram_id})\n"
        "Level: {level}\n"
        "Education: {education}, major: {major}, graduation: {graduation}\n"
        "Title: {title} ({title_date}); prior level: {prior} ({prior_date}); work since: {work}\n"
        "Automatic check: {status}",
        review_id=params["review_id"],
        name=params.get("name", ""),
        telegram_id=params.get("telegram_id", ""),
        level=level_name(tr, params.get("level", ""), params.get("level_names")),
        education=_answer(tr, params, "education"),
        major=_answer(tr, params, "major"),
        graduation=_answer(tr, params, "graduation_date"),
        title=_answer(tr, params, "title"),
        title_date=_answer(tr, params, "title_date"),
        prior=_answer(tr, params, "prior_level"),
        prior_date=_answer(tr, params, "prior_level_date"),
        work=_answer(tr, params, "work_start"),
        status=verdict_label(tr, params.get("status")),
    )
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("✅ Approve"), callback_data=f"elig:ok:{params['review_id']}"
                ),
                InlineKeyboardButton(
                    tr.gettext("❌ Reject"), callback_data=f"elig:no:{params['review_id']}"
                ),
            ]
        ]
    )
    return Rendered(text, keyboard)


def review_decided(params: dict[str, Any], tr: Translator) -> Rendered:
    level = level_name(tr, params.get("level", ""), params.get("level_names"))
    if params.get("approved"):
        text = tr.gettext(
            "✅ The exam centre approved your eligibility for {level}. "
            "You can register now: send /register.",
            level=level,
        )
    else:
        text = tr.gettext(
            "❌ The exam centre did not approve your eligibility for {level}. "
            "Send /eligibility to see what is missing, or contact the staff.",
            level=level,
        )
    return Rendered(text)


def _when(tr: Translator, iso: str | None, zone: str | None) -> str:
    return tr.datetime(datetime.fromisoformat(iso), zone or tr.zone) if iso else "-"


def waitlist_offer(params: dict[str, Any], tr: Translator) -> Rendered:
    text = tr.gettext(
        "🎉 A seat is free for you in session {session} ({level}). "
        "It is held for you until {until}. Do you want it?",
        session=params.get("session_code", ""),
        level=level_label(tr, params.get("level_code", ""), params.get("level_names")),
        until=_when(tr, params.get("offer_expires_at"), params.get("timezone")),
    )
    rid = params["registration_id"]
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("✅ Take the seat"), callback_data=f"reg:offer:accept:{rid}"
                ),
                InlineKeyboardButton(
                    tr.gettext("✖️ No, thanks"), callback_data=f"reg:offer:decline:{rid}"
                ),
            ]
        ]
    )
    return Rendered(text, keyboard)


def waitlist_offer_expired(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(
        tr.gettext(
            "⌛ The seat held for you in session {session} was not taken in time and went to the "
            "next person in line. Send /status to see your registrations.",
            session=params.get("session_code", ""),
        )
    )


TEMPLATES = {
    Template.ELIGIBILITY_REVIEW_REQUEST: review_request,
    Template.ELIGIBILITY_REVIEW_DECIDED: review_decided,
    Template.WAITLIST_OFFER: waitlist_offer,
    Template.WAITLIST_OFFER_EXPIRED: waitlist_offer_expired,
}
