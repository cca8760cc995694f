"""Retake with carry-over on real databases: which components a later registration books
(decided from released results in the database), the earlier sitting's eligibility reused,
the per-component fee in the payment offer and the invoices, one active registration per
level, and a level passed across two sittings.

Session S1 (tests/factories.make_session): exam 2026-12-26, results at 2027-01-23 00:00 UTC.
A theory pass there carries over until 2027-12-26 (the catalogue's `retention_years`: 1).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update

from bot.config import PROJECT_ROOT
from bot.crypto import Vault
from bot.domain.catalog import parse_catalog
from bot.domain.lifecycle import RegistrationState
from bot.i18n import I18n
from bot.services import Services, build_services
from bot.services.errors import AlreadyRegistered, NotEligible
from bot.services.payments import PaymentConfig
from bot.services.registration import CarriedPass, LevelPassed
from bot.services.registration_form import Input
from handlers.registration import retake_text
from handlers.reminders import render_reminder
from storage.db import Database
from storage.models import AuditEntry, OutboxMessage, Registration
from storage.uow import UnitOfWork
from tests.factories import Clock, make_candidates, make_registration, make_session

SECRET = "retake-secret-" + "k" * 40
ID_NUMBER = "11010519491231002X"
FIRST_EXAM = date(2026, 12, 26)
RELEASED = datetime(2027, 1, 23, tzinfo=UTC)
LATER = datetime(2027, 1, 24, 4, 0, tzinfo=UTC)  # results out; retake sessions open
ELIGIBLE = {"status": "eligible", "route": "J2"}
THEORY_CARRIED = CarriedPass("theory", FIRST_EXAM, date(2027, 12, 26))


def _document() -> dict[str, Any]:
    """The shipped catalogue with every fee, the per-component ones too, confirmed."""
    document = yaml.safe_load(
        (PROJECT_ROOT / "catalog" / "exam-catalog.yaml").read_text(encoding="utf-8")
    )
    for fee in document["fees"]["levels"].values():
        fee["confirmed"] = True
        fee["component"]["confirmed"] = True
    return document


async def _world(database: Database) -> tuple[Services, Clock]:
    clock = Clock()
    services = build_services(
        database,
        clock,
        secret_key=SECRET,
        payment_config=PaymentConfig(telegram=True, stars=True),
    )
    await services.catalog.load(parse_catalog(_document()))
    return services, clock


async def _sat(
    database: Database, services: Services, clock: Clock, *marks: tuple[str, str]
) -> list[Registration]:
    """Candidates 1, 2, … sat junior at S1 with these (theory, practical) marks; results
    imported, released; the clock then stands at LATER, with sessions S2 (2027-03-20) and
    S3 (2027-12-27, after the carry-over) and S4 (2027-12-26, its last day) open."""
    s1 = await make_session(database, "S1")
    sat = [
        await make_registration(
            database,
            telegram_id,
            s1,
            eligibility=ELIGIBLE,
            candidate={
                "id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER),
                "id_number_hash": f"{telegram_id:064d}",
            },
        )
        for telegram_id in range(1, len(marks) + 1)
    ]
    rows = "".join(
        f"{r.reference},002X,{theory},{practical}\n"
        for r, (theory, practical) in zip(sat, marks, strict=True)
    )
    data = ("reference,id_last4,theory,practical\n" + rows).encode()
    preview = await services.results.preview("S1", "r.csv", data, 900)
    await services.results.confirm(preview.import_id, staff_id=900)
    clock.now = RELEASED
    assert await services.results_release.release_due() == len(marks)
    clock.now = LATER
    for code, exam_date in (
        ("S2", date(2027, 3, 20)),
        ("S3", date(2027, 12, 27)),
        ("S4", date(2027, 12, 26)),
    ):
        await make_session(database, code, now=LATER, exam_date=exam_date)
    return sat


async def _submit(services: Services, telegram_id: int, session: str) -> Any:
    """What a client sends: both components, no eligibility (the service decides)."""
    return await services.registration.submit(
        telegram_id,
        session_code=session,
        level_code="junior",
        direction_code=None,
        components=["theory", "practical"],
        eligibility={},
    )


async def _registration(database: Database, registration_id: int) -> Registration:
    async with UnitOfWork(database.sessions) as uow:
        registration = await uow.registrations.get(registration_id)
        assert registration is not None
        await uow.commit()  # loaded as it is; nothing expires it on the way out
        return registration


async def test_retake_within_carry_over_books_only_the_failed_component(
    database: Database,
) -> None:
    services, clock = await _world(database)
    [first] = await _sat(database, services, clock, ("75", "50"))

    retake = await services.registration.retake(1, "junior")
    result = await _submit(services, 1, "S2")

    assert retake is not None
    assert (retake.passes, retake.plan(date(2027, 3, 20)).book) == (
        (THEORY_CARRIED,),
        ("practical",),
    )
    booked = await _registration(database, result.registration.id)
    assert (booked.components, booked.eligibility) == (["practical"], ELIGIBLE)
    assert result.registration.components == ("practical",)
    earlier = await _registration(database, first.id)
    assert earlier.state == RegistrationState.COMPLETED
    async with UnitOfWork(database.sessions) as uow:
        entries = await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "registration").order_by(AuditEntry.id)
        )
        actions = [(e.entity_id, e.action, e.from_state, e.to_state) for e in entries]
    assert actions == [
        (str(first.id), "completed", "paid", "completed"),
        (str(booked.id), "submit", None, "submitted"),
    ]


@pytest.mark.parametrize(
    ("session", "booked", "expired"),
    [
        ("S4", ["practical"], ()),  # on the anniversary the pass still counts
        ("S3", ["practical", "theory"], (THEORY_CARRIED,)),  # a day later it does not
    ],
)
async def test_retake_session_after_carry_over_expiry_books_both_components(
    database: Database, session: str, booked: list[str], expired: tuple[CarriedPass, ...]
) -> None:
    services, clock = await _world(database)
    await _sat(database, services, clock, ("75", "50"))

    retake = await services.registration.retake(1, "junior")
    result = await _submit(services, 1, session)

    assert retake is not None
    exam_date = date(2027, 12, 27) if session == "S3" else date(2027, 12, 26)
    plan = retake.plan(exam_date)
    assert plan.expired == expired
    assert (await _registration(database, result.registration.id)).components == booked
    said = retake_text(I18n("zh_Hans").translator("en"), await services.catalog.current(), plan)
    assert said.splitlines() == (
        [
            "Your pass in Theory on Sat 26 Dec 2026 counts only until Sun 26 Dec 2027, "
            "before this session: you sit it again.",
            "You book: Theory and Practical skills.",
        ]
        if expired
        else [
            "🔁 You passed Theory on Sat 26 Dec 2026; it carries over until Sun 26 Dec 2027.",
            "You book only: Practical skills.",
        ]
    )


async def test_retake_fee_is_the_component_fee_in_offer_and_invoices(
    database: Database,
) -> None:
    services, clock = await _world(database)
    await _sat(database, services, clock, ("75", "50"), ("40", "45"))
    one = await _submit(services, 1, "S2")  # practical only
    both = await _submit(services, 2, "S2")  # nothing carried over: the level's fee

    offer = await services.payments.offer(1, one.registration.id)
    stars = await services.payments.invoice(1, one.registration.id, "stars")
    card = await services.payments.invoice(1, one.registration.id, "telegram")
    full = await services.payments.offer(2, both.registration.id)

    assert (offer.amount, offer.stars) == (Decimal(400), 4300)
    assert (stars.currency, stars.amount_minor) == ("XTR", 4300)
    assert (card.currency, card.amount_minor) == ("CNY", 40000)
    assert (full.amount, full.stars) == (Decimal(800), 8500)
    await services.payments.check_pre_checkout(stars.payload, "XTR", 4300)
    outcome = await services.payments.record_telegram_payment(
        stars.payload, "XTR", 4300, "charge-1", None
    )
    assert outcome.status == "paid"
    assert (await _registration(database, one.registration.id)).state == "paid"


async def test_retake_keeps_one_active_registration_per_level(database: Database) -> None:
    services, clock = await _world(database)
    await _sat(database, services, clock, ("75", "50"))
    await _submit(services, 1, "S2")

    with pytest.raises(AlreadyRegistered):
        await _submit(services, 1, "S3")
    with pytest.raises(AlreadyRegistered):
        await services.registration_form.start(1, "junior")


async def test_sitting_without_released_results_still_blocks_the_level(
    database: Database,
) -> None:
    services, clock = await _world(database)
    s1 = await make_session(database, "S1")
    sat = await make_registration(database, 1, s1, eligibility=ELIGIBLE)
    clock.now = LATER
    await make_session(database, "S2", now=LATER, exam_date=date(2027, 3, 20))

    with pytest.raises(AlreadyRegistered) as exc:
        await _submit(services, 1, "S2")

    assert exc.value.registration_id == sat.id
    assert await services.registration.retake(1, "junior") is None


async def test_candidate_without_results_registers_as_before(database: Database) -> None:
    services, _ = await _world(database)
    await make_session(database, "S2")
    await make_candidates(database, [7])

    result = await services.registration.submit(
        7,
        session_code="S2",
        level_code="junior",
        direction_code=None,
        components=[],
        eligibility=ELIGIBLE,
    )

    assert await services.registration.retake(7, "junior") is None
    registration = await _registration(database, result.registration.id)
    assert (registration.components, registration.eligibility) == (
        ["practical", "theory"],
        ELIGIBLE,
    )
    assert (await services.payments.offer(7, registration.id)).amount == Decimal(800)


async def test_level_passed_is_refused_with_its_pass_date(database: Database) -> None:
    services, clock = await _world(database)
    await _sat(database, services, clock, ("75", "60"))

    with pytest.raises(LevelPassed) as submitted:
        await _submit(services, 1, "S2")
    with pytest.raises(LevelPassed):
        await services.registration_form.start(1, "junior")

    assert submitted.value.passed_at == RELEASED
    assert await services.registration_form.open_levels(1) == ()


async def test_form_asks_no_eligibility_and_summary_shows_the_carry_over(
    database: Database,
) -> None:
    services, clock = await _world(database)
    await _sat(database, services, clock, ("75", "50"))
    async with UnitOfWork(database.sessions) as uow:  # the form's answers, from before
        candidate = await uow.candidates.get_by_telegram_id(1)
        assert candidate is not None
        assert "verdicts" not in candidate.profile  # never checked: only the snapshot
        candidate.full_name = "李雷"
        candidate.id_doc_type = "resident_id"
        candidate.phone = "+8613800138000"
        candidate.email = "li@example.com"
        candidate.profile = {
            "school": "HUST",
            "work_unit": "none",
            "photo": {"file_id": "photo-1"},
        }
        await uow.commit()

    assert await services.registration_form.open_levels(1) == ("junior",)
    step = await services.registration_form.start(1, "junior")
    assert step.step == "direction"
    step = await services.registration_form.answer(
        1, "direction", Input(choice="production_control")
    )
    assert step.step == "session"
    summary = await services.registration_form.answer(1, "session", Input(choice="S2"))
    submitted = await services.registration_form.submit(1)

    assert summary.step == "summary" and summary.summary is not None
    plan = summary.summary.retake
    assert plan is not None
    assert (plan.book, plan.carried, plan.expired) == (("practical",), (THEORY_CARRIED,), ())
    assert submitted.registration.components == ("practical",)
    registration = await _registration(database, submitted.registration.id)
    assert registration.eligibility == ELIGIBLE


async def test_form_without_results_or_verdict_still_asks_for_eligibility(
    database: Database,
) -> None:
    services, _ = await _world(database)
    await make_candidates(database, [8])

    with pytest.raises(NotEligible):
        await services.registration_form.start(8, "junior")
    assert await services.registration_form.open_levels(8) == ()


async def test_level_passed_across_two_sittings_on_the_second_release(
    database: Database,
) -> None:
    services, clock = await _world(database)
    await _sat(database, services, clock, ("75", "50"))
    retake = await _submit(services, 1, "S2")
    async with UnitOfWork(database.sessions) as uow:  # paid (payment is another flow)
        await uow.session.execute(
            update(Registration)
            .where(Registration.id == retake.registration.id)
            .values(state=RegistrationState.PAID)
        )
        await uow.commit()
    data = f"reference,id_last4,practical\n{retake.registration.reference},002X,71.5\n"
    preview = await services.results.preview("S2", "r2.csv", data.encode(), 900)
    await services.results.confirm(preview.import_id, staff_id=900)
    second_release = datetime(2027, 4, 17, tzinfo=UTC)  # S2's results_at: E+28
    clock.now = second_release
    assert await services.results_release.release_due() == 1

    standing = await services.results_release.candidate_results(1)

    [level] = standing.levels
    assert (level.level_code, level.standing.passed, level.standing.passed_at) == (
        "junior",
        True,
        second_release,
    )
    with pytest.raises(LevelPassed):
        await services.registration.retake(1, "junior")


async def test_exam_reminder_lists_only_the_booked_component(database: Database) -> None:
    services, clock = await _world(database)
    await _sat(database, services, clock, ("75", "50"), ("40", "45"))
    one = await _submit(services, 1, "S2")  # practical only
    both = await _submit(services, 2, "S2")
    async with UnitOfWork(database.sessions) as uow:  # paid (payment is another flow)
        await uow.session.execute(
            update(Registration)
            .where(Registration.id.in_([one.registration.id, both.registration.id]))
            .values(state=RegistrationState.PAID)
        )
        await uow.commit()
    clock.now = datetime(2027, 3, 19, 0, 30, tzinfo=UTC)  # S2 starts 2027-03-20 01:00 UTC

    await services.reminders.plan()

    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "reminder")
        )
        exam = {
            r.registration_id: r.payload["params"]
            for r in rows
            if r.payload["params"]["kind"] == "exam"
        }
    tr = I18n("zh_Hans").translator("en")
    texts = {rid: render_reminder(params, tr).text for rid, params in exam.items()}
    assert exam[one.registration.id]["booked"] == ["practical"]
    assert exam[both.registration.id]["booked"] == ["practical", "theory"]
    assert ("Theory" in texts[one.registration.id], "Practical" in texts[one.registration.id]) == (
        False,
        True,
    )
    assert "starts on Sat 20 Mar 2027, 13:30" in texts[one.registration.id]
    assert ("Theory" in texts[both.registration.id], "09:00" in texts[both.registration.id]) == (
        True,
        True,
    )
