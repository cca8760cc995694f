"""Role checks for staff commands and buttons (issue 14; `bot/domain/roles.py`).

* `@requires(Role.FINANCE)` on a handler callback: the member's roles are read from the
  database (`StaffService.require`), so a revocation counts at once on every instance;
  without the role the handler does not run and the member is told which role is needed
  (an alert for a button, a reply for a message).
* `role_label(tr, role)`: a role's name in words.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from telegram import Update

from bot.domain.roles import Role
from bot.i18n import N_, Translator
from bot.services.staff import NotAllowed
from handlers.context import ExamContext

Handler = Callable[[Update, ExamContext], Awaitable[None]]

ROLE_NAMES = {
    Role.ADMIN: N_("admin"),
    Role.REVIEWER: N_("reviewer (eligibility and receipts)"),
    Role.FINANCE: N_("finance (payments, statements, refunds)"),
    Role.RESULTS: N_("results (results, re-marks, certificates)"),
    Role.CHECKIN: N_("check-in (the door on exam day)"),
}


def role_label(tr: Translator, role: Role) -> str:
    return tr.gettext(ROLE_NAMES[role])


def not_allowed_text(tr: Translator, needed: Role) -> str:
    return tr.gettext(
        "This needs the role: {role}. An admin can grant it with /staff.",
        role=role_label(tr, needed),
    )


def requires(role: Role) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(update: Update, context: ExamContext) -> None:
            user = update.effective_user
            if user is None:
                return
            try:
                await context.services.staff.require(user.id, role)
            except NotAllowed as exc:
                text = not_allowed_text(context.tr, exc.needed)
                if update.callback_query is not None:
                    await update.callback_query.answer(text, show_alert=True)
                elif update.effective_message is not None:
                    await update.effective_message.reply_text(text)
                return
            await handler(update, context)

        return checked

    return wrap
