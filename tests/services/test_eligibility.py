"""EligibilityService on real databases: questions asked, answers kept,
verdicts, reviews, overrides."""

from __future__ import annotations

import asyncio

import pytest

from bot.services.eligibility import NONE, Outcome, Question
from bot.services.errors import AlreadyDecided, InvalidAnswer, StaleStep
from storage.db import Database
from storage.models import OutboxMessage
from storage.uow import UnitOfWork
from tests.factories import catalogued_services

STAFF_CHAT = -1001
STAFF = 900


async def _services(database: Database):  # type: ignore[no-untyped-def]
    services = await catalogued_services(database)
    await services.candidates.touch(
        1, chat_id=1, first_name="Li", username=None, telegram_language="zh-hans"
    )
    return services


async def _answer_all(
    services, telegram_id: int, answers: dict[str, str]
) -> tuple[list[str], Outcome]:  # type: ignore[no-untyped-def]
    asked = []
    result = await services.eligibility.start(telegram_id, answers.pop("level"))
    while isinstance(result, Question):
        asked.append(result.step)
        result = await services.eligibility.answer(telegram_id, result.step, answers[result.step])
    return asked, result


async def test_check_final_year_bachelor_related_major_is_eligible_for_junior_via_j2(
    database: Database,
) -> None:
    services = await _services(database)
    asked, outcome = await _answer_all(
        services,
        1,
        {
            "level": "junior",
            "education": "bachelor",
            "graduation_date": "2027-06",
            "major": "automation",
            "title": NONE,
            "work_start": NONE,
        },
    )
    assert asked == ["education", "graduation_date", "major", "title", "work_start"]
    assert (outcome.level, outcome.verdict.status.value, outcome.verdict.matched_route) == (
        "junior",
        "eligible",
        "J2",
    )
    assert (await services.eligibility.standing(1, "junior")).allowed is True


async def test_check_master_without_junior_for_intermediate_suggests_junior(
    database: Database,
) -> None:
    services = await _services(database)
    _, outcome = await _answer_all(
        services,
        1,
        {
            "level": "intermediate",
            "education": "master",
            "graduation_date": "2025-06-30",
            "major": "机械工程",
            "title": NONE,
            "prior_level": NONE,
        },
    )
    assert outcome.verdict.status.value == "not_eligible"
    assert [(s.kind, s.level) for s in outcome.verdict.suggestions][:1] == [
        ("apply_level", "junior")
    ]


async def test_check_second_level_reuses_saved_answers(database: Database) -> None:
    services = await _services(database)
    await _answer_all(
        services,
        1,
        {
            "level": "junior",
            "education": "bachelor",
            "graduation_date": "2020-06-30",
            "major": "automation",
            "title": NONE,
            "work_start": "2020-07-01",
        },
    )
    asked, _ = await _answer_all(services, 1, {"level": "intermediate", "prior_level": NONE})
    assert asked == ["prior_level"]


async def test_answer_bad_date_is_refused_and_question_stays(database: Database) -> None:
    services = await _services(database)
    await services.eligibility.start(1, "junior")
    await services.eligibility.answer(1, "education", "bachelor")
    with pytest.raises(InvalidAnswer) as info:
        await services.eligibility.answer(1, "graduation_date", "2027-02-30")
    assert (info.value.reason, (await services.eligibility.current(1)).step) == (
        "date_impossible",
        "graduation_date",
    )


async def test_answer_for_an_old_step_or_forged_option_is_refused(database: Database) -> None:
    services = await _services(database)
    await services.eligibility.start(1, "junior")
    with pytest.raises(StaleStep):
        await services.eligibility.answer(1, "title", "engineer")
    with pytest.raises(InvalidAnswer) as info:
        await services.eligibility.answer(1, "education", "astronaut")
    assert info.value.reason == "not_an_option"


async def test_review_first_decision_wins_and_candidate_is_notified(database: Database) -> None:
    services = await _services(database)
    _, outcome = await _answer_all(
        services,
        1,
        {
            "level": "junior",
            "education": "bachelor",
            "graduation_date": "2020-06-30",
            "major": "Underwater Basket Weaving",
            "title": NONE,
            "work_start": NONE,
        },
    )
    assert outcome.verdict.status.value == "manual_review"
    ticket = await services.eligibility.request_review(1, "junior", STAFF_CHAT)
    again = await services.eligibility.request_review(1, "junior", STAFF_CHAT)
    results = await asyncio.gather(
        services.eligibility.decide_review(ticket.review_id, STAFF, approve=True, reason=None),
        services.eligibility.decide_review(
            ticket.review_id, STAFF + 1, approve=False, reason="no"
        ),
        return_exceptions=True,
    )
    assert (again.review_id, again.created) == (ticket.review_id, False)
    assert sorted(type(r).__name__ for r in results) == ["AlreadyDecided", "ReviewDecision"]
    winner = next(r for r in results if not isinstance(r, AlreadyDecided))
    assert (await services.eligibility.standing(1, "junior")).allowed is winner.approved
    async with UnitOfWork(database.sessions) as uow:
        keys = list(
            (
                await uow.session.execute(
                    OutboxMessage.__table__.select().order_by(OutboxMessage.id)
                )
            ).mappings()
        )
    assert [(k["idempotency_key"], k["chat_id"]) for k in keys] == [
        (f"review_request:{ticket.review_id}", STAFF_CHAT),
        (f"review_decided:{ticket.review_id}", 1),
    ]


async def test_override_needs_a_reason_and_is_audited(database: Database) -> None:
    services = await _services(database)
    with pytest.raises(InvalidAnswer):
        await services.eligibility.override(STAFF, 1, "senior", eligible=True, reason="")
    await services.eligibility.override(
        STAFF, 1, "senior", eligible=True, reason="title committee letter 2026-31"
    )
    async with UnitOfWork(database.sessions) as uow:
        candidate = await uow.candidates.get_by_telegram_id(1)
        entries = [
            (e.action, e.to_state, e.reason)
            for e in await uow.audit.list_for("eligibility", f"{candidate.id}:senior")
        ]
    assert entries == [("override", "eligible", "title committee letter 2026-31")]
    assert (await services.eligibility.standing(1, "senior")).status == "overridden"


async def test_check_which_level_fits_picks_the_highest_eligible_level(database: Database) -> None:
    services = await _services(database)
    _, outcome = await _answer_all(
        services,
        1,
        {
            "level": "auto",
            "education": "bachelor",
            "graduation_date": "2018-06-30",
            "major": "automation",
            "title": NONE,
            "title_date": "",
            "prior_level": "junior",
            "prior_level_date": "2022-06-01",
            "work_start": "2018-07-01",
        },
    )
    assert (outcome.suggested_from_auto, outcome.level, outcome.verdict.status.value) == (
        True,
        "intermediate",
        "eligible",
    )


# --- change one answer, and what the staff card carries (issue 9, items 13 and 14) -------------

BACHELOR_JUNIOR = {
    "level": "junior",
    "education": "bachelor",
    "graduation_date": "2020-06-30",
    "major": "Underwater Basket Weaving",
    "title": NONE,
    "work_start": NONE,
}


async def test_answers_lists_what_the_check_used_in_asking_order(database: Database) -> None:
    services = await _services(database)
    await _answer_all(services, 1, dict(BACHELOR_JUNIOR))

    answers = await services.eligibility.answers(1, "junior")

    assert [(a.step, a.value) for a in answers] == [
        ("education", "bachelor"),
        ("graduation_date", "2020-06-30"),
        ("major", "Underwater Basket Weaving"),
        ("title", NONE),
        ("work_start", NONE),
    ]


async def test_change_asks_only_that_question_again_and_keeps_the_other_answers(
    database: Database,
) -> None:
    services = await _services(database)
    await _answer_all(services, 1, dict(BACHELOR_JUNIOR))

    question = await services.eligibility.change(1, "junior", "major")
    outcome = await services.eligibility.answer(1, "major", "automation")

    assert (question.step, question.list_name) == ("major", "degree")
    assert (outcome.verdict.status.value, outcome.verdict.matched_route) == ("eligible", "J2")
    assert [(a.step, a.value) for a in await services.eligibility.answers(1, "junior")][0:3] == [
        ("education", "bachelor"),
        ("graduation_date", "2020-06-30"),
        ("major", "自动化"),
    ]


async def test_change_of_a_step_the_level_does_not_ask_is_refused(database: Database) -> None:
    services = await _services(database)
    await _answer_all(services, 1, dict(BACHELOR_JUNIOR))

    with pytest.raises(StaleStep):
        await services.eligibility.change(1, "junior", "prior_level_date")


async def test_review_request_card_carries_the_catalogue_names_of_coded_answers(
    database: Database,
) -> None:
    services = await _services(database)
    await _answer_all(services, 1, dict(BACHELOR_JUNIOR))

    await services.eligibility.request_review(1, "junior", STAFF_CHAT)

    async with UnitOfWork(database.sessions) as uow:
        [payload] = (
            await uow.session.execute(
                OutboxMessage.__table__.select().with_only_columns(OutboxMessage.payload)
            )
        ).scalars()
    assert payload["params"]["names"] == {
        "education": {"zh_Hans": "本科（学士）", "en": "Bachelor's degree"}
    }
