"""Telegram's flood limits: one send budget per process, shared by direct replies and the outbox.

Entry points: `Limits` (the numbers), `SendBudget(limits)` (the pacing state: the bot-wide
pace, the paid-broadcast pace and one pace per chat), `ReplyRateLimiter(budget)` (PTB's
`BaseRateLimiter` seam, given to `ApplicationBuilder().rate_limiter(...)`), and
`retry_after_seconds(exc)`.

Telegram counts messages (`send*`, copies and forwards; not chat actions, edits or
callback answers) against about 30/s per bot, 1/s per private chat and 20/min per group.
Direct replies and outbox messages come out of the same budget: a reply reserves its
bot-wide slot at once (in arrival order), the outbox sender (`bot.runtime.delivery`) only
takes a slot that is free now while no reply is waiting for one, so replies go first and
the outbox gets what is left.

Per chat, a reply uses up the chat's pace (so the outbox leaves a chat in conversation
alone for an interval) but does not wait for it: Telegram allows a chat short bursts over
1/s, and a conversation (an answer, then the next question) would otherwise lag a second
behind every message. A 429 pauses the chat's pace (two chats within a second: the bot-wide
pace); a reply that met it waits the pause out and is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

#: Bot API methods that post messages, beside `send*` (`sendChatAction` posts none).
_MESSAGE_METHODS = frozenset({"copymessage", "copymessages", "forwardmessage", "forwardmessages"})


def counts_as_message(endpoint: str) -> bool:
    """Whether a Bot API call posts a message and so counts against the flood limits."""
    method = endpoint.lower()
    return (method.startswith("send") and method != "sendchataction") or (
        method in _MESSAGE_METHODS
    )


def retry_after_seconds(exc: RetryAfter) -> float:
    """Seconds to wait after a 429, whether PTB gives an int or (later) a timedelta."""
    with warnings.catch_warnings():  # PTB 22 warns that `retry_after` becomes a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        retry_after = exc.retry_after
    return float(
        retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after
    )


@dataclass(frozen=True)
class Limits:
    """Telegram's flood limits (the documented defaults); the bot stays under them."""

    per_second: float = 30.0  # per bot, all chats together
    per_private_chat_per_second: float = 1.0
    per_group_per_minute: float = 20.0
    paid_per_second: float = 1000.0  # rows with payload {"paid": true}: allow_paid_broadcast
    # How far behind its schedule the bot-wide pace may catch up at once (a short burst).
    burst_seconds: float = 0.1
    # Per-chat spacing is this much wider than the limit, to absorb network jitter.
    chat_margin: float = 0.05
    # 429s from two different chats this close together mean the bot-wide limit.
    bot_wide_window: float = 1.0


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

    def consume(self, now: float) -> None:
        """Count a send made now without waiting for its slot. The next slot is then at
        most one interval away: a burst of sends does not push it further out."""
        self.tat = min(max(self.tat, now) + self.interval, now + self.interval + self.tolerance)

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)
        self.tat = max(self.tat, until)

    def idle(self, now: float) -> bool:
        return self.tat <= now and self.paused_until <= now


class SendBudget:
    """The process's share of Telegram's limits; every message sent takes a slot here."""

    #: Chat paces kept before idle ones are forgotten (an idle pace is a fresh one).
    MAX_CHATS = 2000

    def __init__(
        self, limits: Limits | None = None, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = lim = limits or Limits()
        self._mono = monotonic
        self.bot = Pacer(lim.per_second, max(1.0, lim.per_second * lim.burst_seconds))
        self.paid = Pacer(lim.paid_per_second, max(1.0, lim.paid_per_second * lim.burst_seconds))
        self._chats: dict[int | str, Pacer] = {}
        self._recent_429: deque[tuple[float, int | str | None, bool]] = deque()
        self._replies_waiting = 0
        self._no_replies_waiting = asyncio.Event()
        self._no_replies_waiting.set()
        self.bot_wide_pauses = 0

    def pace(self, paid: bool) -> Pacer:
        """The bot-wide pace (paid broadcasts have their own)."""
        return self.paid if paid else self.bot

    def chat(self, chat_id: int | str) -> Pacer:
        """The pace of one chat: private chats 1/s, groups 20/min with a burst of 20."""
        pacer = self._chats.get(chat_id)
        if pacer is None:
            if len(self._chats) >= self.MAX_CHATS:
                self._forget_idle_chats()
            lim = self.limits
            if isinstance(chat_id, int) and chat_id > 0:
                pacer = Pacer(lim.per_private_chat_per_second / (1 + lim.chat_margin))
            else:  # groups, supergroups and channels (negative ids or @usernames)
                per_minute = lim.per_group_per_minute
                pacer = Pacer(per_minute / 60.0 / (1 + lim.chat_margin), burst=per_minute)
            self._chats[chat_id] = pacer
        return pacer

    def _forget_idle_chats(self) -> None:
        now = self._mono()
        for chat_id in [c for c, p in self._chats.items() if p.idle(now)]:
            del self._chats[chat_id]

    async def _sleep_until(self, at: float) -> None:
        delay = at - self._mono()
        if delay > 0:
            await asyncio.sleep(delay)

    async def reply_slot(self, chat_id: int | str | None, paid: bool = False) -> None:
        """Wait for a direct reply's turn: the bot-wide pace, ahead of the outbox, and only a
        pause of its chat (after a 429), not the chat's pace (see the module doc)."""
        if chat_id is not None:
            chat = self.chat(chat_id)
            await self._sleep_until(chat.paused_until)
            chat.consume(self._mono())
        pacer = self.pace(paid)
        self._replies_waiting += 1
        self._no_replies_waiting.clear()
        try:
            # A pause (a 429 seen meanwhile) moves the slot: reserve again after it.
            while True:
                await self._sleep_until(pacer.reserve(self._mono()))
                if pacer.paused_until <= self._mono():
                    return
        finally:
            self._replies_waiting -= 1
            if not self._replies_waiting:
                self._no_replies_waiting.set()

    async def outbox_slot(self, paid: bool = False) -> None:
        """Wait for a bot-wide slot that is free now and that no direct reply is waiting for.

        Unlike a reply, the outbox never reserves ahead: a reply that arrives while an
        outbox message waits still gets the next slot.
        """
        pacer = self.pace(paid)
        while True:
            await self._no_replies_waiting.wait()
            now = self._mono()
            at = pacer.peek(now)
            if at > now:
                await asyncio.sleep(at - now)
                continue
            if not self._replies_waiting:
                pacer.reserve(now)
                return

    def on_retry_after(self, chat_id: int | str | None, paid: bool, seconds: float) -> bool:
        """A 429 on a message to `chat_id`: pause that chat, and the bot-wide pace when
        another chat met one within the window. True when the bot-wide pace paused."""
        now = self._mono()
        if chat_id is not None:
            self.chat(chat_id).pause(now + seconds)
        # Telegram does not say which limit was hit. One chat's 429 is that chat's; 429s
        # from two chats close together mean the bot-wide pace is too fast: pause it.
        window = self.limits.bot_wide_window
        while self._recent_429 and self._recent_429[0][0] < now - window:
            self._recent_429.popleft()
        bot_wide = any(c != chat_id and p == paid for _, c, p in self._recent_429)
        if bot_wide:
            self.bot_wide_pauses += 1
            self.pace(paid).pause(now + seconds)
            log.warning(
                "bot-wide flood limit; pausing %s sends for %.0f s",
                "paid" if paid else "all",
                seconds,
            )
        self._recent_429.append((now, chat_id, paid))
        return bot_wide

    def pause_all(self, seconds: float) -> None:
        """Stop every send for a while (e.g. Telegram refused the token)."""
        until = self._mono() + seconds
        self.bot.pause(until)
        self.paid.pause(until)


def _chat_key(chat_id: object) -> int | str | None:
    """The chat a call goes to, as the budget keys it (PTB may pass ids as strings)."""
    if isinstance(chat_id, int):
        return chat_id
    if isinstance(chat_id, str):
        try:
            return int(chat_id)
        except ValueError:
            return chat_id  # a channel's @username
    return None


class ReplyRateLimiter(BaseRateLimiter[int]):
    """Paces every message the bot sends directly (replies, apologies, staff alerts).

    Messages take a slot of the shared `SendBudget`; other calls (edits, callback answers,
    webhook and command set-up) are not paced. A 429 on any call is waited out and the
    call made again, up to `max_retries` times (`rate_limit_args` may say otherwise) and
    only when Telegram asks for at most `max_retry_after` seconds: a user's updates wait
    behind their reply, so a longer ban fails the update (and is logged) instead.
    """

    def __init__(
        self, budget: SendBudget, *, max_retries: int = 3, max_retry_after: float = 30.0
    ) -> None:
        self.budget = budget
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.retried = 0  # 429s waited out since start (bench, logs)

    async def initialize(self) -> None:
        """Nothing to set up: the budget lives as long as the process."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        message = counts_as_message(endpoint)
        chat_id = _chat_key(data.get("chat_id"))
        paid = bool(data.get("allow_paid_broadcast"))
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        attempt = 0
        while True:
            if message:
                await self.budget.reply_slot(chat_id, paid)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_after_seconds(exc)
                if message:
                    self.budget.on_retry_after(chat_id, paid, seconds)
                if attempt >= retries or seconds > self.max_retry_after:
                    raise
                attempt += 1
                self.retried += 1
                log.info("%s to %s: 429, retrying in %.0f s", endpoint, chat_id, seconds)
                if not message:  # a message waits in reply_slot, behind the paused pace
                    await asyncio.sleep(seconds)
