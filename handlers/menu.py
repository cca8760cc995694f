"""The main menu and the "did not understand" reply, shared by every flow."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.context import ExamContext
from bot.i18n import Translator


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
