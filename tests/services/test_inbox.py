"""InboxService on real databases: store once per update_id, claim what a dead worker left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.services.inbox import InboxService, update_user_id
from storage.db import Database
from storage.models import InboxUpdate
from storage.uow import UnitOfWork


def _update(update_id: int, user_id: int = 5) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_790_000_000,
            "text": "hi",
            "chat": {"id": user_id, "type": "private", "first_name": "A"},
            "from": {"id": user_id, "is_bot": False, "first_name": "A"},
        },
    }


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _inbox(database: Database, clock: Clock) -> InboxService:
    return InboxService(lambda: UnitOfWork(database.sessions), clock)


async def test_store_same_update_twice_stores_once(database: Database) -> None:
    inbox = _inbox(database, Clock())
    assert await inbox.store(_update(100)) is True
    assert await inbox.store(_update(100)) is False
    assert (await inbox.backlog()).inbox_pending == 1


async def test_store_many_returns_only_new_updates_in_order(database: Database) -> None:
    inbox = _inbox(database, Clock())
    await inbox.store(_update(2))
    fresh = await inbox.store_many([_update(1), _update(2), _update(3)])
    assert [p["update_id"] for p in fresh] == [1, 3]


async def test_claim_stale_waits_for_the_lease_then_claims_once(database: Database) -> None:
    clock = Clock()
    inbox = _inbox(database, clock)
    await inbox.store(_update(1))
    await inbox.store(_update(2))
    await inbox.mark_processed(2)
    assert await inbox.claim_stale() == []  # still leased by the instance that stored it
    clock.now += timedelta(minutes=3)
    assert [p["update_id"] for p in await inbox.claim_stale()] == [1]
    assert await inbox.claim_stale() == []  # the new lease holds


async def test_claim_stale_ignoring_leases_takes_every_unprocessed_update(
    database: Database,
) -> None:
    inbox = _inbox(database, Clock())
    await inbox.store_many([_update(1), _update(2)])
    assert [p["update_id"] for p in await inbox.claim_stale(ignore_leases=True)] == [1, 2]


def test_update_user_id_reads_sender_of_any_update_kind() -> None:
    callback = {
        "update_id": 1,
        "callback_query": {"id": "x", "from": {"id": 77}, "chat_instance": "c"},
    }
    channel = {
        "update_id": 2,
        "channel_post": {"message_id": 1, "chat": {"id": -100, "type": "channel"}},
    }
    assert (update_user_id(_update(3, 12)), update_user_id(callback), update_user_id(channel)) == (
        12,
        77,
        -100,
    )


async def test_renew_lease_extends_a_waiting_update_and_refuses_a_processed_one(
    database: Database,
) -> None:
    clock = Clock()
    inbox = _inbox(database, clock)
    await inbox.store_many([_update(1), _update(2)])
    await inbox.mark_processed(2)
    clock.now += timedelta(minutes=1)
    renewed = (await inbox.renew_lease(1), await inbox.renew_lease(2))
    clock.now += timedelta(minutes=1, seconds=30)  # past the first lease, inside the renewed one
    assert (renewed, await inbox.claim_stale()) == ((True, False), [])


async def test_retry_later_keeps_the_payload_and_gives_up_after_the_last_attempt(
    database: Database,
) -> None:
    from bot.services.inbox import MAX_ATTEMPTS

    clock = Clock()
    inbox = _inbox(database, clock)
    await inbox.store(_update(1))
    outcomes = []
    for _ in range(MAX_ATTEMPTS + 1):
        outcomes.append(await inbox.retry_later(1))
        clock.now += timedelta(hours=1)
        await inbox.claim_stale()  # the sweep takes it again (one more attempt)
    async with UnitOfWork(database.sessions) as uow:
        row = await uow.session.get(InboxUpdate, 1)
        kept = (row.processed_at is not None, row.error, row.payload["message"]["text"])
    assert (outcomes[-1], outcomes.count(False), kept) == (
        True,
        MAX_ATTEMPTS,
        (True, "failed_every_attempt", "hi"),
    )
