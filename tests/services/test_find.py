"""FindService on real databases: each kind of query (partial Chinese and Latin names in any
case, phone digits, the last 4 of the ID number, Telegram id, registration reference,
ticket number, @username), the list cut at ten with the total, the card (masked ID,
registrations with deadline and ticket, payments with receipts waiting, recent history),
role refusals, and the admin's audited full-ID view."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.crypto import Vault
from bot.domain.lifecycle import RegistrationState
from bot.domain.roles import Role
from bot.services import Services, build_services
from bot.services.errors import NotFound
from bot.services.find import LIST_LIMIT, BadQuery, parse_query
from bot.services.notify import audit
from bot.services.staff import NotAllowed
from storage.db import Database
from storage.models import AdmissionTicket, AuditEntry, Payment
from storage.repositories.find import SearchParts
from storage.uow import UnitOfWork
from tests.factories import NOW, Clock, make_registration, make_session

SECRET = "find-secret-" + "k" * 32
ADMIN = 900  # an EXAMDESK_ADMIN_IDS admin
CHECKIN = 901  # granted the check-in role
STRANGER = 902  # no role
ZHANG_ID = "11010519491231002X"
ZHANG = {
    "full_name": "张伟明",
    "first_name": "Wei",
    "username": "weiming_z",
    "id_doc_type": "resident_id",
    "id_number_encrypted": Vault(SECRET).encrypt(ZHANG_ID),
    "id_number_masked": "1101**********002X",
    "phone": "+8613812345678",
    "email": "wei@example.com",
    "language": "zh_Hans",
}
SMITH = {
    "full_name": "SMITH John Paul",
    "first_name": "Johnny",
    "id_doc_type": "passport",
    "id_number_masked": "E1****5678",
    "phone": "+447700900123",
}


async def _desk(database: Database) -> tuple[Services, dict[str, int]]:
    """Services with admin ADMIN and a check-in member; session S1 with 张伟明 (paid, a
    ticket, a Stars payment, a receipt waiting on his second registration) and SMITH
    (awaiting payment)."""
    services = build_services(database, Clock(), secret_key=SECRET, staff_ids=frozenset({ADMIN}))
    await services.staff.grant(ADMIN, CHECKIN, Role.CHECKIN, "Door")
    s1 = await make_session(database, "S1")
    s2 = await make_session(database, "S2", levels=("intermediate",))
    zhang = await make_registration(database, 5001, s1, candidate=ZHANG)
    smith = await make_registration(
        database, 5002, s1, state=RegistrationState.AWAITING_PAYMENT, candidate=SMITH
    )
    async with UnitOfWork(database.sessions) as uow:
        review = await make_second_registration(uow, zhang.candidate_id, s2)
        uow.session.add(
            AdmissionTicket(
                registration_id=zhang.id,
                session_id=s1,
                ticket_number="S1-J-0007",
                seat=7,
                issued_at=NOW,
            )
        )
        uow.session.add_all(
            [
                Payment(
                    registration_id=zhang.id,
                    method="stars",
                    external_id="charge-1",
                    amount_minor=100,
                    currency="XTR",
                    status="paid",
                    created_at=NOW,
                ),
                Payment(
                    registration_id=review,
                    method="bank_transfer",
                    amount_minor=30000,
                    currency="CNY",
                    status="pending_review",
                    created_at=NOW,
                ),
            ]
        )
        audit(uow, "system", "registration", zhang.id, "paid", NOW, to_state="paid")
        await uow.commit()
    ids = {
        "zhang": zhang.candidate_id,
        "smith": smith.candidate_id,
        "zhang_reg": zhang.id,
        "review_reg": review,
        "smith_reg": smith.id,
    }
    return services, ids


async def make_second_registration(uow: UnitOfWork, candidate_id: int, session_id: int) -> int:
    from storage.models import Registration

    registration = Registration(
        candidate_id=candidate_id,
        session_id=session_id,
        level_code="intermediate",
        state=RegistrationState.PAYMENT_REVIEW,
        reference="EDREVIEW22",
        components=["theory", "practical"],
        created_at=NOW,
    )
    uow.session.add(registration)
    await uow.flush()
    return registration.id


async def _found(services: Services, text: str, staff: int = CHECKIN) -> list[str | None]:
    result = await services.find.find(staff, text)
    return [m.full_name for m in result.matches]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("伟明", ["张伟明"]),  # part of a Chinese name
        ("张", None),  # one character: too short
        ("smith", ["SMITH John Paul"]),  # any case
        ("john smith", ["SMITH John Paul"]),  # words in another order
        ("johnny", ["SMITH John Paul"]),  # the Telegram name
        ("1234 5678", ["张伟明"]),  # phone digits, spaced
        ("138-1234", ["张伟明"]),
        ("+44 7700", ["SMITH John Paul"]),
        ("002x", ["张伟明"]),  # the last 4 of the ID number, any case
        ("5678", ["SMITH John Paul", "张伟明"]),  # a phone and a passport end in 5678
        ("5002", ["SMITH John Paul"]),  # Telegram id
        ("edreview22", ["张伟明"]),  # registration reference, any case
        ("s1-j-0007", ["张伟明"]),  # ticket number
        ("@WEIMING_Z", ["张伟明"]),
        ("李雷", []),
        ("１３８１２３４", ["张伟明"]),  # full-width digits from a Chinese keyboard
    ],
)
async def test_find_each_kind_of_query(
    database: Database, text: str, expected: list[str] | None
) -> None:
    services, _ = await _desk(database)
    if expected is None:
        with pytest.raises(BadQuery) as refused:
            await services.find.find(CHECKIN, text)
        assert refused.value.reason == "too_short"
        return
    assert await _found(services, text) == expected


async def test_find_percent_and_underscore_are_taken_literally(database: Database) -> None:
    services, _ = await _desk(database)
    assert await _found(services, "%%") == []
    assert await _found(services, "__") == []


async def test_find_lists_ten_and_counts_the_rest(database: Database) -> None:
    services, _ = await _desk(database)
    s3 = await make_session(database, "S3")
    for n in range(14):
        await make_registration(database, 6000 + n, s3, candidate={"full_name": f"王伟{n:02d}"})
    result = await services.find.find(ADMIN, "王伟")
    assert (len(result.matches), result.total, result.card) == (LIST_LIMIT, 14, None)
    assert [m.full_name for m in result.matches] == [f"王伟{n:02d}" for n in range(10)]


async def test_find_one_match_gives_the_card_masked(database: Database) -> None:
    services, ids = await _desk(database)
    result = await services.find.find(CHECKIN, "张伟明")
    card = result.card
    assert card is not None and result.total == 1
    assert (card.candidate_id, card.full_name, card.id_masked, card.has_id_number) == (
        ids["zhang"],
        "张伟明",
        "1101**********002X",
        True,
    )
    assert ZHANG_ID not in repr(card)
    assert (card.phone, card.email, card.language, card.reachable) == (
        "+8613812345678",
        "wei@example.com",
        "zh_Hans",
        True,
    )
    views = {r.reference: r for r in card.registrations}
    paid = next(r for r in card.registrations if r.registration_id == ids["zhang_reg"])
    assert (paid.state, paid.ticket_number, paid.seat, paid.pay_by, paid.active) == (
        "paid",
        "S1-J-0007",
        7,
        None,
        True,
    )
    review = views["EDREVIEW22"]
    assert (review.state, review.ticket_number, review.pay_by is not None) == (
        "payment_review",
        None,
        True,
    )
    assert [(p.method, p.status, p.receipt_waiting) for p in card.payments] == [
        ("stars", "paid", False),
        ("bank_transfer", "pending_review", True),
    ]
    assert [(e.action, e.to_state) for e in card.history] == [("paid", "paid")]
    assert card.roles == frozenset({Role.CHECKIN})


async def test_card_of_unknown_candidate_is_not_found(database: Database) -> None:
    services, _ = await _desk(database)
    with pytest.raises(NotFound):
        await services.find.card(CHECKIN, 999_999)


@pytest.mark.parametrize("text", ["", "   ", "x" * 65, "张伟 1234", "12"])
async def test_find_refuses_bad_input(database: Database, text: str) -> None:
    services, _ = await _desk(database)
    with pytest.raises(BadQuery):
        await services.find.find(CHECKIN, text)


async def test_find_and_card_refuse_someone_without_a_role(database: Database) -> None:
    services, ids = await _desk(database)
    with pytest.raises(NotAllowed) as refused:
        await services.find.find(STRANGER, "张伟明")
    assert set(refused.value.roles) == set(Role)
    with pytest.raises(NotAllowed):
        await services.find.card(STRANGER, ids["zhang"])


async def test_a_revoked_role_counts_at_once(database: Database) -> None:
    services, _ = await _desk(database)
    assert await _found(services, "伟明") == ["张伟明"]
    await services.staff.revoke(ADMIN, CHECKIN, Role.CHECKIN)
    with pytest.raises(NotAllowed):
        await services.find.find(CHECKIN, "伟明")


async def test_full_id_only_for_admins_and_audited(database: Database) -> None:
    services, ids = await _desk(database)
    with pytest.raises(NotAllowed) as refused:
        await services.find.reveal_id(CHECKIN, ids["zhang"])
    assert refused.value.needed is Role.ADMIN
    assert await services.find.reveal_id(ADMIN, ids["zhang"]) == ZHANG_ID
    async with UnitOfWork(database.sessions) as uow:
        rows = (
            await uow.session.execute(
                select(
                    AuditEntry.actor, AuditEntry.entity, AuditEntry.entity_id, AuditEntry.action
                ).where(AuditEntry.action == "id_revealed")
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (f"tg:{ADMIN}", "candidate", str(ids["zhang"]), "id_revealed")
    ]
    with pytest.raises(NotFound):  # no number on file
        await services.find.reveal_id(ADMIN, ids["smith"])


def test_parse_query_reads_every_kind() -> None:
    assert parse_query("  张  伟 ") == SearchParts(name_words=("张", "伟"), codes=())
    assert parse_query("ED611") == SearchParts(codes=("ED611",))
    assert parse_query("002x") == SearchParts(id_last4="002X", codes=("002X", "002x"))
    assert parse_query("+86 138") == SearchParts(phone_digits="86138", telegram_id=86138, codes=())
