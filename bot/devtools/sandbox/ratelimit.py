"""Bot API sandbox: Telegram-like flood limits with token buckets.

Each limit is a bucket holding up to `capacity` tokens that refills continuously at
`capacity / period`. A send takes one token from every bucket it touches, or none if
any bucket is short (so refused calls do not count). Consequences: a sender pacing
exactly at the limit is never refused, a short burst up to the capacity is allowed,
and each check is O(1) however many messages have been sent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class RateLimits:
    """Flood limits (Telegram's documented defaults); pass to `Sandbox(rate_limits=...)`."""

    per_bot_per_second: float = 30
    per_private_chat_per_second: float = 1
    per_group_per_minute: float = 20
    paid_broadcast_per_second: float = 1000
    # Requests reach the server with network jitter; a sender that paced exactly at the
    # limit may arrive a few milliseconds early. Accept that much of a token as slack.
    tolerance: float = 0.05

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Bucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, capacity: float, period: float, now: float) -> None:
        self.capacity = capacity
        self.rate = capacity / period
        self.tokens = capacity
        self.stamp = now

    def refill(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens


class RateLimiter:
    """Applies one `RateLimits` to message-sending calls."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._buckets: dict[tuple[Any, ...], _Bucket] = {}

    def _bucket(self, key: tuple[Any, ...], capacity: float, period: float, now: float) -> _Bucket:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(capacity, period, now)
        return b

    def acquire(self, token: str, chat_id: int, chat_type: str, paid: bool) -> int | None:
        """Take a send slot; return None when allowed, else `retry_after` in whole seconds."""
        lim = self.limits
        now = self._clock()
        if paid:
            buckets = [self._bucket(("paid", token), lim.paid_broadcast_per_second, 1.0, now)]
        else:
            buckets = [self._bucket(("bot", token), lim.per_bot_per_second, 1.0, now)]
        if chat_type == "private":
            buckets.append(
                self._bucket(("chat", token, chat_id), lim.per_private_chat_per_second, 1.0, now)
            )
        elif chat_type in ("group", "supergroup"):
            buckets.append(
                self._bucket(("chat", token, chat_id), lim.per_group_per_minute, 60.0, now)
            )
        wait = 0.0
        for b in buckets:
            short = 1.0 - lim.tolerance - b.refill(now)
            if short > 0:
                wait = max(wait, (1.0 - b.tokens) / b.rate)
        if wait > 0:
            # Telegram's retry_after is a whole number of seconds, at least 1.
            return max(1, math.ceil(wait))
        for b in buckets:
            b.tokens -= 1.0
        return None
