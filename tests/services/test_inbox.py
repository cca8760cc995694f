"""InboxService on real databases: store once per update_id, claim what a dead worker left."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.services.inbox import InboxService, update_user_id
from storage.db import Database
from storage.locks import InstanceLock
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


def _body(text: str) -> bytes:
    return json.dumps(_update(1, 5) | {"update_id": 10}).replace('"hi"', text).encode()


async def _set_aside(database: Database) -> list[tuple[str, str, int | None]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.set_aside.list_recent()
        return [(row.source, row.reason, row.update_id) for row in reversed(rows)]


async def test_receive_cleans_nul_and_lone_surrogates_and_stores_the_update(
    database: Database,
) -> None:
    inbox = _inbox(database, Clock())
    nul = await inbox.receive(_body('"a\\u0000b"'))
    surrogate = await inbox.receive(
        _body('"c\\ud800d"').replace(b'"update_id": 10', b'"update_id": 11')
    )
    texts = [r.payload["message"]["text"] for r in (nul, surrogate) if r.payload]
    assert ((nul.status, surrogate.status), texts) == (("new", "new"), ["ab", "c\ufffdd"])
    assert [p["message"]["text"] for p in await inbox.claim_stale(ignore_leases=True)] == [
        "ab",
        "c\ufffdd",
    ]


async def test_receive_sets_aside_each_unstorable_body_with_its_reason(
    database: Database,
) -> None:
    inbox = _inbox(database, Clock())
    bodies = [
        b'{"update_id": true}',
        b'{"update_id": 9223372036854775808}',
        b'{"update_id": -1, "text": "my ID 11010519491231002X"}',
        b'{"update_id": 12, "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"update_id": 13, "x": ' + b"7" * 5000 + b"}",
        b'{"update_id": 14, "x": NaN}',
        b"[1, 2]",
        b"not json \x00\xff",
    ]
    statuses = [(await inbox.receive(body)).status for body in bodies]
    assert statuses == ["set_aside"] * len(bodies)
    assert await _set_aside(database) == [
        ("webhook", "update_id_not_an_integer", None),
        ("webhook", "update_id_out_of_range", None),
        ("webhook", "update_id_out_of_range", None),
        ("webhook", "too_deep", 12),
        ("webhook", "number_too_long", 13),
        ("webhook", "not_a_finite_number", 14),
        ("webhook", "not_an_object", None),
        ("webhook", "not_json", None),
    ]
    async with UnitOfWork(database.sessions) as uow:
        masked = [row.body for row in await uow.set_aside.list_recent() if "my ID" in row.body]
    assert masked == ['{"update_id": -1, "text": "my ID 1101**********002X"}']
    assert (await inbox.backlog()).inbox_pending == 0


async def test_receive_many_stores_around_an_update_the_database_refuses(
    database: Database,
) -> None:
    inbox = _inbox(database, Clock())
    refused = _update(2)
    refused["message"]["entities"] = {1, 2}  # no JSON for a set: the write fails
    fresh = await inbox.receive_many([_update(1), refused, _update(3), {"update_id": False}])
    assert [p["update_id"] for p in fresh] == [1, 3]
    assert [(source, update_id) for source, _, update_id in await _set_aside(database)] == [
        ("polling", None),
        ("polling", 2),
    ]


async def test_claim_stale_gives_up_an_update_that_crashed_every_attempt(
    database: Database,
) -> None:
    from bot.services.inbox import MAX_ATTEMPTS

    clock = Clock()
    inbox = _inbox(database, clock)
    await inbox.store(_update(1))
    claims = []
    for _ in range(MAX_ATTEMPTS + 2):  # each claim's processing kills the process
        claims.append(len(await inbox.claim_stale(ignore_leases=True)))
    async with UnitOfWork(database.sessions) as uow:
        row = await uow.session.get(InboxUpdate, 1)
        kept = (row.processed_at is not None, row.error)
    assert (claims, kept) == ([1] * MAX_ATTEMPTS + [0, 0], (True, "crashed_every_attempt"))
    assert await _set_aside(database) == [("processing", "crashed_every_attempt", 1)]


ID_NUMBER = "230103198805177318"  # checksum-valid, used by no other test


async def database_bytes(database: Database) -> bytes:
    """Everything the database wrote: SQLite's files; PostgreSQL's table pages (dead tuples
    too) and the write-ahead log written meanwhile."""
    if database.is_sqlite:
        path = Path(make_url(database.url).database)
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    async with database.engine.connect() as conn:
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        pages = await conn.scalar(text("SELECT pg_relation_size('inbox') / 8192"))
        raw = [
            await conn.scalar(text("SELECT get_raw_page('inbox', :n)"), {"n": n})
            for n in range(pages)
        ]
        wal = await conn.scalar(
            text("SELECT pg_read_binary_file('pg_wal/' || pg_walfile_name(pg_current_wal_lsn()))")
        )
    return b"".join(raw) + wal


async def test_store_seals_a_typed_id_number_before_the_first_write(database: Database) -> None:
    update = _update(1)
    update["message"]["text"] = f"ID {ID_NUMBER}"
    inbox = _inbox(database, Clock())
    await inbox.store(update)
    raw = await database_bytes(database)
    replayed = await inbox.claim_stale(ignore_leases=True)
    assert (ID_NUMBER.encode() in raw, ID_NUMBER[:10].encode() in raw) == (False, False)
    assert [p["message"]["text"] for p in replayed] == [f"ID {ID_NUMBER}"]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_claim_stale_takes_a_dead_owners_update_at_once_and_never_a_live_owners(
    database: Database,
) -> None:
    clock = Clock()
    other = Database(database.url)  # another instance: its own engine and lock
    first, second = InstanceLock(database.engine), InstanceLock(other.engine)
    try:
        await first.acquire()
        await second.acquire()
        live = InboxService(lambda: UnitOfWork(database.sessions), clock, instance=first)
        taker = InboxService(lambda: UnitOfWork(other.sessions), clock, instance=second)
        await live.store(_update(1))
        clock.now += timedelta(hours=1)  # far past the lease: the owner is frozen, not gone
        while_alive = await taker.claim_stale()
        await first.release()  # as its process dying would
        clock.now += timedelta(seconds=1)
        after_death = [p["update_id"] for p in await taker.claim_stale()]
        async with UnitOfWork(database.sessions) as uow:
            owner = (await uow.session.get(InboxUpdate, 1)).owner
    finally:
        await first.release()
        await second.release()
        await other.dispose()
    assert (while_alive, after_death, owner) == ([], [1], second.owner)
