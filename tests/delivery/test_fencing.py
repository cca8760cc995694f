"""Fenced sends: a worker that lost its claim (frozen past its lease while another worker took
the row over) can neither settle nor send that row.

The service test writes results under a stale claim token directly; the process test
freezes a real sender process with SIGSTOP while it holds claimed rows, lets a second
process take them over, then wakes the first one. Sends are counted from the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.devtools.sandbox import Sandbox
from bot.services.outbox import OutboxService, OutgoingMessage, SendResult
from storage.db import Database
from storage.models import Candidate, OutboxMessage
from storage.uow import UnitOfWork
from tests.factories import Clock, make_candidates

from .conftest import outbox_for, sends_per_chat, texts
from .test_crash import duplicates, finish, spawn

LEASE = 3.0  # seconds: short, so the frozen sender's claims run out within the test


async def row_state(database: Database) -> tuple[str, str | None, int, object, object]:
    async with UnitOfWork(database.sessions) as uow:
        row = (await uow.session.scalars(select(OutboxMessage))).one()
        unreachable = await uow.session.scalar(select(Candidate.unreachable_at))
        return row.status, row.claim_token, row.attempts, row.lease_until, unreachable


async def test_record_under_a_stale_claim_token_changes_nothing(database: Database) -> None:
    [candidate] = await make_candidates(database, [11_001])
    clock = Clock()
    outbox = outbox_for(database, clock)
    await outbox.enqueue(OutgoingMessage("n:1", 11_001, {"text": "hi"}, candidate_id=candidate))
    [old] = await outbox.claim(10, timedelta(seconds=60))  # the worker that will freeze
    clock.now += timedelta(seconds=61)  # its lease ran out: another worker claims the row
    [new] = await outbox.claim(10, timedelta(seconds=60))
    taken_over = await row_state(database)
    stale = old.claim_token
    for result in (
        SendResult(old.id, "sent", claim_token=stale),
        SendResult(old.id, "unreachable", "Forbidden", claim_token=stale, candidate_id=candidate),
        SendResult(old.id, "failed", "gave up", claim_token=stale),
        SendResult(old.id, "retry", "later", claim_token=stale, not_before=clock.now),
        SendResult(old.id, "release", claim_token=stale),
        SendResult(old.id, "sent"),  # no token at all
    ):
        await outbox.record([result])
    renewed = await outbox.extend_leases([(old.id, stale)], timedelta(seconds=600))
    released = await outbox.release([(old.id, stale)])
    after_stale = await row_state(database)
    await outbox.record([SendResult(new.id, "sent", claim_token=new.claim_token)])
    assert (old.id, stale != new.claim_token) == (new.id, True)
    assert after_stale == taken_over == ("pending", new.claim_token, 2, new.lease_until, None)
    assert (renewed.ids, released) == (frozenset(), 0)
    assert (await row_state(database))[:2] == ("sent", None)


async def test_extend_leases_renews_only_rows_still_under_their_claim(
    database: Database,
) -> None:
    clock = Clock()
    outbox = outbox_for(database, clock)
    await outbox.enqueue_many(texts([11_101, 11_102]))
    first, second = await outbox.claim(10, timedelta(seconds=60))
    await outbox.record([SendResult(first.id, "sent", claim_token=first.claim_token)])
    clock.now += timedelta(seconds=30)
    renewed = await outbox.extend_leases(
        [(first.id, first.claim_token), (second.id, second.claim_token)], timedelta(seconds=60)
    )
    assert renewed.ids == frozenset({second.id})
    assert renewed.lease_until == clock.now + timedelta(seconds=60)


# Several instances share one outbox only on PostgreSQL (with SQLite, a process frozen in a
# write transaction would hold the whole file).
@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_sender_frozen_past_its_lease_sends_no_row_twice(
    sandbox: Sandbox, database: Database, outbox: OutboxService
) -> None:
    # Two tokens of one bot's chats, so the sandbox tells the two senders' calls apart.
    frozen_token, other_token = sandbox.add_bot(), sandbox.add_bot()
    chats = list(range(31_001, 31_151))
    for chat_id in chats:
        sandbox.user(chat_id)
    await outbox.enqueue_many(texts(chats, prefix="notice", broadcast_id=3))

    def sent_by_frozen() -> int:
        return sum(1 for c in sandbox.calls_of("sendMessage") if c.ok and c.token == frozen_token)

    # The first sends 1/s and is frozen right after its third result is committed, so
    # between two sends (a send on the wire or not yet recorded when a process stops is a
    # crash's repeat, not what fencing prevents), holding the rest of its claimed batch.
    args = ("--lease", str(LEASE), "--until-drained")
    frozen = await spawn(database, sandbox, "--rate", "1", *args, token=frozen_token)
    async with asyncio.timeout(60):
        while True:
            if (await outbox.stats()).by_status.get("sent", 0) >= 3:
                break
            await asyncio.sleep(0.02)
    frozen.send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    sent_before_freeze = sent_by_frozen()
    other = await spawn(database, sandbox, "--rate", "30", *args, token=other_token)
    try:
        other_out = await finish(other)  # drains the rest, the frozen one's rows too
        await asyncio.sleep(max(0.0, stopped_at + LEASE + 1 - time.monotonic()))
    finally:
        frozen.send_signal(signal.SIGCONT)
    frozen_out = await finish(frozen)
    counters = [json.loads(out.splitlines()[-1]) for out in (frozen_out, other_out)]
    counts = sends_per_chat(sandbox)
    print(f"duplicates: {duplicates(counts)}; counters: {counters}")  # shown with -s
    assert counts == dict.fromkeys(chats, 1)
    assert (await outbox.stats()).by_status == {"sent": len(chats)}
    # Woken up, it sent nothing: every row it still held had been taken over.
    assert (sent_by_frozen(), sent_before_freeze < len(chats) // 2) == (sent_before_freeze, True)
