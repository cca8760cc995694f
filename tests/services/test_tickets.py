"""TicketService on real databases: availability, ownership, numbers under concurrency,
the scheduler's notifications, and checking signed references."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.domain.lifecycle import RegistrationState
from bot.services import Services, build_services
from bot.services.errors import NotFound, NotPaid, TicketNotYetAvailable
from bot.services.tickets import TicketCheck, mask_name
from storage.db import Database
from storage.models import ExamSession, OutboxMessage, Registration
from storage.uow import UnitOfWork
from tests.factories import (
    NOW,
    Clock,
    catalogued_services,
    make_candidates,
    make_registration,
    make_session,
)

SECRET = "tickets-test-secret-" + "k" * 32
EXAM_DAY = datetime.combine((NOW + timedelta(days=30)).date(), datetime.min.time(), tzinfo=UTC)
TICKETS_FROM = EXAM_DAY - timedelta(days=7)  # make_session's tickets_from_at


async def _services(database: Database, clock: Clock) -> Services:
    return await catalogued_services(database, clock, secret_key=SECRET)


async def _register(
    database: Database,
    telegram_id: int,
    session_id: int,
    *,
    level: str = "junior",
    state: RegistrationState = RegistrationState.PAID,
    name: str = "张小三",
) -> int:
    """A candidate with registration data and one registration in `state`; returns its id."""
    registration = await make_registration(
        database,
        telegram_id,
        session_id,
        state=state,
        level_code=level,
        direction_code="equipment_application",
        candidate={
            "full_name": name,
            "gender": "female",
            "id_number_masked": "1101**********002X",
            "profile": {"photo": {"file_id": f"photo-{telegram_id}"}},
        },
    )
    return registration.id


async def _set_state(database: Database, registration_id: int, state: RegistrationState) -> None:
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            update(Registration).where(Registration.id == registration_id).values(state=state)
        )
        await uow.commit()


async def _outbox(database: Database) -> list[tuple[str, int, str, int]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [
            (
                r.idempotency_key,
                r.chat_id,
                r.payload["template"],
                r.payload["params"]["registration_id"],
            )
            for r in rows
        ]


async def test_ticket_before_ticket_date_raises_not_yet_available(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=clock.now)
    registration_id = await _register(database, 501, session_id)
    clock.now = TICKETS_FROM - timedelta(minutes=1)

    with pytest.raises(TicketNotYetAvailable) as caught:
        await services.tickets.ticket(501, registration_id)

    assert (caught.value.available_from, caught.value.timezone) == (TICKETS_FROM, "Asia/Shanghai")


async def test_ticket_unpaid_registration_raises_not_paid(database: Database) -> None:
    clock = Clock(TICKETS_FROM + timedelta(days=1))
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    registration_id = await _register(
        database, 502, session_id, state=RegistrationState.AWAITING_PAYMENT
    )

    with pytest.raises(NotPaid) as caught:
        await services.tickets.ticket(502, registration_id)

    assert caught.value.state == "awaiting_payment"


async def test_ticket_of_another_candidates_registration_raises_not_found(
    database: Database,
) -> None:
    clock = Clock(TICKETS_FROM + timedelta(days=1))
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    registration_id = await _register(database, 503, session_id)
    await make_candidates(database, [504])

    with pytest.raises(NotFound):
        await services.tickets.ticket(504, registration_id)  # a forged id in a button


async def test_ticket_on_ticket_date_shows_number_seat_and_content(database: Database) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    registration_id = await _register(database, 505, session_id)

    data = await services.tickets.ticket(505)  # no id: the next paid sitting

    actual = (
        data.registration_id,
        data.ticket_number,
        data.full_name,
        data.gender,
        data.id_number_masked,
        data.photo_file_id,
        data.level_name,
        data.direction_name["zh_Hans"],
        [(c.code, c.room["zh_Hans"], c.seat) for c in data.components],
        data.site_name["zh_Hans"],
        data.organisation_name["zh_Hans"],
    )
    expected = (
        registration_id,
        "S1-J-0001",
        "张小三",
        "female",
        "1101**********002X",
        "photo-505",
        {"zh_Hans": "初级", "en": "Junior"},
        "智能装备与产线应用",
        [("theory", "机房 A301", "001"), ("practical", "智能制造实训中心 B105", "001")],
        "哈尔滨理工大学 荣成校区",
        "中国机械工程学会",
    )
    assert actual == expected


async def test_ticket_asked_twice_keeps_its_number(database: Database) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    registration_id = await _register(database, 506, session_id)

    first = await services.tickets.ticket(506, registration_id)
    clock.now += timedelta(hours=3)
    second = await services.tickets.ticket(506, registration_id)

    assert (second.ticket_number, second.signed_reference, second.issued_at) == (
        first.ticket_number,
        first.signed_reference,
        first.issued_at,
    )


async def test_ticket_concurrent_issues_get_unique_gapless_numbers_and_seats(
    database: Database,
) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW, capacity=40)
    levels = ["junior"] * 12 + ["intermediate"] * 8
    registrations = [
        (7000 + i, await _register(database, 7000 + i, session_id, level=level))
        for i, level in enumerate(levels)
    ]

    # Everyone asks at once, and the scheduler's sweep runs in the middle of it.
    results = await asyncio.gather(
        *(services.tickets.ticket(tid, rid) for tid, rid in registrations),
        services.tickets.issue_due_tickets(),
    )
    tickets = results[:-1]

    numbers = sorted(t.ticket_number for t in tickets)
    seats = sorted(t.components[0].seat for t in tickets)
    expected_numbers = sorted(
        [f"S1-J-{n:04d}" for n in range(1, 13)] + [f"S1-I-{n:04d}" for n in range(1, 9)]
    )
    assert (numbers, seats) == (expected_numbers, [f"{n:03d}" for n in range(1, 21)])


async def test_verify_reference_from_ticket_is_valid_with_masked_name(database: Database) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    registration_id = await _register(database, 507, session_id)
    data = await services.tickets.ticket(507, registration_id)

    check = await services.tickets.verify(data.signed_reference)

    expected = TicketCheck(
        valid=True,
        reason="ok",
        ticket_number="S1-J-0001",
        name_masked="张*三",
        session_code="S1",
        level_code="junior",
        exam_date=EXAM_DAY.date(),
        full_name="张小三",
        id_number_masked="1101**********002X",
        registration_id=registration_id,
        telegram_id=507,
        seat="001",
    )
    assert check == expected


async def test_verify_check_url_carrying_the_reference_is_valid(database: Database) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    registration_id = await _register(database, 508, session_id)
    data = await services.tickets.ticket(508, registration_id)

    check = await services.tickets.verify(
        f"https://exam.example.org/tickets/verify?ref={data.signed_reference}"
    )

    assert (check.valid, check.ticket_number) == (True, "S1-J-0001")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda ref: ref.replace("S1-J-0001", "S1-J-0002"),  # another ticket's number
        lambda ref: ref[:-1] + ("A" if ref[-1] != "A" else "B"),  # a changed signature
        lambda ref: ref.rpartition(".")[0],  # the signature removed
        lambda ref: "tk:S1-J-0001.AAAAAAAAAAAAAAAA",  # made up
    ],
)
async def test_verify_tampered_reference_is_invalid(database: Database, tamper) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    await _register(database, 509, session_id)
    await _register(database, 510, session_id)
    data = await services.tickets.ticket(509)
    await services.tickets.ticket(510)

    check = await services.tickets.verify(tamper(data.signed_reference))

    assert check == TicketCheck(valid=False, reason="forged")


async def test_verify_ticket_of_cancelled_registration_is_not_valid(database: Database) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    registration_id = await _register(database, 511, session_id)
    data = await services.tickets.ticket(511, registration_id)
    await _set_state(database, registration_id, RegistrationState.CANCELLED)

    check = await services.tickets.verify(data.signed_reference)

    assert (check.valid, check.reason, check.ticket_number) == (False, "not_paid", "S1-J-0001")


async def test_verify_reference_signed_with_another_key_is_invalid(database: Database) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    await _register(database, 512, session_id)
    await services.tickets.ticket(512)
    other = build_services(database, clock, secret_key="another-secret-" + "z" * 32)

    check = await services.tickets.verify(other.tickets.signed_reference("S1-J-0001"))

    assert check.valid is False


async def test_issue_due_tickets_queues_one_notification_per_paid_registration(
    database: Database,
) -> None:
    clock = Clock(TICKETS_FROM - timedelta(hours=1))
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    paid = await _register(database, 513, session_id)
    await _register(database, 514, session_id, state=RegistrationState.AWAITING_PAYMENT)

    before = await services.tickets.issue_due_tickets()
    clock.now = TICKETS_FROM
    first = await services.tickets.issue_due_tickets()
    again = await services.tickets.issue_due_tickets()

    assert (before, first, again) == (0, 1, 0)
    assert await _outbox(database) == [
        (f"ticket:{paid}", 513, "ticket_ready", paid),
        (f"ticket:{paid}:venue", 513, "venue", paid),  # the site's map pin, after the notice
    ]


async def test_issue_due_tickets_after_exam_start_queues_nothing(database: Database) -> None:
    clock = Clock(EXAM_DAY + timedelta(hours=2))  # theory started at 01:00 UTC
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    await _register(database, 515, session_id)

    queued = await services.tickets.issue_due_tickets()

    assert (queued, await _outbox(database), await services.tickets.issue_due_tickets()) == (
        0,
        [],
        0,
    )


async def test_ticket_after_move_is_reissued_and_old_reference_is_invalid(
    database: Database,
) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    s1 = await make_session(database, "S1", now=NOW)
    s2 = await make_session(database, "S2", now=NOW)
    registration_id = await _register(database, 516, s1)
    old = await services.tickets.ticket(516, registration_id)
    async with UnitOfWork(database.sessions) as uow:  # as RegistrationService.move does
        await uow.session.execute(
            update(Registration).where(Registration.id == registration_id).values(session_id=s2)
        )
        await uow.commit()

    new = await services.tickets.ticket(516, registration_id)

    checks = [
        (await services.tickets.verify(r)).valid
        for r in (old.signed_reference, new.signed_reference)
    ]
    assert (new.ticket_number, checks) == ("S2-J-0001", [False, True])


async def test_issue_due_tickets_for_cancelled_session_queues_nothing(database: Database) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    session_id = await make_session(database, "S1", now=NOW)
    await _register(database, 517, session_id)
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            update(ExamSession).where(ExamSession.id == session_id).values(cancelled=True)
        )
        await uow.commit()

    assert await services.tickets.issue_due_tickets() == 0


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张小三", "张*三"),
        ("张三", "张*"),
        ("欧阳娜娜", "欧**娜"),
        ("Ann Smith", "A** S****"),
        ("李", "*"),
    ],
)
def test_mask_name_hides_the_middle(name: str, masked: str) -> None:
    assert mask_name(name) == masked


async def _move_in_database(database: Database, registration_id: int, session_id: int) -> None:
    async with UnitOfWork(database.sessions) as uow:  # as RegistrationService.move does
        await uow.session.execute(
            update(Registration)
            .where(Registration.id == registration_id)
            .values(session_id=session_id)
        )
        await uow.commit()


async def test_verify_ticket_of_moved_registration_says_replaced_and_by_which_number(
    database: Database,
) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    s1 = await make_session(database, "S1", now=NOW)
    s2 = await make_session(database, "S2", now=NOW, exam_date=(NOW + timedelta(days=31)).date())
    registration_id = await _register(database, 518, s1)
    old = await services.tickets.ticket(518, registration_id)
    await _move_in_database(database, registration_id, s2)

    before_reissue = await services.tickets.verify(old.signed_reference)
    clock.now += timedelta(days=1)  # S2's ticket date
    await services.tickets.ticket(518, registration_id)
    after_reissue = await services.tickets.verify(old.signed_reference)

    expected = TicketCheck(
        valid=False,
        reason="replaced",
        ticket_number="S1-J-0001",
        name_masked="张*三",
        session_code="S2",
        level_code="junior",
        exam_date=(NOW + timedelta(days=31)).date(),
        replaced_by=None,
        full_name="张小三",
        id_number_masked="1101**********002X",
        registration_id=registration_id,
        telegram_id=518,
    )
    assert (before_reissue, after_reissue) == (
        expected,
        dataclasses.replace(expected, replaced_by="S2-J-0001"),
    )
