"""RemindersService on real databases: planning from the catalogue, moves, drops, downtime,
the exam-day rules acknowledgement and the staff list.

Session 2027-01 of the shipped catalogue: exam 2027-01-09 09:00 Asia/Shanghai (01:00 UTC),
registration closes 2026-12-19 18:00 (10:00 UTC), payment due 2026-12-26 18:00 (10:00 UTC),
tickets from 2027-01-02 09:00 (01:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.config import PROJECT_ROOT
from bot.domain.catalog import load_catalog, parse_catalog
from bot.domain.lifecycle import RegistrationState
from bot.services.catalog import CatalogService
from bot.services.errors import InvalidState, NotFound
from bot.services.outbox import OutboxService
from bot.services.reminders import RemindersService
from storage.db import Database
from storage.models import OutboxMessage, Registration
from storage.uow import UnitOfWork
from tests.factories import Clock, make_candidates, uow_factory

CATALOG_FILE = PROJECT_ROOT / "catalog" / "exam-catalog.yaml"
EXAM = datetime(2027, 1, 9, 1, 0, tzinfo=UTC)
S = RegistrationState


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class World:
    """The shipped catalogue loaded, a clock, and the services the tests drive."""

    def __init__(self, database: Database, now: datetime, plan_ahead: timedelta) -> None:
        self.database = database
        self.clock = Clock(now)
        self.catalog = CatalogService(uow_factory(database), self.clock)
        self.reminders = RemindersService(
            uow_factory(database), self.clock, self.catalog, plan_ahead=plan_ahead
        )
        self.outbox = OutboxService(uow_factory(database), self.clock)

    async def load(self, **session_changes: object) -> None:
        document = load_catalog(CATALOG_FILE).model_dump(mode="json")
        # The shipped file leaves "ticket available" to the ticket flow; the planner still
        # supports the kind, so these tests switch it on.
        document["reminders"].insert(
            2, {"kind": "ticket_available", "anchor": "tickets_from", "offsets": ["0h"]}
        )
        if session_changes:
            document["version"] += "-changed"
            document["sessions"][0] |= session_changes
        await self.catalog.load(parse_catalog(document))

    async def register(
        self, telegram_id: int, state: str, session: str = "2027-01", level: str = "junior"
    ) -> int:
        [candidate_id] = await make_candidates(self.database, [telegram_id])
        async with UnitOfWork(self.database.sessions) as uow:
            target = await uow.exam_sessions.get_by_code(session)
            registration = Registration(
                candidate_id=candidate_id,
                session_id=target.id,
                level_code=level,
                state=state,
                reference=f"ED{telegram_id}",
                state_changed_at=self.clock.now,
                created_at=self.clock.now,
            )
            uow.registrations.add(registration)
            await uow.commit()
            return registration.id

    async def change(self, registration_id: int, **values: object) -> None:
        async with UnitOfWork(self.database.sessions) as uow:
            registration = await uow.registrations.get(registration_id)
            assert await uow.registrations.transition(
                registration_id, [registration.state], **values
            )
            await uow.commit()

    async def rows(self, status: str | None = None) -> set[tuple[str, str, str | None]]:
        """(reminder kind:offset, UTC time, status/reason) of every reminder row."""
        async with UnitOfWork(self.database.sessions) as uow:
            stmt = select(OutboxMessage).where(OutboxMessage.kind == "reminder")
            found = set()
            for row in await uow.session.scalars(stmt):
                params = row.payload["params"]
                label = row.status if row.last_error is None else f"{row.status}:{row.last_error}"
                if status is None or row.status == status:
                    found.add((f"{params['kind']}:{params['offset']}", params["at"][:16], label))
            return found


@pytest.fixture
async def world(database: Database) -> World:
    w = World(database, utc("2026-12-20T00:00:00"), plan_ahead=timedelta(days=400))
    await w.load()
    return w


async def test_plan_creates_each_reminder_once_for_whom_it_concerns(world: World) -> None:
    await world.register(1001, S.PAID)
    await world.register(1002, S.AWAITING_PAYMENT)
    await world.register(1003, S.CANCELLED)
    first = await world.reminders.plan()
    second = await world.reminders.plan()
    assert await world.rows() == {
        ("payment_due:-48h", "2026-12-24T10:00", "pending"),
        ("payment_due:-24h", "2026-12-25T10:00", "pending"),
        ("ticket_available:0h", "2027-01-02T01:00", "pending"),
        ("exam:-7d", "2027-01-02T01:00", "pending"),
        ("exam:-1d", "2027-01-08T01:00", "pending"),
        ("exam_venue:-1d", "2027-01-08T01:00", "pending"),  # the map pin after it
        ("exam:-2h", "2027-01-08T23:00", "pending"),
        ("exam_venue:-2h", "2027-01-08T23:00", "pending"),
    }  # "results are out" (0h) is the release's own message, not a reminder
    assert (first.created, second.created, second.skipped) == (8, 0, True)


async def test_plan_sets_not_before_to_the_reminder_and_expiry_to_the_next_one_or_the_moment(
    world: World,
) -> None:
    await world.register(1001, S.PAID)
    await world.reminders.plan()
    async with UnitOfWork(world.database.sessions) as uow:
        rows = await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.not_before))
        exam = [
            (r.not_before, r.expires_at) for r in rows if r.payload["params"]["kind"] == "exam"
        ]
    assert exam == [
        (EXAM - timedelta(days=7), EXAM - timedelta(days=1)),
        (EXAM - timedelta(days=1), EXAM - timedelta(hours=2)),
        (EXAM - timedelta(hours=2), EXAM),
    ]


async def test_plan_moves_pending_reminders_when_the_session_is_rescheduled(world: World) -> None:
    await world.register(1001, S.PAID)
    await world.reminders.plan()
    await world.load(exam_date="2027-01-16")
    result = await world.reminders.plan()
    assert await world.rows("pending") == {
        ("ticket_available:0h", "2027-01-09T01:00", "pending"),
        ("exam:-7d", "2027-01-09T01:00", "pending"),
        ("exam:-1d", "2027-01-15T01:00", "pending"),
        ("exam_venue:-1d", "2027-01-15T01:00", "pending"),
        ("exam:-2h", "2027-01-15T23:00", "pending"),
        ("exam_venue:-2h", "2027-01-15T23:00", "pending"),
    }
    assert await world.rows("cancelled") == {
        ("ticket_available:0h", "2027-01-02T01:00", "cancelled:rescheduled"),
        ("exam:-7d", "2027-01-02T01:00", "cancelled:rescheduled"),
        ("exam:-1d", "2027-01-08T01:00", "cancelled:rescheduled"),
        ("exam_venue:-1d", "2027-01-08T01:00", "cancelled:rescheduled"),
        ("exam:-2h", "2027-01-08T23:00", "cancelled:rescheduled"),
        ("exam_venue:-2h", "2027-01-08T23:00", "cancelled:rescheduled"),
    }
    assert (result.created, result.cancelled) == (6, 6)


async def test_plan_drops_pending_reminders_of_a_cancelled_registration(world: World) -> None:
    registration = await world.register(1001, S.PAID)
    await world.reminders.plan()
    await world.change(registration, state=S.CANCELLED)
    result = await world.reminders.plan()
    assert await world.rows("pending") == set()
    assert {label for _, _, label in await world.rows()} == {"cancelled:no_longer_applies"}
    assert result.cancelled == 6  # 4 reminders and the 2 map pins after exam −1 d and −2 h


async def test_plan_drops_payment_reminders_once_paid_and_plans_the_exam_ones(
    world: World,
) -> None:
    registration = await world.register(1001, S.AWAITING_PAYMENT)
    await world.reminders.plan()
    assert await world.rows() == {
        ("payment_due:-48h", "2026-12-24T10:00", "pending"),
        ("payment_due:-24h", "2026-12-25T10:00", "pending"),
    }
    await world.change(registration, state=S.PAID)
    await world.reminders.plan()
    assert {(k, label) for k, _, label in await world.rows() if k.startswith("payment")} == {
        ("payment_due:-48h", "cancelled:no_longer_applies"),
        ("payment_due:-24h", "cancelled:no_longer_applies"),
    }
    assert {k for k, _, _ in await world.rows("pending")} == {
        "ticket_available:0h",
        "exam:-7d",
        "exam:-1d",
        "exam_venue:-1d",
        "exam:-2h",
        "exam_venue:-2h",
    }


async def test_plan_follows_a_registration_moved_to_another_session(world: World) -> None:
    registration = await world.register(1001, S.PAID)
    await world.reminders.plan()
    async with UnitOfWork(world.database.sessions) as uow:
        march_id = (await uow.exam_sessions.get_by_code("2027-03")).id
    await world.change(registration, session_id=march_id)
    await world.reminders.plan()
    pending = await world.rows("pending")
    assert {(k, at[:10]) for k, at, _ in pending if k.startswith("exam")} == {
        ("exam:-7d", "2027-03-06"),
        ("exam:-1d", "2027-03-12"),
        ("exam_venue:-1d", "2027-03-12"),
        ("exam:-2h", "2027-03-12"),
        ("exam_venue:-2h", "2027-03-12"),
    }
    assert len(await world.rows("cancelled")) == 6


async def test_plan_within_the_horizon_only(database: Database) -> None:
    world = World(database, utc("2027-01-01T12:00:00"), plan_ahead=timedelta(hours=24))
    await world.load()
    await world.register(1001, S.PAID)
    await world.reminders.plan()
    assert await world.rows() == {
        ("ticket_available:0h", "2027-01-02T01:00", "pending"),
        ("exam:-7d", "2027-01-02T01:00", "pending"),
    }
    world.clock.now = utc("2027-01-07T02:00:00")
    await world.reminders.plan()
    assert {k for k, _, _ in await world.rows()} == {
        "ticket_available:0h",
        "exam:-7d",
        "exam:-1d",
        "exam_venue:-1d",
    }


async def test_downtime_missed_reminder_is_sent_when_its_moment_has_not_passed(
    database: Database,
) -> None:
    world = World(database, utc("2027-01-07T02:00:00"), plan_ahead=timedelta(hours=24))
    await world.load()
    await world.register(1001, S.PAID)
    await world.reminders.plan()  # plans exam −1d (01-08 01:00); then the instance is down
    world.clock.now = utc("2027-01-08T23:30:00")  # −1d and −2h both missed; exam at 01:00
    await world.reminders.plan()
    claimed = await world.outbox.claim(limit=50, lease=timedelta(minutes=1))
    due = {(m.payload["params"]["kind"], m.payload["params"]["offset"]) for m in claimed}
    assert due == {("exam", "-2h"), ("exam_venue", "-2h"), ("ticket_available", "0h")}
    assert ("exam:-1d", "2027-01-08T01:00", "cancelled:expired") in await world.rows()
    assert ("exam_venue:-1d", "2027-01-08T01:00", "cancelled:expired") in await world.rows()


async def test_downtime_missed_reminder_is_skipped_when_its_moment_has_passed(
    database: Database,
) -> None:
    world = World(database, utc("2027-01-08T02:00:00"), plan_ahead=timedelta(hours=24))
    await world.load()
    await world.register(1001, S.PAID)
    await world.reminders.plan()  # plans exam −2h (01-08 23:00); then the instance is down
    world.clock.now = EXAM + timedelta(minutes=5)  # back after the exam started
    result = await world.reminders.plan()
    claimed = await world.outbox.claim(limit=50, lease=timedelta(minutes=1))
    assert (result.created, claimed) == (0, [])
    assert {label for k, _, label in await world.rows() if k.startswith("exam")} == {
        "cancelled:expired"
    }


async def test_registration_closing_reminds_eligible_candidates_without_a_registration(
    world: World,
) -> None:
    world.clock.now = utc("2026-12-16T11:00:00")  # after the −3d reminder (10:00 UTC)
    [eligible, _no_verdict] = await make_candidates(world.database, [2001, 2002])
    async with UnitOfWork(world.database.sessions) as uow:
        candidate = await uow.candidates.get(eligible)
        candidate.profile = {"verdicts": {"junior": {"status": "eligible", "route": "J2"}}}
        await uow.commit()
    await world.reminders.plan()
    assert {k for k, _, _ in await world.rows("pending")} == {
        "registration_closing:-3d",
        "registration_closing:-1d",
    }
    async with UnitOfWork(world.database.sessions) as uow:
        january = await uow.exam_sessions.get_by_code("2027-01")
        uow.registrations.add(
            Registration(
                candidate_id=eligible,
                session_id=january.id,
                level_code="junior",
                state=S.SUBMITTED,
                reference="EDX1",
            )
        )
        await uow.commit()
    await world.reminders.plan()
    assert {label for k, _, label in await world.rows() if k.startswith("registration")} == {
        "cancelled:no_longer_applies"
    }
    assert await _chats_reminded(world) == {2001}  # never 2002, who has no verdict


async def _chats_reminded(world: World) -> set[int]:
    async with UnitOfWork(world.database.sessions) as uow:
        return set((await uow.session.scalars(select(OutboxMessage.chat_id))).all())


async def test_plan_skips_candidates_known_unreachable(world: World) -> None:
    await world.register(1001, S.PAID)
    async with UnitOfWork(world.database.sessions) as uow:
        candidate = await uow.candidates.get_by_telegram_id(1001)
        await uow.candidates.mark_unreachable(candidate.id, world.clock.now)
        await uow.commit()
    assert (await world.reminders.plan()).created == 0


async def test_acknowledge_rules_records_once(world: World) -> None:
    registration = await world.register(1001, S.PAID)
    first = await world.reminders.acknowledge_rules(1001, registration)
    second = await world.reminders.acknowledge_rules(1001, registration)
    assert (first.first, second.first, first.session_code) == (True, False, "2027-01")


async def test_acknowledge_rules_of_another_candidates_registration_is_refused(
    world: World,
) -> None:
    registration = await world.register(1001, S.PAID)
    await make_candidates(world.database, [1009])
    with pytest.raises(NotFound):
        await world.reminders.acknowledge_rules(1009, registration)
    unpaid = await world.register(1002, S.AWAITING_PAYMENT)
    with pytest.raises(InvalidState):
        await world.reminders.acknowledge_rules(1002, unpaid)


async def test_unacknowledged_lists_paid_candidates_who_have_not_confirmed_in_pages(
    world: World,
) -> None:
    ids = [await world.register(3000 + n, S.PAID) for n in range(5)]
    await world.register(3100, S.AWAITING_PAYMENT)
    await world.reminders.acknowledge_rules(3001, ids[1])
    page1 = await world.reminders.unacknowledged("2027-01", page=1, page_size=3)
    page2 = await world.reminders.unacknowledged("2027-01", page=2, page_size=3)
    assert (page1.total, page1.pages, [p.telegram_id for p in page1.people]) == (
        4,
        2,
        [3000, 3002, 3003],
    )
    assert [p.telegram_id for p in page2.people] == [3004]
    with pytest.raises(NotFound):
        await world.reminders.unacknowledged("1999-01")
