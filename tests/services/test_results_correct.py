"""ResultsService.correct on real databases: before release it replaces the unreleased
value (audited, nobody told); after release the candidate is told in the outbox (new
score, pass state, the level newly passed or no longer passed) and the audit keeps actor,
old, new and reason; absent and disqualified; what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.crypto import Vault
from bot.services import Services
from bot.services.errors import InvalidAnswer, NotFound
from bot.services.results import UnknownComponent
from storage.db import Database
from storage.models import AuditEntry, ComponentResult, OutboxMessage, Registration
from storage.uow import UnitOfWork
from tests.factories import Clock, catalogued_services, make_registration, make_session

SECRET = "results-correct-secret-" + "k" * 32
ID_NUMBER = "11010519491231002X"
RELEASE_AT = datetime(2027, 1, 23, tzinfo=UTC)  # S1's catalogue time (tests/factories)
STAFF = 900
THEORY = {"en": "Theory", "zh_Hans": "理论知识"}


async def _imported(
    database: Database, clock: Clock, theory: str, practical: str, *, released: bool
) -> tuple[Services, Registration]:
    """S1 with one paid candidate (Telegram id 1) whose results are imported (and released)."""
    services = await catalogued_services(database, clock, secret_key=SECRET)
    s1 = await make_session(database, "S1")
    registration = await make_registration(
        database, 1, s1, candidate={"id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER)}
    )
    row = f"{registration.reference},002X,{theory},{practical}\n"
    data = "reference,id_last4,theory,practical\n" + row
    preview = await services.results.preview("S1", "r.csv", data.encode(), STAFF)
    await services.results.confirm(preview.import_id, STAFF)
    if released:
        clock.now = RELEASE_AT + timedelta(minutes=1)
        assert await services.results_release.release_due() == 1
        clock.now += timedelta(days=1)
    return services, registration


async def _result(database: Database, component: str) -> tuple[str, int | None, int, str]:
    async with UnitOfWork(database.sessions) as uow:
        row = await uow.session.scalar(
            select(ComponentResult).where(ComponentResult.component == component)
        )
        assert row is not None
        return row.mark, row.score_tenths, row.version, row.updated_by


async def _corrections(database: Database) -> list[tuple[str, str, str | None, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "component_result", AuditEntry.action == "corrected")
            .order_by(AuditEntry.id)
        )
        return [(r.actor, r.entity_id, r.reason, r.details) for r in rows]


async def _told(database: Database) -> list[tuple[int, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key.like("result_corrected:%"))
        )
        return [(r.chat_id, r.payload["template"], r.payload["params"]) for r in rows]


async def test_correct_before_release_replaces_the_unreleased_value(database: Database) -> None:
    clock = Clock()
    services, registration = await _imported(database, clock, "50", "70", released=False)

    done = await services.results.correct(
        STAFF, registration.reference, "理论知识", "65", "marking error on question 12"
    )

    assert (done.changed, done.released, done.old_score, done.new_score, done.notified) == (
        True,
        False,
        "50.0",
        "65.0",
        False,
    )
    assert await _result(database, "theory") == ("scored", 650, 2, "tg:900")
    assert await _corrections(database) == [
        (
            "tg:900",
            f"{registration.id}:theory",
            "marking error on question 12",
            {
                "from": {"mark": "scored", "score_tenths": 500},
                "to": {"mark": "scored", "score_tenths": 650},
                "released": False,
            },
        )
    ]
    assert await _told(database) == []


async def test_correct_after_release_tells_the_candidate_the_level_is_now_passed(
    database: Database,
) -> None:
    clock = Clock()
    services, registration = await _imported(database, clock, "50", "70", released=True)

    done = await services.results.correct(
        STAFF, registration.reference, "theory", "61", "sheet 2 was not counted"
    )
    mine = await services.results_release.candidate_results(1)

    assert (done.released, done.component_passed, done.level_passed_before, done.level_passed) == (
        True,
        True,
        False,
        True,
    )
    assert await _told(database) == [
        (
            1,
            "result_corrected",
            {
                "session_code": "S1",
                "level_code": "junior",
                "component": "theory",
                "component_names": THEORY,
                "old_mark": "scored",
                "old": "50.0",
                "new_mark": "scored",
                "new": "61.0",
                "component_passed": True,
                "level_passed_before": False,
                "level_passed": True,
            },
        )
    ]
    assert [level.standing.passed for level in mine.levels] == [True]
    [(actor, _, reason, details)] = await _corrections(database)
    assert (actor, reason, details["released"]) == ("tg:900", "sheet 2 was not counted", True)


async def test_correct_after_release_to_disqualified_says_no_longer_passed(
    database: Database,
) -> None:
    clock = Clock()
    services, registration = await _imported(database, clock, "80", "70", released=True)

    done = await services.results.correct(
        None, registration.reference, "practical", "违纪", "misconduct found on video"
    )

    [(_, _, params)] = await _told(database)
    assert (done.new_mark, done.new_score, done.level_passed_before, done.level_passed) == (
        "disqualified",
        None,
        True,
        False,
    )
    assert (params["new_mark"], params["component_passed"], params["level_passed"]) == (
        "disqualified",
        False,
        False,
    )
    assert await _result(database, "practical") == ("disqualified", None, 2, "cli")


async def test_correct_to_the_same_value_writes_nothing(database: Database) -> None:
    clock = Clock()
    services, registration = await _imported(database, clock, "50", "absent", released=True)

    done = await services.results.correct(STAFF, registration.reference, "practical", "缺考", "x")

    assert done.changed is False
    assert await _result(database, "practical") == ("absent", None, 1, "tg:900")
    assert (await _corrections(database), await _told(database)) == ([], [])


async def test_correct_by_ticket_number_finds_the_registration(database: Database) -> None:
    clock = Clock()
    services, registration = await _imported(database, clock, "50", "70", released=False)
    clock.now = datetime(2026, 12, 20, tzinfo=UTC)  # S1's tickets are out
    ticket = await services.tickets.ticket(1, registration.id)

    done = await services.results.correct(STAFF, ticket.ticket_number.lower(), "theory", "55", "r")

    assert (done.ticket_number, done.new_score) == ("S1-J-0001", "55.0")


@pytest.mark.parametrize(
    ("code", "component", "value", "reason", "error", "detail"),
    [
        ("EDNOSUCH", "theory", "60", "r", NotFound, "registration"),
        (None, "history", "60", "r", UnknownComponent, "history"),
        (None, "theory", "101", "r", InvalidAnswer, "out_of_range"),
        (None, "theory", "6o", "r", InvalidAnswer, "not_a_number"),
        (None, "theory", "60.25", "r", InvalidAnswer, "too_many_decimals"),
        (None, "theory", "60", "   ", InvalidAnswer, "missing"),
        (None, "theory", "60", "x" * 501, InvalidAnswer, "too_long"),
    ],
)
async def test_correct_refuses_bad_input_and_changes_nothing(  # type: ignore[no-untyped-def]
    database: Database, code, component, value, reason, error, detail
) -> None:
    clock = Clock()
    services, registration = await _imported(database, clock, "50", "70", released=True)

    with pytest.raises(error) as refused:
        await services.results.correct(
            STAFF, code or registration.reference, component, value, reason
        )

    said = getattr(refused.value, "reason", None) or getattr(refused.value, "text", None)
    assert (said or str(refused.value)) == detail
    assert await _result(database, "theory") == ("scored", 500, 1, "tg:900")


async def test_correct_component_without_result_is_not_found(database: Database) -> None:
    clock = Clock()
    services = await catalogued_services(database, clock, secret_key=SECRET)
    s1 = await make_session(database, "S1")
    registration = await make_registration(database, 1, s1)

    with pytest.raises(NotFound) as refused:
        await services.results.correct(STAFF, registration.reference, "theory", "60", "r")

    assert str(refused.value) == "result"
