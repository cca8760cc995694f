"""notify on SQLite and PostgreSQL: one outbox row per key with the template payload, and a
unit of work that wakes the sender once per commit that queued something, never after a
rollback."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from bot.services.notify import Template, notify_candidate, notify_staff, queue
from storage.db import Database
from storage.models import OutboxMessage
from storage.uow import UnitOfWork
from tests.factories import NOW, make_candidates

STAFF_CHAT = -100500


def _counted(database: Database) -> tuple[Callable[[], UnitOfWork], list[int]]:
    """A unit-of-work factory whose `after_outbox_commit` counts its calls."""
    calls: list[int] = []
    return (lambda: UnitOfWork(database.sessions, lambda: calls.append(1))), calls


async def _rows(database: Database) -> list[tuple[str, int, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(r.idempotency_key, r.chat_id, r.kind, r.payload) for r in rows]


async def test_commit_that_queued_notifications_calls_hook_once(database: Database) -> None:
    uow_factory, calls = _counted(database)
    [candidate_id] = await make_candidates(database, [7])

    async with uow_factory() as uow:
        await notify_candidate(
            uow,
            candidate_id,
            NOW,
            key="k:1",
            template=Template.PAYMENT_RECEIVED,
            params={"reference": "EDAAAAAAAA", "method": "stars"},
        )
        await notify_staff(
            uow,
            STAFF_CHAT,
            NOW,
            key="k:2",
            template=Template.PAYMENT_FLAGGED,
            params={"payment_id": 1},
        )
        await uow.commit()

    assert (len(calls), await _rows(database)) == (
        1,
        [
            (
                "k:1",
                7,
                "notification",
                {
                    "template": "payment_received",
                    "params": {"reference": "EDAAAAAAAA", "method": "stars"},
                },
            ),
            (
                "k:2",
                STAFF_CHAT,
                "staff",
                {"template": "payment_flagged", "params": {"payment_id": 1}},
            ),
        ],
    )


async def test_rolled_back_unit_of_work_that_queued_does_not_call_hook(database: Database) -> None:
    uow_factory, calls = _counted(database)

    async with uow_factory() as uow:
        assert await notify_staff(
            uow, STAFF_CHAT, NOW, key="k:1", template=Template.BROADCAST_REPORT, params={}
        )
    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await notify_staff(
                uow, STAFF_CHAT, NOW, key="k:2", template=Template.BROADCAST_REPORT, params={}
            )
            raise RuntimeError("the service failed before its commit")

    assert (len(calls), await _rows(database)) == (0, [])


async def test_commit_that_queued_nothing_new_does_not_call_hook(database: Database) -> None:
    uow_factory, calls = _counted(database)
    async with uow_factory() as uow:
        await queue(uow, key="k:1", chat_id=STAFF_CHAT, kind="staff", payload={"text": "hi"})
        await uow.commit()

    async with uow_factory() as uow:
        again = await queue(
            uow, key="k:1", chat_id=STAFF_CHAT, kind="staff", payload={"text": "hi"}
        )
        missing = await notify_staff(
            uow, None, NOW, key="k:2", template=Template.BROADCAST_REPORT, params={}
        )
        await uow.commit()

    assert (again, missing, len(calls), len(await _rows(database))) == (False, False, 1, 1)
