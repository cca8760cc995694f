"""VerificationService on real databases: a match by number and name, the one neutral answer
for a wrong name and an unknown number, a revoked certificate (date, never the reason),
number and name written another way, the QR code, and the per-client throttle: refused
after N failures without a look-up, open again after the window, a counter that stays
exact when many failures land at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.crypto import Vault
from bot.services.verification import TooManyAttempts, VerificationService, Verified
from storage.db import Database
from storage.models import Certificate, ExamSession, LookupThrottle
from storage.uow import UnitOfWork
from tests.factories import Clock, make_registration, make_session

SECRET = "verification-secret-" + "k" * 32
NUMBER = "RC2027-01-J-0007"
CODE = "AbCdEf123_-x"
REVOKED_NUMBER = "RC2027-01-J-0008"
REVOKED_CODE = "ZyXwVu987-_y"
CLIENT = "ip:203.0.113.9"
ISSUED_ON = date(2027, 3, 20)
# 2027-04-01 18:30 UTC is 2 April in Asia/Shanghai: the date shown is the site's.
REVOKED_AT = datetime(2027, 4, 1, 18, 30, tzinfo=UTC)


async def add_certificate(
    database: Database,
    *,
    telegram_id: int,
    full_name: str,
    number: str,
    verify_code: str,
    level: str = "junior",
    direction: str | None = None,
    issued_on: date = ISSUED_ON,
    revoked_at: datetime | None = None,
) -> None:
    """A candidate with a paid registration in session VERIFY and its certificate, as the
    certificate service would store it (revoked when `revoked_at` is given)."""
    from bot.domain.certificates import number_key

    async with UnitOfWork(database.sessions) as uow:
        session_id = await uow.session.scalar(
            select(ExamSession.id).where(ExamSession.code == "VERIFY")
        )
    if session_id is None:
        session_id = await make_session(database, "VERIFY", levels=("junior", "intermediate"))
    registration = await make_registration(
        database, telegram_id, session_id, candidate={"full_name": full_name}, level_code=level
    )
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(
            Certificate(
                registration_id=registration.id,
                candidate_id=registration.candidate_id,
                level_code=level,
                direction_code=direction,
                number=number,
                number_key=number_key(number),
                issued_on=issued_on,
                verify_code=verify_code,
                status="revoked" if revoked_at else "valid",
                source="imported",
                revoked_at=revoked_at,
                revoked_by="tg:90001" if revoked_at else None,
                revoke_reason="misconduct found later" if revoked_at else None,
                created_by="cli",
            )
        )
        await uow.commit()


def service(database: Database, clock: Clock, **limits: object) -> VerificationService:
    return VerificationService(
        lambda: UnitOfWork(database.sessions),
        clock,
        Vault(SECRET),
        site_zone="Asia/Shanghai",
        **limits,  # type: ignore[arg-type]
    )


@pytest.fixture
async def certified(database: Database) -> Database:
    await add_certificate(
        database,
        telegram_id=501,
        full_name="张三丰",
        number=NUMBER,
        verify_code=CODE,
        direction="production_control",
    )
    await add_certificate(
        database,
        telegram_id=502,
        full_name="Li Lei",
        number=REVOKED_NUMBER,
        verify_code=REVOKED_CODE,
        revoked_at=REVOKED_AT,
    )
    return database


VALID = Verified(
    holder_masked="张*丰",
    number=NUMBER,
    level_code="junior",
    level_names={"en": "junior"},
    direction_code="production_control",
    direction_names={"en": "production_control"},
    issued_on=ISSUED_ON,
    revoked_on=None,
)
REVOKED = Verified(
    holder_masked="L* L**",
    number=REVOKED_NUMBER,
    level_code="junior",
    level_names={"en": "junior"},
    direction_code=None,
    direction_names=None,
    issued_on=ISSUED_ON,
    revoked_on=date(2027, 4, 2),
)


async def _throttle(database: Database) -> list[tuple[str, datetime, int]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(select(LookupThrottle))
        return [(r.key, r.window_started_at, r.failures) for r in rows]


async def test_by_number_matching_name_answers_masked_certificate(certified: Database) -> None:
    verification = service(certified, Clock())

    found = await verification.by_number(NUMBER, "张三丰", CLIENT)

    assert (found, found.valid if found else None) == (VALID, True)
    assert await _throttle(certified) == []  # a success is not a failure


async def test_by_number_wrong_name_and_unknown_number_answer_the_same(
    certified: Database,
) -> None:
    verification = service(certified, Clock())

    answers = [
        await verification.by_number(NUMBER, "张三", CLIENT),
        await verification.by_number("RC2027-01-J-9999", "张三丰", CLIENT),
    ]

    assert answers == [None, None]
    [(key, _, failures)] = await _throttle(certified)
    assert (failures, CLIENT.split(":")[1] in key, len(key)) == (2, False, 64)


async def test_by_number_revoked_answers_revocation_day_in_site_zone(
    certified: Database,
) -> None:
    verification = service(certified, Clock())

    found = await verification.by_number(REVOKED_NUMBER, "li lei", CLIENT)

    assert (found, found.valid if found else None) == (REVOKED, False)


@pytest.mark.parametrize(
    ("number", "name"),
    [
        (" rc2027-01-j-0007 ", "张 三 丰"),
        ("ＲＣ２０２７－０１－Ｊ－０００７", "张三丰"),  # full-width, as typed on a phone
        ("RC 2027-01-J-0007", " 张三丰 "),
        ("RC2027-01-J-0007", "张\u3000三丰"),  # an ideographic space
    ],
)
async def test_by_number_normalises_number_and_name(
    certified: Database, number: str, name: str
) -> None:
    verification = service(certified, Clock())

    assert await verification.by_number(number, name, CLIENT) == VALID


async def test_by_number_empty_or_oversized_input_is_no_match(certified: Database) -> None:
    verification = service(certified, Clock())

    answers = [
        await verification.by_number("", "张三丰", CLIENT),
        await verification.by_number(NUMBER, "  ", CLIENT),
        await verification.by_number(NUMBER + "0" * 60, "张三丰", CLIENT),
        await verification.by_number(NUMBER, "张三丰" * 30, CLIENT),
        await verification.by_number("RC2027\x00-01", "张三丰", CLIENT),  # PostgreSQL refuses NUL
        await verification.by_number("RC2027\ud800", "张三丰", CLIENT),  # a lone surrogate
    ]

    assert answers == [None] * 6
    assert [f for _, _, f in await _throttle(certified)] == [4]  # empty input is not counted


async def test_by_code_answers_without_name_and_unknown_or_malformed_is_none(
    certified: Database,
) -> None:
    verification = service(certified, Clock())

    answers = [
        await verification.by_code(CODE, CLIENT),
        await verification.by_code(REVOKED_CODE, CLIENT),
        await verification.by_code("AAAAAAAAAAAA", CLIENT),
        await verification.by_code("<script>'\"", CLIENT),
        await verification.by_code(CODE.lower(), CLIENT),  # codes are case-sensitive
    ]

    assert answers == [VALID, REVOKED, None, None, None]


async def test_throttle_refuses_after_max_failures_without_looking_up(
    certified: Database,
) -> None:
    clock = Clock()
    verification = service(certified, clock, max_failures=3)
    first_failure = clock.now
    for _ in range(3):
        assert await verification.by_number(NUMBER, "wrong", CLIENT) is None
        clock.now += timedelta(minutes=1)

    with pytest.raises(TooManyAttempts) as refused_number:
        await verification.by_number(NUMBER, "张三丰", CLIENT)  # right, but refused
    with pytest.raises(TooManyAttempts) as refused_code:
        await verification.by_code(CODE, CLIENT)
    other_client = await verification.by_number(NUMBER, "张三丰", "tg:42")

    expected = first_failure + timedelta(minutes=15)
    assert (refused_number.value.retry_at, refused_code.value.retry_at) == (expected, expected)
    assert refused_number.value.seconds == 12 * 60  # 3 of the 15 minutes have passed
    assert other_client == VALID
    assert [f for _, _, f in await _throttle(certified)] == [3]  # refusals are not counted


async def test_throttle_time_shown_is_rounded_up_so_trying_then_works(
    certified: Database,
) -> None:
    clock = Clock()
    clock.now = clock.now.replace(second=30, microsecond=0)
    verification = service(certified, clock, max_failures=1)
    await verification.by_code("AAAAAAAAAAAA", CLIENT)  # the window ends at hh:mm:30
    with pytest.raises(TooManyAttempts) as refused:
        await verification.by_code(CODE, CLIENT)

    clock.now = refused.value.retry_at  # the minute shown, e.g. "after 12:16"
    found = await verification.by_code(CODE, CLIENT)

    assert (refused.value.retry_at.second, refused.value.seconds, found) == (
        0,
        15 * 60 - 30 + 60,
        VALID,
    )


async def test_throttle_opens_again_after_window_and_counts_afresh(certified: Database) -> None:
    clock = Clock()
    verification = service(certified, clock, max_failures=2)
    await verification.by_code("AAAAAAAAAAAA", CLIENT)
    await verification.by_code("BBBBBBBBBBBB", CLIENT)
    clock.now += timedelta(minutes=14, seconds=59)
    with pytest.raises(TooManyAttempts):
        await verification.by_code(CODE, CLIENT)

    clock.now += timedelta(seconds=1)
    found = await verification.by_code(CODE, CLIENT)
    missed = await verification.by_code("CCCCCCCCCCCC", CLIENT)

    assert (found, missed) == (VALID, None)
    assert [(at, f) for _, at, f in await _throttle(certified)] == [(clock.now, 1)]


async def test_throttle_counter_exact_under_concurrent_failures(certified: Database) -> None:
    clock = Clock()
    verification = service(certified, clock, max_failures=1000)

    answers = await asyncio.gather(
        *(verification.by_number(NUMBER, f"wrong {i}", CLIENT) for i in range(20))
    )

    assert answers == [None] * 20
    assert [f for _, _, f in await _throttle(certified)] == [20]


async def test_throttle_concurrent_failures_stop_at_limit_once_counted(
    certified: Database,
) -> None:
    clock = Clock()
    verification = service(certified, clock, max_failures=5)
    await asyncio.gather(*(verification.by_code("AAAAAAAAAAAA", CLIENT) for _ in range(5)))

    with pytest.raises(TooManyAttempts):
        await verification.by_code(CODE, CLIENT)


async def test_purge_throttle_drops_only_finished_windows(certified: Database) -> None:
    clock = Clock()
    verification = service(certified, clock)
    await verification.by_code("AAAAAAAAAAAA", "ip:198.51.100.1")
    clock.now += timedelta(minutes=10)
    await verification.by_code("AAAAAAAAAAAA", "ip:198.51.100.2")
    clock.now += timedelta(minutes=6)

    dropped = await verification.purge_throttle()

    assert (dropped, [at for _, at, _ in await _throttle(certified)]) == (
        1,
        [clock.now - timedelta(minutes=6)],
    )
