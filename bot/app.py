"""Wiring: settings → database → services → Telegram application → web app → jobs.

Entry point: `Runtime(settings)`; `await runtime.start()` then `await runtime.stop()`, or
`await runtime.run_until(stop_event)` as `examdesk run` does. Updates reach the handlers
only through the inbox: the webhook route or the polling loop stores each raw update
first, then hands it to the dispatcher (per user in order, users in parallel).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from aiohttp import web
from telegram import Bot, BotCommand, Update
from telegram.error import NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ApplicationBuilder, ContextTypes
from telegram.request import HTTPXRequest

import handlers
from bot import logs
from bot.config import Settings
from bot.i18n import N_, I18n
from bot.runtime.delivery import OutboxSender, SenderConfig
from bot.runtime.dispatch import HandlerFailed, UpdateDispatcher
from bot.runtime.jobs import Jobs
from bot.runtime.ratelimit import Limits, ReplyRateLimiter, SendBudget, retry_after_seconds
from bot.runtime.web import WebDeps, create_web_app
from bot.services import build_services
from bot.services.errors import CatalogMissing
from bot.services.outbox import OutboxService
from bot.services.payments import PaymentConfig
from bot.services.payments_provider import HmacJsonAdapter
from handlers import charts
from handlers.broadcasts import render_progress
from handlers.context import BotData, ExamContext
from handlers.render import LevelNames
from handlers.staff_roles import refresh_staff
from storage.db import Database
from storage.models import utcnow
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

#: The commands menu, set per language at start-up (Telegram wants ISO 639-1 codes).
COMMANDS = (
    ("start", N_("Main menu")),
    ("eligibility", N_("Check which level you may take")),
    ("register", N_("Register for the exam")),
    ("status", N_("My registrations")),
    ("ticket", N_("My admission ticket (PDF)")),
    ("results", N_("My exam results")),
    ("certificate", N_("My certificate (PDF)")),
    ("verify", N_("Check a certificate number")),
    ("ask", N_("Ask the exam centre a question")),
    ("help", N_("What this bot does")),
    ("language", N_("中文 / English")),
    ("cancel", N_("Stop the current step (answers stay saved)")),
)
TELEGRAM_LANGUAGE_CODES = {"zh_Hans": "zh", "en": "en"}
POLL_TIMEOUT = 25  # seconds a getUpdates long poll may wait
RECOVERY_INTERVAL = 60  # seconds between sweeps for updates whose worker died (SQLite)
# PostgreSQL: other instances may have died; their updates are taken within this many seconds
RECOVERY_INTERVAL_SHARED = 3
RECOVERY_BATCH = 1000  # stored updates taken per sweep
DRAIN_TIMEOUT = 25  # seconds SIGTERM waits for in-flight updates


def send_limits(settings: Settings) -> Limits:
    """Telegram's flood limits as configured (this process's share of them)."""
    return Limits(
        per_second=settings.send_per_second,
        per_private_chat_per_second=settings.send_per_chat_per_second,
        per_group_per_minute=settings.send_per_group_per_minute,
        paid_per_second=settings.send_paid_per_second,
    )


def build_application(settings: Settings, bot_data: BotData, budget: SendBudget) -> Application:
    """The PTB application: no Updater (updates come through the inbox), typed context, and
    every direct reply paced by the send budget it shares with the outbox sender."""
    token = settings.bot_token.get_secret_value() if settings.bot_token else ""
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{settings.bot_api_url}/bot")
        .base_file_url(f"{settings.bot_api_url}/file/bot")
        .updater(None)
        .context_types(ContextTypes(context=ExamContext, bot_data=BotData))
        .rate_limiter(ReplyRateLimiter(budget))
        .connect_timeout(10)
        .read_timeout(15)
        .write_timeout(30)
        .get_updates_read_timeout(POLL_TIMEOUT + 10)
        .build()
    )
    application.bot_data.services = bot_data.services
    application.bot_data.i18n = bot_data.i18n
    application.bot_data.settings = bot_data.settings
    handlers.setup(application)
    return application


def build_sender_bot(settings: Settings, config: SenderConfig) -> Bot:
    """The outbox sender's own Bot: the application's is paced by the rate limiter, and the
    sender paces itself from the same budget (through both, every row would wait twice)."""
    token = settings.bot_token.get_secret_value() if settings.bot_token else ""
    return Bot(
        token,
        base_url=f"{settings.bot_api_url}/bot",
        base_file_url=f"{settings.bot_api_url}/file/bot",
        request=HTTPXRequest(
            connection_pool_size=config.max_in_flight + 2,
            connect_timeout=10,
            read_timeout=15,
            write_timeout=30,
        ),
    )


class Runtime:
    """One running examdesk instance: bot, web server and background jobs."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        if settings.bot_token is None:
            raise ValueError("EXAMDESK_BOT_TOKEN is required to run the bot")
        logs.install_redaction()  # personal data never reaches a log handler
        self.settings = settings
        self.database = Database(settings.database_url)
        self.services = build_services(
            self.database,
            clock,
            secret_key=settings.secret_key.get_secret_value(),
            payment_config=PaymentConfig(
                staff_chat_id=settings.staff_chat_id,
                telegram=settings.payment_provider_token is not None,
                stars=settings.payment_stars,
            ),
            public_url=settings.public_url,
            # for the certificate's `verify_<code>` deep link; known once the bot started
            bot_username=self._bot_username,
            staff_ids=settings.admin_ids,
            site_zone=settings.timezone,
            paid_broadcasts=settings.paid_broadcasts,
            # a commit that queued a message wakes the sender (built below) at once
            after_outbox_commit=lambda: self.outbox_sender.wake(),
        )
        self.i18n = I18n(settings.default_language, zone=settings.timezone)
        # The catalogue's level names for renderers that get only a level code (outbox
        # templates, the broadcast progress message); refreshed at start and every minute.
        self.level_names = LevelNames()
        # One budget of Telegram's limits for the direct replies and the outbox sender.
        self.send_budget = SendBudget(send_limits(settings))
        self.application = build_application(
            settings,
            BotData(services=self.services, i18n=self.i18n, settings=settings),
            self.send_budget,
        )
        self.dispatcher = UpdateDispatcher(
            self._process, self.services.inbox, settings.max_concurrent_updates
        )
        # The only sender of bulk and deferred messages; SQLite means one instance, so
        # leases left by its previous life are taken back at start.
        sender_config = SenderConfig(
            limits=self.send_budget.limits,
            max_attempts=settings.send_max_attempts,
            release_leases_on_start=self.database.is_sqlite,
        )
        self.sender_bot = build_sender_bot(settings, sender_config)
        self.outbox_sender = OutboxSender(
            self.sender_bot,
            OutboxService(lambda: UnitOfWork(self.database.sessions), clock),
            self.i18n,
            handlers.templates(self.level_names),
            sender_config,
            budget=self.send_budget,
            clock=clock,
        )
        self.mode = "webhook" if settings.webhook_url else "polling"
        self._runner: web.AppRunner | None = None
        self._poller: asyncio.Task[None] | None = None
        self.web_port: int | None = None

    def _bot_username(self) -> str | None:
        try:
            return self.application.bot.username
        except (AttributeError, RuntimeError):  # not built or not initialised yet
            return None

    async def _process(self, payload: dict[str, Any]) -> None:
        update = Update.de_json(payload, self.application.bot)
        await self.application.process_update(update)
        failed = self.application.bot_data.failed_updates
        if update.update_id in failed:
            failed.discard(update.update_id)
            # Money must never be lost to a passing failure: a payment update is kept and
            # retried (recording it is idempotent on the charge id); others were answered
            # with an apology and are not replayed.
            message = update.message
            raise HandlerFailed(retry=bool(message and message.successful_payment))

    async def recover(self) -> None:
        """Hand updates whose lease ran out (a crash, a failed payment) back to the dispatcher."""
        await self._recover()

    async def start(self) -> None:
        # First: the owner id that every update this instance stores or claims carries.
        await self.services.instance.acquire()
        await self.application.initialize()
        await self.application.start()
        await refresh_staff(self.application)  # before the first update: who is staff
        await self._set_commands()
        await self._refresh_level_names()
        await self._recover(ignore_leases=self.database.is_sqlite)
        await self.sender_bot.initialize()
        await self.outbox_sender.start()
        await self._start_web()
        if self.mode == "webhook":
            await self.application.bot.set_webhook(
                self.settings.webhook_url,
                secret_token=self.settings.webhook_secret.get_secret_value(),
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await self.application.bot.delete_webhook(drop_pending_updates=False)
            self._poller = asyncio.create_task(self._poll(), name="examdesk:polling")
        job_queue = self.application.job_queue
        if job_queue is not None:
            sweep = RECOVERY_INTERVAL if self.database.is_sqlite else RECOVERY_INTERVAL_SHARED
            job_queue.run_repeating(self._recover_job, interval=sweep, first=sweep)
            job_queue.run_repeating(
                self._refresh_level_names, interval=RECOVERY_INTERVAL, first=RECOVERY_INTERVAL
            )
            Jobs(
                self.services,
                self.application.bot,
                self.i18n,
                self.settings.timezone,
                partial(render_progress, levels=self.level_names),
                refresh_staff=partial(refresh_staff, self.application),
                draw_chart=charts.draw,
            ).setup(job_queue)
        log.info("examdesk started in %s mode as @%s", self.mode, self.application.bot.username)

    async def stop(self) -> None:
        """Stop taking updates, finish the ones in flight, then close everything."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if not await self.dispatcher.drain(DRAIN_TIMEOUT):
            log.warning(
                "updates still in flight after %ss; they run again after restart", DRAIN_TIMEOUT
            )
            await self.dispatcher.cancel()
        await self.outbox_sender.stop()  # after the handlers, which may still enqueue
        await self.sender_bot.shutdown()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self.services.leader.release()  # the next instance's tick takes over at once
        await self.services.instance.release()  # unfinished updates go to the others at once
        await self.database.dispose()
        log.info("examdesk stopped")

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def _set_commands(self) -> None:
        for language, code in TELEGRAM_LANGUAGE_CODES.items():
            tr = self.i18n.translator(language)
            commands = [BotCommand(name, tr.gettext(desc)) for name, desc in COMMANDS]
            await self.application.bot.set_my_commands(commands, language_code=code)
        tr = self.i18n.translator(self.i18n.default_language)
        await self.application.bot.set_my_commands(
            [BotCommand(n, tr.gettext(d)) for n, d in COMMANDS]
        )

    async def _start_web(self) -> None:
        deps = WebDeps(
            database=self.database,
            inbox=self.services.inbox,
            dispatcher=self.dispatcher,
            webhook_path=self.settings.webhook_path if self.mode == "webhook" else None,
            webhook_secret=(
                self.settings.webhook_secret.get_secret_value()
                if self.settings.webhook_secret
                else None
            ),
            mode=self.mode,
            tickets=self.services.tickets,
            provider_adapter=(
                HmacJsonAdapter(self.settings.provider_secret.get_secret_value())
                if self.settings.provider_secret
                else None
            ),
            provider_payments=self.services.provider_payments,
            verification=self.services.verification,
            i18n=self.i18n,
        )
        self._runner = web.AppRunner(create_web_app(deps), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.listen_host, self.settings.listen_port)
        await site.start()
        self.web_port = self._runner.addresses[0][1]

    async def _recover(self, *, ignore_leases: bool = False) -> None:
        """Hand stored-but-unprocessed updates (a crash, a dead instance) to the dispatcher.

        Claiming renews each row's lease, so the next sweep does not take them again;
        a start-up claim that ignores leases therefore runs once, not in a loop. Each sweep
        first checks this instance's own lock, so its rows stay its own.
        """
        await self.services.instance.keep()
        payloads = await self.services.inbox.claim_stale(
            limit=RECOVERY_BATCH, ignore_leases=ignore_leases
        )
        if payloads:
            log.info("recovering %d stored update(s)", len(payloads))
        for payload in payloads:
            self.dispatcher.submit(payload)

    async def _recover_job(self, _context: object) -> None:
        await self._recover()

    async def _refresh_level_names(self, _context: object = None) -> None:
        """Take the level names of the catalogue in force (a reload shows within a minute)."""
        try:
            self.level_names.refresh(await self.services.catalog.current())
        except CatalogMissing:
            log.debug("no exam catalogue loaded yet: levels are shown by their codes")

    async def _poll(self) -> None:
        """Long polling: store each batch in the inbox before confirming it with the offset."""
        offset: int | None = None
        backoff = 1.0
        while True:
            try:
                updates = await self.application.bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=Update.ALL_TYPES
                )
                backoff = 1.0
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
                continue
            except (NetworkError, TimedOut, TelegramError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if not updates:
                continue
            payloads = [update.to_dict() for update in updates]
            try:
                # What cannot be stored is set aside, so one bad update never stalls the loop.
                fresh = await self.services.inbox.receive_many(payloads)
            except Exception:
                # Database down: not stored, so not confirmed; the batch comes again.
                log.exception("could not store %d update(s); retrying", len(payloads))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            for payload in fresh:
                self.dispatcher.submit(payload)
            offset = updates[-1].update_id + 1
