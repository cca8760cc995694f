"""Update dispatch: stored updates in, handlers run; per user in order, across users in parallel.

Entry point: `UpdateDispatcher.submit(payload)` after the update is in the inbox, and
`drain()` at shutdown. Each user has a FIFO of pending updates worked by one task, so a
double tap is handled strictly after the first tap; a semaphore bounds how many users are
served at once. After the handlers ran, the inbox row is marked processed; if the process
dies first, the row stays unprocessed and is claimed again after restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from bot.services.inbox import InboxService, update_user_id

log = logging.getLogger(__name__)

Process = Callable[[dict[str, Any]], Awaitable[None]]
#: Seconds an update may wait in its user's queue before its inbox lease is renewed
#: (the lease is 2 minutes; see bot.services.inbox.PROCESSING_LEASE).
RENEW_AFTER = 30.0


class HandlerFailed(Exception):
    """A handler raised (and the user was told); `retry` keeps the update for another try."""

    def __init__(self, retry: bool) -> None:
        super().__init__("retry" if retry else "failed")
        self.retry = retry


class UpdateDispatcher:
    def __init__(self, process: Process, inbox: InboxService, max_concurrent: int = 32) -> None:
        self._process = process
        self._inbox = inbox
        self._slots = asyncio.Semaphore(max_concurrent)
        self._queues: dict[int, deque[dict[str, Any]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._queued: set[int] = (
            set()
        )  # update ids queued or running: a recovery sweep may offer one again
        self._since: dict[int, float] = {}  # update id -> when it was submitted (monotonic)
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def submit(self, payload: dict[str, Any]) -> None:
        """Queue a stored update behind earlier updates of the same user."""
        if payload["update_id"] in self._queued:
            return
        self._queued.add(payload["update_id"])
        self._since[payload["update_id"]] = time.monotonic()
        user = update_user_id(payload)
        key = user if user is not None else -abs(payload["update_id"])  # no user: its own lane
        self._queues.setdefault(key, deque()).append(payload)
        self._idle.clear()
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key), name=f"updates:{key}")

    async def _work(self, key: int) -> None:
        queue = self._queues[key]
        try:
            while queue:
                payload = queue[0]
                async with self._slots:
                    await self._run_one(payload)
                queue.popleft()
                self._queued.discard(payload["update_id"])
                self._since.pop(payload["update_id"], None)
        finally:
            del self._queues[key]
            del self._workers[key]
            if not self._workers:
                self._idle.set()

    async def _run_one(self, payload: dict[str, Any]) -> None:
        update_id = payload["update_id"]
        error = None
        waited = time.monotonic() - self._since.get(update_id, time.monotonic()) > RENEW_AFTER
        # If it waited long behind this user's earlier updates: renew its lease before the
        # recovery sweep of another instance takes it; skip it if one already did.
        if waited and not await self._inbox.renew_lease(update_id):
            log.info("update %s was handled elsewhere while it waited", update_id)
            return
        try:
            await self._process(payload)
        except asyncio.CancelledError:
            raise  # shutdown: leave the row unprocessed for the next start
        except HandlerFailed as exc:
            if exc.retry:
                await self._retry_later(update_id)
                return
            error = "handler_failed"
        except Exception as exc:  # handlers' own errors go to the PTB error handler first
            log.exception("update %s could not be processed", update_id)
            error = type(exc).__name__
        try:
            await self._inbox.mark_processed(update_id, error)
        except Exception:
            log.exception("update %s processed but not marked; it may run again", update_id)

    async def _retry_later(self, update_id: int) -> None:
        try:
            gave_up = await self._inbox.retry_later(update_id)
        except Exception:
            log.exception(
                "update %s failed and could not be rescheduled; its lease still expires", update_id
            )
            return
        if gave_up:
            log.error("update %s failed on every attempt; kept in the inbox for staff", update_id)
        else:
            log.warning("update %s failed; it will be retried", update_id)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted update was processed; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def cancel(self) -> None:
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
