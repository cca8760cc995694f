"""Bench helpers: a Bot API sandbox in its own process, and reading back what it saw.

The sandbox runs in a child process so that its CPU does not compete with the code
being measured; the bench talks to it over HTTP like the bot does.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402


@dataclass
class SandboxProcess:
    url: str
    token: str
    process: mp.process.BaseProcess

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


def _serve(queue: Any, user_ids: list[int], rate_limits: dict[str, float] | None) -> None:
    from bot.devtools.sandbox import RateLimits, Sandbox

    async def main() -> None:
        sandbox = Sandbox(
            rate_limits=RateLimits(**rate_limits) if rate_limits is not None else None
        )
        await sandbox.start()
        token = sandbox.add_bot()
        for user_id in user_ids:
            sandbox.user(user_id)
        queue.put((sandbox.url, token))
        await asyncio.Event().wait()

    asyncio.run(main())


def start_sandbox(user_ids: list[int], rate_limits: dict[str, float] | None) -> SandboxProcess:
    """A sandbox with these private chats and limits (None: no limits), in a child process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_serve, args=(queue, user_ids, rate_limits), daemon=True)
    process.start()
    url, token = queue.get(timeout=120)
    return SandboxProcess(url, token, process)


async def recorded_calls(url: str, method: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/_sandbox/calls", params={"method": method}) as resp,
    ):
        return (await resp.json())["calls"]


@dataclass
class Delivery:
    """What the sandbox saw: first-to-last span, successes per chat, refusals."""

    ok: int
    too_many_requests: int
    other_errors: int
    duplicates: int
    lost: int
    span: float  # seconds from the first to the last successful send, sandbox clock

    @property
    def rate(self) -> float:
        return (self.ok - 1) / self.span if self.span > 0 else 0.0


def tally(calls: list[dict[str, Any]], expected_chats: set[int]) -> Delivery:
    per_chat: dict[int, int] = {}
    times = []
    for call in calls:
        if call["status"] == 200:
            chat = int(call["params"]["chat_id"])
            per_chat[chat] = per_chat.get(chat, 0) + 1
            times.append(call["at"])
    return Delivery(
        ok=sum(per_chat.values()),
        too_many_requests=sum(1 for c in calls if c["status"] == 429),
        other_errors=sum(1 for c in calls if c["status"] not in (200, 429)),
        duplicates=sum(n - 1 for n in per_chat.values()),
        lost=len(expected_chats - set(per_chat)),
        span=(max(times) - min(times)) if times else 0.0,
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
