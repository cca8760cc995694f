"""Find a candidate (issue 14 point 2; docs/staff.md "Find a candidate"): staff's
`/find <text>`, the list of matches, the candidate's card and the admin's full-ID view.

Entry points: `setup(application)`; handlers `cmd_find`, `on_card`, `on_full_id`.
Callback data (every one behind `StaffCallbackQueryHandler`):

* `desk:card:<candidate id>`: a match of the list → that candidate's card (a new message,
  so the list stays to open another);
* `desk:fullid:<candidate id>`: admins only: the full ID number, decrypted, shown as an
  alert to the one who pressed (nothing stays in the chat), audited by the service.

The card also carries buttons other modules handle: `desk:cancel:<registration id>`
(finance, and admins: cancel an active registration and refund; shown per active
registration) and `desk:msg:<candidate id>` (any staff role: write to the candidate).

Roles: any staff role may find and open cards (`@requires(*Role)`; the service checks the
same against the database); the cancel buttons show for finance and admins, the full-ID
button for admins only (`@requires(Role.ADMIN)` on its handler, and the service again).
What the bot writes is in the staff chat's language there (`group_tr`), else the reader's.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CommandHandler

from bot.domain.roles import Role, allows
from bot.i18n import Translator
from bot.services.find import BadQuery, CandidateCard, FindResult, Match, PaymentView
from bot.services.staff import NotAllowed
from handlers.callbacks import ID, Button, StaffCallbackQueryHandler
from handlers.common import LANGUAGE_NAMES
from handlers.context import ExamContext
from handlers.payments_staff import history_line
from handlers.render import (
    LevelNames,
    amount_text,
    group_tr,
    level_label,
    level_names,
    method_label,
    payment_status_label,
    refusals,
    stale_button,
    state_label,
)
from handlers.staff_roles import not_allowed_text, requires

CARD = Button("desk:card", ID)  # desk:card:<candidate id>
FULL_ID = Button("desk:fullid", ID)  # desk:fullid:<candidate id>
MAX_TEXT = 4000  # Telegram allows 4096 characters in a message


# --- /find -----------------------------------------------------------------------------------


@requires(*Role)
async def cmd_find(update: Update, context: ExamContext) -> None:
    """Staff: /find <text>: the matches as buttons, or the one candidate's card."""
    tr = group_tr(update, context)
    async with refusals(update, tr, EXPLAIN) as refused:
        result = await context.services.find.find(
            update.effective_user.id, " ".join(context.args or [])
        )
    if refused.error:
        return
    if result.card is not None:
        text, markup = card_message(tr, result.card, await level_names(context), context)
    else:
        text, markup = list_message(tr, result)
    await update.effective_message.reply_text(text, reply_markup=markup)


@requires(*Role)
async def on_card(update: Update, context: ExamContext) -> None:
    """`desk:card:<candidate id>`: the candidate's card, as a new message."""
    query, tr = update.callback_query, group_tr(update, context)
    candidate_id = CARD.parse_one(query.data)
    if candidate_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        card = await context.services.find.card(update.effective_user.id, candidate_id)
    if refused.error:
        return
    await query.answer()
    text, markup = card_message(tr, card, await level_names(context), context)
    await update.effective_message.reply_text(text, reply_markup=markup)


@requires(Role.ADMIN)
async def on_full_id(update: Update, context: ExamContext) -> None:
    """`desk:fullid:<candidate id>`: admins: the full ID number, as an alert only they see."""
    query, tr = update.callback_query, group_tr(update, context)
    candidate_id = FULL_ID.parse_one(query.data)
    if candidate_id is None:
        await stale_button(query, tr)
        return
    async with refusals(update, tr, EXPLAIN) as refused:
        number = await context.services.find.reveal_id(update.effective_user.id, candidate_id)
    if refused.error:
        return
    await query.answer(
        tr.gettext("Full ID number: {number}\nThis view is recorded.", number=number),
        show_alert=True,
    )


# --- refusals --------------------------------------------------------------------------------


def _bad_query(tr: Translator, exc: BadQuery) -> str:
    if exc.reason == "too_short":
        return tr.gettext(
            "Too short to search: type at least 2 characters of a name or 4 digits of a "
            "phone number."
        )
    if exc.reason == "unsearchable":
        return tr.gettext(
            "Search by a name alone, or by one number: phone, registration reference, "
            "ticket number, the last 4 of the ID number or Telegram id."
        )
    return tr.gettext(
        "Usage: /find <name, phone, registration reference, ticket number, last 4 of the "
        "ID number or Telegram id>"
    )


def _not_allowed(tr: Translator, exc: NotAllowed) -> str:
    return not_allowed_text(tr, exc.roles)


EXPLAIN = {BadQuery: _bad_query, NotAllowed: _not_allowed}


# --- the list --------------------------------------------------------------------------------


def _name(tr: Translator, m: Match | CandidateCard) -> str:
    """The name on the ID document, else the Telegram name (said so)."""
    return m.full_name or tr.gettext("{name} (Telegram name)", name=m.telegram_name or "-")


def list_message(tr: Translator, result: FindResult) -> tuple[str, InlineKeyboardMarkup | None]:
    if not result.matches:
        return (
            tr.gettext(
                "No candidate found for “{query}”. Search by a name, phone number, "
                "registration reference, ticket number, the last 4 of the ID number or "
                "Telegram id.",
                query=result.query,
            ),
            None,
        )
    lines = [
        tr.ngettext(
            "{count} candidate found for “{query}”:",
            "{count} candidates found for “{query}”:",
            result.total,
            query=result.query,
        )
    ]
    buttons = []
    for number, m in enumerate(result.matches, start=1):
        lines.append(
            tr.gettext(
                "{number}. {name}, ID {id}, phone {phone}",
                number=number,
                name=_name(tr, m),
                id=m.id_masked or "-",
                phone=m.phone or "-",
            )
        )
        label = tr.gettext("{number}. {name}", number=number, name=_name(tr, m))
        buttons.append([InlineKeyboardButton(label, callback_data=f"desk:card:{m.candidate_id}")])
    more = result.total - len(result.matches)
    if more > 0:
        lines.append(
            tr.ngettext(
                "…and {count} more. Refine the search: more of the name, or a phone number "
                "or reference.",
                "…and {count} more. Refine the search: more of the name, or a phone number "
                "or reference.",
                more,
            )
        )
    return "\n".join(lines), InlineKeyboardMarkup(buttons)


# --- the card --------------------------------------------------------------------------------


def _id_line(tr: Translator, card: CandidateCard) -> str:
    kind = {
        "resident_id": tr.gettext("PRC resident ID card"),
        "passport": tr.gettext("Passport (foreign candidates)"),
    }.get(card.id_doc_type or "", "-")
    return tr.gettext("ID: {kind}, {number}", kind=kind, number=card.id_masked or "-")


def _refund(tr: Translator, p: PaymentView) -> str:
    """The payment's state in words, with its refund's when there is one."""
    status = payment_status_label(tr, p.status)
    if p.refund_status == "due":
        return tr.gettext("{status}, refund due", status=status)
    if p.refund_status == "refunded":
        return tr.gettext("{status}, refunded", status=status)
    if p.refund_status == "refused":
        return tr.gettext("{status}, refund refused", status=status)
    if p.needs_refund and p.status != "refund_due":
        return tr.gettext("{status}, to refund", status=status)
    return status


def card_text(
    tr: Translator, card: CandidateCard, levels: LevelNames, zone: str, language: str
) -> str:
    """What the card says: who, registrations, payments, recent history. `language`: the
    one the bot writes to the candidate in."""
    telegram = (
        tr.gettext(
            "Telegram: {name}, @{username}, id {id}",
            name=card.telegram_name or "-",
            username=card.username,
            id=card.telegram_id,
        )
        if card.username
        else tr.gettext(
            "Telegram: {name}, id {id}", name=card.telegram_name or "-", id=card.telegram_id
        )
    )
    lines = [
        tr.gettext("👤 {name}", name=_name(tr, card)),
        telegram,
        _id_line(tr, card),
        tr.gettext(
            "Phone: {phone}, e-mail: {email}", phone=card.phone or "-", email=card.email or "-"
        ),
        tr.gettext(
            "Language: {language}. {reachable}",
            language=LANGUAGE_NAMES.get(language, language),
            reachable=tr.gettext("Reachable in the bot.")
            if card.reachable
            else tr.gettext("Not reachable: blocked the bot or never started it."),
        ),
        "",
        tr.gettext("📝 Registrations:")
        if card.registrations
        else tr.gettext("📝 No registrations."),
    ]
    for r in card.registrations:
        lines.append(
            tr.gettext(
                "• {reference}: {level}, session {session} (exam {date}): {state}",
                reference=r.reference,
                level=level_label(tr, r.level_code, levels.get(r.level_code)),
                session=r.session_code,
                date=tr.date(r.exam_date),
                state=state_label(tr, r.state),
            )
        )
        if r.ticket_number:
            lines.append(
                tr.gettext("   Ticket {ticket}, seat {seat}", ticket=r.ticket_number, seat=r.seat)
            )
        if r.pay_by:
            lines.append(tr.gettext("   Pay by {when}", when=tr.datetime(r.pay_by, r.timezone)))
        if r.offer_expires_at:
            lines.append(
                tr.gettext(
                    "   Seat offered until {when}",
                    when=tr.datetime(r.offer_expires_at, r.timezone),
                )
            )
    if card.payments:
        lines += ["", tr.gettext("💳 Payments:")]
        for p in card.payments:
            lines.append(
                tr.gettext(
                    "• #{id} {reference}: {method}, {amount}, {status}",
                    id=p.payment_id,
                    reference=p.reference,
                    method=method_label(tr, p.method),
                    amount=amount_text(tr, p.amount_minor, p.currency),
                    status=_refund(tr, p),
                )
            )
        waiting = sum(1 for p in card.payments if p.receipt_waiting)
        if waiting:
            lines.append(
                tr.ngettext(
                    "🧾 {count} receipt is waiting for review.",
                    "🧾 {count} receipts are waiting for review.",
                    waiting,
                )
            )
    if card.history:
        lines += ["", tr.gettext("🕘 Recent history:")]
        lines += [history_line(tr, e, zone) for e in card.history]
    text = "\n".join(lines)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def card_keyboard(tr: Translator, card: CandidateCard) -> InlineKeyboardMarkup:
    """The actions the caller's roles allow: cancel (finance), message (any staff), the
    full ID number (admins, when one is on file)."""
    rows = []
    if allows(card.roles, Role.FINANCE):
        rows += [
            [
                InlineKeyboardButton(
                    tr.gettext("❌ Cancel {reference}", reference=r.reference),
                    callback_data=f"desk:cancel:{r.registration_id}",
                )
            ]
            for r in card.registrations
            if r.active
        ]
    rows.append(
        [
            InlineKeyboardButton(
                tr.gettext("💬 Message the candidate"),
                callback_data=f"desk:msg:{card.candidate_id}",
            )
        ]
    )
    if Role.ADMIN in card.roles and card.has_id_number:
        rows.append(
            [
                InlineKeyboardButton(
                    tr.gettext("🔓 Show the full ID number"),
                    callback_data=f"desk:fullid:{card.candidate_id}",
                )
            ]
        )
    return InlineKeyboardMarkup(rows)


def card_message(
    tr: Translator, card: CandidateCard, levels: LevelNames, context: ExamContext
) -> tuple[str, InlineKeyboardMarkup]:
    language = context.i18n.negotiate(card.language, card.telegram_language)
    text = card_text(tr, card, levels, context.settings.timezone, language)
    return text, card_keyboard(tr, card)


def setup(application: Application) -> None:
    staff = application.bot_data.staff
    application.add_handler(CommandHandler("find", cmd_find, staff))
    application.add_handler(StaffCallbackQueryHandler(on_card, CARD, staff))
    application.add_handler(StaffCallbackQueryHandler(on_full_id, FULL_ID, staff))
