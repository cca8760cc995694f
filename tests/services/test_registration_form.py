"""RegistrationFormService on real databases: eligibility gate, saved
answers, encryption, sessions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from bot.crypto import Vault
from bot.services.errors import (
    AlreadyRegistered,
    FormIncomplete,
    IdentityFrozen,
    InvalidAnswer,
    NotEligible,
    StaleStep,
)
from bot.services.registration_form import SUMMARY, Input
from storage.db import Database
from storage.models import Registration
from storage.uow import UnitOfWork
from tests.factories import Clock, catalogued_services

KEY = "form-test-key-" + "k" * 30
STAFF = 900
MARCH_OPEN = datetime(2027, 1, 28, 12, 0, tzinfo=UTC)  # session 2027-03 takes registrations


async def _services(database: Database, clock: Clock | None = None):  # type: ignore[no-untyped-def]
    services = await catalogued_services(database, clock, secret_key=KEY)
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


PHOTO = Input(
    photo={
        "file_id": "f",
        "file_unique_id": "u",
        "width": 413,
        "height": 579,
        "file_size": 1000,
        "mime_type": "image/jpeg",
    }
)


async def _eligible_start(services, level: str):  # type: ignore[no-untyped-def]
    """Candidate 1 made eligible for `level` by staff, the form started; its first step."""
    await services.eligibility.override(STAFF, 1, level, eligible=True, reason="test override")
    return await services.registration_form.start(1, level)


async def _up_to_photo(services, level: str = "junior", session: str = "2027-01") -> None:  # type: ignore[no-untyped-def]
    """Candidate 1 through the form for `level` up to the photo."""
    await _eligible_start(services, level)
    await _fill_personal(services)
    await services.registration_form.answer(1, "direction", Input(choice="production_control"))
    await services.registration_form.answer(1, "session", Input(choice=session))


async def _registered(services, level: str = "junior", session: str = "2027-01") -> int:  # type: ignore[no-untyped-def]
    """Candidate 1 through the whole form for `level`, submitted; the registration's id."""
    await _up_to_photo(services, level, session)
    await services.registration_form.answer(1, "photo", PHOTO)
    return (await services.registration_form.submit(1)).registration.id


async def _in_march_for_intermediate(services):  # type: ignore[no-untyped-def]
    """Candidate 1, whose personal answers are saved, at the summary for intermediate in the
    March session; that step."""
    await _eligible_start(services, "intermediate")
    await services.registration_form.answer(1, "direction", Input(choice="production_control"))
    return await services.registration_form.answer(1, "session", Input(choice="2027-03"))


async def _add_to_profile(database: Database, **values: str) -> None:
    async with UnitOfWork(database.sessions) as uow:
        candidate = await uow.candidates.get_by_telegram_id(1)
        candidate.profile = {**candidate.profile, **values}
        await uow.commit()


async def test_start_refuses_a_level_without_eligibility(database: Database) -> None:
    services = await _services(database)
    with pytest.raises(NotEligible):
        await services.registration_form.start(1, "junior")


async def test_answers_are_saved_as_given_and_id_number_encrypted(database: Database) -> None:
    services = await _services(database)
    assert (await _eligible_start(services, "junior")).step == "full_name"
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
    await _add_to_profile(database, prior_level="junior", prior_level_date="2022-01-10")
    await _eligible_start(services, "intermediate")
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
    await _eligible_start(services, "senior")
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
    await _up_to_photo(services)
    summary = await services.registration_form.answer(1, "photo", PHOTO)
    result = await services.registration_form.submit(1)
    with pytest.raises(StaleStep):
        await services.registration_form.submit(1)
    assert (summary.step, result.seat_taken, result.registration.state) == (
        SUMMARY,
        True,
        "submitted",
    )
    assert [r.state for r in await services.registration.list_for_candidate(1)] == ["submitted"]


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [
        (640, 400, "photo_landscape"),  # landscape and under 413 high: turned, not too small
        (1280, 960, "photo_landscape"),
        (500, 500, "photo_not_portrait"),
        (200, 280, "photo_too_small"),
    ],
)
async def test_photo_check_names_a_landscape_photo_before_its_size(
    database: Database, width: int, height: int, reason: str
) -> None:
    services = await _services(database)
    await _up_to_photo(services)
    photo = {"file_id": "f", "file_unique_id": "u", "width": width, "height": height}

    with pytest.raises(InvalidAnswer) as refused:
        await services.registration_form.answer(1, "photo", Input(photo=photo))

    assert refused.value.reason == reason


async def _set_state(database: Database, registration_id: int, state: str) -> None:
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            update(Registration).where(Registration.id == registration_id).values(state=state)
        )
        await uow.commit()


async def test_start_for_a_level_with_an_active_registration_raises_already_registered(
    database: Database,
) -> None:
    services = await _services(database)
    registration_id = await _registered(services)
    await _set_state(database, registration_id, "paid")

    with pytest.raises(AlreadyRegistered) as caught:
        await services.registration_form.start(1, "junior")

    assert caught.value.registration_id == registration_id


@pytest.mark.parametrize("state", ["paid", "payment_review"])
@pytest.mark.parametrize("field", ["full_name", "id_number"])
async def test_edit_identity_while_a_registration_is_paid_or_under_review_raises_identity_frozen(
    database: Database, state: str, field: str
) -> None:
    clock = Clock()
    services = await _services(database, clock)
    registration_id = await _registered(services)
    await _set_state(database, registration_id, state)
    clock.now = MARCH_OPEN
    summary = await _in_march_for_intermediate(services)

    with pytest.raises(IdentityFrozen) as caught:
        await services.registration_form.edit(1, field)
    email = await services.registration_form.edit(1, "email")  # not identity: still editable

    assert (summary.summary.frozen_by, caught.value.registration_id, email.step) == (
        registration_id,
        registration_id,
        "email",
    )


async def test_answer_name_while_a_registration_is_paid_raises_identity_frozen(
    database: Database,
) -> None:
    clock = Clock()
    services = await _services(database, clock)
    registration_id = await _registered(services)
    clock.now = MARCH_OPEN
    await _in_march_for_intermediate(services)
    await services.registration_form.edit(1, "full_name")  # allowed: nothing is paid yet
    await _set_state(database, registration_id, "paid")  # money arrives meanwhile

    with pytest.raises(IdentityFrozen):
        await services.registration_form.answer(1, "full_name", Input(text="Someone Else"))

    async with UnitOfWork(database.sessions) as uow:
        assert (await uow.candidates.get_by_telegram_id(1)).full_name == "Li Lei"


async def test_submit_while_the_session_is_being_changed_raises_form_incomplete(
    database: Database,
) -> None:
    services = await _services(database)
    await _up_to_photo(services)
    await services.registration_form.answer(1, "photo", PHOTO)
    await services.registration_form.edit(1, "session")

    with pytest.raises(FormIncomplete) as caught:
        await services.registration_form.submit(1)  # the summary's button, pressed again

    assert (caught.value.missing, await services.registration.list_for_candidate(1)) == (
        ("session",),
        [],
    )


async def test_submit_before_the_form_is_complete_raises_form_incomplete_naming_the_steps(
    database: Database,
) -> None:
    services = await _services(database)
    await _eligible_start(services, "junior")
    await _fill_personal(services)

    with pytest.raises(FormIncomplete) as caught:
        await services.registration_form.submit(1)

    assert caught.value.missing == ("direction", "session", "photo")


async def test_session_step_leaves_out_the_day_of_another_registration(
    database: Database,
) -> None:
    services = await _services(database)
    await _registered(services, "junior", "2027-01")
    await _eligible_start(services, "intermediate")
    step = await services.registration_form.answer(
        1, "direction", Input(choice="production_control")
    )

    with pytest.raises(InvalidAnswer) as caught:
        await services.registration_form.answer(1, "session", Input(choice="2027-01"))

    # 2027-01 is the only session open now, and it is the junior registration's day.
    assert (step.step, step.options, step.extra["exam_date"], caught.value.reason) == (
        "session",
        (),
        datetime(2027, 3, 13).date(),
        "not_an_option",
    )


async def test_summary_carries_the_chosen_session_and_the_major_code(database: Database) -> None:
    services = await _services(database)
    await _add_to_profile(database, major_code="automation", major="自动化")
    await _up_to_photo(services)
    step = await services.registration_form.answer(1, "photo", PHOTO)

    option = step.summary.session_option
    assert (step.summary.major_code, option.code, option.exam_date, option.timezone) == (
        "automation",
        "2027-01",
        datetime(2027, 1, 9).date(),
        "Asia/Shanghai",
    )
