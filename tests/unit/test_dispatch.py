"""UpdateDispatcher: one user's updates in order, different users in parallel, each marked done."""

from __future__ import annotations

import asyncio

from bot.runtime.dispatch import UpdateDispatcher


class FakeInbox:
    """Stands in for InboxService.mark_processed only (the service is tested on real DBs)."""

    def __init__(self) -> None:
        self.processed: list[tuple[int, str | None]] = []

    async def mark_processed(self, update_id: int, error: str | None = None) -> None:
        self.processed.append((update_id, error))


def _update(update_id: int, user_id: int) -> dict:
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "from": {"id": user_id}, "chat": {"id": user_id}},
    }


async def test_submit_runs_one_users_updates_in_order_and_users_in_parallel() -> None:
    order: list[tuple[int, int]] = []
    running, peak = 0, 0

    async def process(payload: dict) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(
            0.01 if payload["update_id"] % 2 else 0.03
        )  # later updates may finish first
        order.append((payload["message"]["from"]["id"], payload["update_id"]))
        running -= 1

    inbox = FakeInbox()
    dispatcher = UpdateDispatcher(process, inbox, max_concurrent=8)  # type: ignore[arg-type]
    for update_id in range(1, 21):
        dispatcher.submit(_update(update_id, user_id=1 + update_id % 4))
    assert await dispatcher.drain(10)
    per_user = {user: [u for who, u in order if who == user] for user in range(1, 5)}
    assert all(ids == sorted(ids) for ids in per_user.values())
    assert (peak, sorted(u for u, _ in inbox.processed)) == (4, list(range(1, 21)))


async def test_submit_same_update_twice_while_queued_runs_it_once() -> None:
    seen: list[int] = []

    async def process(payload: dict) -> None:
        await asyncio.sleep(0.01)
        seen.append(payload["update_id"])

    dispatcher = UpdateDispatcher(process, FakeInbox(), max_concurrent=2)  # type: ignore[arg-type]
    dispatcher.submit(_update(7, 1))
    dispatcher.submit(_update(7, 1))
    assert await dispatcher.drain(5)
    assert seen == [7]


async def test_failing_update_is_marked_with_its_error_and_the_next_one_runs() -> None:
    async def process(payload: dict) -> None:
        if payload["update_id"] == 1:
            raise ValueError("boom")

    inbox = FakeInbox()
    dispatcher = UpdateDispatcher(process, inbox, max_concurrent=2)  # type: ignore[arg-type]
    dispatcher.submit(_update(1, 5))
    dispatcher.submit(_update(2, 5))
    assert await dispatcher.drain(5)
    assert inbox.processed == [(1, "ValueError"), (2, None)]


async def test_update_that_waited_long_is_skipped_when_handled_elsewhere(monkeypatch) -> None:
    import bot.runtime.dispatch as dispatch

    class Inbox(FakeInbox):
        async def renew_lease(self, update_id: int) -> bool:
            return update_id != 2  # update 2 was processed by another instance meanwhile

    ran: list[int] = []

    async def process(payload: dict) -> None:
        ran.append(payload["update_id"])

    monkeypatch.setattr(dispatch, "RENEW_AFTER", -1.0)  # every update counts as having waited
    inbox = Inbox()
    dispatcher = UpdateDispatcher(process, inbox, max_concurrent=2)  # type: ignore[arg-type]
    for update_id in (1, 2, 3):
        dispatcher.submit(_update(update_id, 9))
    assert await dispatcher.drain(5)
    assert (ran, [u for u, _ in inbox.processed]) == ([1, 3], [1, 3])
