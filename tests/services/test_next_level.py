"""A level passed here unlocks the next one: the eligibility check counts a junior pass
(released results) as the junior certificate from its pass date, without asking for it,
and names it; the candidate's own answers stay as they were. Also what `/status` reads
(`StandingService`), and the `results_released` reminder kind tied to the release. On
SQLite and PostgreSQL.

Session 2027-01 of the shipped catalogue: exam 2027-01-09, results released at E+28
09:00 Asia/Shanghai = 2027-02-06 01:00 UTC, so the pass date is 2027-02-06. Route M2 of
intermediate: associate or bachelor's degree and the junior certificate held 3 years.
After the last catalogue session the check is for an exam on the day it runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from bot.crypto import Vault
from bot.domain.catalog import load_catalog, parse_catalog
from bot.domain.eligibility import Status
from bot.services import Services
from bot.services.eligibility import Outcome, Question
from bot.services.outbox import SendResult
from bot.services.results_release import ResultsReleaseService
from bot.services.standing import ComponentLine, LevelPass, RegistrationStanding
from storage.db import Database
from storage.models import Candidate, Certificate, ComponentResult, OutboxMessage
from storage.uow import UnitOfWork
from tests.factories import Clock, catalogued_services, make_registration, uow_factory
from tests.services.test_reminders import CATALOG_FILE, S, World, utc

SECRET = "next-level-secret-" + "k" * 32
ID_NUMBER = "11010519491231002X"
RELEASED = datetime(2027, 2, 6, 1, 0, tzinfo=UTC)
PASSED_ON = date(2027, 2, 6)
ANSWERS = {
    "education": "bachelor",
    "graduation_date": "2020-06-30",
    "major": "机械工程",
    "major_code": None,
    "title": "none",
}
THEORY = {"en": "Theory", "zh_Hans": "理论知识"}
PRACTICAL = {"en": "Practical skills", "zh_Hans": "专业能力"}


async def _sat_junior(
    database: Database, clock: Clock, marks: str = "75,60", profile: dict | None = None
) -> tuple[Services, int]:
    """Candidate 1 with `profile` sat junior in 2027-01 with `marks` (theory,practical),
    results imported and released; the services and the registration id."""
    services = await catalogued_services(database, clock, secret_key=SECRET)
    session_id = await _session_id(database)
    registration = await make_registration(
        database,
        1,
        session_id,
        candidate={
            "id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER),
            "profile": profile if profile is not None else dict(ANSWERS),
        },
    )
    data = f"reference,id_last4,theory,practical\n{registration.reference},002X,{marks}\n"
    preview = await services.results.preview("2027-01", "r.csv", data.encode(), 900)
    await services.results.confirm(preview.import_id, staff_id=900)
    clock.now = RELEASED
    assert await services.results_release.release_due() == 1
    return services, registration.id


async def _session_id(database: Database, code: str = "2027-01") -> int:
    async with UnitOfWork(database.sessions) as uow:
        session = await uow.exam_sessions.get_by_code(code)
        assert session is not None
        return session.id


async def _stored_profile(database: Database) -> dict:
    async with UnitOfWork(database.sessions) as uow:
        profile = await uow.session.scalar(
            select(Candidate.profile).where(Candidate.telegram_id == 1)
        )
        return {k: v for k, v in profile.items() if k != "verdicts"}


async def test_check_after_three_years_is_eligible_by_m2_without_asking(
    database: Database,
) -> None:
    clock = Clock()
    services, registration_id = await _sat_junior(database, clock)
    clock.now = datetime(2030, 2, 6, 12, 0, tzinfo=UTC)

    outcome = await services.eligibility.start(1, "intermediate")

    assert isinstance(outcome, Outcome)
    assert (outcome.verdict.status, outcome.verdict.matched_route) == (Status.ELIGIBLE, "M2")
    assert outcome.passed_here == (LevelPass("junior", PASSED_ON, registration_id),)
    assert await _stored_profile(database) == ANSWERS  # nothing written for the pass


async def test_check_a_day_before_three_years_is_not_eligible_and_says_when(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await _sat_junior(database, clock)
    clock.now = datetime(2030, 2, 5, 12, 0, tzinfo=UTC)

    outcome = await services.eligibility.start(1, "intermediate")

    assert isinstance(outcome, Outcome)
    assert outcome.verdict.status == Status.NOT_ELIGIBLE
    missing = outcome.verdict.route("M2").missing
    assert [(m.code, m.need, m.have, m.met_on) for m in missing] == [
        ("years_since_prior_level", 3, 2, date(2030, 2, 6))
    ]
    assert [p.level for p in outcome.passed_here] == ["junior"]


async def test_check_right_after_release_counts_from_the_release_day(
    database: Database,
) -> None:
    clock = Clock()
    services, _ = await _sat_junior(database, clock)
    clock.now = datetime(2027, 2, 7, tzinfo=UTC)

    outcome = await services.eligibility.start(1, "intermediate")

    assert isinstance(outcome, Outcome)
    assert outcome.verdict.exam_date == date(2027, 3, 13)  # the next intermediate session
    assert outcome.verdict.route("M2").eligible_from == date(2030, 2, 6)


async def test_check_without_a_pass_asks_for_the_prior_level(database: Database) -> None:
    clock = Clock()
    services, _ = await _sat_junior(database, clock, marks="50,60")
    clock.now = datetime(2030, 2, 6, 12, 0, tzinfo=UTC)

    asked = await services.eligibility.start(1, "intermediate")

    assert asked == Question("prior_level", ("junior", "intermediate", "senior"), allow_none=True)


async def test_check_with_an_earlier_certificate_typed_counts_the_earlier_date(
    database: Database,
) -> None:
    clock = Clock()
    typed = {**ANSWERS, "prior_level": "junior", "prior_level_date": "2026-01-10"}
    services, _ = await _sat_junior(database, clock, profile=typed)
    clock.now = datetime(2029, 1, 10, 12, 0, tzinfo=UTC)

    outcome = await services.eligibility.start(1, "intermediate")

    assert isinstance(outcome, Outcome)
    assert outcome.verdict.matched_route == "M2"
    assert await _stored_profile(database) == typed


async def test_change_prior_level_asks_it_even_with_a_pass_here(database: Database) -> None:
    clock = Clock()
    services, _ = await _sat_junior(database, clock)
    clock.now = datetime(2030, 2, 6, 12, 0, tzinfo=UTC)
    await services.eligibility.start(1, "intermediate")

    listed = await services.eligibility.answers(1, "intermediate")
    asked = await services.eligibility.change(1, "intermediate", "prior_level")
    outcome = await services.eligibility.answer(1, "prior_level", "none")

    assert [(a.step, a.value) for a in listed][-2:] == [
        ("prior_level", "junior"),
        ("prior_level_date", "2027-02-06"),
    ]
    assert isinstance(asked, Question) and asked.step == "prior_level"
    # "None" from elsewhere: the pass here still counts.
    assert isinstance(outcome, Outcome) and outcome.verdict.matched_route == "M2"


async def test_revoked_certificate_does_not_count_as_held(database: Database) -> None:
    clock = Clock()
    services, registration_id = await _sat_junior(database, clock)
    await _certificate(database, registration_id, revoked=True)
    clock.now = datetime(2030, 2, 6, 12, 0, tzinfo=UTC)

    asked = await services.eligibility.start(1, "intermediate")

    assert isinstance(asked, Question) and asked.step == "prior_level"


async def _certificate(database: Database, registration_id: int, *, revoked: bool) -> None:
    async with UnitOfWork(database.sessions) as uow:
        candidate_id = await uow.session.scalar(
            select(Candidate.id).where(Candidate.telegram_id == 1)
        )
        uow.session.add(
            Certificate(
                registration_id=registration_id,
                candidate_id=candidate_id,
                level_code="junior",
                number="RC2027-01-junior-0001",
                number_key="RC202701JUNIOR0001",
                issued_on=date(2027, 3, 20),
                verify_code="abcdefghijkl",
                status="revoked" if revoked else "valid",
                source="assigned",
                revoked_at=datetime(2027, 5, 1, 2, 0, tzinfo=UTC) if revoked else None,
                created_by="cli",
            )
        )
        await uow.commit()


# --- what /status reads ---------------------------------------------------------------


async def test_status_after_a_pass_shows_results_and_expected_certificate(
    database: Database,
) -> None:
    clock = Clock()
    services, registration_id = await _sat_junior(database, clock)

    found = await services.standing.for_candidate(1)

    assert found == {
        registration_id: RegistrationStanding(
            registration_id,
            "Asia/Shanghai",
            results=(
                ComponentLine("theory", THEORY, "scored", Decimal("75.0"), passed=True),
                ComponentLine("practical", PRACTICAL, "scored", Decimal("60.0"), passed=True),
            ),
            passed_on=PASSED_ON,
            # E+70 at 09:00 in Shanghai.
            certificates_at=datetime(2027, 3, 20, 1, 0, tzinfo=UTC),
        )
    }


async def test_status_with_a_certificate_shows_it_instead_of_the_expected_date(
    database: Database,
) -> None:
    clock = Clock()
    services, registration_id = await _sat_junior(database, clock)
    await _certificate(database, registration_id, revoked=False)

    found = (await services.standing.for_candidate(1))[registration_id]

    assert found.certificate is not None
    assert (found.certificate.number, found.certificate.status, found.certificates_at) == (
        "RC2027-01-junior-0001",
        "valid",
        None,
    )


async def test_status_before_release_shows_only_the_release_time(database: Database) -> None:
    clock = Clock()
    services = await catalogued_services(database, clock, secret_key=SECRET)
    session_id = await _session_id(database)
    registration = await make_registration(
        database,
        1,
        session_id,
        candidate={"id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER)},
    )
    data = f"reference,id_last4,theory,practical\n{registration.reference},002X,75,60\n"
    preview = await services.results.preview("2027-01", "r.csv", data.encode(), 900)
    await services.results.confirm(preview.import_id, staff_id=900)
    chosen = datetime(2027, 2, 3, 2, 0, tzinfo=UTC)
    await services.results_release.schedule_release("2027-01", chosen, staff_id=900)
    clock.now = datetime(2027, 1, 20, tzinfo=UTC)

    found = await services.standing.for_candidate(1)

    assert found == {
        registration.id: RegistrationStanding(registration.id, "Asia/Shanghai", results_at=chosen)
    }


# --- the results_released reminder is the release's ------------------------------------


class ResultsWorld(World):
    """The reminders world with the `results_released` offsets of a test catalogue."""

    def __init__(self, database: Database, now: datetime, offsets: tuple[str, ...]) -> None:
        super().__init__(database, now, plan_ahead=timedelta(days=400))
        self.offsets = offsets
        self.release = ResultsReleaseService(uow_factory(database), self.clock, self.catalog)

    async def load(self, **_: object) -> None:
        document = load_catalog(CATALOG_FILE).model_dump(mode="json")
        for reminder in document["reminders"]:
            if reminder["kind"] == "results_released":
                reminder["offsets"] = list(self.offsets)
        await self.catalog.load(parse_catalog(document))

    async def results_rows(self) -> set[tuple[str, str, str | None]]:
        return {row for row in await self.rows() if row[0].startswith("results_released")}


async def _results_world(
    database: Database, now: datetime, offsets: tuple[str, ...]
) -> ResultsWorld:
    world = ResultsWorld(database, now, offsets)
    await world.load()
    return world


async def test_results_reminder_a_day_before_fires_once(database: Database) -> None:
    world = await _results_world(database, utc("2027-02-04T02:00:00"), ("-1d", "0h"))
    await world.register(1001, S.PAID)

    await world.reminders.plan()
    await world.reminders.plan()
    planned = await world.results_rows()
    world.clock.now = utc("2027-02-05T01:00:00")
    first = await world.outbox.claim(limit=50, lease=timedelta(minutes=1))
    await world.outbox.record([SendResult(m.id, "sent", claim_token=m.claim_token) for m in first])
    await world.reminders.plan()
    second = await world.outbox.claim(limit=50, lease=timedelta(minutes=1))

    assert planned == {("results_released:-1d", "2027-02-05T01:00", "pending")}
    assert [(m.payload["params"]["kind"], m.payload["params"]["offset"]) for m in first] == [
        ("results_released", "-1d")
    ]
    # Its moment is the release (the catalogue's 2027-02-06 09:00 Shanghai).
    assert first[0].payload["params"]["moment"] == "2027-02-06T01:00:00+00:00"
    assert second == []


async def test_results_reminder_follows_the_release_time_staff_chose(
    database: Database,
) -> None:
    world = await _results_world(database, utc("2027-01-20T00:00:00"), ("-1d",))
    await world.register(1001, S.PAID)
    await world.reminders.plan()

    await world.release.schedule_release("2027-01", utc("2027-02-03T02:00:00"), staff_id=900)
    await world.reminders.plan()

    assert await world.results_rows() == {
        ("results_released:-1d", "2027-02-05T01:00", "cancelled:rescheduled"),
        ("results_released:-1d", "2027-02-02T02:00", "pending"),
    }


async def test_results_out_is_told_once_by_the_release_never_by_a_reminder(
    database: Database,
) -> None:
    world = await _results_world(database, utc("2027-01-20T00:00:00"), ("-1d", "0h"))
    registration_id = await world.register(1001, S.PAID)
    await _results(database, registration_id)
    await world.reminders.plan()
    before = await world.results_rows()

    world.clock.now = utc("2027-02-06T01:00:00")
    queued = await world.release.release_due()
    await world.reminders.plan()
    slots = await world.reminders.slots("2027-01")

    assert before == {("results_released:-1d", "2027-02-05T01:00", "pending")}  # no 0h
    assert queued == 1
    assert [s.kind for s in slots if s.kind == "results_released"] == []
    assert await _messages_to(database, 1001) == [("results_released", "results:")]


async def _results(database: Database, registration_id: int) -> None:
    async with UnitOfWork(database.sessions) as uow:
        registration = await uow.registrations.get(registration_id)
        assert registration is not None
        for component, tenths in (("theory", 750), ("practical", 600)):
            uow.session.add(
                ComponentResult(
                    registration_id=registration_id,
                    session_id=registration.session_id,
                    component=component,
                    mark="scored",
                    score_tenths=tenths,
                    updated_by="cli",
                )
            )
        await uow.commit()


async def _messages_to(database: Database, chat_id: int) -> list[tuple[str, str]]:
    """(template, key prefix) of every message to the chat that is not cancelled."""
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.chat_id == chat_id, OutboxMessage.status != "cancelled"
            )
        )
        return [
            (r.payload["template"], r.idempotency_key.split(":")[0] + ":")
            for r in rows
            if r.payload["params"].get("kind", "results_released") == "results_released"
        ]
