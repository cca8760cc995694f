"""RegistrationFormService on real databases: eligibility gate, saved
answers, encryption, sessions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import PROJECT_ROOT
from bot.crypto import Vault
from bot.domain.catalog import load_catalog
from bot.services import build_services
from bot.services.errors import InvalidAnswer, NotEligible, StaleStep
from bot.services.registration_form import SUMMARY, Input
from storage.db import Database
from storage.uow import UnitOfWork
from tests.factories import Clock

KEY = "form-test-key-" + "k" * 30
STAFF = 900


async def _services(database: Database):  # type: ignore[no-untyped-def]
    services = build_services(database, Clock(), secret_key=KEY)
    await services.catalog.load(load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml"))
    await services.candidates.touch(
        1, chat_id=1, first_name="Li", username=None, telegram_language="en"
    )
    return services


async def _fill_personal(services, *, prior_level: bool = False) -> None:  # type: ignore[no-untyped-def]
    form = services.registration_form
    answers = [
        ("full_name", Input(text="Li Lei")),
        ("id_type", Input(choice="resident_id")),
        ("id_number", Input(text="11010519491231002x")),
        ("phone", Input(contact_phone="8613800138000", contact_is_own=True)),
        ("email", Input(text="li@example.com")),
        ("school", Input(text="HUST")),
        ("work_unit", Input(choice="none")),
    ]
    if prior_level:
        answers.append(("prior_certificate", Input(text="CMES-2023-000123")))
    for step, value in answers:
        await form.answer(1, step, value)


async def test_start_refuses_a_level_without_eligibility(database: Database) -> None:
    services = await _services(database)
    with pytest.raises(NotEligible):
        await services.registration_form.start(1, "junior")


async def test_answers_are_saved_as_given_and_id_number_encrypted(database: Database) -> None:
    services = await _services(database)
    await services.eligibility.override(STAFF, 1, "junior", eligible=True, reason="test override")
    assert (await services.registration_form.start(1, "junior")).step == "full_name"
    await _fill_personal(services)
    step = await services.registration_form.current(1)
    async with UnitOfWork(database.sessions) as uow:
        candidate = await uow.candidates.get_by_telegram_id(1)
        stored = (
            candidate.id_number_encrypted,
            candidate.id_number_masked,
            candidate.gender,
            candidate.birth_date,
            candidate.phone,
        )
    assert step.step == "direction"
    assert (
        b"11010519491231002X" not in stored[0]
        and Vault(KEY).decrypt(stored[0]) == "11010519491231002X"
    )
    assert stored[1:] == (
        "1101**********002X",
        "female",
        datetime(1949, 12, 31).date(),
        "+8613800138000",
    )


async def test_holder_of_a_lower_level_is_asked_the_certificate_number(database: Database) -> None:
    services = await _services(database)
    async with UnitOfWork(database.sessions) as uow:
        candidate = await uow.candidates.get_by_telegram_id(1)
        candidate.profile = {
            **candidate.profile,
            "prior_level": "junior",
            "prior_level_date": "2022-01-10",
        }
        await uow.commit()
    await services.eligibility.override(
        STAFF, 1, "intermediate", eligible=True, reason="test override"
    )
    await services.registration_form.start(1, "intermediate")
    for step, value in [
        ("full_name", Input(text="Li Lei")),
        ("id_type", Input(choice="passport")),
        ("id_number", Input(text="E12345678")),
        ("gender", Input(choice="male")),
        ("birth_date", Input(text="1990-01-02")),
        ("phone", Input(text="13800138000")),
        ("email", Input(text="li@example.com")),
        ("school", Input(text="HUST")),
        ("work_unit", Input(text="Weihai Robotics")),
    ]:
        await services.registration_form.answer(1, step, value)
    with pytest.raises(InvalidAnswer) as info:
        await services.registration_form.answer(1, "prior_certificate", Input(text="no!"))
    step = await services.registration_form.answer(
        1, "prior_certificate", Input(text="CMES-2023-000123")
    )
    assert (info.value.reason, step.step) == ("certificate_number", "direction")


async def test_session_step_without_an_open_session_says_when_registration_opens(
    database: Database,
) -> None:
    services = await _services(database)
    await services.eligibility.override(STAFF, 1, "senior", eligible=True, reason="test override")
    await services.registration_form.start(1, "senior")
    await _fill_personal(services)
    step = await services.registration_form.answer(
        1, "direction", Input(choice="production_control")
    )
    # 2027-03-13 minus 45 days at 09:00 Asia/Shanghai
    assert (step.step, step.sessions, step.extra["opens_at"]) == (
        "session",
        (),
        datetime(2027, 1, 27, 1, 0, tzinfo=UTC),
    )


async def test_submit_takes_a_seat_once_and_closes_the_form(database: Database) -> None:
    services = await _services(database)
    await services.eligibility.override(STAFF, 1, "junior", eligible=True, reason="test override")
    await services.registration_form.start(1, "junior")
    await _fill_personal(services)
    await services.registration_form.answer(1, "direction", Input(choice="production_control"))
    await services.registration_form.answer(1, "session", Input(choice="2027-01"))
    summary = await services.registration_form.answer(
        1,
        "photo",
        Input(
            photo={
                "file_id": "f",
                "file_unique_id": "u",
                "width": 413,
                "height": 579,
                "file_size": 1000,
                "mime_type": "image/jpeg",
            }
        ),
    )
    result = await services.registration_form.submit(1)
    with pytest.raises(StaleStep):
        await services.registration_form.submit(1)
    assert (summary.step, result.seat_taken, result.registration.state) == (
        SUMMARY,
        True,
        "submitted",
    )
    assert [r.state for r in await services.registration.list_for_candidate(1)] == ["submitted"]
