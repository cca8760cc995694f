"""CheckinService on real databases: a scanned or typed ticket's card, the session held
today (and a ticket for another one), tampered, cancelled and replaced tickets, the first
"Present" wins (also at once), per-room figures, the ticket QR's deep link (old QR forms
still check), and the results import's warnings against the check-ins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.crypto import Vault
from bot.domain.lifecycle import RegistrationState
from bot.domain.roles import Role
from bot.services import Services, build_services
from bot.services.checkin import (
    CHECKED_IN,
    NO_SESSION_TODAY,
    OK,
    WRONG_SESSION,
    AlreadyCheckedIn,
    RoomCount,
    TicketForged,
    TicketNotAdmitted,
    TicketReplaced,
    WrongSession,
)
from bot.services.results import RowWarning
from bot.services.tickets import checkin_code, reissue_ticket
from storage.db import Database
from storage.models import AuditEntry, Registration
from storage.uow import UnitOfWork
from tests.factories import Clock, catalogued_services, make_registration, make_session

SECRET = "checkin-secret-" + "k" * 32
ID_NUMBER = "11010519491231002X"
# make_session: S1's exam is NOW + 30 days = 2026-12-26, theory at 01:00 UTC (09:00 China).
EXAM_DAY = datetime(2026, 12, 26, tzinfo=UTC)
AT_THE_DOOR = EXAM_DAY + timedelta(minutes=30)  # 08:30 China time
TICKETS_FROM = EXAM_DAY - timedelta(days=7)
A301 = {"zh_Hans": "机房 A301", "en": "Computer room A301"}
B105 = {"zh_Hans": "智能制造实训中心 B105", "en": "Smart manufacturing lab B105"}
STAFF = 900


async def _seated(
    database: Database,
    clock: Clock,
    telegram_id: int,
    session_id: int,
    services: Services,
    tickets_from: datetime = TICKETS_FROM,
    **fields: object,
) -> tuple[Registration, str]:
    """A PAID candidate of the session with an issued ticket; (registration, signed ref)."""
    registration = await make_registration(
        database,
        telegram_id,
        session_id,
        candidate={
            "full_name": "张三",
            "id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER),
            "id_number_masked": "1101**********002X",
            "profile": {"photo": {"file_id": "photo-1"}},
        },
        **fields,
    )
    now, clock.now = clock.now, max(clock.now, tickets_from)
    data = await services.tickets.ticket(telegram_id, registration.id)
    clock.now = now
    return registration, data.signed_reference


async def _services(database: Database, clock: Clock) -> Services:
    """The services with the catalogue loaded; STAFF is an EXAMDESK_ADMIN_IDS admin."""
    await catalogued_services(database, clock, secret_key=SECRET)
    return build_services(database, clock, secret_key=SECRET, staff_ids=frozenset({STAFF}))


async def test_scan_valid_ticket_on_exam_day_shows_the_card(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    _, signed = await _seated(database, clock, 1, s1, services)
    clock.now = AT_THE_DOOR

    card = await services.checkin.scan(signed)

    actual = (
        card.ticket_number,
        card.seat,
        card.full_name,
        card.id_number_masked,
        card.photo_file_id,
        card.session_code,
        card.level_code,
        [(c.code, c.room) for c in card.components],
        card.status,
        card.admissible,
        card.typed,
        card.held_today,
    )
    expected = (
        "S1-J-0001",
        "001",
        "张三",
        "1101**********002X",
        "photo-1",
        "S1",
        "junior",
        [("theory", A301), ("practical", B105)],
        OK,
        True,
        False,
        ("S1",),
    )
    assert actual == expected


async def test_scan_deep_link_code_url_and_typed_number_find_the_same_ticket(
    database: Database,
) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    _, signed = await _seated(database, clock, 1, s1, services)
    clock.now = AT_THE_DOOR
    code = checkin_code(signed)
    assert code is not None

    found = [
        await services.checkin.scan(text)
        for text in (
            code,
            f"https://t.me/examdesk_bot?start={code}",
            f"https://exam.example.org/tickets/verify?ref={signed}",
            "S1-J-0001",
            "s1-j-0001",
        )
    ]

    assert [(c.ticket_number, c.status, c.typed) for c in found] == [
        ("S1-J-0001", OK, False),
        ("S1-J-0001", OK, False),
        ("S1-J-0001", OK, False),
        ("S1-J-0001", OK, True),
        ("S1-J-0001", OK, True),
    ]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda code: code.replace("J-0001", "J-0002"),  # another number, same signature
        lambda code: code[:-2] + ("AA" if not code.endswith("AA") else "BB"),
        lambda code: "ci_nonsense",
        lambda code: "not a ticket at all",
    ],
)
async def test_scan_tampered_code_is_forged(database: Database, tamper) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    _, signed = await _seated(database, clock, 1, s1, services)
    await _seated(database, clock, 2, s1, services)  # S1-J-0002 exists: only the MAC differs
    clock.now = AT_THE_DOOR
    code = checkin_code(signed)
    assert code is not None

    with pytest.raises(TicketForged):
        await services.checkin.scan(tamper(code))


async def test_scan_ticket_of_another_session_is_the_wrong_session(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    s2 = await make_session(database, "S2", exam_date=(EXAM_DAY + timedelta(days=14)).date())
    await _seated(database, clock, 1, s1, services)
    other, signed = await _seated(
        database, clock, 2, s2, services, TICKETS_FROM + timedelta(days=14)
    )
    clock.now = AT_THE_DOOR

    card = await services.checkin.scan(signed)
    with pytest.raises(WrongSession) as refused:
        await services.checkin.present(STAFF, other.id)

    assert (card.session_code, card.status, card.admissible, card.held_today) == (
        "S2",
        WRONG_SESSION,
        False,
        ("S1",),
    )
    assert (refused.value.session_code, refused.value.held) == ("S2", ("S1",))


async def test_present_on_a_day_without_session_is_recorded_with_a_warning(
    database: Database,
) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    registration, signed = await _seated(database, clock, 1, s1, services)
    clock.now = EXAM_DAY - timedelta(days=1)

    card = await services.checkin.scan(signed)
    presence = await services.checkin.present(STAFF, registration.id)

    assert (card.status, card.admissible) == (NO_SESSION_TODAY, True)
    assert (presence.warning, presence.present, presence.expected) == (NO_SESSION_TODAY, 1, 1)


async def test_present_twice_first_wins_and_the_second_scan_says_when_and_who(
    database: Database,
) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    registration, signed = await _seated(database, clock, 1, s1, services)
    await services.staff.grant(STAFF, 901, Role.CHECKIN, "Wang Fang")
    clock.now = AT_THE_DOOR + timedelta(minutes=3)

    first = await services.checkin.present(901, registration.id)
    clock.now += timedelta(minutes=5)
    with pytest.raises(AlreadyCheckedIn) as again:
        await services.checkin.present(STAFF, registration.id)
    card = await services.checkin.scan(signed)

    assert (first.at, first.present, first.expected) == (AT_THE_DOOR + timedelta(minutes=3), 1, 1)
    assert (again.value.at, again.value.by, again.value.by_name) == (first.at, 901, "Wang Fang")
    assert (card.status, card.admissible, card.checked_in_at, card.checked_in_by_name) == (
        CHECKED_IN,
        False,
        first.at,
        "Wang Fang",
    )
    async with UnitOfWork(database.sessions) as uow:
        entries = [
            (e.actor, e.entity_id, e.action, e.details["ticket_number"])
            for e in await uow.session.scalars(
                select(AuditEntry).where(AuditEntry.entity == "attendance")
            )
        ]
    assert entries == [("tg:901", str(registration.id), "checked_in", "S1-J-0001")]


async def test_present_pressed_at_once_by_two_staff_records_one(database: Database) -> None:
    clock = Clock(AT_THE_DOOR)
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    registration, _ = await _seated(database, clock, 1, s1, services)
    other = build_services(database, clock, secret_key=SECRET)

    outcomes = await asyncio.gather(
        services.checkin.present(STAFF, registration.id),
        other.checkin.present(STAFF + 1, registration.id),
        return_exceptions=True,
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyCheckedIn", "Presence"]


async def test_scan_cancelled_registration_is_not_admitted(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    registration, signed = await _seated(database, clock, 1, s1, services)
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            update(Registration)
            .where(Registration.id == registration.id)
            .values(state=RegistrationState.CANCELLED)
        )
        await uow.commit()
    clock.now = AT_THE_DOOR

    with pytest.raises(TicketNotAdmitted) as refused:
        await services.checkin.scan(signed)
    with pytest.raises(TicketNotAdmitted):
        await services.checkin.present(STAFF, registration.id)

    assert (refused.value.state, refused.value.check.ticket_number) == ("cancelled", "S1-J-0001")


async def test_scan_replaced_ticket_names_the_number_in_force(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    registration, signed = await _seated(database, clock, 1, s1, services)
    async with UnitOfWork(database.sessions) as uow:
        fresh = await uow.registrations.get(registration.id)
        assert fresh is not None
        await reissue_ticket(uow, fresh, clock.now, actor="tg:900")
        await uow.commit()
    clock.now = AT_THE_DOOR

    with pytest.raises(TicketReplaced) as refused:
        await services.checkin.scan(signed)

    assert (refused.value.check.ticket_number, refused.value.check.replaced_by) == (
        "S1-J-0001",
        "S1-J-0002",
    )


async def test_status_counts_present_and_expected_per_room(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    both, _ = await _seated(database, clock, 1, s1, services)
    await _seated(database, clock, 2, s1, services)
    retake, _ = await _seated(database, clock, 3, s1, services, components=["practical"])
    clock.now = AT_THE_DOOR
    await services.checkin.present(STAFF, both.id)
    await services.checkin.present(STAFF, retake.id)

    status = await services.checkin.status("S1")

    assert (status.present, status.expected, status.held_today) == (2, 3, True)
    assert status.rooms == (
        RoomCount(A301, ("theory",), 1, 2),
        RoomCount(B105, ("practical",), 2, 3),
    )


async def test_ticket_qr_opens_the_bot_and_every_older_form_still_checks(
    database: Database,
) -> None:
    clock = Clock(TICKETS_FROM)
    await catalogued_services(database, clock, secret_key=SECRET)
    services = build_services(
        database,
        clock,
        secret_key=SECRET,
        public_url="https://exam.example.org",
        bot_username=lambda: "examdesk_bot",
    )
    s1 = await make_session(database, "S1")
    registration = await make_registration(database, 1, s1)

    data = await services.tickets.ticket(1, registration.id)
    checks = [
        await services.tickets.verify(text)
        for text in (
            data.qr_payload,
            data.signed_reference,  # printed under the QR code (and older QR codes)
            f"https://exam.example.org/tickets/verify?ref={data.signed_reference}",
        )
    ]

    assert (
        data.qr_payload == f"https://t.me/examdesk_bot?start={checkin_code(data.signed_reference)}"
    )
    assert [(c.valid, c.ticket_number) for c in checks] == [(True, "S1-J-0001")] * 3


async def test_import_warns_about_rows_that_disagree_with_the_door(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    came, _ = await _seated(database, clock, 1, s1, services)
    away, _ = await _seated(database, clock, 2, s1, services)
    clock.now = AT_THE_DOOR
    await services.checkin.present(STAFF, came.id)
    data = (
        "reference,id_last4,theory,practical\n"
        f"{came.reference},002X,缺考,70\n"
        f"{away.reference},002X,80,缺考\n"
    ).encode()

    preview = await services.results.preview("S1", "r.csv", data, STAFF)

    assert preview.warnings == (
        RowWarning(
            2,
            "checked_in_absent",
            {"components": ["theory"], "at": AT_THE_DOOR.isoformat()},
        ),
        RowWarning(3, "not_checked_in", {"components": ["theory"]}),
    )
    assert (preview.accepted, len(preview.refused)) == (2, 0)  # warnings, not refusals


async def test_import_without_any_check_in_warns_about_nothing(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1")
    registration, _ = await _seated(database, clock, 1, s1, services)
    data = f"reference,id_last4,theory,practical\n{registration.reference},002X,80,70\n"

    preview = await services.results.preview("S1", "r.csv", data.encode(), STAFF)

    assert (preview.warnings, preview.accepted) == ((), 1)
