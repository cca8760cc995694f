"""Common flow: /start (with deep links), /help, /language, /cancel and the catch-all.

Entry points: `setup(application)`; handlers `cmd_start`, `cmd_help` (with the exam
centre's contact and the exam site under the commands: `reply_with_contact`, and
`on_show_map` for its `place:map` button, which sends the site as a venue), `cmd_language`,
`on_language_chosen`, `cmd_cancel`, `on_unknown_message`, `on_unknown_button`.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.domain.catalog import Catalog
from bot.i18n import Translator
from bot.services.errors import CatalogMissing, UnsupportedLanguage
from handlers.callbacks import WORD, Button
from handlers.context import ExamContext
from handlers.render import edit_message, on_unknown_message, refusals, stale_button, start_menu
from handlers.staff_roles import send_staff_help

LANGUAGE_NAMES = {"zh_Hans": "中文", "en": "English"}

LANGUAGE = Button("lang", WORD)  # lang:<language code>
MENU_LANGUAGE = Button("menu:language")
MENU_HELP = Button("menu:help")
MAP = Button("place:map")  # the exam site as a venue (the /help contact block)


def language_keyboard() -> InlineKeyboardMarkup:
    # Language names are shown in their own language, so they are not translated.
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(name, callback_data=f"lang:{code}")
                for code, name in LANGUAGE_NAMES.items()
            ]
        ]
    )


async def cmd_start(update: Update, context: ExamContext) -> None:
    """Greet the candidate and show the main menu; a deep-link payload is accepted
    (`verify_<code>` and `ci_<code>` never reach here: handlers/verify.py and
    handlers/checkin.py, registered first, take them)."""
    tr = context.tr
    name = update.effective_user.first_name if update.effective_user else ""
    await update.effective_message.reply_text(
        tr.gettext(
            "Welcome, {name}! I am the registration desk of the Smart Manufacturing "
            "Engineering Technician exam at Harbin University of Science and Technology "
            "(Rongcheng campus).\n\n"
            "Choose what you want to do:",
            name=name,
        ),
        reply_markup=start_menu(tr),
    )
    await context.flows.resume(update, context)  # a flow left half-way continues where it stopped


async def cmd_help(update: Update, context: ExamContext) -> None:
    """Explain what the bot does and list the commands."""
    await _send_help(update, context)


async def on_help_button(update: Update, context: ExamContext) -> None:
    """The Help button of the main menu."""
    await update.callback_query.answer()
    await _send_help(update, context)


async def _send_help(update: Update, context: ExamContext) -> None:
    tr = context.tr
    chat = update.effective_chat
    if chat is not None and chat.type != chat.PRIVATE:
        # A group (the staff chat): the candidate's help and menu would run candidate
        # flows there. Staff get their commands; anyone else is sent to a private chat.
        if update.effective_user is not None and (
            update.effective_user.id in context.bot_data.staff.user_ids
        ):
            await send_staff_help(update, context)
        else:
            await update.effective_message.reply_text(
                tr.gettext("Send me /help in a private chat: I answer candidates there.")
            )
        return
    await reply_with_contact(
        update,
        context,
        tr.gettext(
            "I help you take the Smart Manufacturing Engineering Technician exam:\n"
            "/start: main menu\n"
            "/eligibility: check which level you may take\n"
            "/register: register for the exam\n"
            "/status: your registrations with their results and certificates; cancel or "
            "change session\n"
            "/ticket: your admission ticket (PDF), once paid\n"
            "/results: your exam results, once released\n"
            "/certificate: your certificate (PDF), once issued\n"
            "/verify: check whether a certificate number is genuine\n"
            "/ask: ask the exam centre a question (the staff answer here)\n"
            "/language: switch between 中文 and English\n"
            "/cancel: stop what you are doing (your answers stay saved)\n"
            "/help: this message\n\n"
            "If you are stuck, press “Ask the exam centre” or send /ask."
        ),
        reply_markup=start_menu(tr),
    )
    await send_staff_help(update, context)  # staff: the commands their roles allow


def contact_text(tr: Translator, catalog: Catalog) -> str:
    """The exam centre's contact and the exam site, as the catalogue gives them."""
    contact, site, language = catalog.contact, catalog.site, tr.language
    lines = [tr.gettext("📞 How to reach the exam centre")]
    if contact is not None and contact.phone:
        lines.append(tr.gettext("Phone: {phone}", phone=contact.phone))
    if contact is not None and contact.email:
        lines.append(tr.gettext("E-mail: {email}", email=contact.email))
    if contact is not None and contact.hours is not None:
        lines.append(tr.gettext("Office hours: {hours}", hours=contact.hours.get(language)))
    lines.append(
        tr.gettext(
            "📍 Exam site: {site}\nAddress: {address}",
            site=site.name.get(language),
            address=site.address.get(language),
        )
    )
    if contact is not None and contact.placeholder:
        lines.append(tr.gettext("⚠️ These contact details are not final yet."))
    return "\n".join(lines)


async def reply_with_contact(
    update: Update, context: ExamContext, text: str, *, reply_markup: InlineKeyboardMarkup
) -> None:
    """/help's text with the contact block under it, and "📍 Show on the map" under the menu
    when the site has a location: one message, whose last lines and last button are the
    place (nothing added while no catalogue is loaded)."""
    try:
        catalog = await context.services.catalog.current()
    except CatalogMissing:
        catalog = None
    if catalog is not None:
        tr = context.tr
        text = "\n\n".join((text, contact_text(tr, catalog)))
        if catalog.site.location is not None:
            show = InlineKeyboardButton(tr.gettext("📍 Show on the map"), callback_data=MAP.prefix)
            reply_markup = InlineKeyboardMarkup([*reply_markup.inline_keyboard, [show]])
    await update.effective_message.reply_text(text, reply_markup=reply_markup)


async def on_show_map(update: Update, context: ExamContext) -> None:
    """The exam site as a venue: tapped on a phone, it opens the map app with directions."""
    query = update.callback_query
    try:
        site = (await context.services.catalog.current()).site
    except CatalogMissing:
        site = None
    if site is None or site.location is None:
        await stale_button(query, context.tr)
        return
    await query.answer()
    language = context.tr.language
    await update.effective_message.reply_venue(
        latitude=site.location.latitude,
        longitude=site.location.longitude,
        title=site.name.get(language),
        address=site.address.get(language),
    )


async def cmd_language(update: Update, context: ExamContext) -> None:
    """Offer the two languages."""
    if update.callback_query:
        await update.callback_query.answer()
    await update.effective_message.reply_text(
        context.tr.gettext("Choose your language:"), reply_markup=language_keyboard()
    )


async def on_language_chosen(update: Update, context: ExamContext) -> None:
    """Store the chosen language and answer in it."""
    query = update.callback_query
    language = LANGUAGE.parse_one(query.data)
    if language is None:
        await stale_button(query, context.tr)
        return
    async with refusals(update, context.tr, stale=(UnsupportedLanguage,)) as refused:
        await context.services.candidates.set_language(update.effective_user.id, language)
    if refused.error:
        return
    tr = context.i18n.translator(language)
    await query.answer()
    if not await edit_message(query, tr.gettext("Language set to English.")):
        return  # a double tap: the first tap showed the menu already
    await update.effective_message.reply_text(
        tr.gettext("Choose what you want to do:"), reply_markup=start_menu(tr)
    )


async def cmd_cancel(update: Update, context: ExamContext) -> None:
    """Leave the current flow; saved answers stay."""
    left = await context.services.candidates.leave_flow(update.effective_user.id)
    tr = context.tr
    text = (
        tr.gettext("Stopped. Your answers so far are saved: send /start to continue later.")
        if left
        else tr.gettext("There is nothing to cancel.")
    )
    await update.effective_message.reply_text(text, reply_markup=start_menu(tr))


async def on_unknown_button(update: Update, context: ExamContext) -> None:
    """A button from an old message or forged callback data."""
    await update.callback_query.answer(
        context.tr.gettext("This button is no longer valid. Send /start for the menu."),
        show_alert=True,
    )


def setup(application: Application) -> None:
    application.add_handler(CommandHandler("start", cmd_start, filters.ChatType.PRIVATE))
    application.add_handler(CommandHandler("help", cmd_help))
    application.add_handler(CommandHandler("language", cmd_language, filters.ChatType.PRIVATE))
    application.add_handler(CommandHandler("cancel", cmd_cancel, filters.ChatType.PRIVATE))
    application.add_handler(CallbackQueryHandler(cmd_language, pattern=MENU_LANGUAGE.matches))
    application.add_handler(CallbackQueryHandler(on_help_button, pattern=MENU_HELP.matches))
    application.add_handler(CallbackQueryHandler(on_show_map, pattern=MAP.matches))
    application.add_handler(CallbackQueryHandler(on_language_chosen, pattern=LANGUAGE.matches))


def setup_fallbacks(application: Application) -> None:
    """Registered last: only what no flow handled reaches these (unknown commands, old buttons)."""
    application.add_handler(
        MessageHandler(filters.ChatType.PRIVATE & filters.COMMAND, on_unknown_message)
    )
    application.add_handler(CallbackQueryHandler(on_unknown_button))
