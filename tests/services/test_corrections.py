"""CorrectionService on real databases: a frozen identity is corrected by staff only, with a
reason (audited, in /history), the ticket re-issued and the candidate told; the candidate's
request reaches the staff chat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.crypto import Vault
from bot.domain.lifecycle import RegistrationState
from bot.services import Services
from bot.services.errors import InvalidAnswer, InvalidState, NotFound, StaleStep
from storage.db import Database
from storage.models import OutboxMessage
from storage.uow import UnitOfWork
from tests.factories import (
    NOW,
    Clock,
    catalogued_services,
    make_candidates,
    make_registration,
    make_session,
)

SECRET = "corrections-test-secret-" + "k" * 32
STAFF = 900
STAFF_CHAT = -100900
TICKETS_FROM = datetime.combine(
    (NOW + timedelta(days=30)).date(), datetime.min.time(), tzinfo=UTC
) - timedelta(days=7)
ID_NUMBER = "11010519491231002X"
OTHER_ID_NUMBER = "110105199003070017"


async def _services(database: Database, clock: Clock) -> Services:
    return await catalogued_services(database, clock, secret_key=SECRET)


async def _candidate(
    database: Database, telegram_id: int, state: RegistrationState, id_number: str = ID_NUMBER
) -> int:
    """A candidate named 张小三 (resident ID) with one registration in `state`; its id."""
    session_id = await make_session(database, f"S{telegram_id}", now=NOW)
    vault = Vault(SECRET)
    registration = await make_registration(
        database,
        telegram_id,
        session_id,
        state=state,
        candidate={
            "full_name": "张小三",
            "id_doc_type": "resident_id",
            "id_number_encrypted": vault.encrypt(id_number),
            "id_number_hash": vault.lookup_hash(f"resident_id:{id_number}"),
            "id_number_masked": id_number[:4] + "*" * 10 + id_number[-4:],
            "gender": "female",
        },
    )
    return registration.id


async def _reference(database: Database, registration_id: int) -> str:
    async with UnitOfWork(database.sessions) as uow:
        return (await uow.registrations.get(registration_id)).reference


async def _outbox(database: Database) -> list[tuple[int, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(r.chat_id, r.payload["template"], r.payload["params"]) for r in rows]


async def test_correct_name_audits_reissues_the_ticket_and_tells_the_candidate(
    database: Database,
) -> None:
    clock = Clock(TICKETS_FROM)
    services = await _services(database, clock)
    registration_id = await _candidate(database, 701, RegistrationState.PAID)
    reference = await _reference(database, registration_id)
    old = await services.tickets.ticket(701, registration_id)
    clock.now += timedelta(hours=1)

    done = await services.corrections.correct(
        STAFF, reference, "name", "张小山", "typo in the name; checked the ID card"
    )

    new = await services.tickets.ticket(701, registration_id)
    old_check = await services.tickets.verify(old.signed_reference)
    history = await services.payments.history(reference)
    corrected = [
        (e.actor, e.action, e.reason) for e in history.entries if e.action == "identity_corrected"
    ]
    actual = (
        (done.field, done.old, done.new, done.tickets, done.notified),
        (new.full_name, new.ticket_number, new.components[0].seat),
        (old_check.valid, old_check.reason, old_check.replaced_by),
        corrected,
        [(chat, template) for chat, template, _ in await _outbox(database)],
    )
    expected = (
        ("name", "张小三", "张小山", (("S701-J-0001", "S701-J-0002"),), True),
        ("张小山", "S701-J-0002", "001"),  # a new number, the same seat
        (False, "replaced", "S701-J-0002"),
        [(f"tg:{STAFF}", "identity_corrected", "typo in the name; checked the ID card")],
        [(701, "identity_corrected")],
    )
    assert actual == expected


async def test_correct_id_number_stores_it_encrypted_and_masked(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    registration_id = await _candidate(database, 702, RegistrationState.PAYMENT_REVIEW)
    reference = await _reference(database, registration_id)

    done = await services.corrections.correct(
        STAFF, reference, "id", OTHER_ID_NUMBER.lower(), "the candidate's card, checked"
    )

    async with UnitOfWork(database.sessions) as uow:
        candidate = await uow.candidates.get_by_telegram_id(702)
        stored = (
            Vault(SECRET).decrypt(candidate.id_number_encrypted),
            candidate.id_number_masked,
            candidate.gender,
            candidate.birth_date,
        )
    assert (done.old, done.new, done.tickets) == ("1101**********002X", "1101**********0017", ())
    assert stored == (OTHER_ID_NUMBER, "1101**********0017", "male", datetime(1990, 3, 7).date())


async def test_correct_id_number_of_another_account_raises_invalid_answer(
    database: Database,
) -> None:
    services = await _services(database, Clock())
    await _candidate(database, 703, RegistrationState.PAID)
    registration_id = await _candidate(
        database, 704, RegistrationState.PAID, id_number=OTHER_ID_NUMBER
    )

    with pytest.raises(InvalidAnswer) as caught:
        await services.corrections.correct(
            STAFF, await _reference(database, registration_id), "id", ID_NUMBER, "checked"
        )

    assert (caught.value.step, caught.value.reason) == ("id_number", "id_in_use")


@pytest.mark.parametrize(
    ("field", "value", "reason", "refusal"),
    [
        ("name", "张小三", "checked", "unchanged"),
        ("name", "Ann 2000", "checked", "name_characters"),
        ("id", "110105194912310021", "checked", "id_checksum"),
        ("name", "张小山", "  ", "text_expected"),  # no reason given
        ("level", "senior", "checked", "not_an_option"),
    ],
)
async def test_correct_refused_value_changes_nothing(
    database: Database, field: str, value: str, reason: str, refusal: str
) -> None:
    services = await _services(database, Clock())
    registration_id = await _candidate(database, 705, RegistrationState.PAID)
    reference = await _reference(database, registration_id)

    with pytest.raises(InvalidAnswer) as caught:
        await services.corrections.correct(STAFF, reference, field, value, reason)

    async with UnitOfWork(database.sessions) as uow:
        candidate = await uow.candidates.get_by_telegram_id(705)
        stored = (candidate.full_name, candidate.id_number_masked)
        audit = [e.action for e in await uow.audit.list_for("registration", str(registration_id))]
    assert (caught.value.reason, stored, audit, await _outbox(database)) == (
        refusal,
        ("张小三", "1101**********002X"),
        [],
        [],
    )


async def test_correct_unknown_reference_raises_not_found(database: Database) -> None:
    services = await _services(database, Clock())
    with pytest.raises(NotFound):
        await services.corrections.correct(STAFF, "ED00000000", "name", "张小山", "checked")


async def test_request_correction_queues_a_staff_card_and_an_audit_entry(
    database: Database,
) -> None:
    services = await _services(database, Clock())
    registration_id = await _candidate(database, 706, RegistrationState.PAID)
    reference = await _reference(database, registration_id)

    begun = await services.corrections.begin(706, registration_id)
    sent = await services.corrections.request(706, "名字应为张小山", STAFF_CHAT)
    with pytest.raises(StaleStep):  # the flow is closed: a second text is not a request
        await services.corrections.request(706, "again", STAFF_CHAT)

    history = await services.payments.history(reference)
    [(chat, template, params)] = await _outbox(database)
    actual = (
        (begun.reference, sent.registration_id),
        [(e.actor, e.action, e.reason) for e in history.entries],
        (chat, template, params["reference"], params["request"], params["id_number"]),
    )
    expected = (
        (reference, registration_id),
        [("tg:706", "correction_requested", "名字应为张小山")],
        (
            STAFF_CHAT,
            "correction_request",
            reference,
            "名字应为张小山",
            "1101**********002X",
        ),
    )
    assert actual == expected


async def test_begin_correction_of_an_unpaid_registration_raises_invalid_state(
    database: Database,
) -> None:
    services = await _services(database, Clock())
    registration_id = await _candidate(database, 707, RegistrationState.AWAITING_PAYMENT)

    with pytest.raises(InvalidState):  # not frozen: the candidate edits it in the form
        await services.corrections.begin(707, registration_id)


async def test_begin_correction_of_another_candidates_registration_raises_not_found(
    database: Database,
) -> None:
    services = await _services(database, Clock())
    registration_id = await _candidate(database, 708, RegistrationState.PAID)
    await make_candidates(database, [709])

    with pytest.raises(NotFound):  # a forged id in a button
        await services.corrections.begin(709, registration_id)
