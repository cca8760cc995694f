"""RegistrationService on real databases: seats under concurrency, the waitlist, cancel, move."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from bot.services.errors import (
    AlreadyRegistered,
    CancellationClosed,
    InvalidState,
    LevelNotOffered,
    NotFound,
    OfferExpired,
    RegistrationClosed,
    RegistrationNotOpen,
    SessionFull,
)
from bot.services.registration import RegistrationService, SubmitResult
from storage.db import Database
from storage.models import AuditEntry, ExamSession, OutboxMessage, Registration
from storage.uow import UnitOfWork
from tests.factories import NOW, Clock, make_candidates, make_session, uow_factory


def _in_days(days: int) -> date:
    return (NOW + timedelta(days=days)).date()


def _service(database: Database, clock: Clock) -> RegistrationService:
    return RegistrationService(uow_factory(database), clock)


async def _submit(
    service: RegistrationService, telegram_id: int, session: str = "S1", **kw: object
) -> SubmitResult:
    values = {
        "level_code": "junior",
        "direction_code": "production_control",
        "components": [],
        "eligibility": {},
    }
    return await service.submit(telegram_id, session_code=session, **(values | kw))


async def _seats_taken(database: Database, code: str) -> int:
    async with UnitOfWork(database.sessions) as uow:
        return int(
            await uow.session.scalar(
                select(ExamSession.seats_taken).where(ExamSession.code == code)
            )
        )


async def _states(database: Database) -> dict[int, str]:
    async with UnitOfWork(database.sessions) as uow:
        return {r.id: r.state for r in await uow.session.scalars(select(Registration))}


async def _outbox(database: Database) -> list[tuple[int, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(row.chat_id, row.payload["template"], row.payload["params"]) for row in rows]


async def _audit(
    database: Database, registration_id: int
) -> list[tuple[str, str, str | None, str | None]]:
    async with UnitOfWork(database.sessions) as uow:
        entries = await uow.audit.list_for("registration", str(registration_id))
        return [(e.actor, e.action, e.from_state, e.to_state) for e in entries]


async def _full_session_with_waitlist(
    database: Database, service: RegistrationService, *, seats: int = 1, waiting: int = 2
) -> tuple[list[int], list[int]]:
    """A session S1 with `seats` seats all taken and `waiting` people in line.

    Seat holders have Telegram ids 1.., waiters 101..; returns their registration ids.
    """
    await make_session(database, "S1", capacity=seats)
    holders = list(range(1, seats + 1))
    waiters = list(range(101, 101 + waiting))
    await make_candidates(database, holders + waiters)
    held = [(await _submit(service, tid)).registration.id for tid in holders]
    waited = [(await _submit(service, tid, join_waitlist=True)).registration.id for tid in waiters]
    return held, waited


# --- seats under concurrency ---------------------------------------------------------------


async def test_submit_200_concurrent_for_20_seats_registers_exactly_20(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=20)
    await make_candidates(database, range(1000, 1200))

    results = await asyncio.gather(
        *(_submit(service, tid) for tid in range(1000, 1200)), return_exceptions=True
    )

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == Counter({"SubmitResult": 20, "SessionFull": 180})
    assert Counter((await _states(database)).values()) == Counter({"submitted": 20})
    assert await _seats_taken(database, "S1") == 20


async def test_submit_200_concurrent_joining_waitlist_queues_180_in_order(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=20)
    await make_candidates(database, range(1000, 1200))

    results = await asyncio.gather(
        *(_submit(service, tid, join_waitlist=True) for tid in range(1000, 1200))
    )

    assert Counter(r.seat_taken for r in results) == Counter({True: 20, False: 180})
    assert Counter((await _states(database)).values()) == Counter(
        {"submitted": 20, "waitlisted": 180}
    )
    assert await _seats_taken(database, "S1") == 20
    positions = [
        view.waitlist_position
        for tid in range(1000, 1200)
        for view in await service.list_for_candidate(tid)
        if view.state == "waitlisted"
    ]
    assert sorted(positions) == list(range(1, 181))


async def test_submit_twice_concurrently_by_same_candidate_registers_once(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=5)
    await make_candidates(database, [7])

    results = await asyncio.gather(
        *(_submit(service, 7) for _ in range(2)), return_exceptions=True
    )

    assert sorted(type(r).__name__ for r in results) == ["AlreadyRegistered", "SubmitResult"]
    assert list((await _states(database)).values()) == ["submitted"]
    assert await _seats_taken(database, "S1") == 1


async def test_submit_same_level_at_another_session_raises_already_registered(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    await make_session(database, "S2")
    await make_candidates(database, [7])
    first = await _submit(service, 7, "S1")

    with pytest.raises(AlreadyRegistered) as raised:
        await _submit(service, 7, "S2")

    assert (raised.value.registration_id, await _seats_taken(database, "S2")) == (
        first.registration.id,
        0,
    )


async def test_submit_full_session_without_waitlist_raises_session_full_with_line_length(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await _full_session_with_waitlist(database, service, seats=1, waiting=2)
    await make_candidates(database, [500])

    with pytest.raises(SessionFull) as raised:
        await _submit(service, 500)

    assert raised.value.waitlist_length == 2


async def test_submit_takes_seat_and_returns_view(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    await make_session(database, "S1", capacity=3)
    await make_candidates(database, [7])

    result = await _submit(service, 7, components=["theory"])

    view = result.registration
    assert (
        result.seat_taken,
        view.state,
        view.session_code,
        view.level_code,
        view.submitted_at,
    ) == (
        True,
        "submitted",
        "S1",
        "junior",
        clock.now,
    )
    assert (len(view.reference), view.reference[:2], view.can_cancel, view.can_move) == (
        10,
        "ED",
        True,
        True,
    )
    assert await _audit(database, view.id) == [("tg:7", "submit", None, "submitted")]


# --- the registration window -----------------------------------------------------------------


async def test_submit_before_opening_raises_registration_not_open(database: Database) -> None:
    service = _service(database, Clock())
    opens_at = NOW + timedelta(days=3)
    await make_session(database, "S1", opens_at=opens_at)
    await make_candidates(database, [7])

    with pytest.raises(RegistrationNotOpen) as raised:
        await _submit(service, 7)

    assert raised.value.opens_at == opens_at


async def test_submit_after_closing_names_next_open_session(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", closes_at=NOW - timedelta(hours=1), exam_date=_in_days(10))
    await make_session(database, "S2", levels=["senior"], exam_date=_in_days(40))
    await make_session(database, "S3", exam_date=_in_days(60))
    await make_candidates(database, [7])

    with pytest.raises(RegistrationClosed) as raised:
        await _submit(service, 7, "S1")

    assert raised.value.next_session_code == "S3"


async def test_submit_after_closing_without_other_session_names_none(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", closes_at=NOW - timedelta(hours=1))
    await make_candidates(database, [7])

    with pytest.raises(RegistrationClosed) as raised:
        await _submit(service, 7, "S1")

    assert raised.value.next_session_code is None


async def test_submit_level_not_offered_raises_level_not_offered(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", levels=["junior"])
    await make_candidates(database, [7])

    with pytest.raises(LevelNotOffered):
        await _submit(service, 7, level_code="senior")


async def test_list_sessions_reports_availability_by_exam_date(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "LATER", opens_at=NOW + timedelta(days=5), exam_date=_in_days(90))
    await make_session(database, "FULL", capacity=2, seats_taken=2, exam_date=_in_days(40))
    await make_session(database, "OPEN", capacity=10, seats_taken=3, exam_date=_in_days(30))
    await make_session(database, "PAST", closes_at=NOW - timedelta(days=1), exam_date=_in_days(5))
    await make_session(database, "SENIOR", levels=["senior"])

    default = await service.list_sessions("junior")
    everything = await service.list_sessions("junior", include_closed=True)

    assert [(o.code, o.availability, o.seats_left) for o in default] == [
        ("OPEN", "open", 7),
        ("FULL", "full", 0),
        ("LATER", "not_yet_open", 20),
    ]
    assert [o.code for o in everything] == ["PAST", "OPEN", "FULL", "LATER"]
    assert [(c.component, c.room["en"]) for c in default[0].components] == [
        ("theory", "Computer room A301"),
        ("practical", "Smart manufacturing lab B105"),
    ]


# --- forged ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["get", "cancel", "move", "accept", "decline"])
async def test_action_on_forged_registration_id_raises_not_found(
    database: Database, action: str
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=1)
    await make_session(database, "S2")
    await make_candidates(database, [1, 2, 666])
    await _submit(service, 1)
    offered = (await _submit(service, 2, join_waitlist=True)).registration.id
    await service.cancel(1, (await service.list_for_candidate(1))[0].id)  # 2 is now OFFERED
    before = (
        await _states(database),
        await _seats_taken(database, "S1"),
        await _seats_taken(database, "S2"),
    )
    calls = {
        "get": lambda: service.get_for_candidate(666, offered),
        "cancel": lambda: service.cancel(666, offered),
        "move": lambda: service.move(666, offered, "S2"),
        "accept": lambda: service.accept_offer(666, offered),
        "decline": lambda: service.decline_offer(666, offered),
    }

    with pytest.raises(NotFound):
        await calls[action]()

    after = (
        await _states(database),
        await _seats_taken(database, "S1"),
        await _seats_taken(database, "S2"),
    )
    assert after == before


async def test_get_for_candidate_of_unknown_id_raises_not_found(database: Database) -> None:
    service = _service(database, Clock())
    await make_candidates(database, [7])

    with pytest.raises(NotFound):
        await service.get_for_candidate(7, 12345)


# --- cancelling and the waitlist --------------------------------------------------------------


async def test_cancel_without_waitlist_gives_seat_back(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=3)
    await make_candidates(database, [7])
    registration = (await _submit(service, 7)).registration

    view = await service.cancel(7, registration.id, reason="changed plans")

    assert (view.state, view.can_cancel, await _seats_taken(database, "S1")) == (
        "cancelled",
        False,
        0,
    )
    assert await _audit(database, registration.id) == [
        ("tg:7", "submit", None, "submitted"),
        ("tg:7", "cancel", "submitted", "cancelled"),
    ]


async def test_cancel_frees_seat_for_first_waitlisted(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    [held], [first, second] = await _full_session_with_waitlist(
        database, service, seats=1, waiting=2
    )

    await service.cancel(1, held)

    offer = await service.get_for_candidate(101, first)
    expires_at = clock.now + timedelta(hours=24)
    assert (offer.state, offer.offer_expires_at, offer.waitlist_position) == (
        "offered",
        expires_at,
        None,
    )
    assert (await service.get_for_candidate(102, second)).waitlist_position == 1
    assert await _seats_taken(database, "S1") == 1
    assert await _outbox(database) == [
        (
            101,
            "waitlist_offer",
            {
                "registration_id": first,
                "session_code": "S1",
                "level_code": "junior",
                "offer_expires_at": expires_at.isoformat(),
            },
        ),
    ]
    assert await _audit(database, first) == [
        ("tg:101", "submit", None, "waitlisted"),
        ("system", "offer", "waitlisted", "offered"),
    ]


async def test_cancel_waitlisted_leaves_seats_alone(database: Database) -> None:
    service = _service(database, Clock())
    _, [first, second] = await _full_session_with_waitlist(database, service, seats=1, waiting=2)

    view = await service.cancel(101, first)

    assert (view.state, await _seats_taken(database, "S1")) == ("cancelled", 1)
    assert (await service.get_for_candidate(102, second)).waitlist_position == 1
    assert await _outbox(database) == []


async def test_cancel_with_seat_holders_racing_offers_each_seat_once(database: Database) -> None:
    service = _service(database, Clock())
    held, waited = await _full_session_with_waitlist(database, service, seats=3, waiting=4)

    await asyncio.gather(
        *(service.cancel(tid, rid) for tid, rid in zip([1, 2, 3], held, strict=True))
    )

    states = await _states(database)
    assert [states[rid] for rid in waited] == ["offered", "offered", "offered", "waitlisted"]
    assert (await _seats_taken(database, "S1"), len(await _outbox(database))) == (3, 3)


async def test_cancel_offer_for_candidate_without_chat_queues_nothing(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=1)
    await make_candidates(database, [1])
    await make_candidates(database, [101], with_chat=False)
    held = (await _submit(service, 1)).registration.id
    waiting = (await _submit(service, 101, join_waitlist=True)).registration.id

    await service.cancel(1, held)

    assert ((await service.get_for_candidate(101, waiting)).state, await _outbox(database)) == (
        "offered",
        [],
    )


async def test_cancel_after_cutoff_raises_cancellation_closed(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    cutoff = NOW + timedelta(days=2)
    await make_session(database, "S1", cancellation_cutoff_at=cutoff)
    await make_candidates(database, [7])
    registration = (await _submit(service, 7)).registration
    clock.now = cutoff + timedelta(minutes=1)

    with pytest.raises(CancellationClosed) as raised:
        await service.cancel(7, registration.id)

    view = await service.get_for_candidate(7, registration.id)
    assert (raised.value.cutoff_at, view.state, view.can_cancel) == (cutoff, "submitted", False)
    assert await _seats_taken(database, "S1") == 1


async def test_cancel_twice_raises_invalid_state(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    await make_candidates(database, [7])
    registration = (await _submit(service, 7)).registration
    await service.cancel(7, registration.id)

    with pytest.raises(InvalidState) as raised:
        await service.cancel(7, registration.id)

    assert (raised.value.state, await _seats_taken(database, "S1")) == ("cancelled", 0)


async def test_cancel_twice_concurrently_releases_one_seat(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=2)
    await make_candidates(database, [7, 8])
    registration = (await _submit(service, 7)).registration
    await _submit(service, 8)

    results = await asyncio.gather(
        *(service.cancel(7, registration.id) for _ in range(2)), return_exceptions=True
    )

    assert sorted(type(r).__name__ for r in results) == ["InvalidState", "RegistrationView"]
    assert await _seats_taken(database, "S1") == 1


# --- offers ----------------------------------------------------------------------------------


async def test_accept_offer_makes_registration_submitted(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    [held], [first, _] = await _full_session_with_waitlist(database, service, seats=1, waiting=2)
    await service.cancel(1, held)
    clock.now += timedelta(hours=3)

    view = await service.accept_offer(101, first)

    assert (view.state, view.submitted_at, view.offer_expires_at) == ("submitted", clock.now, None)
    assert await _seats_taken(database, "S1") == 1
    assert (await _audit(database, first))[-1] == (
        "tg:101",
        "accept_offer",
        "offered",
        "submitted",
    )


async def test_accept_offer_after_expiry_raises_offer_expired(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    [held], [first, _] = await _full_session_with_waitlist(database, service, seats=1, waiting=2)
    await service.cancel(1, held)
    clock.now += timedelta(hours=24)

    with pytest.raises(OfferExpired):
        await service.accept_offer(101, first)
    await service.expire_offers()
    with pytest.raises(OfferExpired):
        await service.accept_offer(101, first)


async def test_accept_offer_when_not_offered_raises_invalid_state(database: Database) -> None:
    service = _service(database, Clock())
    _, [first, _] = await _full_session_with_waitlist(database, service, seats=1, waiting=2)

    with pytest.raises(InvalidState) as raised:
        await service.accept_offer(101, first)

    assert raised.value.state == "waitlisted"


async def test_decline_offer_offers_seat_to_next_in_line(database: Database) -> None:
    service = _service(database, Clock())
    [held], [first, second] = await _full_session_with_waitlist(
        database, service, seats=1, waiting=2
    )
    await service.cancel(1, held)

    view = await service.decline_offer(101, first)

    assert (view.state, (await service.get_for_candidate(102, second)).state) == (
        "cancelled",
        "offered",
    )
    assert await _seats_taken(database, "S1") == 1
    assert [(chat, template) for chat, template, _ in await _outbox(database)] == [
        (101, "waitlist_offer"),
        (102, "waitlist_offer"),
    ]
    assert (await _audit(database, first))[-1] == (
        "tg:101",
        "decline_offer",
        "offered",
        "cancelled",
    )


async def test_decline_offer_of_last_in_line_gives_seat_back(database: Database) -> None:
    service = _service(database, Clock())
    [held], [first] = await _full_session_with_waitlist(database, service, seats=1, waiting=1)
    await service.cancel(1, held)

    await service.decline_offer(101, first)

    assert await _seats_taken(database, "S1") == 0


async def test_expire_offers_passes_seat_to_next_in_line(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    [held], [first, second] = await _full_session_with_waitlist(
        database, service, seats=1, waiting=2
    )
    await service.cancel(1, held)
    offer_expires_at = clock.now + timedelta(hours=24)
    clock.now += timedelta(hours=23)
    assert await service.expire_offers() == 0
    clock.now += timedelta(hours=2)

    expired = await service.expire_offers()

    states = await _states(database)
    assert (expired, states[first], states[second]) == (1, "expired", "offered")
    assert await _seats_taken(database, "S1") == 1
    assert [(chat, template) for chat, template, _ in await _outbox(database)] == [
        (101, "waitlist_offer"),
        (101, "waitlist_offer_expired"),
        (102, "waitlist_offer"),
    ]
    assert (await _outbox(database))[1][2] == {"registration_id": first, "session_code": "S1"}
    assert (
        await service.get_for_candidate(102, second)
    ).offer_expires_at == clock.now + timedelta(hours=24)
    assert (await _audit(database, first))[-1] == ("system", "offer_expired", "offered", "expired")
    assert offer_expires_at < clock.now


async def test_expire_offers_twice_changes_nothing_the_second_time(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    [held], _ = await _full_session_with_waitlist(database, service, seats=1, waiting=2)
    await service.cancel(1, held)
    clock.now += timedelta(hours=25)
    assert await service.expire_offers() == 1
    before = (await _states(database), await _outbox(database), await _seats_taken(database, "S1"))

    again = await service.expire_offers()

    after = (await _states(database), await _outbox(database), await _seats_taken(database, "S1"))
    assert (again, after) == (0, before)


async def test_expire_offers_concurrently_expires_each_offer_once(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    held, waited = await _full_session_with_waitlist(database, service, seats=2, waiting=4)
    for tid, rid in zip([1, 2], held, strict=True):
        await service.cancel(tid, rid)
    clock.now += timedelta(hours=25)

    counts = await asyncio.gather(*(service.expire_offers() for _ in range(3)))

    states = await _states(database)
    assert (sum(counts), [states[rid] for rid in waited]) == (
        2,
        ["expired", "expired", "offered", "offered"],
    )
    assert (await _seats_taken(database, "S1"), len(await _outbox(database))) == (2, 6)


async def test_expire_offers_uses_constructor_offer_hours(database: Database) -> None:
    clock = Clock()
    service = RegistrationService(uow_factory(database), clock, offer_hours=2)
    [held], [first, _] = await _full_session_with_waitlist(database, service, seats=1, waiting=2)

    await service.cancel(1, held)

    assert (await service.get_for_candidate(101, first)).offer_expires_at == clock.now + timedelta(
        hours=2
    )


# --- moving ----------------------------------------------------------------------------------


async def test_move_to_full_session_raises_session_full_and_changes_nothing(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=2)
    await make_session(database, "S2", capacity=1)
    await make_candidates(database, [7, 8])
    registration = (await _submit(service, 7, "S1")).registration
    await _submit(service, 8, "S2")
    before = (
        await _states(database),
        await _seats_taken(database, "S1"),
        await _seats_taken(database, "S2"),
    )

    with pytest.raises(SessionFull):
        await service.move(7, registration.id, "S2")

    after = (
        await _states(database),
        await _seats_taken(database, "S1"),
        await _seats_taken(database, "S2"),
    )
    assert (after, (await service.get_for_candidate(7, registration.id)).session_code) == (
        before,
        "S1",
    )


async def test_move_frees_old_seat_for_waitlist(database: Database) -> None:
    service = _service(database, Clock())
    [held], [first, _] = await _full_session_with_waitlist(database, service, seats=1, waiting=2)
    await make_session(database, "S2", capacity=5)

    view = await service.move(1, held, "S2")

    assert (view.id, view.session_code, view.state) == (held, "S2", "submitted")
    assert (await _seats_taken(database, "S1"), await _seats_taken(database, "S2")) == (1, 1)
    assert (await service.get_for_candidate(101, first)).state == "offered"
    assert (await _audit(database, held))[-1] == ("tg:1", "move", "submitted", "submitted")


async def test_move_without_waitlist_gives_old_seat_back(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    await make_session(database, "S2")
    await make_candidates(database, [7])
    registration = (await _submit(service, 7, "S1")).registration

    await service.move(7, registration.id, "S2")

    assert (await _seats_taken(database, "S1"), await _seats_taken(database, "S2")) == (0, 1)


async def test_move_to_session_without_level_raises_level_not_offered(database: Database) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    await make_session(database, "S2", levels=["senior"])
    await make_candidates(database, [7])
    registration = (await _submit(service, 7, "S1")).registration

    with pytest.raises(LevelNotOffered):
        await service.move(7, registration.id, "S2")


async def test_move_waitlisted_registration_raises_invalid_state(database: Database) -> None:
    service = _service(database, Clock())
    _, [first, _] = await _full_session_with_waitlist(database, service, seats=1, waiting=2)
    await make_session(database, "S2")

    with pytest.raises(InvalidState):
        await service.move(101, first, "S2")


async def test_move_to_session_with_other_level_registration_raises_already_registered(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    # Another day: one exam day takes one registration of a candidate.
    await make_session(database, "S2", exam_date=_in_days(31))
    await make_candidates(database, [7])
    junior = (await _submit(service, 7, "S1")).registration
    await _submit(service, 7, "S2", level_code="intermediate")

    with pytest.raises(AlreadyRegistered):
        await service.move(7, junior.id, "S2")

    assert (await _seats_taken(database, "S1"), await _seats_taken(database, "S2")) == (1, 1)


# --- listing ---------------------------------------------------------------------------------


async def test_list_for_candidate_is_newest_first(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    await make_session(database, "S1")
    await make_session(database, "S2")
    await make_candidates(database, [7])
    first = (await _submit(service, 7, "S1")).registration
    await service.cancel(7, first.id)
    clock.now += timedelta(minutes=5)
    second = (await _submit(service, 7, "S2")).registration

    views = await service.list_for_candidate(7)

    assert [(v.id, v.state) for v in views] == [(second.id, "submitted"), (first.id, "cancelled")]


async def test_audit_log_records_every_transition(database: Database) -> None:
    clock = Clock()
    service = _service(database, clock)
    [held], [first] = await _full_session_with_waitlist(database, service, seats=1, waiting=1)
    await make_session(database, "S2")
    await service.cancel(1, held)
    await service.accept_offer(101, first)
    await service.move(101, first, "S2")
    await service.cancel(101, first)

    assert await _audit(database, first) == [
        ("tg:101", "submit", None, "waitlisted"),
        ("system", "offer", "waitlisted", "offered"),
        ("tg:101", "accept_offer", "offered", "submitted"),
        ("tg:101", "move", "submitted", "submitted"),
        ("tg:101", "cancel", "submitted", "cancelled"),
    ]
    async with UnitOfWork(database.sessions) as uow:
        total = await uow.session.scalar(select(func.count()).select_from(AuditEntry))
    assert total == 7  # + the holder's submit and cancel


@pytest.mark.parametrize("state", ["paid", "payment_review"])
async def test_cancel_paid_or_under_review_is_left_to_staff(
    database: Database, state: str
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1", capacity=3)
    await make_candidates(database, [7])
    registration = (await _submit(service, 7)).registration
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            Registration.__table__.update()
            .where(Registration.id == registration.id)
            .values(state=state)
        )
        await uow.commit()

    view = await service.get_for_candidate(7, registration.id)
    with pytest.raises(InvalidState):
        await service.cancel(7, registration.id)

    assert (
        view.can_cancel,
        (await _states(database))[registration.id],
        await _seats_taken(database, "S1"),
    ) == (False, state, 1)


# --- one exam day, one registration ----------------------------------------------------------


async def test_list_sessions_for_candidate_leaves_out_the_day_of_another_registration(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    await make_session(database, "S1B")  # the same day as S1 (another room, say)
    await make_session(database, "S2", exam_date=_in_days(31))
    await make_candidates(database, [7, 8])
    junior = (await _submit(service, 7, "S1")).registration

    mine = await service.list_sessions("intermediate", telegram_id=7)
    moving = await service.list_sessions("junior", telegram_id=7, moving=junior.id)
    someone_else = await service.list_sessions("intermediate", telegram_id=8)

    assert (
        [s.code for s in mine],
        [s.code for s in moving],
        [s.code for s in someone_else],
    ) == (["S2"], ["S1", "S1B", "S2"], ["S1", "S1B", "S2"])


async def test_submit_on_the_day_of_another_registration_raises_already_registered(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    await make_session(database, "S1B")
    await make_candidates(database, [7])
    junior = (await _submit(service, 7, "S1")).registration

    with pytest.raises(AlreadyRegistered) as caught:
        await _submit(service, 7, "S1B", level_code="intermediate")

    assert (caught.value.registration_id, await _seats_taken(database, "S1B")) == (junior.id, 0)


async def test_move_to_the_day_of_another_registration_raises_already_registered(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    await make_session(database, "S2", exam_date=_in_days(31))
    await make_session(database, "S2B", exam_date=_in_days(31))
    await make_candidates(database, [7])
    junior = (await _submit(service, 7, "S1")).registration
    intermediate = (await _submit(service, 7, "S2", level_code="intermediate")).registration

    with pytest.raises(AlreadyRegistered) as caught:
        await service.move(7, junior.id, "S2B")

    assert (caught.value.registration_id, await _seats_taken(database, "S2B")) == (
        intermediate.id,
        0,
    )


async def test_registration_view_says_identity_is_frozen_once_paid_or_under_review(
    database: Database,
) -> None:
    service = _service(database, Clock())
    await make_session(database, "S1")
    await make_candidates(database, [7])
    registration = (await _submit(service, 7, "S1")).registration
    frozen = []
    for state in ("submitted", "payment_review", "paid"):
        async with UnitOfWork(database.sessions) as uow:
            row = await uow.registrations.get(registration.id)
            row.state = state
            await uow.commit()
        frozen.append((await service.get_for_candidate(7, registration.id)).identity_frozen)

    assert frozen == [False, True, True]
