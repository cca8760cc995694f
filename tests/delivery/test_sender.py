"""The outbox sender against the sandbox over HTTP, on SQLite and PostgreSQL.

Counts come from the sandbox's recorded Bot API calls and from the outbox table; no test
measures time (bench/broadcast.py does).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from telegram import Bot

from bot.devtools.sandbox import RateLimits, Sandbox
from bot.runtime.delivery import Limits
from bot.services.outbox import OutboxService, OutgoingMessage
from storage.db import Database
from storage.models import Candidate, OutboxMessage, utcnow
from storage.uow import UnitOfWork
from tests.factories import make_candidates
from tests.sandbox.images import jpeg

from .conftest import SenderFactory, outbox_for, sends_per_chat, statuses, texts

WAIT = 30  # seconds; a safety net for a hung test, never a measurement


async def rows(database: Database) -> dict[int, OutboxMessage]:
    """Outbox rows by chat id."""
    async with UnitOfWork(database.sessions) as uow:
        found = {
            row.chat_id: row for row in (await uow.session.scalars(select(OutboxMessage))).all()
        }
        uow.session.expunge_all()
        return found


async def drain(sender) -> None:  # type: ignore[no-untyped-def]
    await asyncio.wait_for(sender.wait_drained(), WAIT)


async def test_enqueue_same_key_twice_creates_one_row_and_sends_once(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    sandbox.user(2001)
    message = OutgoingMessage("reminder:42:d-1", 2001, {"text": "Exam tomorrow"})
    created = [await outbox.enqueue(message), await outbox.enqueue(message)]
    await drain(await make_sender())
    assert created == [True, False]
    assert len(await rows(database)) == 1
    assert sends_per_chat(sandbox) == {2001: 1}


async def test_send_429_on_one_chat_waits_for_that_chat_only(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    chats = list(range(3001, 3011))
    for chat_id in chats:
        sandbox.user(chat_id)
    sandbox.inject_fault("sendMessage", kind="429", retry_after=1, chat_id=3001)
    await outbox.enqueue_many(texts(chats))  # 3001 first: it is claimed and tried first
    sender = await make_sender()
    await drain(sender)
    ok_order = [int(c.params["chat_id"]) for c in sandbox.calls_of("sendMessage") if c.ok]
    assert statuses(sandbox, 3001) == [429, 200]
    assert ok_order[-1] == 3001  # every other chat went out during 3001's wait
    assert sends_per_chat(sandbox) == dict.fromkeys(chats, 1)
    assert {row.status for row in (await rows(database)).values()} == {"sent"}
    assert (sender.counters.too_many_requests, sender.counters.bot_wide_pauses) == (1, 0)


async def test_send_429_on_two_chats_pauses_the_bot_wide_pace(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory
) -> None:
    chats = list(range(3101, 3121))
    for chat_id in chats:
        sandbox.user(chat_id)
    sandbox.inject_fault("sendMessage", kind="429", retry_after=1, chat_id=3101)
    sandbox.inject_fault("sendMessage", kind="429", retry_after=1, chat_id=3102)
    await outbox.enqueue_many(texts(chats))
    sender = await make_sender()
    await drain(sender)
    assert sender.counters.bot_wide_pauses == 1
    assert sends_per_chat(sandbox) == dict.fromkeys(chats, 1)


@pytest.mark.parametrize("kind", ["403", "chat_not_found"])
async def test_send_refused_chat_marks_candidate_unreachable_and_stops(
    kind: str,
    sandbox: Sandbox,
    outbox: OutboxService,
    make_sender: SenderFactory,
    database: Database,
) -> None:
    [gone, fine] = await make_candidates(database, [4001, 4002])
    sandbox.user(4001)
    sandbox.user(4002)
    sandbox.inject_fault("sendMessage", kind=kind, chat_id=4001, times=10)
    await outbox.enqueue_many(
        [
            OutgoingMessage("n:4001:a", 4001, {"text": "a"}, candidate_id=gone),
            OutgoingMessage("n:4001:b", 4001, {"text": "b"}, candidate_id=gone),
            OutgoingMessage("n:4002:a", 4002, {"text": "a"}, candidate_id=fine),
        ]
    )
    sender = await make_sender()
    await drain(sender)
    sender.wake()  # a further pass finds nothing to retry
    await drain(sender)
    async with UnitOfWork(database.sessions) as uow:
        reachability = {
            c.telegram_id: c.unreachable_at is not None
            for c in (await uow.session.scalars(select(Candidate))).all()
        }
        by_key = {
            r.idempotency_key: r.status
            for r in (await uow.session.scalars(select(OutboxMessage))).all()
        }
    assert len(statuses(sandbox, 4001)) == 1  # tried once; the chat's other row was not sent
    assert reachability == {4001: True, 4002: False}
    assert by_key == {"n:4001:a": "unreachable", "n:4001:b": "unreachable", "n:4002:a": "sent"}


async def test_send_5xx_below_the_cap_retries_and_sends(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    sandbox.user(5001)
    sandbox.inject_fault("sendMessage", kind="500", times=2, chat_id=5001)
    await outbox.enqueue(OutgoingMessage("n:5001", 5001, {"text": "hi"}))
    await drain(await make_sender(max_attempts=3))
    row = (await rows(database))[5001]
    assert statuses(sandbox, 5001) == [500, 500, 200]
    assert (row.status, row.attempts) == ("sent", 3)


async def test_send_5xx_beyond_the_cap_marks_failed_with_reason(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    sandbox.user(5101)
    sandbox.inject_fault("sendMessage", kind="502", times=5, chat_id=5101)
    await outbox.enqueue(OutgoingMessage("n:5101", 5101, {"text": "hi"}))
    await drain(await make_sender(max_attempts=3))
    row = (await rows(database))[5101]
    assert statuses(sandbox, 5101) == [502, 502, 502]
    assert (row.status, row.last_error) == (
        "failed",
        "gave up after 3 attempts: NetworkError: Bad Gateway",
    )


async def test_send_timeout_retries_and_sends(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    sandbox.user(5201)
    sandbox.inject_fault("sendMessage", kind="timeout", chat_id=5201, delay=3.0)
    await outbox.enqueue(OutgoingMessage("n:5201", 5201, {"text": "hi"}))
    await drain(await make_sender(send_timeout=0.3))
    row = (await rows(database))[5201]
    assert sends_per_chat(sandbox) == {5201: 1}
    assert (row.status, row.attempts) == ("sent", 2)


async def test_claim_after_a_dead_workers_lease_sends_each_row_once(
    sandbox: Sandbox, database: Database, make_sender: SenderFactory
) -> None:
    chats = list(range(6001, 6031))
    for chat_id in chats:
        sandbox.user(chat_id)
    outbox = outbox_for(database)
    await outbox.enqueue_many(texts(chats))
    claimed = await outbox.claim(20, timedelta(seconds=60))  # this worker "dies" holding 20 rows
    live = await make_sender()
    later = await make_sender(clock=lambda: utcnow() + timedelta(seconds=61), start=False)
    for chat_id in chats[20:]:  # before the lease runs out, only the 10 unclaimed rows go
        await sandbox.wait_for_message(chat_id, timeout=WAIT)
    sent_before_lease = len(sends_per_chat(sandbox))
    await live.stop()
    await later.start()
    await drain(later)
    assert (len(claimed), sent_before_lease) == (20, 10)
    assert sends_per_chat(sandbox) == dict.fromkeys(chats, 1)


async def test_send_expired_row_is_cancelled_not_sent(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    sandbox.user(7001)
    sandbox.user(7002)
    await outbox.enqueue(
        OutgoingMessage("old", 7001, {"text": "late"}, expires_at=utcnow() - timedelta(seconds=1))
    )
    await outbox.enqueue(
        OutgoingMessage("new", 7002, {"text": "on time"}, expires_at=utcnow() + timedelta(hours=1))
    )
    await drain(await make_sender())
    by_chat = await rows(database)
    assert (by_chat[7001].status, by_chat[7001].last_error) == ("cancelled", "expired")
    assert sends_per_chat(sandbox) == {7002: 1}


async def test_send_future_not_before_waits_until_due(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    sandbox.user(7101)
    sandbox.user(7102)
    await outbox.enqueue(
        OutgoingMessage("later", 7101, {"text": "later"}, not_before=utcnow() + timedelta(hours=1))
    )
    await outbox.enqueue(OutgoingMessage("now", 7102, {"text": "now"}))
    sender = await make_sender()
    await sandbox.wait_for_message(7102, timeout=WAIT)
    await sender.stop()
    before = sends_per_chat(sandbox)
    await drain(await make_sender(clock=lambda: utcnow() + timedelta(hours=2)))
    assert before == {7102: 1}
    assert sends_per_chat(sandbox) == {7101: 1, 7102: 1}


async def test_render_template_in_each_recipients_language(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    chosen_en, telegram_zh = await make_candidates(database, [8001, 8002])
    async with UnitOfWork(database.sessions) as uow:
        (await uow.candidates.get(chosen_en)).language = "en"
        (await uow.candidates.get(telegram_zh)).telegram_language = "en-US"
        await uow.commit()
    sandbox.user(8001)
    sandbox.user(8002)
    sandbox.group(-1008003, "Staff")
    payload = {"template": "test.delivery.menu", "params": {}}
    await outbox.enqueue_many(
        [
            OutgoingMessage("m:1", 8001, payload, candidate_id=chosen_en),
            OutgoingMessage("m:2", 8002, payload),  # no candidate id: found by its private chat
            OutgoingMessage("m:3", -1008003, payload, kind="staff"),  # no candidate: site default
        ]
    )
    await drain(await make_sender())
    text_by_chat = {
        int(c.params["chat_id"]): c.params["text"] for c in sandbox.calls_of("sendMessage")
    }
    assert text_by_chat == {8001: "Main menu", 8002: "Main menu", -1008003: "主菜单"}


async def test_send_literal_photo_and_document_with_caption(
    sandbox: Sandbox, bot: Bot, outbox: OutboxService, make_sender: SenderFactory
) -> None:
    sandbox.user(8101)
    photo_id = (await bot.send_photo(8101, jpeg(64, 48))).photo[-1].file_id
    document_id = (
        await bot.send_document(8101, b"%PDF-1.4", filename="notice.pdf")
    ).document.file_id
    await outbox.enqueue_many(
        [
            OutgoingMessage(
                "p", 8101, {"text": "Seating plan", "photo": photo_id}, kind="broadcast"
            ),
            OutgoingMessage(
                "d", 8101, {"text": "Notice", "document": document_id}, kind="broadcast"
            ),
        ]
    )
    await drain(await make_sender())
    photo = sandbox.calls_of("sendPhoto")[-1].params
    document = sandbox.calls_of("sendDocument")[-1].params
    assert (photo["photo"], photo["caption"]) == (photo_id, "Seating plan")
    assert (document["document"], document["caption"]) == (document_id, "Notice")


async def test_send_paid_payload_allows_paid_broadcast(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory
) -> None:
    sandbox.user(8201)
    sandbox.user(8202)
    await outbox.enqueue_many(
        [
            OutgoingMessage(
                "paid", 8201, {"text": "results are out", "paid": True}, broadcast_id=1
            ),
            OutgoingMessage("free", 8202, {"text": "results are out"}, broadcast_id=1),
        ]
    )
    await drain(await make_sender())
    paid = {
        int(c.params["chat_id"]): c.params.get("allow_paid_broadcast")
        for c in sandbox.calls_of("sendMessage")
    }
    assert paid == {8201: True, 8202: None}


async def test_stats_count_per_status_and_broadcast(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory
) -> None:
    for chat_id in (9001, 9002, 9003):
        sandbox.user(chat_id)
    sandbox.inject_fault("sendMessage", kind="403", chat_id=9003)
    await outbox.enqueue_many(texts([9001, 9002, 9003], broadcast_id=7))
    await outbox.enqueue(
        OutgoingMessage("later", 9001, {"text": "x"}, not_before=utcnow() + timedelta(days=1))
    )
    sender = await make_sender()
    await sandbox.wait_for_message(9002, timeout=WAIT)
    await sandbox.wait_for_message(9001, timeout=WAIT)
    await sender.stop()
    stats = await outbox.stats()
    assert stats.by_status == {"sent": 2, "unreachable": 1, "pending": 1}
    assert stats.by_broadcast == {7: {"sent": 2, "unreachable": 1}}
    assert (await outbox.stats(broadcast_id=7)).by_status == {"sent": 2, "unreachable": 1}


async def test_stop_gives_back_unsent_claims(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory, database: Database
) -> None:
    chats = list(range(9101, 9161))
    for chat_id in chats:
        sandbox.user(chat_id)
    await outbox.enqueue_many(texts(chats))
    sender = await make_sender(limits=Limits(per_second=20))
    await sandbox.wait_for_message(9101, timeout=WAIT)
    await sender.stop()
    by_chat = await rows(database)
    sent = {c for c, r in by_chat.items() if r.status == "sent"}
    left = {c: (r.status, r.lease_until, r.attempts) for c, r in by_chat.items() if c not in sent}
    assert set(sends_per_chat(sandbox)) == sent
    assert left == {c: ("pending", None, 0) for c in chats if c not in sent}
    assert len(left) > 0


async def test_burst_of_300_under_telegram_like_limits_gets_no_429(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory
) -> None:
    # The same limits on both sides, scaled up so the test stays short.
    limits = RateLimits(
        per_bot_per_second=150, per_private_chat_per_second=5, per_group_per_minute=60
    )
    sandbox.set_rate_limits(limits)
    chats = list(range(10_001, 10_281))
    for chat_id in [*chats, 10_999]:
        sandbox.user(chat_id)
    sandbox.group(-1010999, "Staff")
    await outbox.enqueue_many(
        [
            *texts(chats),
            *(OutgoingMessage(f"one:{i}", 10_999, {"text": f"{i}"}) for i in range(10)),
            *(
                OutgoingMessage(f"group:{i}", -1010999, {"text": f"{i}"}, kind="staff")
                for i in range(10)
            ),
        ]
    )
    sender = await make_sender(
        limits=Limits(per_second=150, per_private_chat_per_second=5, per_group_per_minute=60)
    )
    await drain(sender)
    calls = sandbox.calls_of("sendMessage")
    assert [c.status for c in calls if c.status != 200] == []
    assert len(calls) == 300
    assert sends_per_chat(sandbox) == {**dict.fromkeys(chats, 1), 10_999: 10, -1010999: 10}


async def test_send_rows_waiting_longer_than_the_lease_go_once(
    sandbox: Sandbox, outbox: OutboxService, make_sender: SenderFactory
) -> None:
    chats = list(range(9201, 9231))
    for chat_id in chats:
        sandbox.user(chat_id)
    await outbox.enqueue_many(texts(chats))
    # 30 rows at 20/s wait up to 1.5 s in the lanes: longer than the lease, so it must be renewed.
    sender = await make_sender(
        limits=Limits(per_second=20), lease=timedelta(seconds=0.9), batch_size=30
    )
    await drain(sender)
    assert sends_per_chat(sandbox) == dict.fromkeys(chats, 1)
