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

Fenced sends: each claim carries a token, and the sender records, renews and gives back
a row only under its claim's token. Right before a send it checks, by its own clock,
that the row's lease still has `lease_safety` of its length left; a process that was
frozen past its lease (another worker may have taken the row and sent it) drops the row
instead, and a renewal that finds a row claimed by someone else drops it too.

Pacing comes from the process's `SendBudget` (`bot.runtime.ratelimit`), shared with the
direct replies: evenly spaced slots per chat and per bot (GCRA), replies first, so a
well-behaved bot never meets a 429. When one comes anyway, only that chat waits (its rows
go back to the table with `not_before` = now + retry_after); 429s from two different
chats within a second mean the bot-wide limit, and the bot-wide pace pauses. The sender's
`bot` must not have PTB's rate limiter too (it would pace every message twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

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

from bot.i18n import I18n
from bot.runtime.notifications import Rendered, Templates, UnknownTemplate
from bot.runtime.ratelimit import Limits, SendBudget, retry_after_seconds
from bot.services.outbox import ClaimedMessage, OutboxService, OutboxStats, SendResult
from storage.models import utcnow

log = logging.getLogger(__name__)

#: 400 answers that mean the chat is gone for good (Telegram's wording, lower-cased).
_GONE = ("chat not found", "user not found", "peer_id_invalid", "user is deactivated")


@dataclass(frozen=True)
class SenderConfig:
    limits: Limits = field(default_factory=Limits)  # when no shared SendBudget is given
    max_in_flight: int = 16  # sends whose result is not yet committed
    batch_size: int = 0  # rows claimed at once; 0: about 4 s of sending, 20..500
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 5  # transient failures (5xx, timeouts, network) before `failed`
    backoff_base: float = 2.0  # seconds; doubled per attempt, ±20 % jitter
    backoff_max: float = 300.0
    poll_interval: float = 1.0  # longest idle sleep without a wake()
    send_timeout: float = 15.0
    defer_after: float = 10.0  # a chat that cannot take a message sooner: back to the table
    release_leases_on_start: bool = False  # single instance (SQLite): old leases were ours
    # A row is sent only while this share of its lease is left by our clock: the send may
    # take `send_timeout` (15 s of a 60 s lease) and must end before another worker may
    # claim the row. Leases are renewed once this share of them has passed.
    lease_safety: float = 1 / 3


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
    fenced: int = 0  # rows dropped unsent: their claim was lost or about to run out


class _Claim(NamedTuple):
    """This worker's hold on a row: the claim's token and the lease as last renewed."""

    token: str
    lease_until: datetime


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
        budget: SendBudget | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self.outbox = outbox
        self.i18n = i18n
        self.templates = templates
        self.config = config or SenderConfig()
        # Shared with the direct replies (bot.app); alone (tests, bench) it has its own.
        self.budget = budget or SendBudget(self.config.limits, monotonic=monotonic)
        self.counters = SenderCounters()
        self._clock = clock
        self._mono = monotonic
        lim = self.budget.limits
        self._batch = self.config.batch_size or int(min(500, max(20, lim.per_second * 4)))
        self._low_water = self._batch // 2
        self._lanes: dict[int, _Lane] = {}
        self._held: dict[int, _Claim] = {}  # claimed rows not yet settled or given back
        self._unsent: list[tuple[int, str]] = []  # claims a stopping lane gave back
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
        for msg in rows:
            claim = _Claim(msg.claim_token, msg.lease_until)
            if msg.id in self._held:
                # Already in a lane here (its lease ran out under us): never twice, but
                # the lane now sends and records it under the new claim.
                self._held[msg.id] = claim
                continue
            self._held[msg.id] = claim
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
            self._held.pop(msg.id, None)
        if len(self._held) <= self._low_water:
            self._wake.set()

    def _token(self, msg: ClaimedMessage) -> str:
        """The token to record a row under: its current claim's (the claim's it came with
        once the claim is lost, which then changes nothing)."""
        claim = self._held.get(msg.id)
        return claim.token if claim is not None else msg.claim_token

    async def _renew_leases(self) -> None:
        """Keep the leases of rows waiting in the lanes, so only a dead worker's rows expire;
        forget the rows whose claim another worker took over meanwhile."""
        if not self._held:
            return
        renew_before = self._clock() + self.config.lease * (1 - self.config.lease_safety)
        if min(claim.lease_until for claim in self._held.values()) > renew_before:
            return
        asked = {row_id: claim.token for row_id, claim in self._held.items()}
        renewed = await self.outbox.extend_leases(sorted(asked.items()), self.config.lease)
        lost = []
        for row_id, token in asked.items():
            claim = self._held.get(row_id)
            if claim is None or claim.token != token:
                continue  # settled or claimed again while we asked
            if row_id in renewed.ids:
                self._held[row_id] = _Claim(token, renewed.lease_until)
            else:
                # Taken over: its lane drops it (see _deliver); it no longer counts as held.
                lost.append(row_id)
                del self._held[row_id]
        if lost:
            log.warning(
                "outbox: %d claimed row(s) were taken over by another worker (%s …)",
                len(lost),
                lost[0],
            )

    def _may_send(self, msg: ClaimedMessage) -> bool:
        """Whether the row is still ours with a safe part of its lease left (our clock):
        a worker frozen past its lease, whose row another worker may have sent, must not."""
        claim = self._held.get(msg.id)
        margin = self.config.lease * self.config.lease_safety
        if claim is not None and claim.lease_until - self._clock() >= margin:
            return True
        self.counters.fenced += 1
        log.warning("outbox: row %s dropped unsent: its claim was lost or runs out", msg.id)
        return False

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
                self._unsent.extend(
                    (m.id, self._held[m.id].token) for m in lane.queue if m.id in self._held
                )
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
            if m.id not in self._held:
                continue  # claimed by another worker: not ours to settle
            if template.outcome == "unreachable":
                results.append(
                    SendResult(
                        m.id,
                        "unreachable",
                        template.error,
                        claim_token=self._token(m),
                        candidate_id=m.candidate_id,
                    )
                )
            else:
                results.append(
                    SendResult(
                        m.id,
                        "retry",
                        template.error,
                        claim_token=self._token(m),
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

    async def _wait_until(self, at: float) -> None:
        delay = at - self._mono()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._stopping:
            raise _LaneStop

    async def _deliver(self, lane: _Lane, msg: ClaimedMessage) -> SendResult | None:
        """Send one row and record the result; a SendResult back means "the same for the rest"."""
        chat = self.budget.chat(msg.chat_id)
        ahead = chat.peek(self._mono()) - self._mono()
        if ahead > self.config.defer_after:
            # The chat is paced or paused for a while: give its rows back instead of holding them.
            result = SendResult(
                msg.id,
                "retry",
                "waiting for the chat's rate limit",
                claim_token=self._token(msg),
                not_before=self._clock() + timedelta(seconds=ahead),
                count_attempt=False,
            )
            await self._record(lane, result)
            return result
        await self._wait_until(chat.reserve(self._mono()))
        async with self._slots:
            await self.budget.outbox_slot(msg.paid)  # after the direct replies waiting
            if self._stopping:
                raise _LaneStop
            if not self._may_send(msg):
                return None
            lane.busy = True
            try:
                result, chat_wide = await self._attempt(msg)
                result = replace(result, claim_token=self._token(msg))
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
            message_id = await self._send(msg, rendered)
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
            self.budget.pause_all(60)
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
        return SendResult(msg.id, "sent", message_id=message_id), False

    def _render(self, msg: ClaimedMessage) -> Rendered:
        language = self.i18n.negotiate(msg.language, msg.telegram_language)
        return self.templates.render(msg.payload, self.i18n.translator(language))

    async def _send(self, msg: ClaimedMessage, rendered: Rendered) -> int:
        """Send one rendered message; Telegram's id of it (kept: a card's buttons can be
        taken away later)."""
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
            sent = await self.bot.send_photo(
                msg.chat_id, rendered.photo, caption=rendered.text or None, **kwargs
            )
        elif rendered.document:
            sent = await self.bot.send_document(
                msg.chat_id, rendered.document, caption=rendered.text or None, **kwargs
            )
        elif rendered.venue:
            venue = rendered.venue
            sent = await self.bot.send_venue(
                msg.chat_id,
                latitude=venue.latitude,
                longitude=venue.longitude,
                title=venue.title,
                address=venue.address,
                **kwargs,
            )
        else:
            sent = await self.bot.send_message(msg.chat_id, rendered.text, **kwargs)
        return sent.message_id

    def _on_retry_after(self, msg: ClaimedMessage, exc: RetryAfter) -> SendResult:
        seconds = retry_after_seconds(exc)
        self.counters.too_many_requests += 1
        if self.budget.on_retry_after(msg.chat_id, msg.paid, seconds):
            self.counters.bot_wide_pauses += 1
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
