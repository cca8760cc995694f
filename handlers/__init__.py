"""Telegram adapters, one module per flow. `setup(application)` registers them in order.

Each flow module declares what it offers: `setup(application)` for its handlers,
`TEMPLATES` (notification renderers the outbox sender uses), `INPUTS` and `RESUMES`
(how it takes a typed answer and shows its current step again), and `STAFF_FILES`
(staff file commands, `/<command>` + a file, routed by `handlers.staff_files`). This
package collects them; the composition root (`bot.app`) hands `templates()` to the
sender. No module fills a process-wide registry.

Order matters: PTB runs the first matching handler of each group. Identity runs first
(group -1) so every handler has the candidate and the translator; flows that own a
conversation step come before the common commands' catch-alls; fallbacks come last so
they only see what no flow wanted.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from telegram.ext import Application

from bot.i18n import Translator
from bot.runtime.notifications import Rendered, Renderer, Templates
from handlers import (
    broadcasts,
    certificates,
    checkin,
    common,
    corrections,
    eligibility,
    errors,
    find,
    flows,
    identity,
    notifications,
    payments,
    payments_staff,
    refunds,
    registration,
    remarks,
    reminders,
    results,
    results_staff,
    rosters,
    staff,
    staff_files,
    stats,
    support,
    tickets,
    verify,
)
from handlers.context import FlowRouter, InputHandler
from handlers.render import LevelNames

#: Every flow module, in the order their handlers are registered.
FLOW_MODULES: tuple[ModuleType, ...] = (
    notifications,
    verify,  # before common: its /start takes the verify_<code> deep link
    checkin,  # before common: its /start takes the ci_<code> deep link (the ticket's QR)
    common,
    eligibility,
    registration,
    corrections,  # a frozen identity: the candidate's request, staff's /correct
    tickets,
    reminders,  # the reminder template, its button, the staff list
    payments,  # before flows: successful_payment, receipts
    staff_files,  # before payments_staff: a file captioned /<command> is not a statement
    payments_staff,  # before flows: staff CSV files; typed rejection reasons in group 1
    broadcasts,  # staff only; its typed input goes through flows
    remarks,  # 复核: /remark, its typed reason; staff cards, /remarks; typed scores group 3
    results,  # staff's /results_release, the candidate's /results
    results_staff,  # staff's results file (STAFF_FILES), /results_status, release report
    certificates,  # staff's import (STAFF_FILES), assign, revoke; the holder's /certificate
    support,  # "Ask the exam centre": /ask, staff replies to cards (group 4), /message
    staff,  # /staff: members and roles (admin); anyone else's /staff gets their id
    rosters,  # staff's /roster, /signin, /export: documents only
    stats,  # staff's /stats; the daily digest's templates
    find,  # staff's /find, the candidate's card (desk:card, desk:fullid)
    refunds,  # finance: /cancel_registration, /change_level, desk:cancel, /refunds (group 6)
)


def _collect(name: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for module in FLOW_MODULES:
        for key, value in getattr(module, name, {}).items():
            if key in found:
                raise ValueError(f"{name}[{key!r}] is declared twice ({module.__name__})")
            found[str(key)] = value
    return found


def templates(levels: LevelNames | None = None) -> Templates:
    """The notification renderers every flow module declares.

    Outbox params name a level by its code; with `levels` (the catalogue's names, kept
    current by the composition root) each renderer also gets `params["level_names"]`,
    as if the service had put the names there when it queued the message.
    """
    renderers: dict[str, Renderer] = _collect("TEMPLATES")
    if levels is not None:
        renderers = {name: _with_level_names(r, levels) for name, r in renderers.items()}
    return Templates(renderers)


def _with_level_names(renderer: Renderer, levels: LevelNames) -> Renderer:
    def render(params: dict[str, Any], tr: Translator) -> Rendered:
        code = params.get("level_code")
        if code in levels and "level_names" not in params:
            params = {**params, "level_names": levels[code]}
        return renderer(params, tr)

    return render


def flow_router() -> FlowRouter:
    inputs: dict[str, InputHandler] = _collect("INPUTS")
    resumes: dict[str, InputHandler] = _collect("RESUMES")
    # Outside any flow, a message is offered to the exam centre (support.on_free_message).
    return FlowRouter(inputs, resumes, fallback=support.on_free_message)


def setup(application: Application) -> None:
    # Who is staff until `staff_roles.refresh_staff` reads the roles at start-up.
    application.bot_data.staff.user_ids = application.bot_data.settings.admin_ids
    identity.setup(application)
    # Each module's STAFF_FILES (`/<command>` + a file), routed by handlers.staff_files.
    application.bot_data.staff_files = _collect("STAFF_FILES")
    for module in FLOW_MODULES:
        if hasattr(module, "setup"):
            module.setup(application)
    flows.setup(application, flow_router())  # after the flows: typed answers to the current flow
    common.setup_fallbacks(application)
    errors.setup(application)
