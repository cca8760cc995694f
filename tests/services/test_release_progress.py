"""ResultsReleaseService.progress and the staff report on real databases: before release
the time and the candidates to tell; after, the release messages sent, waiting and not
reached (blocked, failed, never wrote to the bot), named by reference and masked ID; the
report to the staff chat once every message is settled, and only once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.crypto import Vault
from bot.domain.lifecycle import OutboxStatus
from bot.services import Services
from bot.services.errors import NotFound
from bot.services.results_release import ReleaseProgress, ResultsReleaseService, Unreached
from storage.db import Database
from storage.models import Candidate, OutboxMessage
from storage.uow import UnitOfWork
from tests.factories import Clock, catalogued_services, make_registration, make_session

SECRET = "results-progress-secret-" + "k" * 32
ID_NUMBER = "11010519491231002X"
MASKED = "1101**********002X"
RELEASE = datetime(2027, 1, 23, tzinfo=UTC)  # session S1's catalogue time (factories)
STAFF_CHAT = -100777
ZONE = "Asia/Shanghai"


async def _four_candidates(database: Database, clock: Clock) -> tuple[Services, list[str]]:
    """Session S1 with four paid candidates (Telegram ids 1-4) and their results; the
    fourth never wrote to the bot (no chat). Their references, in order."""
    services = await catalogued_services(database, clock, secret_key=SECRET)
    s1 = await make_session(database, "S1")
    references, lines = [], []
    for telegram_id in (1, 2, 3, 4):
        registration = await make_registration(
            database,
            telegram_id,
            s1,
            candidate={
                "id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER),
                "id_number_masked": MASKED,
                "chat_id": None if telegram_id == 4 else telegram_id,
            },
        )
        references.append(registration.reference)
        lines.append(f"{registration.reference},002X,75,60\n")
    data = ("reference,id_last4,theory,practical\n" + "".join(lines)).encode()
    preview = await services.results.preview("S1", "r.csv", data, 900)
    await services.results.confirm(preview.import_id, staff_id=900)
    return services, references


def _with_staff_chat(
    database: Database, services: Services, clock: Clock
) -> ResultsReleaseService:
    return ResultsReleaseService(
        lambda: UnitOfWork(database.sessions), clock, services.catalog, staff_chat_id=STAFF_CHAT
    )


async def _settle(database: Database, outcomes: dict[int, str]) -> None:
    """What the sender records: chat id → the release message's final status."""
    async with UnitOfWork(database.sessions) as uow:
        for chat_id, status in outcomes.items():
            await uow.session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.chat_id == chat_id,
                    OutboxMessage.idempotency_key.like("results:%"),
                )
                .values(status=status)
            )
        await uow.commit()


async def _reports(database: Database) -> list[dict]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key.like("results-report:%"))
        )
        return [(r.chat_id, r.payload["template"], r.payload["params"]) for r in rows]


async def test_progress_before_release_is_scheduled_with_candidates_to_tell(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await _four_candidates(database, clock)

    progress = await services.results_release.progress("S1")

    assert progress == ReleaseProgress("S1", ZONE, "scheduled", RELEASE, None, 4, 0, 0, ())


async def test_progress_after_release_names_who_was_not_reached(database: Database) -> None:
    clock = Clock()
    services, refs = await _four_candidates(database, clock)
    clock.now = RELEASE + timedelta(minutes=1)
    await services.results_release.release_due()
    await _settle(database, {1: OutboxStatus.SENT, 2: OutboxStatus.UNREACHABLE})

    progress = await services.results_release.progress("S1")

    registration_ids = [u.registration_id for u in progress.not_reached]
    assert progress == ReleaseProgress(
        "S1",
        ZONE,
        "releasing",
        RELEASE,
        clock.now,
        4,
        sent=1,
        waiting=1,
        not_reached=(
            Unreached(registration_ids[0], None, refs[1], MASKED, "unreachable"),
            Unreached(registration_ids[1], None, refs[3], MASKED, "no_chat"),
        ),
    )


async def test_progress_with_every_message_settled_is_released(database: Database) -> None:
    clock = Clock()
    services, refs = await _four_candidates(database, clock)
    clock.now = RELEASE + timedelta(minutes=1)
    await services.results_release.release_due()
    await _settle(database, {1: OutboxStatus.SENT, 2: OutboxStatus.SENT, 3: OutboxStatus.FAILED})

    progress = await services.results_release.progress("S1")

    assert (progress.status, progress.sent, progress.waiting) == ("released", 2, 0)
    assert [(u.reference, u.why) for u in progress.not_reached] == [
        (refs[2], "failed"),
        (refs[3], "no_chat"),
    ]


async def test_release_report_goes_to_staff_once_when_all_settled(database: Database) -> None:
    clock = Clock()
    services, refs = await _four_candidates(database, clock)
    release = _with_staff_chat(database, services, clock)
    clock.now = RELEASE + timedelta(minutes=1)

    await release.release_due()  # releases; its messages are all still waiting
    waiting = await _reports(database)
    await _settle(
        database, {1: OutboxStatus.SENT, 2: OutboxStatus.UNREACHABLE, 3: OutboxStatus.SENT}
    )
    await release.release_due()
    await release.release_due()

    assert waiting == []
    assert await _reports(database) == [
        (
            STAFF_CHAT,
            "results_release_report",
            {
                "session": "S1",
                "recipients": 4,
                "sent": 2,
                "not_reached": [
                    {"ticket": None, "reference": refs[1], "id": MASKED, "why": "unreachable"},
                    {"ticket": None, "reference": refs[3], "id": MASKED, "why": "no_chat"},
                ],
                "not_reached_count": 2,
            },
        )
    ]


async def test_progress_of_unknown_session_is_not_found(database: Database) -> None:
    services = await catalogued_services(database, Clock(), secret_key=SECRET)

    with pytest.raises(NotFound):
        await services.results_release.progress("NOPE")


async def test_candidate_chat_is_checked_at_release_not_later(database: Database) -> None:
    """A candidate who writes to the bot after the release still counts as not reached:
    the release queued nothing for them."""
    clock = Clock()
    services, refs = await _four_candidates(database, clock)
    clock.now = RELEASE + timedelta(minutes=1)
    await services.results_release.release_due()
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            update(Candidate).where(Candidate.telegram_id == 4).values(chat_id=4)
        )
        await uow.commit()

    progress = await services.results_release.progress("S1")

    assert [(u.reference, u.why) for u in progress.not_reached] == [(refs[3], "no_chat")]
