"""Scheduler ticks (PTB's JobQueue over APScheduler): thin, idempotent shims over services.

The tables are the truth: each tick reads what is due from the database, so running one
twice, late, or on two instances at once changes nothing more than running it once.
Singleton work (planning, sweeps) still runs on one instance at a time: `_leads` asks the
leader lease (`storage.locks`, a PostgreSQL advisory lock; always granted on SQLite), and
another instance takes over within one tick when the leader dies.

Entry point: `Jobs(services, bot, i18n, zone, render_progress, refresh_staff=...,
draw_chart=...).setup(job_queue)`. What the ticks need from the Telegram edge (how a
broadcast's progress message looks, how the staff filter is refreshed, how the staff
digest's chart is drawn) is handed in by the composition root; this module never imports
`handlers`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot
from telegram.ext import JobQueue

from bot.i18n import I18n, Translator
from bot.runtime.live import edit_live_message
from bot.runtime.notifications import Rendered
from bot.services import Services
from bot.services.broadcasts import Progress
from bot.services.stats import Figures

log = logging.getLogger(__name__)

OFFER_SWEEP_SECONDS = 60
TICKET_SWEEP_SECONDS = 60
BROADCAST_TICK_SECONDS = 4  # progress edits: often enough to watch, far below edit limits
REMINDER_PLAN_SECONDS = 60  # cheap when nothing changed (two aggregate queries)
RESULTS_RELEASE_SECONDS = 60
THROTTLE_PURGE_SECONDS = 3600  # certificate look-up counters past their window
# A role granted on another instance routes here within this; a revocation needs no tick
# (every staff handler reads the member's roles from the database).
STAFF_REFRESH_SECONDS = 30
STAFF_DIGEST_SECONDS = 60  # the digest goes out within a minute of the catalogue's time

ProgressRenderer = Callable[[Progress, Translator, str], Rendered]
ChartDrawer = Callable[[Figures, Translator], bytes]  # the figures' chart as PNG (CPU work)


class Jobs:
    """The periodic ticks of one instance."""

    def __init__(
        self,
        services: Services,
        bot: Bot,
        i18n: I18n,
        zone: str,
        render_progress: ProgressRenderer,
        *,
        refresh_staff: Callable[[], Awaitable[None]] | None = None,
        draw_chart: ChartDrawer | None = None,
    ) -> None:
        self.services = services
        self.bot = bot
        self.i18n = i18n
        self.zone = zone
        self.render_progress = render_progress
        self.refresh_staff = refresh_staff
        self.draw_chart = draw_chart

    async def _leads(self) -> bool:
        """True on the one instance that runs singleton work now."""
        return await self.services.leader.acquire()

    async def plan_reminders(self, _context: Any = None) -> None:
        """Plan reminders due soon into the outbox; cancel pending ones that no longer apply."""
        if not await self._leads():
            return
        result = await self.services.reminders.plan()
        if result.created or result.cancelled:
            log.info("reminders: %d planned, %d cancelled", result.created, result.cancelled)

    async def expire_waitlist_offers(self, _context: Any = None) -> None:
        """Offers past their hold time expire; the seat passes to the next in line."""
        if not await self._leads():
            return
        expired = await self.services.registration.expire_offers()
        if expired:
            log.info("expired %d waitlist offer(s)", expired)

    async def expire_unpaid_registrations(self, _context: Any = None) -> None:
        """Unpaid registrations past their session's payment deadline expire."""
        if not await self._leads():
            return
        expired = await self.services.payments.expire_unpaid()
        if expired:
            log.info("expired %d unpaid registration(s)", expired)

    async def issue_due_tickets(self, _context: Any = None) -> None:
        """Admission tickets whose date has come: issue them and tell each candidate once."""
        if not await self._leads():
            return
        queued = await self.services.tickets.issue_due_tickets()
        if queued:
            log.info("queued %d admission-ticket notification(s)", queued)

    async def release_results(self, _context: Any = None) -> None:
        """Sessions whose results time has come: release them and tell each candidate once."""
        if not await self._leads():
            return
        queued = await self.services.results_release.release_due()
        if queued:
            log.info("queued %d results notification(s)", queued)

    async def purge_lookup_throttle(self, _context: Any = None) -> None:
        """Drop certificate look-up counters whose window has passed."""
        if not await self._leads():
            return
        dropped = await self.services.verification.purge_throttle()
        if dropped:
            log.info("dropped %d expired look-up counter(s)", dropped)

    async def broadcast_progress(self, _context: Any = None) -> None:
        """Start due scheduled broadcasts, finish empty ones (report once), edit progress."""
        changed = await self.services.broadcasts.tick()
        for p in changed:
            rendered = self.render_progress(p, self.i18n.translator(p.language), self.zone)
            await edit_live_message(self.bot, p.chat_id, p.message_id, rendered)
        if changed:
            log.debug("edited %d broadcast progress message(s)", len(changed))

    async def refresh_staff_filter(self, _context: Any = None) -> None:
        """Every instance: route staff updates by the current staff directory."""
        if self.refresh_staff is not None:
            await self.refresh_staff()

    async def staff_digest(self, _context: Any = None) -> None:
        """Once a day at the catalogue's time: the day's figures and chart to the staff chat
        (outbox key `digest:<date>`: a second tick, a restart or another instance queue
        nothing more)."""
        if not await self._leads():
            return
        digest = await self.services.stats.digest_due()
        if digest is None:
            return
        chart = None
        if self.draw_chart is not None:
            # The staff chat reads the site's language (what the sender renders it in).
            tr = self.i18n.translator(self.i18n.default_language)
            chart = await asyncio.to_thread(self.draw_chart, digest.figures, tr)
        if await self.services.stats.queue_digest(digest, chart):
            log.info("queued the staff digest for %s", digest.day)

    def setup(self, job_queue: JobQueue) -> None:  # type: ignore[type-arg]
        every = job_queue.run_repeating
        every(
            self.refresh_staff_filter,
            interval=STAFF_REFRESH_SECONDS,
            first=STAFF_REFRESH_SECONDS,
            name="refresh_staff_filter",
        )
        every(
            self.expire_waitlist_offers,
            interval=OFFER_SWEEP_SECONDS,
            first=5,
            name="expire_waitlist_offers",
        )
        every(
            self.expire_unpaid_registrations,
            interval=OFFER_SWEEP_SECONDS,
            first=7,
            name="expire_unpaid_registrations",
        )
        every(
            self.issue_due_tickets,
            interval=TICKET_SWEEP_SECONDS,
            first=10,
            name="issue_due_tickets",
        )
        every(self.plan_reminders, interval=REMINDER_PLAN_SECONDS, first=3, name="plan_reminders")
        every(
            self.release_results,
            interval=RESULTS_RELEASE_SECONDS,
            first=12,
            name="release_results",
        )
        every(
            self.purge_lookup_throttle,
            interval=THROTTLE_PURGE_SECONDS,
            first=60,
            name="purge_lookup_throttle",
        )
        every(self.staff_digest, interval=STAFF_DIGEST_SECONDS, first=20, name="staff_digest")
        every(
            self.broadcast_progress,
            interval=BROADCAST_TICK_SECONDS,
            first=2,
            name="broadcast_progress",
        )
