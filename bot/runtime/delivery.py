"""Delivery: the outbox sender, the only code that sends bulk or deferred messages.

Entry point: `OutboxSender(bot, outbox, i18n, templates, config)`. `await sender.start()` runs the
loop as a background task; `sender.wake()` after an enqueue; `await sender.stop()`
finishes the sends in flight and gives back every claimed row it did not send;
`await sender.wait_drained()` returns once nothing is pending or in flight (tests, bench,
one-off runs); `await sender.stats()` for staff and health. See docs/delivery.md.

How a row travels: the loop claims a batch of due rows (leased, so a dead worker's rows
come back after the lease), hands each to its chat's lane (one lane per chat, so a
chat's messages go out one at a time and in order), and the lane waits for the chat's
pace, a free in-flight slot and the bot-wide pace, renders the payload in the recipient's
language of that moment and sends it. Results are written by one recorder that commits
whatever has accumulated in one small transaction ("group commit"); a send keeps its
in-flight slot until its result is committed, so a crash can repeat at most
`max_in_flight` messages.

Pacing is ours (no PTB AIORateLimiter): evenly spaced slots per chat and per bot (GCRA),
so a well-behaved sender never meets a 429. When one comes anyway, only that chat waits
(its rows go back to the table with `not_before` = now + retry_after); 429s from two
different chats within a second mean the bot-wide limit, and the bot-wide pace pauses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.i18n import I18n
from bot.runtime.notifications import Rendered, Templates, UnknownTemplate
from bot.services.outbox import ClaimedMessage, OutboxService, OutboxStats, SendResult
from storage.models import utcnow

log = logging.getLogger(__name__)

#: 400 answers that mean the chat is gone for good (Telegram's wording, lower-cased).
_GONE = ("chat not found", "user not found", "peer_id_invalid", "user is deactivated")


@dataclass(frozen=True)
class Limits:
    """Telegram's flood limits (the documented defaults); the sender stays under them."""

    per_second: float = 30.0  # per bot, all chats together
    per_private_chat_per_second: float = 1.0
    per_group_per_minute: float = 20.0
    paid_per_second: float = 1000.0  # rows with payload {"paid": true}: allow_paid_broadcast
    # How far behind its schedule the bot-wide pace may catch up at once (a short burst).
    burst_seconds: float = 0.1
    # Per-chat spacing is this much wider than the limit, to absorb network jitter.
    chat_margin: float = 0.05


@dataclass(frozen=True)
class SenderConfig:
    limits: Limits = field(default_factory=Limits)
    max_in_flight: int = 16  # sends whose result is not yet committed
    batch_size: int = 0  # rows claimed at once; 0: about 4 s of sending, 20..500
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 5  # transient failures (5xx, timeouts, network) before `failed`
    backoff_base: float = 2.0  # seconds; doubled per attempt, ±20 % jitter
    backoff_max: float = 300.0
    poll_interval: float = 1.0  # longest idle sleep without a wake()
    send_timeout: float = 15.0
    defer_after: float = 10.0  # a chat that cannot take a message sooner: back to the table
    bot_wide_window: float = 1.0  # 429s from two chats this close together: bot-wide limit
    release_leases_on_start: bool = False  # single instance (SQLite): old leases were ours


@dataclass
class SenderCounters:
    """What this process did since start (the table holds the truth; these are for bench/logs)."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    expired: int = 0
    too_many_requests: int = 0
    bot_wide_pauses: int = 0
    claims: int = 0


class Pacer:
    """Send slots evenly spaced at `rate` per second, with `burst` slots of catch-up (GCRA)."""

    __slots__ = ("interval", "paused_until", "tat", "tolerance")

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.interval = 1.0 / rate
        self.tolerance = max(0.0, burst - 1.0) * self.interval
        self.tat = 0.0  # theoretical arrival time of the next slot (monotonic seconds)
        self.paused_until = 0.0

    def peek(self, now: float) -> float:
        """When the next slot would be, without taking it."""
        return max(now, self.paused_until, self.tat - self.tolerance)

    def reserve(self, now: float) -> float:
        """Take the next slot; the monotonic time at which it may be used."""
        at = self.peek(now)
        self.tat = max(self.tat, at) + self.interval
        return at

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)
        self.tat = max(self.tat, until)

    def idle(self, now: float) -> bool:
        return self.tat <= now and self.paused_until <= now


class _Lane:
    """The claimed rows of one chat, sent one at a time by one task."""

    __slots__ = ("busy", "chat_id", "queue", "task")

    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id
        self.queue: deque[ClaimedMessage] = deque()
        self.task: asyncio.Task[None] | None = None
        self.busy = False  # sending or recording: stop() lets it finish


class _Recorder:
    """Writes send results in small transactions: everything queued since the last commit."""

    MAX_BATCH = 500

    def __init__(self, outbox: OutboxService) -> None:
        self._outbox = outbox
        self._pending: list[tuple[SendResult, asyncio.Future[None]]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="examdesk:outbox-recorder")

    async def record(self, *results: SendResult) -> None:
        """Queue results and wait until they are committed."""
        loop = asyncio.get_running_loop()
        futures = []
        for result in results:
            fut: asyncio.Future[None] = loop.create_future()
            self._pending.append((result, fut))
            futures.append(fut)
        self._ready.set()
        await asyncio.gather(*futures)

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                batch = self._pending[: self.MAX_BATCH]
                del self._pending[: self.MAX_BATCH]
                error = await self._write([r for r, _ in batch])
                for _, fut in batch:
                    if fut.done():
                        continue
                    if error is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(error)

    async def _write(self, results: list[SendResult]) -> Exception | None:
        delay = 0.1
        for attempt in range(5):
            try:
                await self._outbox.record(results)
                return None
            except Exception as exc:
                log.warning(
                    "recording %d send result(s) failed (%s); attempt %d",
                    len(results),
                    exc,
                    attempt + 1,
                )
                last = exc
                await asyncio.sleep(delay)
                delay *= 4
        log.error(
            "gave up recording %d result(s); those rows are sent again after their lease",
            len(results),
        )
        return last

    async def close(self) -> None:
        """Write what is queued, then stop."""
        while self._pending:
            self._ready.set()
            await asyncio.sleep(0)
            if self._pending:
                await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class _LaneStop(Exception):
    """The sender is stopping: give the lane's rows back."""


def retry_after_seconds(exc: RetryAfter) -> float:
    """Seconds to wait after a 429, whether PTB gives an int or (later) a timedelta."""
    with warnings.catch_warnings():  # PTB 22 warns that `retry_after` becomes a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        retry_after = exc.retry_after
    return float(
        retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after
    )


class OutboxSender:
    """Sends outbox rows within Telegram's limits; one per process (see module doc)."""

    def __init__(
        self,
        bot: Bot,
        outbox: OutboxService,
        i18n: I18n,
        templates: Templates,
        config: SenderConfig | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self.outbox = outbox
        self.i18n = i18n
        self.templates = templates
        self.config = config or SenderConfig()
        self.counters = SenderCounters()
        self._clock = clock
        self._mono = monotonic
        lim = self.config.limits
        self._batch = self.config.batch_size or int(min(500, max(20, lim.per_second * 4)))
        self._low_water = self._batch // 2
        self._pacer = Pacer(lim.per_second, max(1.0, lim.per_second * lim.burst_seconds))
        self._paid_pacer = Pacer(
            lim.paid_per_second, max(1.0, lim.paid_per_second * lim.burst_seconds)
        )
        self._chat_pacers: dict[int, Pacer] = {}
        self._recent_429: deque[tuple[float, int, bool]] = deque()
        self._lanes: dict[int, _Lane] = {}
        self._held: set[int] = set()  # ids of claimed rows not yet settled or given back
        self._renewed_at = 0.0
        self._unsent: list[int] = []  # claimed rows a stopping lane gave back
        self._slots = asyncio.Semaphore(self.config.max_in_flight)
        self._recorder = _Recorder(outbox)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop as a background task (idempotent)."""
        if self._task is not None:
            return
        self._stopping = False
        self._drained.clear()
        self._recorder.start()
        if self.config.release_leases_on_start:
            released = await self.outbox.release_all_leases()
            if released:
                log.info("outbox: took back %d row(s) leased before a restart", released)
        self._task = asyncio.create_task(self._run(), name="examdesk:outbox-sender")

    async def stop(self) -> None:
        """Stop claiming, finish the sends in flight, give back the rest."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        lanes = list(self._lanes.values())
        for lane in lanes:
            if not lane.busy and lane.task is not None:
                lane.task.cancel()
        await asyncio.gather(
            *(lane.task for lane in lanes if lane.task is not None), return_exceptions=True
        )
        await self._recorder.close()
        unsent, self._unsent = self._unsent, []
        if unsent:
            await self.outbox.release(unsent)
            log.info("outbox: gave back %d claimed row(s) on stop", len(unsent))

    def wake(self) -> None:
        """Look at the table now (call after an enqueue) instead of at the next poll."""
        self._wake.set()

    async def wait_drained(self) -> None:
        """Return once no row is pending (due or not) and nothing is in flight."""
        await self._drained.wait()

    async def stats(self) -> OutboxStats:
        return await self.outbox.stats()

    @property
    def in_flight(self) -> int:
        return self.config.max_in_flight - self._slots._value

    # --- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                timeout = await self._step()
            except Exception:
                log.exception("outbox: claiming failed; trying again")
                timeout = self.config.poll_interval
            if timeout is None or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _step(self) -> float | None:
        """Claim more when the lanes run low; None to go round again at
        once, else how long to sleep."""
        await self._renew_leases()
        if len(self._held) > self._low_water:
            return self.config.poll_interval  # a lane wakes us when it drops below
        rows = await self.outbox.claim(self._batch - len(self._held), self.config.lease)
        if rows:
            self._drained.clear()
            self.counters.claims += 1
            self._renewed_at = self._mono()
            self._dispatch(rows)
            return None
        next_due = await self.outbox.next_due_at()
        if next_due is None and not self._held:
            self._drained.set()
        if next_due is None:
            return self.config.poll_interval
        wait = (next_due - self._clock()).total_seconds()
        return min(self.config.poll_interval, max(0.02, wait))

    def _dispatch(self, rows: list[ClaimedMessage]) -> None:
        if len(self._chat_pacers) > 4 * self._batch:
            now = self._mono()
            for chat_id in [
                c for c, p in self._chat_pacers.items() if p.idle(now) and c not in self._lanes
            ]:
                del self._chat_pacers[chat_id]
        for msg in rows:
            if msg.id in self._held:
                continue  # already in a lane here (its lease ran out under us): never twice
            self._held.add(msg.id)
            lane = self._lanes.get(msg.chat_id)
            if lane is None:
                lane = self._lanes[msg.chat_id] = _Lane(msg.chat_id)
                lane.queue.append(msg)
                lane.task = asyncio.create_task(
                    self._run_lane(lane), name=f"examdesk:outbox-chat-{msg.chat_id}"
                )
            else:
                lane.queue.append(msg)

    def _settled(self, *messages: ClaimedMessage) -> None:
        for msg in messages:
            self._held.discard(msg.id)
        if len(self._held) <= self._low_water:
            self._wake.set()

    async def _renew_leases(self) -> None:
        """Keep the leases of rows waiting in the lanes, so only a dead worker's rows expire."""
        if (
            not self._held
            or self._mono() - self._renewed_at < self.config.lease.total_seconds() / 3
        ):
            return
        self._renewed_at = self._mono()
        await self.outbox.extend_leases(sorted(self._held), self.config.lease)

    # --- one chat ----------------------------------------------------------------------

    async def _run_lane(self, lane: _Lane) -> None:
        try:
            while lane.queue and not self._stopping:
                msg = lane.queue[0]
                rest = await self._deliver(lane, msg)
                lane.queue.popleft()
                self._settled(msg)
                if rest is not None:
                    await self._settle_rest(lane, rest)
        except (asyncio.CancelledError, _LaneStop):
            pass
        except Exception:
            log.exception(
                "outbox: chat %s lane failed; its rows return after the lease", lane.chat_id
            )
            self._settled(*lane.queue)
            lane.queue.clear()
        finally:
            if lane.queue:
                self._unsent.extend(m.id for m in lane.queue)
                self._settled(*lane.queue)
                lane.queue.clear()
            if self._lanes.get(lane.chat_id) is lane:
                del self._lanes[lane.chat_id]

    async def _settle_rest(self, lane: _Lane, template: SendResult) -> None:
        """Apply a chat-wide outcome (429, unreachable, deferral) to the lane's other rows."""
        rest = list(lane.queue)
        lane.queue.clear()
        if not rest:
            return
        results = []
        for m in rest:
            if template.outcome == "unreachable":
                results.append(
                    SendResult(m.id, "unreachable", template.error, candidate_id=m.candidate_id)
                )
            else:
                results.append(
                    SendResult(
                        m.id,
                        "retry",
                        template.error,
                        not_before=template.not_before,
                        count_attempt=False,
                    )
                )
        lane.busy = True
        try:
            await self._recorder.record(*results)
        finally:
            lane.busy = False
            self._settled(*rest)

    def _chat_pacer(self, chat_id: int) -> Pacer:
        pacer = self._chat_pacers.get(chat_id)
        if pacer is None:
            lim = self.config.limits
            if chat_id > 0:
                pacer = Pacer(lim.per_private_chat_per_second / (1 + lim.chat_margin))
            else:
                per_minute = lim.per_group_per_minute
                pacer = Pacer(per_minute / 60.0 / (1 + lim.chat_margin), burst=per_minute)
            self._chat_pacers[chat_id] = pacer
        return pacer

    async def _wait_until(self, at: float) -> None:
        delay = at - self._mono()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._stopping:
            raise _LaneStop

    async def _deliver(self, lane: _Lane, msg: ClaimedMessage) -> SendResult | None:
        """Send one row and record the result; a SendResult back means "the same for the rest"."""
        chat = self._chat_pacer(msg.chat_id)
        ahead = chat.peek(self._mono()) - self._mono()
        if ahead > self.config.defer_after:
            # The chat is paced or paused for a while: give its rows back instead of holding them.
            result = SendResult(
                msg.id,
                "retry",
                "waiting for the chat's rate limit",
                not_before=self._clock() + timedelta(seconds=ahead),
                count_attempt=False,
            )
            await self._record(lane, result)
            return result
        await self._wait_until(chat.reserve(self._mono()))
        async with self._slots:
            pacer = self._paid_pacer if msg.paid else self._pacer
            while True:
                await self._wait_until(pacer.reserve(self._mono()))
                if pacer.paused_until <= self._mono():
                    break
            lane.busy = True
            try:
                result, chat_wide = await self._attempt(msg)
                await self._recorder.record(result)
            finally:
                lane.busy = False
        return result if chat_wide else None

    async def _record(self, lane: _Lane, result: SendResult) -> None:
        lane.busy = True
        try:
            await self._recorder.record(result)
        finally:
            lane.busy = False

    async def _attempt(self, msg: ClaimedMessage) -> tuple[SendResult, bool]:
        """Render and send; the result to record and whether it holds for the whole chat."""
        if msg.expires_at is not None and self._clock() >= msg.expires_at:
            self.counters.expired += 1
            return SendResult(msg.id, "cancelled", "expired"), False
        try:
            rendered = self._render(msg)
        except UnknownTemplate as exc:
            self.counters.failed += 1
            return SendResult(msg.id, "failed", f"unknown template {exc.args[0]!r}"), False
        try:
            await self._send(msg, rendered)
        except RetryAfter as exc:
            return self._on_retry_after(msg, exc), True
        except Forbidden as exc:
            return self._unreachable(msg, exc), True
        except ChatMigrated as exc:
            self.counters.retried += 1
            return SendResult(
                msg.id,
                "retry",
                _describe(exc),
                not_before=self._clock(),
                count_attempt=False,
                chat_id=exc.new_chat_id,
            ), False
        except BadRequest as exc:
            if any(gone in exc.message.lower() for gone in _GONE):
                return self._unreachable(msg, exc), True
            self.counters.failed += 1
            return SendResult(msg.id, "failed", _describe(exc)), False
        except InvalidToken as exc:
            # Nothing can be sent with this token; say so loudly and keep the rows.
            log.error("outbox: Telegram refused the bot token (%s); pausing sends for 60 s", exc)
            self._pacer.pause(self._mono() + 60)
            self._paid_pacer.pause(self._mono() + 60)
            return SendResult(
                msg.id,
                "retry",
                _describe(exc),
                not_before=self._clock() + timedelta(seconds=60),
                count_attempt=False,
            ), False
        except (TimedOut, NetworkError, TelegramError) as exc:
            return self._transient(msg, exc), False
        except Exception as exc:
            log.exception("outbox: unexpected error sending row %s", msg.id)
            return self._transient(msg, exc), False
        self.counters.sent += 1
        return SendResult(msg.id, "sent"), False

    def _render(self, msg: ClaimedMessage) -> Rendered:
        language = self.i18n.negotiate(msg.language, msg.telegram_language)
        return self.templates.render(msg.payload, self.i18n.translator(language))

    async def _send(self, msg: ClaimedMessage, rendered: Rendered) -> None:
        t = self.config.send_timeout
        kwargs: dict[str, Any] = {
            "read_timeout": t,
            "write_timeout": t,
            "connect_timeout": t,
            "pool_timeout": t,
        }
        if rendered.reply_markup is not None:
            kwargs["reply_markup"] = rendered.reply_markup
        if msg.paid:
            kwargs["allow_paid_broadcast"] = True
        if rendered.photo:
            await self.bot.send_photo(
                msg.chat_id, rendered.photo, caption=rendered.text or None, **kwargs
            )
        elif rendered.document:
            await self.bot.send_document(
                msg.chat_id, rendered.document, caption=rendered.text or None, **kwargs
            )
        else:
            await self.bot.send_message(msg.chat_id, rendered.text, **kwargs)

    def _on_retry_after(self, msg: ClaimedMessage, exc: RetryAfter) -> SendResult:
        seconds = retry_after_seconds(exc)
        now = self._mono()
        self.counters.too_many_requests += 1
        self._chat_pacer(msg.chat_id).pause(now + seconds)
        # Telegram does not say which limit was hit. One chat's 429 is that chat's; 429s
        # from two chats close together mean the bot-wide pace is too fast: pause it.
        window = self.config.bot_wide_window
        while self._recent_429 and self._recent_429[0][0] < now - window:
            self._recent_429.popleft()
        if any(chat != msg.chat_id and paid == msg.paid for _, chat, paid in self._recent_429):
            self.counters.bot_wide_pauses += 1
            (self._paid_pacer if msg.paid else self._pacer).pause(now + seconds)
            log.warning(
                "outbox: bot-wide flood limit; pausing %s sends for %.0f s",
                "paid" if msg.paid else "all",
                seconds,
            )
        self._recent_429.append((now, msg.chat_id, msg.paid))
        return SendResult(
            msg.id,
            "retry",
            _describe(exc),
            not_before=self._clock() + timedelta(seconds=seconds),
            count_attempt=False,
        )

    def _unreachable(self, msg: ClaimedMessage, exc: TelegramError) -> SendResult:
        self.counters.unreachable += 1
        return SendResult(msg.id, "unreachable", _describe(exc), candidate_id=msg.candidate_id)

    def _transient(self, msg: ClaimedMessage, exc: BaseException) -> SendResult:
        if msg.attempts >= self.config.max_attempts:
            self.counters.failed += 1
            return SendResult(
                msg.id, "failed", f"gave up after {msg.attempts} attempts: {_describe(exc)}"
            )
        self.counters.retried += 1
        delay = min(self.config.backoff_max, self.config.backoff_base * 2 ** (msg.attempts - 1))
        delay *= random.uniform(0.8, 1.2)
        return SendResult(
            msg.id, "retry", _describe(exc), not_before=self._clock() + timedelta(seconds=delay)
        )


def _describe(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, TelegramError) else str(exc)
    return f"{type(exc).__name__}: {message}"[:500]
