"""Scheduler ticks (PTB's JobQueue over APScheduler): thin, idempotent shims over services.

The tables are the truth: each tick reads what is due from the database, so running one
twice, late, or on two instances at once changes nothing more than running it once.
Singleton work (planning, sweeps) still runs on one instance at a time: `_leads` asks the
leader lease (`storage.locks`, a PostgreSQL advisory lock; always granted on SQLite), and
another instance takes over within one tick when the leader dies.
"""

from __future__ import annotations

import logging

from telegram.ext import JobQueue

from bot.context import ExamContext
from handlers import broadcasts

log = logging.getLogger(__name__)

OFFER_SWEEP_SECONDS = 60
TICKET_SWEEP_SECONDS = 60
BROADCAST_TICK_SECONDS = 4  # progress edits: often enough to watch, far below edit limits
REMINDER_PLAN_SECONDS = 60  # cheap when nothing changed (two aggregate queries)


async def _leads(context: ExamContext) -> bool:
    """True on the one instance that runs singleton work now."""
    return await context.services.leader.acquire()


async def plan_reminders(context: ExamContext) -> None:
    """Plan reminders due soon into the outbox; cancel pending ones that no longer apply."""
    if not await _leads(context):
        return
    result = await context.services.reminders.plan()
    if result.created or result.cancelled:
        log.info("reminders: %d planned, %d cancelled", result.created, result.cancelled)


async def expire_waitlist_offers(context: ExamContext) -> None:
    """Offers past their hold time expire; the seat passes to the next in line."""
    if not await _leads(context):
        return
    expired = await context.services.registration.expire_offers()
    if expired:
        log.info("expired %d waitlist offer(s)", expired)


async def expire_unpaid_registrations(context: ExamContext) -> None:
    """Unpaid registrations past their session's payment deadline expire; seats go to the line."""
    if not await _leads(context):
        return
    expired = await context.services.payments.expire_unpaid()
    if expired:
        log.info("expired %d unpaid registration(s)", expired)



async def issue_due_tickets(context: ExamContext) -> None:
    """Admission tickets whose date has come: issue them and tell each candidate once."""
    if not await _leads(context):
        return
    queued = await context.services.tickets.issue_due_tickets()
    if queued:
        log.info("queued %d admission-ticket notification(s)", queued)


async def broadcast_progress(context: ExamContext) -> None:
    """Start due scheduled broadcasts, finish empty ones (report once), edit progress messages."""
    edited = await broadcasts.refresh_progress(context)
    if edited:
        log.debug("edited %d broadcast progress message(s)", edited)


def setup(job_queue: JobQueue) -> None:  # type: ignore[type-arg]
    job_queue.run_repeating(expire_waitlist_offers, interval=OFFER_SWEEP_SECONDS, first=5, name="expire_waitlist_offers")
    job_queue.run_repeating(expire_unpaid_registrations, interval=OFFER_SWEEP_SECONDS, first=7, name="expire_unpaid_registrations")
    job_queue.run_repeating(issue_due_tickets, interval=TICKET_SWEEP_SECONDS, first=10, name="issue_due_tickets")
    job_queue.run_repeating(plan_reminders, interval=REMINDER_PLAN_SECONDS, first=3, name="plan_reminders")
    job_queue.run_repeating(broadcast_progress, interval=BROADCAST_TICK_SECONDS, first=2, name="broadcast_progress")
