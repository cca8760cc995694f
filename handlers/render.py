"""Shared rendering for handlers: the main menu, names from the catalogue, keyboards, error
hints, the "did not understand" reply, the eligibility verdict text, the payment offer that
registration and payments both send, and `refusals`, the one ladder from a service's refusal
to the reply every flow gives. Codes are never shown raw: `state_label`, `verdict_label`,
`method_label`, `payment_status_label`, `action_label` and `actor_label` word them;
`group_tr` is the translator for the staff chat (the site's language), and
`ticket_availability` says when a paid registration's admission ticket comes.

Flow modules never import each other; what two of them show alike lives here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from bot.domain.catalog import Catalog, Route
from bot.i18n import Translator
from bot.services.eligibility import Outcome
from bot.services.errors import (
    AlreadyDecided,
    AlreadyPaid,
    CatalogMissing,
    InvalidAnswer,
    InvalidState,
    NotFound,
    PaymentUnavailable,
    ServiceError,
    StaleStep,
)
from bot.services.payments import STARS, PaymentOffer
from handlers.context import ExamContext

T = TypeVar("T")


def start_menu(tr: Translator) -> InlineKeyboardMarkup:
    """The main menu shown after /start and whenever a candidate seems lost."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr.gettext("✅ Check my eligibility"), callback_data="menu:eligibility"
                )
            ],
            [
                InlineKeyboardButton(tr.gettext("📝 Register"), callback_data="menu:register"),
                InlineKeyboardButton(
                    tr.gettext("📋 My registrations"), callback_data="menu:status"
                ),
            ],
            [
                InlineKeyboardButton(
                    tr.gettext("💬 Ask the exam centre"), callback_data="menu:ask"
                )  # handlers.support
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
        context.tr.gettext(
            "Sorry, I did not understand that. Please choose from the menu, or send /help."
        ),
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
        "completed": tr.gettext("sat, results released"),
    }.get(state, state)


def verdict_label(tr: Translator, status: str | None) -> str:
    """An eligibility standing as people say it (staff cards, reviews)."""
    return {
        "eligible": tr.gettext("eligible"),
        "not_eligible": tr.gettext("not eligible"),
        "manual_review": tr.gettext("needs a manual review"),
        "pending_review": tr.gettext("manual review requested"),
        "approved": tr.gettext("approved by staff"),
        "rejected": tr.gettext("rejected by staff"),
        "overridden": tr.gettext("eligible by staff override"),
        "unknown": tr.gettext("not checked yet"),
    }.get(status or "", status or "-")


def method_label(tr: Translator, method: str | None) -> str:
    """How a payment was made."""
    return {
        "bank_transfer": tr.gettext("bank transfer (receipt)"),
        "bank_statement": tr.gettext("bank transfer (statement)"),
        "telegram": tr.gettext("card payment in Telegram"),
        "stars": tr.gettext("Telegram Stars"),
        "provider": tr.gettext("online payment"),
    }.get(method or "", method or "-")


def payment_status_label(tr: Translator, status: str | None) -> str:
    """The state of one payment row (money that arrived, or a receipt claiming it did)."""
    return {
        "received": tr.gettext("received"),
        "paid": tr.gettext("paid"),
        "refund_due": tr.gettext("to be refunded"),
        "mismatch": tr.gettext("amount differs"),
        "unmatched": tr.gettext("no matching registration"),
        "pending_review": tr.gettext("receipt under review"),
        "approved": tr.gettext("receipt approved"),
        "rejected": tr.gettext("receipt rejected"),
        "superseded": tr.gettext("receipt no longer needed (paid another way)"),
    }.get(status or "", status or "-")


def action_label(tr: Translator, action: str) -> str:
    """What an audit entry records, for /history; an action without words shows its code."""
    return {
        "submit": tr.gettext("registered"),
        "cancel": tr.gettext("cancelled"),
        "move": tr.gettext("moved to another session"),
        "offer": tr.gettext("seat offered"),
        "accept_offer": tr.gettext("offered seat taken"),
        "decline_offer": tr.gettext("offered seat declined"),
        "offer_expired": tr.gettext("seat offer expired"),
        "completed": tr.gettext("sitting completed: a retake was booked"),
        "confirmed": tr.gettext("confirmed"),
        "rules_acknowledged": tr.gettext("exam-day rules confirmed"),
        "receipt_submitted": tr.gettext("receipt uploaded"),
        "receipt_approved": tr.gettext("receipt approved"),
        "receipt_rejected": tr.gettext("receipt rejected"),
        "recorded": tr.gettext("payment recorded"),
        "flagged": tr.gettext("payment flagged"),
        "payment_flagged": tr.gettext("a payment was flagged"),
        "replay_conflict": tr.gettext("the same transaction came again with another amount"),
        "paid": tr.gettext("paid"),
        "expired": tr.gettext("expired"),
        "ticket_issued": tr.gettext("admission ticket issued"),
        "ticket_reissued": tr.gettext("admission ticket re-issued"),
        "correction_requested": tr.gettext("correction of name or ID requested"),
        "identity_corrected": tr.gettext("name or ID corrected"),
        "staff_cancel": tr.gettext("cancelled by staff"),
        "level_change": tr.gettext("cancelled by staff for a change of level"),
        "refund_requested": tr.gettext("refund due"),
        "refunded": tr.gettext("refunded"),
        "refund_refused": tr.gettext("refund refused"),
        "refund_failed": tr.gettext("refund attempt failed"),
    }.get(action, action)


def actor_label(tr: Translator, actor: str) -> str:
    """Who did it: a Telegram user, the bot itself, or the command line."""
    if actor.startswith("tg:"):
        return tr.gettext("user {id}", id=actor.removeprefix("tg:"))
    return {"system": tr.gettext("the bot"), "cli": tr.gettext("command line")}.get(actor, actor)


def group_tr(update: Update, context: ExamContext) -> Translator:
    """The translator for what the bot writes into a group (the staff chat): the site's
    language, so a card reads in one language whoever pressed its button; in a private
    chat, the reader's own."""
    chat = update.effective_chat
    if chat is None or chat.type == chat.PRIVATE:
        return context.tr
    return context.i18n.translator(context.i18n.default_language)


async def stale_button(query: Any, tr: Translator) -> None:
    """Answer a press on an old button, or on forged callback data: nothing was changed."""
    await query.answer(tr.gettext("This button is no longer valid."), show_alert=True)


async def edit_message(
    query: CallbackQuery,
    text: str | None = None,
    *,
    caption: str | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
) -> bool:
    """Edit the pressed message in place: its text, else its caption, else only its buttons
    (`reply_markup=None` removes them). Every handler edits through this.

    False when Telegram says the message already looks like that ("message is not
    modified"): the same button pressed twice (a double tap runs after the first tap, one
    user's updates being in order) or by two staff members. That is no error; the caller
    may stop there and stay quiet, as the first press already said everything.
    """
    try:
        if text is not None:
            await query.edit_message_text(text, reply_markup=reply_markup)
        elif caption is not None:
            await query.edit_message_caption(caption=caption, reply_markup=reply_markup)
        else:
            await query.edit_message_reply_markup(reply_markup)
    except BadRequest as exc:
        if "message is not modified" in exc.message.lower():
            return False
        raise
    return True


def answer_error(tr: Translator, exc: InvalidAnswer) -> str:
    """A translated hint saying what was wrong with an answer and what to do instead."""
    hints = {
        "date_expected": tr.gettext("Please type a date, e.g. 2025-06-30."),
        "date_format": tr.gettext(
            "I could not read that date. Please type it like 2025-06-30 or 2025-06."
        ),
        "date_impossible": tr.gettext(
            "That date does not exist. Please check the day and the month."
        ),
        "date_in_future": tr.gettext(
            "That date is in the future. Please type the date it actually happened."
        ),
        "date_too_old": tr.gettext("That date is too far in the past. Please check the year."),
        "date_too_far": tr.gettext("That date is too far in the future. Please check the year."),
        "not_an_option": tr.gettext("Please choose one of the buttons."),
        "text_expected": tr.gettext("Please type your answer as text."),
        "too_long": tr.gettext(
            "That is too long. Please keep it to {limit} characters.",
            limit=exc.params.get("limit", 60),
        ),
        "nothing_to_review": tr.gettext(
            "There is nothing to review for this level. Check it first."
        ),
    }
    return hints.get(exc.reason) or tr.gettext("That answer was not accepted. Please try again.")


# --- the error ladder ------------------------------------------------------------------------

Explain = Callable[[Translator, Any], str]
#: The errors a press on an old or forged button raises: the thing is gone, or not the
#: presser's, or the flow has moved on.
STALE: tuple[type[ServiceError], ...] = (NotFound, StaleStep)


@dataclass
class Refusal:
    """What `refusals` caught: the service's refusal, or None when the call went through."""

    error: ServiceError | None = None


@asynccontextmanager
async def refusals(
    update: Update,
    tr: Translator,
    explain: Mapping[type[ServiceError] | tuple[type[ServiceError], ...], Explain] | None = None,
    *,
    stale: tuple[type[ServiceError], ...] = STALE,
    alert: bool = True,
    as_message: bool = False,
) -> AsyncIterator[Refusal]:
    """Map a service's refusal to the standard reply; the handler returns if `.error` is set.

    On a button press, a `stale` error answers `stale_button`; an error `explain` words is
    shown as an alert, or with `alert=False` the press is answered and the text sent as a
    message. On a message (or with `as_message`: a press answered already), `explain`'s
    text is the reply. An error nobody words goes on to the error handler, as any other
    failure does.

        async with refusals(update, tr, {AlreadyDecided: decided_text}) as refused:
            decision = await context.services.payments.decide_receipt(...)
        if refused.error:
            return
    """
    refusal = Refusal()
    try:
        yield refusal
    except ServiceError as exc:
        query = None if as_message else update.callback_query
        if query is not None and isinstance(exc, stale):
            refusal.error = exc
            await stale_button(query, tr)
            return
        words = next((w for kinds, w in (explain or {}).items() if isinstance(exc, kinds)), None)
        text = words(tr, exc) if words is not None else None
        if text is None:
            raise
        refusal.error = exc
        if query is not None and alert:
            await query.answer(text, show_alert=True)
            return
        if query is not None:
            await query.answer()
        await update.effective_message.reply_text(text)


def _missing_line(tr: Translator, catalog: Catalog, missing: Any) -> str:
    lang = tr.language
    need, have = missing.need, missing.have
    code = missing.code
    if code == "education":
        names = tr.join(
            (catalog.education_level(c).name.get(lang) for c in need), alternatives=True
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
            "{count} full year since the title (you have {have})",
            "{count} full years since the title (you have {have})",
            need,
            have=have if have is not None else 0,
        )
    elif code == "prior_level":
        text = tr.gettext("the {level} certificate", level=catalog.level(need).name.get(lang))
    elif code == "years_since_prior_level":
        text = tr.ngettext(
            "{count} full year since the previous level (you have {have})",
            "{count} full years since the previous level (you have {have})",
            need,
            have=have if have is not None else 0,
        )
    elif code == "work_years":
        text = tr.ngettext(
            "{count} full year of relevant work (you have {have})",
            "{count} full years of relevant work (you have {have})",
            need,
            have=have if have is not None else 0,
        )
    else:
        text = code
    if isinstance(missing.met_on, date):
        text = tr.gettext(
            "{requirement}: met on {date}", requirement=text, date=tr.date(missing.met_on)
        )
    return text


def _route_description(route: Route, lang: str) -> str:
    """What a route asks for, in words (its code when the catalogue gives none)."""
    return route.description.get(lang) if route.description else route.code


def eligibility_text(tr: Translator, catalog: Catalog, outcome: Outcome) -> str:
    """The verdict: the route that matched, or per route what is missing and what to do."""
    lang = tr.language
    verdict = outcome.verdict
    level = catalog.level(outcome.level).name.get(lang)
    exam = tr.date(verdict.exam_date)
    parts = []
    if outcome.suggested_from_auto:
        parts.append(tr.gettext("The level that fits you best: {level}.", level=level))
    if verdict.status.value == "eligible":
        route = catalog.route(verdict.matched_route)
        description = _route_description(route, lang)
        parts.append(
            tr.gettext(
                "✅ You are eligible for {level} (exam on {date}) by route {route}: "
                "{description}.",
                level=level,
                date=exam,
                route=route.code,
                description=description,
            )
        )
    else:
        headline = (
            tr.gettext(
                "🟡 The automatic check cannot confirm {level} (exam on {date}). "
                "Staff can review your case.",
                level=level,
                date=exam,
            )
            if verdict.status.value == "manual_review"
            else tr.gettext(
                "❌ By the automatic check you are not yet eligible for {level} (exam on {date}).",
                level=level,
                date=exam,
            )
        )
        parts.append(headline)
        for result in verdict.routes:
            route = catalog.route(result.route)
            description = _route_description(route, lang)
            if result.manual_review and not result.missing:
                needs = tr.gettext("decided by staff in a manual review")
            else:
                needs = tr.join(_missing_line(tr, catalog, m) for m in result.missing)
            parts.append(
                tr.gettext(
                    "• {route} ({description}) needs: {needs}",
                    route=route.code,
                    description=description,
                    needs=needs,
                )
            )
    for suggestion in verdict.suggestions:
        if suggestion.kind == "apply_level":
            parts.append(
                tr.gettext(
                    "👉 You can apply for {level} now (route {route}).",
                    level=catalog.level(suggestion.level).name.get(lang),
                    route=suggestion.route or "",
                )
            )
        elif suggestion.kind == "eligible_from" and suggestion.on:
            parts.append(
                tr.gettext(
                    "👉 You will meet route {route} on {date}.",
                    route=suggestion.route or "",
                    date=tr.date(suggestion.on),
                )
            )
    for requirement in verdict.requirements:
        if requirement.code == "training_hours":
            # The level's own figure from the catalogue: the levels differ (128, 160).
            parts.append(
                tr.gettext(
                    "{level} also needs proof of {hours} training hours (培训学时证明).",
                    level=level,
                    hours=requirement.need,
                )
            )
    return "\n\n".join(parts)


# --- level names -------------------------------------------------------------------------------

#: The language of the certificates: the catalogue's names in it are the official ones.
OFFICIAL_LANGUAGE = "zh_Hans"


class LevelNames(Mapping[str, Mapping[str, str]]):
    """The catalogue's level names by level code, for renderers that get only a code.

    Outbox templates and the broadcast progress message render without a catalogue at hand:
    the composition root keeps one `LevelNames` current (`refresh`) and hands it to them.
    Handlers build one from the catalogue they read (`LevelNames.of`).
    """

    def __init__(self, names: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._names = dict(names or {})

    @classmethod
    def of(cls, catalog: Catalog) -> LevelNames:
        return cls({level.code: level.name.model_dump() for level in catalog.levels})

    def refresh(self, catalog: Catalog) -> None:
        self._names = dict(LevelNames.of(catalog))

    def __getitem__(self, code: str) -> Mapping[str, str]:
        return self._names[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


async def level_names(context: ExamContext) -> LevelNames:
    """The level names of the catalogue in force (none before a catalogue is loaded)."""
    try:
        return LevelNames.of(await context.services.catalog.current())
    except CatalogMissing:
        return LevelNames()


def level_name(tr: Translator, code: str, names: Mapping[str, str] | None) -> str:
    """A level's catalogue name in the reader's language (English if there is none)."""
    if not names:
        return code
    return names.get(tr.language) or names.get("en") or code


def level_label(tr: Translator, code: str, names: Mapping[str, str] | None) -> str:
    """A level as notices name it: the reader's name with the official one beside it when
    that differs ("Junior (初级)" in English, "初级" in Chinese)."""
    name = level_name(tr, code, names)
    official = (names or {}).get(OFFICIAL_LANGUAGE)
    if not official or official == name:
        return name
    return tr.gettext("{name} ({official})", name=name, official=official)


# --- payments: the offer (after submitting, from /status, after taking a waitlist seat) ----------

#: What a service says when a registration cannot be paid (now, or this way).
PAYMENT_REFUSALS: tuple[type[ServiceError], ...] = (AlreadyPaid, InvalidState, PaymentUnavailable)


def amount_text(tr: Translator, amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return "-"
    if currency == STARS:
        return tr.ngettext("{count} Star", "{count} Stars", amount_minor)
    return tr.money(amount_minor, currency)


def offer_text(tr: Translator, o: PaymentOffer, levels: LevelNames) -> str:
    level = level_label(tr, o.level_code, levels.get(o.level_code))
    if o.amount is not None:
        fee = tr.gettext(
            "Exam fee for {level}: {amount}.",
            level=level,
            amount=tr.money(int(o.amount * 100), o.currency),
        )
    else:
        fee = tr.gettext(
            "The exam fee for {level} is not confirmed yet: the exam centre will confirm the "
            "amount before you pay.",
            level=level,
        )
    parts = [
        fee,
        tr.gettext(
            "Please pay by {due}. A registration still unpaid at {deadline} expires and its seat "
            "goes to the next person in line.",
            due=tr.datetime(o.due_at, o.timezone),
            deadline=tr.datetime(o.deadline_at, o.timezone),
        ),
    ]
    if "bank_transfer" in o.methods and o.bank is not None:
        parts.append(
            tr.gettext(
                "Bank transfer:\nAccount name: {name}\nBank: {bank}\nAccount number: {number}\n"
                "Write this reference in the transfer remark: {reference}\n"
                "Then upload the receipt with the button below.",
                name=o.bank.account_name,
                bank=o.bank.bank_name,
                number=o.bank.account_number,
                reference=o.reference,
            )
        )
        if o.bank.placeholder:
            parts.append(
                tr.gettext(
                    "⚠️ These bank details are not final yet. Please wait for the exam centre to "
                    "confirm them before you transfer."
                )
            )
    if not o.methods:
        parts.append(
            tr.gettext(
                "No payment method is open yet. The exam centre will tell you here how to pay."
            )
        )
    return "\n\n".join(parts)


def offer_keyboard(tr: Translator, o: PaymentOffer) -> InlineKeyboardMarkup | None:
    buttons = []
    if "telegram" in o.methods and o.amount is not None:
        buttons.append(
            InlineKeyboardButton(
                tr.gettext(
                    "💳 Pay {amount} in Telegram", amount=tr.money(int(o.amount * 100), o.currency)
                ),
                callback_data=f"pay:inv:{o.registration_id}:telegram",
            )
        )
    if "stars" in o.methods and o.stars is not None:
        buttons.append(
            InlineKeyboardButton(
                tr.gettext("⭐ Pay with {amount}", amount=amount_text(tr, o.stars, STARS)),
                callback_data=f"pay:inv:{o.registration_id}:stars",
            )
        )
    if "bank_transfer" in o.methods:
        buttons.append(
            InlineKeyboardButton(
                tr.gettext("🧾 I paid by bank transfer: upload the receipt"),
                callback_data=f"pay:receipt:{o.registration_id}",
            )
        )
    return InlineKeyboardMarkup([[b] for b in buttons]) if buttons else None


def already_decided(tr: Translator, exc: AlreadyDecided, status: str) -> str:
    """A staff decision someone made first: by whom, or settled by itself (`status`: the
    flow's label for `exc.status`)."""
    if exc.decided_by is None:  # settled by a payment or a sweep, not by a person
        return tr.gettext("Already settled ({status}).", status=status)
    return tr.gettext(
        "Already decided ({status}) by user {user}.", status=status, user=exc.decided_by
    )


def refusal_text(tr: Translator, exc: Exception) -> str:
    if isinstance(exc, AlreadyPaid):
        return tr.gettext("This registration is already paid. See /status.")
    reason = getattr(exc, "reason", None) or getattr(exc, "state", None)
    return {
        "fee_unconfirmed": tr.gettext(
            "The fee is not confirmed yet, so I cannot take a payment in Telegram. "
            "Please wait for the exam centre."
        ),
        "method_disabled": tr.gettext(
            "This payment method is not available. Send /status to see how you can pay."
        ),
        "deadline_passed": tr.gettext("The payment deadline of this registration has passed."),
        "eligibility_pending": tr.gettext(
            "Your eligibility is not settled yet. You can pay once the exam centre has "
            "confirmed it."
        ),
        "amount_mismatch": tr.gettext(
            "The amount does not match the fee of this registration. "
            "Please start the payment again from /status."
        ),
        "unknown_invoice": tr.gettext(
            "This invoice is no longer valid. Please start the payment again from /status."
        ),
        "payment_review": tr.gettext(
            "Your receipt for this registration is already under review. "
            "I will tell you the outcome here."
        ),
        "receipt_already_reviewed": tr.gettext(
            "The exam centre has already reviewed this very file for this registration. "
            "Please send a new receipt (press 🧾 again in /status), or contact the staff."
        ),
    }.get(reason or "", tr.gettext("This registration cannot be paid any more. See /status."))


def reason_label(tr: Translator, reason: str | None) -> str:
    """Why staff rejected a bank-transfer receipt (shown to staff and to the candidate)."""
    labels = {
        "amount_wrong": tr.gettext("the amount is wrong"),
        "reference_missing": tr.gettext("the reference is missing from the transfer remark"),
        "unreadable": tr.gettext("the receipt cannot be read"),
        "not_received": tr.gettext("the transfer has not arrived in the centre's account"),
    }
    return labels.get(reason or "", reason or "-")


def why_label(tr: Translator, why: str | None) -> str:
    """Why a payment cannot be used, or a statement row not matched."""
    labels = {
        "bad_date": tr.gettext("date not readable"),
        "bad_amount": tr.gettext("amount not readable"),
        "no_reference": tr.gettext("no reference in the row"),
        "unknown_reference": tr.gettext("unknown reference"),
        "reference_repeated": tr.gettext("the same reference is on several rows"),
        "amount_differs": tr.gettext("amount differs from the fee"),
        "already_paid": tr.gettext("already paid"),
        "double_payment": tr.gettext("already paid: a second payment"),
        "amount_mismatch": tr.gettext("amount or currency differs from the fee"),
        "replay_differs": tr.gettext(
            "this transaction was recorded before with another amount or currency "
            "(expected: the amount recorded then); nothing was recorded now"
        ),
    }
    if why and why.startswith("registration_"):
        return tr.gettext(
            "registration is {state}", state=state_label(tr, why.removeprefix("registration_"))
        )
    return labels.get(why or "", why or "")


def no_session(tr: Translator, _exc: NotFound) -> str:
    """A staff command's session code that names no session."""
    return tr.gettext("There is no such session.")


def no_catalog(tr: Translator, _exc: CatalogMissing) -> str:
    return tr.gettext("No exam catalogue is loaded: run `examdesk catalog load FILE` first.")


def _no_longer_valid(tr: Translator, _exc: NotFound) -> str:
    return tr.gettext("This button is no longer valid.")


async def send_offer(update: Update, context: ExamContext, registration_id: int) -> None:
    """The fee, deadline and methods of a registration, as a message (a press was answered)."""
    tr = context.tr
    explain = {NotFound: _no_longer_valid, PAYMENT_REFUSALS: refusal_text}
    async with refusals(update, tr, explain, as_message=True) as refused:
        offer = await context.services.payments.offer(update.effective_user.id, registration_id)
    if refused.error:
        return
    text = offer_text(tr, offer, await level_names(context))
    await update.effective_message.reply_text(text, reply_markup=offer_keyboard(tr, offer))


# --- tickets -----------------------------------------------------------------------------------


def ticket_button(tr: Translator, registration_id: int) -> InlineKeyboardButton:
    """The button that sends a paid registration's admission ticket (/status, the notice)."""
    return InlineKeyboardButton(
        tr.gettext("🎫 Get my admission ticket"), callback_data=f"tk:get:{registration_id}"
    )


def ticket_availability(tr: Translator, available_from: datetime | None, zone: str | None) -> str:
    """When a paid registration's admission ticket can be had (payment confirmations,
    /status): from the session's ticket date, or now once that has come (`None`)."""
    if available_from is None:
        return tr.gettext("Your admission ticket is ready: send /ticket to get it.")
    return tr.gettext(
        "Your admission ticket will be available from {when}; I will send you a message then.",
        when=tr.datetime(available_from, zone),
    )
