"""ResultsReleaseService on real databases: the preview, the catalogue's time or staff's,
nothing visible before release, one notification per candidate however often (and however
concurrently) the tick runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.crypto import Vault
from bot.services import Services
from bot.services.errors import ResultsReleased
from bot.services.results_release import ReleasePreview
from storage.db import Database
from storage.models import AuditEntry, ComponentResult, OutboxMessage, ResultRelease
from storage.uow import UnitOfWork
from tests.factories import NOW, Clock, catalogued_services, make_registration, make_session

SECRET = "results-release-secret-" + "k" * 32
ID_NUMBER = "11010519491231002X"
HEADER = "reference,id_last4,theory,practical\n"
# Session S1 (tests/factories.make_session): exam 2026-12-26, results_at 2027-01-23 00:00 UTC.
CATALOGUE_TIME = datetime(2027, 1, 23, tzinfo=UTC)
ZONE = "Asia/Shanghai"
THEORY = {"en": "Theory", "zh_Hans": "理论知识"}
PRACTICAL = {"en": "Practical skills", "zh_Hans": "专业能力"}


async def _imported(database: Database, clock: Clock, *rows: tuple[str, str]) -> Services:
    """Services; session S1 with one paid candidate (Telegram ids 1, 2, ...) per row of
    (theory, practical) marks, imported and confirmed."""
    services = await catalogued_services(database, clock, secret_key=SECRET)
    s1 = await make_session(database, "S1")
    lines = []
    for telegram_id, (theory, practical) in enumerate(rows, start=1):
        registration = await make_registration(
            database,
            telegram_id,
            s1,
            candidate={"id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER)},
        )
        lines.append(f"{registration.reference},002X,{theory},{practical}\n")
    data = (HEADER + "".join(lines)).encode()
    preview = await services.results.preview("S1", "r.csv", data, 900)
    await services.results.confirm(preview.import_id, staff_id=900)
    return services


async def _notifications(database: Database) -> list[tuple[int, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like("results:%"))
            .order_by(OutboxMessage.chat_id)
        )
        return [(r.chat_id, r.payload["template"], r.payload["params"]) for r in rows]


async def test_preview_release_counts_candidates_at_catalogue_time(database: Database) -> None:
    clock = Clock()
    services = await _imported(database, clock, ("75", "60"), ("50", "缺考"), ("90", "80"))

    preview = await services.results_release.preview_release("S1")

    assert preview == ReleasePreview("S1", CATALOGUE_TIME, 3, chosen=False, timezone=ZONE)


async def test_schedule_release_staff_time_replaces_catalogue_time(database: Database) -> None:
    clock = Clock()
    services = await _imported(database, clock, ("75", "60"))
    chosen = datetime(2027, 1, 20, 2, 0, tzinfo=UTC)

    scheduled = await services.results_release.schedule_release("S1", chosen, staff_id=900)
    preview = await services.results_release.preview_release("S1")
    back = await services.results_release.schedule_release("S1", None, staff_id=900)

    assert scheduled == ReleasePreview("S1", chosen, 1, chosen=True, timezone=ZONE)
    assert preview == ReleasePreview("S1", chosen, 1, chosen=True, timezone=ZONE)
    assert back == ReleasePreview("S1", CATALOGUE_TIME, 1, chosen=False, timezone=ZONE)
    async with UnitOfWork(database.sessions) as uow:
        actions = list(
            await uow.session.scalars(
                select(AuditEntry.actor).where(AuditEntry.entity == "result_release")
            )
        )
    assert actions == ["tg:900", "tg:900"]


async def test_release_due_before_time_leaves_results_invisible(database: Database) -> None:
    clock = Clock()
    services = await _imported(database, clock, ("75", "60"))
    await services.results_release.schedule_release(
        "S1", datetime(2027, 1, 20, tzinfo=UTC), staff_id=900
    )
    clock.now = datetime(2027, 1, 19, 23, 59, tzinfo=UTC)

    queued = await services.results_release.release_due()
    mine = await services.results_release.candidate_results(1)

    assert queued == 0
    assert await _notifications(database) == []
    assert mine.levels == ()
    assert mine.pending == (("S1", datetime(2027, 1, 20, tzinfo=UTC)),)


async def test_release_due_twice_notifies_each_candidate_once(database: Database) -> None:
    clock = Clock()
    services = await _imported(database, clock, ("75", "60"), ("50", "70"))
    clock.now = CATALOGUE_TIME + timedelta(minutes=1)

    first = await services.results_release.release_due()
    second = await services.results_release.release_due()

    sent = await _notifications(database)
    assert (first, second) == (2, 0)
    assert [(chat, template) for chat, template, _ in sent] == [
        (1, "results_released"),
        (2, "results_released"),
    ]
    passed, failed = sent[0][2], sent[1][2]
    assert (passed["passed"], passed["retake"]) == (True, [])
    assert failed["passed"] is False
    assert failed["retake"] == [{"component": "theory", "name": THEORY}]
    assert failed["carry_over"] == [
        {"component": "practical", "name": PRACTICAL, "until": "2027-12-26"}
    ]
    assert failed["components"] == [
        {
            "component": "theory",
            "name": THEORY,
            "mark": "scored",
            "score": "50.0",
            "outcome": "failed",
        },
        {
            "component": "practical",
            "name": PRACTICAL,
            "mark": "scored",
            "score": "70.0",
            "outcome": "passed",
        },
    ]
    # Released 2027-01-23 08:01 Shanghai; the re-mark window: 7 days, until 18:00 there.
    assert failed["recheck_until"] == "2027-01-30T10:00:00+00:00"
    async with UnitOfWork(database.sessions) as uow:
        released = set(await uow.session.scalars(select(ComponentResult.released_at)))
        release = (
            await uow.session.execute(select(ResultRelease.status, ResultRelease.recipients))
        ).one()
    assert released == {clock.now}
    assert tuple(release) == ("released", 2)


async def test_release_due_concurrent_calls_notify_once(database: Database) -> None:
    clock = Clock()
    services = await _imported(database, clock, ("75", "60"), ("50", "70"), ("80", "90"))
    other = await catalogued_services(database, clock, secret_key=SECRET)
    clock.now = CATALOGUE_TIME

    counts = await asyncio.gather(
        services.results_release.release_due(), other.results_release.release_due()
    )

    assert sorted(counts) == [0, 3]
    assert [chat for chat, _, _ in await _notifications(database)] == [1, 2, 3]


async def test_candidate_results_after_release_shows_standing(database: Database) -> None:
    clock = Clock()
    services = await _imported(database, clock, ("50", "70"))
    clock.now = CATALOGUE_TIME
    await services.results_release.release_due()

    mine = await services.results_release.candidate_results(1)

    [level] = mine.levels
    assert (level.level_code, level.standing.passed, mine.pending) == ("junior", False, ())
    assert [(c.component, c.status.value) for c in level.standing.components] == [
        ("theory", "failed"),
        ("practical", "passed"),
    ]


async def test_schedule_release_after_release_is_refused(database: Database) -> None:
    clock = Clock()
    services = await _imported(database, clock, ("75", "60"))
    clock.now = CATALOGUE_TIME
    await services.results_release.release_due()

    with pytest.raises(ResultsReleased):
        await services.results_release.schedule_release("S1", NOW, staff_id=900)


async def test_preview_release_local_time_uses_session_zone(database: Database) -> None:
    clock = Clock()
    services = await _imported(database, clock, ("75", "60"))

    preview = await services.results_release.preview_release("S1", datetime(2027, 1, 20, 10, 0))

    assert preview.release_at == datetime(2027, 1, 20, 2, 0, tzinfo=UTC)
