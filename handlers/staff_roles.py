"""Role checks for staff commands and buttons (issue 14; `bot/domain/roles.py`), and the
live staff filter.

* `@requires(Role.FINANCE)` on a handler callback (also a staff file handler, which takes
  the command's arguments too): the member's roles are read from the database
  (`StaffService.require`), so a revocation counts at once on every instance; without the
  role the handler does not run and the member is told which role is needed (an alert for
  a button, a reply for a message). `@requires(Role.FINANCE, Role.REVIEWER)`: either will
  do. `quiet=True` (the staff chat's typed inputs, which every staff message passes
  through): without the role nothing happens and nothing is said. The wrapper keeps the
  roles in `.roles` (the staff file router checks them before it waits for a file; tests
  list every staff handler by them).
* `refresh_staff(application)`: set `bot_data.staff` (the one `filters.User` every staff
  handler routes with) to the staff directory: at start-up and by a tick (`bot.app`), and
  at once after `/staff` changes a role on this instance.
* `allowed(update, context, roles)`: the same check where a decorator does not fit (the
  staff file router, before it waits for a file).
* `STAFF_COMMANDS`: every staff command with its roles and a line for staff `/help`.
* `send_staff_help(update, context)`: the staff part of `/help` (`handlers.common`).
* `role_label(tr, role)`, `not_allowed_text(tr, roles)`: a role's name in words; the
  refusal.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.domain.roles import Role, allows_any
from bot.i18n import N_, Translator
from bot.services.staff import NotAllowed
from handlers.context import ExamContext

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[None]]  # (update, context[, args])

ROLE_NAMES = {
    Role.ADMIN: N_("admin"),
    Role.REVIEWER: N_("reviewer (eligibility and receipts)"),
    Role.FINANCE: N_("finance (payments, statements, refunds)"),
    Role.RESULTS: N_("results (results, re-marks, certificates)"),
    Role.CHECKIN: N_("check-in (the door on exam day)"),
}


@dataclass(frozen=True, slots=True)
class StaffCommand:
    """A staff command as staff `/help` lists it (`line` is a msgid: usage and purpose)."""

    command: str
    roles: tuple[Role, ...]
    line: str


#: Every staff command, in the order staff /help lists them; each one's roles are those of
#: its handler's `@requires` (tests/e2e/test_staff_roles.py checks that they agree).
STAFF_COMMANDS = (
    StaffCommand("staff", (Role.ADMIN,), N_("/staff [telegram id]: staff members and roles")),
    StaffCommand("broadcast", (Role.ADMIN,), N_("/broadcast: an announcement to candidates")),
    StaffCommand(
        "unacknowledged",
        (Role.ADMIN,),
        N_("/unacknowledged <session> [page]: who has not confirmed the exam reminder"),
    ),
    StaffCommand(
        "correct",
        (Role.ADMIN,),
        N_("/correct <reference> name <new name> | <reason>: correct a frozen identity"),
    ),
    StaffCommand(
        "find",
        (Role.ADMIN, Role.REVIEWER, Role.FINANCE, Role.RESULTS, Role.CHECKIN),
        N_("/find <name, phone, reference, ticket, last 4 of the ID or Telegram id>: a candidate"),
    ),
    StaffCommand(
        "message",
        (Role.ADMIN, Role.REVIEWER, Role.FINANCE, Role.RESULTS, Role.CHECKIN),
        N_("/message <reference or Telegram id> <text>: write to a candidate"),
    ),
    StaffCommand(
        "threads",
        (Role.ADMIN, Role.REVIEWER, Role.FINANCE, Role.RESULTS, Role.CHECKIN),
        N_("/threads: candidates' questions and their answers"),
    ),
    StaffCommand(
        "stats",
        (Role.REVIEWER, Role.FINANCE, Role.RESULTS, Role.CHECKIN),
        N_("/stats: the day's figures per session, with a chart"),
    ),
    StaffCommand(
        "override",
        (Role.REVIEWER,),
        N_("/override <telegram id> <level> <yes|no> <reason>: decide eligibility"),
    ),
    StaffCommand(
        "history",
        (Role.FINANCE, Role.REVIEWER),
        N_("/history <reference>: a registration's states and payments"),
    ),
    StaffCommand(
        "refunds",
        (Role.FINANCE,),
        N_("/refunds: open refunds"),
    ),
    StaffCommand(
        "cancel_registration",
        (Role.FINANCE,),
        N_("/cancel_registration <reference or ticket> <reason>: cancel and refund"),
    ),
    StaffCommand(
        "change_level",
        (Role.FINANCE,),
        N_("/change_level <reference> <level> <reason>: cancel and refund for a level change"),
    ),
    StaffCommand(
        "export",
        (Role.FINANCE,),
        N_("/export registrations|payments [session] [state]: a spreadsheet"),
    ),
    StaffCommand(
        "checkin",
        (Role.CHECKIN,),
        N_("/checkin <code or ticket number>: check a candidate in (or scan the QR code)"),
    ),
    StaffCommand(
        "checkin_status",
        (Role.CHECKIN,),
        N_("/checkin_status <session>: who has arrived"),
    ),
    StaffCommand(
        "roster",
        (Role.CHECKIN,),
        N_("/roster <session>: the roster as XLSX and CSV"),
    ),
    StaffCommand(
        "signin",
        (Role.CHECKIN,),
        N_("/signin <session>: the sign-in sheet (PDF)"),
    ),
    StaffCommand(
        "checkticket",
        (Role.CHECKIN,),
        N_("/checkticket <reference>: is an admission ticket genuine"),
    ),
    StaffCommand(
        "results_import",
        (Role.RESULTS,),
        N_("/results_import <session> + a CSV or XLSX file: import results"),
    ),
    StaffCommand(
        "results_status",
        (Role.RESULTS,),
        N_("/results_status <session>: imported, missing and released results"),
    ),
    StaffCommand(
        "results_correct",
        (Role.RESULTS,),
        N_("/results_correct <ticket or reference> <component> <score> <reason>: correct one"),
    ),
    StaffCommand(
        "results_release",
        (Role.RESULTS,),
        N_("/results_release <session> [YYYY-MM-DD HH:MM]: release results"),
    ),
    StaffCommand("remarks", (Role.RESULTS,), N_("/remarks: open re-mark requests")),
    StaffCommand(
        "certificates_import",
        (Role.RESULTS,),
        N_("/certificates_import + a CSV or XLSX file: import certificates"),
    ),
    StaffCommand(
        "certificates_assign",
        (Role.RESULTS,),
        N_("/certificates_assign <session> <YYYY-MM-DD>: issue certificates to who passed"),
    ),
    StaffCommand(
        "certificate_revoke",
        (Role.RESULTS,),
        N_("/certificate_revoke <number> <reason>: revoke a certificate"),
    ),
)


def role_label(tr: Translator, role: Role) -> str:
    return tr.gettext(ROLE_NAMES[role])


def not_allowed_text(tr: Translator, roles: Role | Iterable[Role]) -> str:
    needed = [roles] if isinstance(roles, Role) else list(roles)
    if len(needed) == 1:
        return tr.gettext(
            "This needs the role: {role}. An admin can grant it with /staff.",
            role=role_label(tr, needed[0]),
        )
    # Not ngettext: Chinese has one plural form, and this is "one of", not a count.
    return tr.gettext(
        "This needs one of the roles: {roles}. An admin can grant them with /staff.",
        roles=tr.join((role_label(tr, r) for r in needed), alternatives=True),
    )


def required_roles(handler: object) -> tuple[Role, ...] | None:
    """The roles a `@requires` handler checks, or None for an unchecked one."""
    return getattr(handler, "roles", None)


def requires(role: Role, *alternatives: Role, quiet: bool = False) -> Callable[[Handler], Handler]:
    roles = (role, *alternatives)

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(update: Update, context: ExamContext, *args: Any) -> None:
            if await allowed(update, context, roles, quiet=quiet):
                await handler(update, context, *args)

        checked.roles = roles  # type: ignore[attr-defined]
        return checked

    return wrap


async def allowed(
    update: Update, context: ExamContext, roles: Iterable[Role], *, quiet: bool = False
) -> bool:
    """True when the update's user holds one of `roles`; else refused (said unless quiet)."""
    user = update.effective_user
    if user is None:
        return False
    try:
        await context.services.staff.require(user.id, *roles)
    except NotAllowed as exc:
        if not quiet:
            await refuse(update, context, exc.roles)
        return False
    return True


async def refuse(update: Update, context: ExamContext, roles: Iterable[Role]) -> None:
    """Tell the member which role is needed: an alert on a button, else a reply."""
    text = not_allowed_text(context.tr, roles)
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(text)


async def send_staff_help(update: Update, context: ExamContext) -> None:
    """Staff /help: the staff commands the member's roles allow (nothing for others)."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None or user.id not in context.bot_data.staff.user_ids:
        return
    held = await context.services.staff.roles_of(user.id)
    if not held:
        return  # revoked since the filter was refreshed
    tr = context.tr
    lines = [
        tr.gettext(
            "Staff commands for your roles ({roles}):",
            roles=tr.join(role_label(tr, r) for r in Role if r in held),
        )
    ]
    lines += [tr.gettext(c.line) for c in STAFF_COMMANDS if allows_any(held, c.roles)]
    await message.reply_text("\n".join(lines))


async def refresh_staff(application: Application) -> None:
    """Route staff updates by the current directory (EXAMDESK_ADMIN_IDS and every role)."""
    bot_data = application.bot_data
    directory = await bot_data.services.staff.directory()
    ids = frozenset(directory) | bot_data.settings.admin_ids
    if ids != bot_data.staff.user_ids:
        bot_data.staff.user_ids = ids
        log.info("staff filter: %d member(s)", len(ids))
