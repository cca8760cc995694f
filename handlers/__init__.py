"""Telegram adapters, one module per flow. `setup(application)` registers them in order.

Order matters: PTB runs the first matching handler of each group. Identity runs first
(group -1) so every handler has the candidate and the translator; flows that own a
conversation step come before the common commands' catch-alls; fallbacks come last so
they only see what no flow wanted.
"""

from __future__ import annotations

from telegram.ext import Application

from handlers import (
    broadcasts,
    common,
    eligibility,
    errors,
    flows,
    identity,
    notifications,
    payments,
    registration,
    reminders,
    tickets,
)


def setup(application: Application) -> None:
    notifications.setup(application)
    identity.setup(application)
    common.setup(application)
    eligibility.setup(application)
    registration.setup(application)
    tickets.setup(application)
    reminders.setup(application)  # the reminder template, its button, the staff list
    payments.setup(application)  # before flows: successful_payment, receipts, staff CSV files
    broadcasts.setup(application)  # staff only; its typed input goes through flows
    flows.setup(application)  # after the flows: routes typed answers to the current flow
    common.setup_fallbacks(application)
    errors.setup(application)
