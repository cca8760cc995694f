"""Scheduler ticks (PTB's JobQueue over APScheduler): thin, idempotent shims over services.

The tables are the truth: each tick reads what is due from the database, so running one
twice, late, or on two instances at once changes nothing more than running it once.
"""

from __future__ import annotations

import logging

from telegram.ext import JobQueue

from bot.context import ExamContext

log = logging.getLogger(__name__)

OFFER_SWEEP_SECONDS = 60


async def expire_waitlist_offers(context: ExamContext) -> None:
    """Offers past their hold time expire; the seat passes to the next in line."""
    expired = await context.services.registration.expire_offers()
    if expired:
        log.info("expired %d waitlist offer(s)", expired)


def setup(job_queue: JobQueue) -> None:  # type: ignore[type-arg]
    job_queue.run_repeating(expire_waitlist_offers, interval=OFFER_SWEEP_SECONDS, first=5, name="expire_waitlist_offers")
