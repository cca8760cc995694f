"""Telegram adapters, one module per flow. `setup(application)` registers them in order.

Order matters: PTB runs the first matching handler of each group. Identity runs first
(group -1) so every handler has the candidate and the translator; flows that own a
conversation step come before the common commands' catch-alls; fallbacks come last so
they only see what no flow wanted.
"""

from __future__ import annotations

from telegram.ext import Application

from handlers import common, eligibility, errors, flows, identity, notifications, registration


def setup(application: Application) -> None:
    notifications.setup(application)
    identity.setup(application)
    common.setup(application)
    eligibility.setup(application)
    registration.setup(application)
    flows.setup(application)  # after the flows: routes typed answers to the current flow
    common.setup_fallbacks(application)
    errors.setup(application)
