"""Broadcasts service on SQLite and PostgreSQL: staff only, audiences, exact counts, one
outbox row per recipient, pause / resume / cancel holding rows from the sender's claim,
scheduling in the site time zone, and a tick that finishes and reports exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.domain.lifecycle import RegistrationState
from bot.services import build_services
from bot.services.broadcasts import BroadcastService, Progress
from bot.services.errors import InvalidAnswer, InvalidState, NotStaff, StaleStep
from bot.services.outbox import OutboxService, SendResult
from storage.db import Database
from storage.models import AuditEntry, Broadcast, Candidate, FlowState, OutboxMessage, Registration
from storage.uow import UnitOfWork
from tests.factories import Clock, make_candidates, make_session

STAFF = 90001
STAFF_2 = 90002
STAFF_CHAT = -1009001
INTRUDER = 777


def service(database: Database, clock: Clock) -> BroadcastService:
    services = build_services(database, clock, staff_ids=frozenset({STAFF, STAFF_2}))
    return services.broadcasts


def outbox(database: Database, clock: Clock) -> OutboxService:
    return OutboxService(lambda: UnitOfWork(database.sessions), clock)


async def register(
    database: Database,
    candidate_ids: list[int],
    session_id: int,
    state: str,
    level: str = "junior",
) -> None:
    async with UnitOfWork(database.sessions) as uow:
        for cid in candidate_ids:
            uow.session.add(
                Registration(
                    candidate_id=cid,
                    session_id=session_id,
                    level_code=level,
                    state=state,
                    reference=f"R{cid}-{session_id}",
                    components=[],
                    eligibility={},
                )
            )
        await uow.commit()


async def mark_unreachable(database: Database, telegram_ids: list[int], at: datetime) -> None:
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            update(Candidate)
            .where(Candidate.telegram_id.in_(telegram_ids))
            .values(unreachable_at=at)
        )
        await uow.commit()


async def rows(database: Database, broadcast_id: int) -> list[tuple[int, str, datetime]]:
    async with UnitOfWork(database.sessions) as uow:
        result = await uow.session.execute(
            select(OutboxMessage.chat_id, OutboxMessage.status, OutboxMessage.not_before)
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .order_by(OutboxMessage.chat_id)
        )
        return [tuple(r) for r in result.all()]  # type: ignore[misc]


async def report_of(database: Database, broadcast_id: int) -> tuple[int, int, list[str]]:
    """(chat, how many not reached, names listed) of the queued report."""
    async with UnitOfWork(database.sessions) as uow:
        key = f"broadcast_report:{broadcast_id}"
        report = await uow.session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == key)
        )
        params = report.payload["params"]
        return (
            report.chat_id,
            params["not_reached_total"],
            [row[0] for row in params["not_reached"]],
        )


async def composed(
    database: Database,
    clock: Clock,
    candidates: list[int],
    *,
    kind: str = "all",
    value: str | None = None,
) -> tuple[BroadcastService, int]:
    """Staff and candidates exist; a draft with text and audience is ready to confirm."""
    await make_candidates(database, [STAFF, STAFF_2])
    await make_candidates(database, candidates)
    svc = service(database, clock)
    draft = await svc.start(STAFF, STAFF, "en")
    await svc.set_content(STAFF, STAFF, text="Results are out.")
    await svc.choose_audience(STAFF, draft.id, kind, value)
    return svc, draft.id


async def test_start_by_non_staff_raises_not_staff(database: Database) -> None:
    await make_candidates(database, [INTRUDER])
    with pytest.raises(NotStaff):
        await service(database, Clock()).start(INTRUDER, INTRUDER, "en")
    async with UnitOfWork(database.sessions) as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Broadcast)) == 0


async def test_set_content_too_long_caption_is_refused(database: Database) -> None:
    await make_candidates(database, [STAFF])
    svc = service(database, Clock())
    await svc.start(STAFF, STAFF, "en")
    with pytest.raises(InvalidAnswer) as info:
        await svc.set_content(STAFF, STAFF, text="x" * 1025, photo="PHOTO_ID")
    assert (info.value.reason, info.value.params) == ("too_long", {"limit": 1024})


async def test_set_content_from_another_chat_is_stale(database: Database) -> None:
    await make_candidates(database, [STAFF])
    svc = service(database, Clock())
    await svc.start(STAFF, STAFF_CHAT, "zh_Hans")
    with pytest.raises(StaleStep):
        await svc.set_content(STAFF, STAFF, text="hello")


async def test_choose_audience_counts_unreachable_separately(database: Database) -> None:
    clock = Clock()
    await make_candidates(database, [STAFF])
    await make_candidates(database, [1, 2, 3, 4])
    await make_candidates(database, [5], with_chat=False)
    await mark_unreachable(database, [4], clock.now)
    svc = service(database, clock)
    draft = await svc.start(STAFF, STAFF, "en")
    await svc.set_content(STAFF, STAFF, text="Hello")
    preview = await svc.choose_audience(STAFF, draft.id, "all", None)
    assert (preview.recipients, preview.unreachable, preview.text) == (
        4,
        1,
        "Hello",
    )  # 1, 2, 3 and the staff member


async def test_choose_audience_by_session_level_and_state(database: Database) -> None:
    clock = Clock()
    await make_candidates(database, [STAFF])
    c = await make_candidates(database, [11, 12, 13, 14, 15])
    s1 = await make_session(database, "S1", now=clock.now)
    s2 = await make_session(database, "S2", now=clock.now)
    await register(database, [c[0]], s1, RegistrationState.SUBMITTED)
    await register(database, [c[1]], s1, RegistrationState.AWAITING_PAYMENT, level="intermediate")
    await register(database, [c[2]], s1, RegistrationState.CANCELLED)
    await register(database, [c[3]], s2, RegistrationState.WAITLISTED)
    await register(database, [c[4]], s2, RegistrationState.PAID)
    svc = service(database, clock)
    draft = await svc.start(STAFF, STAFF, "en")
    await svc.set_content(STAFF, STAFF, text="Hello")
    counts = {}
    for kind, value in (
        ("session", "S1"),
        ("session", "S2"),
        ("level", "intermediate"),
        ("state", "unpaid"),
        ("state", "waitlisted"),
        ("state", "paid"),
    ):
        counts[(kind, value)] = (
            await svc.choose_audience(STAFF, draft.id, kind, value)
        ).recipients
    assert counts == {
        ("session", "S1"): 2,
        ("session", "S2"): 2,
        ("level", "intermediate"): 1,
        ("state", "unpaid"): 2,
        ("state", "waitlisted"): 1,
        ("state", "paid"): 1,
    }
    with pytest.raises(InvalidAnswer):
        await svc.choose_audience(STAFF, draft.id, "session", "NOPE")


async def test_confirm_queues_one_row_per_recipient_and_settles_known_unreachable(
    database: Database,
) -> None:
    clock = Clock()
    svc, bid = await composed(database, clock, [1, 2, 3])
    await mark_unreachable(database, [3], clock.now)
    progress = await svc.confirm(STAFF, bid, STAFF, 500, scheduled=False)
    assert (
        progress.status,
        progress.recipients,
        progress.skipped,
        progress.remaining,
        progress.unreachable,
    ) == ("sending", 4, 1, 4, 1)
    assert await rows(database, bid) == [
        (1, "pending", clock.now),
        (2, "pending", clock.now),
        (3, "unreachable", clock.now),
        (STAFF, "pending", clock.now),
        (STAFF_2, "pending", clock.now),
    ]
    async with UnitOfWork(database.sessions) as uow:
        key = (
            await uow.session.scalars(
                select(OutboxMessage.idempotency_key).where(OutboxMessage.chat_id == 1)
            )
        ).one()
        flow = await uow.session.scalar(
            select(FlowState.flow).join(Candidate).where(Candidate.telegram_id == STAFF)
        )
        actions = (
            await uow.session.scalars(
                select(AuditEntry.action).where(AuditEntry.entity == "broadcast")
            )
        ).all()
    assert (key, flow, list(actions)) == (f"broadcast:{bid}:{3}", None, ["created", "confirmed"])


async def test_confirm_twice_first_press_wins(database: Database) -> None:
    svc, bid = await composed(database, Clock(), [1, 2])
    await svc.confirm(STAFF, bid, STAFF_CHAT, 500, scheduled=False)
    with pytest.raises(InvalidState) as info:
        await svc.confirm(STAFF_2, bid, STAFF_CHAT, 500, scheduled=False)
    assert (info.value.state, len(await rows(database, bid))) == ("sending", 4)


async def test_confirm_or_cancel_by_non_staff_changes_nothing(database: Database) -> None:
    svc, bid = await composed(database, Clock(), [1, 2])
    await make_candidates(database, [INTRUDER])
    with pytest.raises(NotStaff):
        await svc.confirm(INTRUDER, bid, INTRUDER, 1, scheduled=False)
    with pytest.raises(NotStaff):
        await svc.cancel(INTRUDER, bid)
    await svc.confirm(STAFF, bid, STAFF, 1, scheduled=False)
    for forged in (svc.pause, svc.cancel):
        with pytest.raises(NotStaff):
            await forged(INTRUDER, bid)
    assert (await svc.progress(bid)).status == "sending"
    with pytest.raises(NotStaff):
        await svc.not_reached(INTRUDER, bid)


async def test_pause_holds_rows_from_the_claim_and_resume_releases_them(
    database: Database,
) -> None:
    clock = Clock()
    svc, bid = await composed(database, clock, [1, 2, 3])
    await svc.confirm(STAFF, bid, STAFF, 1, scheduled=False)
    box = outbox(database, clock)
    first = await box.claim(1, timedelta(seconds=60))
    paused = await svc.pause(STAFF_2, bid)
    held = await box.claim(10, timedelta(seconds=60))
    await box.record([SendResult(first[0].id, "sent", claim_token=first[0].claim_token)])
    resumed = await svc.resume(STAFF, bid)
    released = await box.claim(10, timedelta(seconds=60))
    assert (paused.status, held, resumed.status, len(released), await box.next_due_at()) == (
        "paused",
        [],
        "sending",
        4,
        clock.now + timedelta(seconds=60),
    )


async def test_paused_broadcast_is_not_due_for_the_sender(database: Database) -> None:
    clock = Clock()
    svc, bid = await composed(database, clock, [1])
    await svc.confirm(STAFF, bid, STAFF, 1, scheduled=False)
    await svc.pause(STAFF, bid)
    assert await outbox(database, clock).next_due_at() is None
    with pytest.raises(InvalidState):
        await svc.pause(STAFF, bid)


async def test_cancel_cancels_pending_rows_and_the_tick_reports_once(database: Database) -> None:
    clock = Clock()
    svc, bid = await composed(database, clock, [1, 2, 3])
    await svc.confirm(STAFF, bid, STAFF, 1, scheduled=False)
    box = outbox(database, clock)
    [held] = await box.claim(1, timedelta(seconds=60))  # a sender holds one row at the cancel
    cancelled = await svc.cancel(STAFF, bid)
    assert (cancelled.status, cancelled.cancelled, cancelled.remaining) == ("cancelled", 4, 1)
    assert await svc.tick() == []  # still one in flight: not finished, nothing new to show
    # the sender gives it back on stop
    await box.record([SendResult(held.id, "release", claim_token=held.claim_token)])
    [final] = await svc.tick()
    assert (final.status, final.finished_now, final.sent, final.cancelled, final.remaining) == (
        "cancelled",
        True,
        0,
        5,
        0,
    )
    assert await svc.tick() == []
    assert await report_of(database, bid) == (STAFF, 5, ["C1", "C2", "C3", "C90001", "C90002"])


async def test_tick_finishes_once_and_reports_who_was_not_reached(database: Database) -> None:
    clock = Clock()
    svc, bid = await composed(database, clock, [1, 2, 3])
    await mark_unreachable(database, [3], clock.now)
    await svc.confirm(STAFF, bid, STAFF, 1, scheduled=False)
    box = outbox(database, clock)
    claimed = {m.chat_id: m for m in await box.claim(10, timedelta(seconds=60))}
    clock.now += timedelta(seconds=2)
    await box.record(
        [
            SendResult(claimed[1].id, "sent", claim_token=claimed[1].claim_token),
            SendResult(claimed[STAFF].id, "sent", claim_token=claimed[STAFF].claim_token),
            SendResult(claimed[STAFF_2].id, "sent", claim_token=claimed[STAFF_2].claim_token),
        ]
    )
    [running] = await svc.tick()
    assert (running.status, running.sent, running.remaining, running.eta_seconds) == (
        "sending",
        3,
        1,
        5,
    )
    assert await svc.tick() == []  # nothing changed: no edit
    await box.record(
        [
            SendResult(
                claimed[2].id,
                "unreachable",
                "Forbidden: bot was blocked by the user",
                claim_token=claimed[2].claim_token,
                candidate_id=claimed[2].candidate_id,
            )
        ]
    )
    [done] = await svc.tick()
    assert (done.status, done.finished_now, done.sent, done.unreachable, done.remaining) == (
        "done",
        True,
        3,
        2,
        0,
    )
    assert await svc.tick() == []
    not_reached = await svc.not_reached(STAFF_2, bid)
    assert [(n.telegram_id, n.status, n.reason) for n in not_reached] == [
        (2, "unreachable", "Forbidden: bot was blocked by the user"),
        (3, "unreachable", "unreachable before the broadcast"),
    ]
    assert await report_of(database, bid) == (STAFF, 2, ["C2", "C3"])


async def test_schedule_uses_site_time_and_the_tick_starts_it(database: Database) -> None:
    clock = Clock(datetime(2026, 11, 30, 0, 0, tzinfo=UTC))
    svc, bid = await composed(database, clock, [1])
    await svc.ask_schedule(STAFF, bid)
    with pytest.raises(InvalidAnswer) as info:
        await svc.set_schedule(STAFF, STAFF, "tomorrow 9am")
    assert info.value.reason == "datetime_format"
    preview = await svc.set_schedule(STAFF, STAFF, "2026-12-01 09:00")
    at = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai
    scheduled = await svc.confirm(STAFF, bid, STAFF, 1, scheduled=True)
    assert (preview.scheduled_at, scheduled.status, {r[2] for r in await rows(database, bid)}) == (
        at,
        "scheduled",
        {at},
    )
    assert await outbox(database, clock).claim(10, timedelta(seconds=60)) == []
    clock.now = at
    [started] = await svc.tick()
    assert started.status == "sending"


async def test_schedule_in_the_past_is_refused(database: Database) -> None:
    clock = Clock(datetime(2026, 12, 2, 0, 0, tzinfo=UTC))
    svc, bid = await composed(database, clock, [1])
    await svc.ask_schedule(STAFF, bid)
    with pytest.raises(InvalidAnswer) as info:
        await svc.set_schedule(STAFF, STAFF, "2026-12-01 09:00")
    assert info.value.reason == "datetime_past"


async def test_confirm_queues_2000_recipients_in_one_call(database: Database) -> None:
    svc, bid = await composed(database, Clock(), list(range(100_000, 102_000)))
    progress = await svc.confirm(STAFF, bid, STAFF, 1, scheduled=False)
    assert (progress.recipients, len(await rows(database, bid))) == (2002, 2002)


async def test_cancel_draft_finishes_it_without_a_report(database: Database) -> None:
    svc, bid = await composed(database, Clock(), [1])
    cancelled: Progress = await svc.cancel(STAFF, bid)
    assert (cancelled.status, await svc.tick(), await svc.current(STAFF)) == (
        "cancelled",
        [],
        None,
    )
