"""Common flow: /start (with deep links), /help, /language, /cancel and the catch-all.

Entry points: `setup(application)`; handlers `cmd_start`, `cmd_help`, `cmd_language`,
`on_language_chosen`, `cmd_cancel`, `on_unknown_message`, `on_unknown_button`.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.services.errors import UnsupportedLanguage
from handlers.callbacks import WORD, Button
from handlers.context import ExamContext
from handlers.render import edit_message, on_unknown_message, refusals, stale_button, start_menu

LANGUAGE_NAMES = {"zh_Hans": "中文", "en": "English"}

LANGUAGE = Button("lang", WORD)  # lang:<language code>
MENU_LANGUAGE = Button("menu:language")
MENU_HELP = Button("menu:help")


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
    (`verify_<code>` never reaches here: handlers/verify.py, registered first, takes it)."""
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
    await update.effective_message.reply_text(
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
            "/language: switch between 中文 and English\n"
            "/cancel: stop what you are doing (your answers stay saved)\n"
            "/help: this message\n\n"
            "If you are stuck, write to the exam centre staff."
        ),
        reply_markup=start_menu(tr),
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
    application.add_handler(CallbackQueryHandler(on_language_chosen, pattern=LANGUAGE.matches))


def setup_fallbacks(application: Application) -> None:
    """Registered last: only what no flow handled reaches these (unknown commands, old buttons)."""
    application.add_handler(
        MessageHandler(filters.ChatType.PRIVATE & filters.COMMAND, on_unknown_message)
    )
    application.add_handler(CallbackQueryHandler(on_unknown_button))
