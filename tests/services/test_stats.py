"""StatsService on real databases: every figure of /stats checked against a built scenario
(seats, waitlist, unpaid and the 48-hour deadline, receipts, refunds, check-in, money by
method and currency, registrations and payments per day in the site's zone), the figures'
way through the outbox, and the daily digest: due only after the catalogue's time, queued
once per day however often (and however concurrently) the tick runs.

The clock: 2026-11-26 12:00 UTC = 20:00 in Shanghai (tests/factories.NOW).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.domain.lifecycle import PaymentStatus, RefundStatus, RegistrationState
from bot.services import Services, build_services
from bot.services.payments import PaymentConfig
from bot.services.stats import DAYS, DayCount, Figures, Money, SessionFigures
from storage.db import Database
from storage.models import Attendance, OutboxMessage, Payment
from storage.uow import UnitOfWork
from tests.factories import NOW, Clock, catalogued_services, make_registration, make_session

STAFF_CHAT = -100555
R = RegistrationState
P = PaymentStatus
# Session S1: exam 2026-12-26, payment deadline 2026-12-12 12:00 UTC (factories' timeline).
S1_DEADLINE = datetime(2026, 12, 12, 12, 0, tzinfo=UTC)
# Session S2: exam 2026-12-11, payment deadline 2026-11-27 12:00 UTC: within 48 h of NOW.
S2_DEADLINE = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def _payment(database: Database, registration_id: int | None, **values: object) -> None:
    columns: dict[str, object] = {
        "method": "bank_transfer",
        "amount_minor": 80000,
        "currency": "CNY",
        "created_at": NOW - timedelta(days=1),
        "decided_at": NOW - timedelta(days=1),
    }
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(Payment(registration_id=registration_id, **(columns | values)))
        await uow.commit()


async def _scenario(database: Database) -> None:
    """Sessions S1 and S2 ahead, a past session and a cancelled one; registrations in every
    state that counts, payments of each kind, one check-in."""
    s1 = await make_session(database, "S1", capacity=20, seats_taken=5)
    s2 = await make_session(
        database, "S2", capacity=10, seats_taken=2, exam_date=date(2026, 12, 11)
    )
    past = await make_session(database, "OLD", exam_date=date(2026, 11, 20))
    await make_session(database, "GONE", exam_date=date(2026, 12, 20), cancelled=True)

    async def reg(telegram_id: int, session: int, state: R, created: datetime) -> int:
        row = await make_registration(
            database, telegram_id, session, state=state, created_at=created
        )
        return row.id

    day = timedelta(days=1)
    # S1: two paid (one checked in), one awaiting payment, one submitted, one receipt under
    # review, two waitlisted, one cancelled with money to give back, one whose money was
    # given back already.
    paid_stars = await reg(1, s1, R.PAID, NOW - 2 * day)
    paid_bank = await reg(2, s1, R.PAID, NOW - 2 * day)
    await reg(3, s1, R.AWAITING_PAYMENT, NOW - day)
    await reg(4, s1, R.SUBMITTED, NOW)
    review = await reg(5, s1, R.PAYMENT_REVIEW, NOW)
    late = await reg(6, s1, R.WAITLISTED, NOW)
    await reg(7, s1, R.WAITLISTED, NOW - 40 * day)  # older than the chart's 30 days
    cancelled = await reg(8, s1, R.CANCELLED, NOW - 3 * day)
    refunded = await reg(9, s1, R.CANCELLED, NOW - 3 * day)
    # 2026-11-25 17:00 UTC is 2026-11-26 01:00 in Shanghai: today there.
    s2_paid = await reg(10, s2, R.PAID, datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
    await reg(11, s2, R.AWAITING_PAYMENT, NOW)
    await reg(12, past, R.PAID, NOW - 10 * day)

    await _payment(
        database, paid_stars, method="stars", amount_minor=8500, currency="XTR", status=P.PAID
    )
    # a receipt sent three days ago, approved yesterday: received yesterday
    await _payment(database, paid_bank, status=P.APPROVED, created_at=NOW - 3 * day)
    await _payment(database, review, status=P.PENDING_REVIEW, decided_at=None)
    # Money that came after the registration lost its seat: flagged, no refund state yet.
    await _payment(database, late, status=P.REFUND_DUE, needs_refund=True)
    await _payment(database, cancelled, status=P.PAID, refund_status=RefundStatus.DUE)
    await _payment(database, refunded, status=P.PAID, refund_status=RefundStatus.REFUNDED)
    await _payment(
        database,
        s2_paid,
        method="telegram",
        status=P.PAID,
        decided_at=datetime(2026, 11, 25, 17, 30, tzinfo=UTC),
    )
    # A provider notice whose reference matched nothing: a refund no session owns.
    await _payment(database, None, method="provider", status=P.UNMATCHED, needs_refund=True)
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(
            Attendance(
                registration_id=paid_stars, session_id=s1, checked_in_at=NOW, checked_in_by=7
            )
        )
        await uow.commit()


def _services(database: Database, clock: Clock) -> Services:
    return build_services(database, clock, payment_config=PaymentConfig(staff_chat_id=STAFF_CHAT))


async def test_figures_counts_each_session_ahead(database: Database) -> None:
    await _scenario(database)

    figures = await _services(database, Clock()).stats.figures()

    assert figures.sessions == (
        SessionFigures(
            code="S2",
            exam_date=date(2026, 12, 11),
            timezone="Asia/Shanghai",
            capacity=10,
            seats_taken=2,
            waitlisted=0,
            unpaid=1,
            payment_deadline=S2_DEADLINE,
            unpaid_due_soon=1,
            receipts_waiting=0,
            refunds_open=0,
            checked_in=0,
            expected=1,
            received=(Money("telegram", "CNY", 80000, 1),),
        ),
        SessionFigures(
            code="S1",
            exam_date=date(2026, 12, 26),
            timezone="Asia/Shanghai",
            capacity=20,
            seats_taken=5,
            waitlisted=2,
            unpaid=2,
            payment_deadline=S1_DEADLINE,
            unpaid_due_soon=0,
            receipts_waiting=1,
            refunds_open=2,
            checked_in=1,
            expected=2,
            # the refunded payment is not money received; the one still due is
            received=(Money("bank_transfer", "CNY", 160000, 2), Money("stars", "XTR", 8500, 1)),
        ),
    )
    assert figures.sessions[1].seats_left == 15
    assert (figures.receipts_waiting, figures.refunds_open) == (1, 3)
    assert figures.more_sessions is False


async def test_figures_count_registrations_and_payments_per_day_in_site_zone(
    database: Database,
) -> None:
    await _scenario(database)

    figures = await _services(database, Clock()).stats.figures()

    days = figures.days
    assert len(days) == DAYS
    assert (days[0].day, days[-1].day) == (date(2026, 10, 28), date(2026, 11, 26))
    counted = {d.day: (d.registrations, d.payments) for d in days if d.registrations or d.payments}
    # registrations by when made; payments accepted (paid, approved) by when decided,
    # the pending receipt and flagged money not counted
    assert counted == {
        date(2026, 11, 16): (1, 0),  # the past session's registration
        date(2026, 11, 23): (2, 0),  # the two cancelled ones
        date(2026, 11, 24): (2, 0),  # the two paid in S1
        date(2026, 11, 25): (1, 4),  # stars, the approved receipt, both cancelled ones' money
        date(2026, 11, 26): (5, 1),  # 01:00 in Shanghai is today there; so is 01:30
    }


async def test_figures_without_sessions_or_catalogue_says_so(database: Database) -> None:
    figures = await _services(database, Clock()).stats.figures()

    assert figures.sessions == ()
    assert figures.timezone == "Asia/Shanghai"  # the settings' zone without a catalogue
    assert figures.days[-1] == DayCount(date(2026, 11, 26), 0, 0)


async def test_figures_survive_the_outbox_params_unchanged(database: Database) -> None:
    await _scenario(database)
    figures = await _services(database, Clock()).stats.figures()

    assert Figures.from_params(figures.to_params()) == figures


# --- the daily digest ---------------------------------------------------------------------


async def _digest_rows(database: Database) -> list[tuple[str, int, str]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like("digest:%"))
            .order_by(OutboxMessage.id)
        )
        return [(r.idempotency_key, r.chat_id, r.payload["template"]) for r in rows]


async def _catalogued(database: Database, clock: Clock) -> Services:
    await catalogued_services(database, clock)  # the shipped catalogue: digest at 08:00
    return _services(database, clock)


async def test_digest_due_only_after_the_catalogue_time(database: Database) -> None:
    clock = Clock(datetime(2026, 11, 26, 23, 59, tzinfo=UTC))  # 07:59 on the 27th there
    services = await _catalogued(database, clock)

    before = await services.stats.digest_due()
    clock.now += timedelta(minutes=1)
    at_eight = await services.stats.digest_due()

    assert before is None
    assert at_eight is not None and at_eight.day == date(2026, 11, 27)
    assert at_eight.key == "digest:2026-11-27"


async def test_digest_queued_once_per_day_across_ticks(database: Database) -> None:
    clock = Clock(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))  # 09:00 there
    services = await _catalogued(database, clock)

    first = await services.stats.digest_due()
    assert first is not None
    queued = await services.stats.queue_digest(first, b"\x89PNG chart")
    again = await services.stats.digest_due()
    requeued = await services.stats.queue_digest(first, b"\x89PNG chart")
    clock.now += timedelta(days=1)
    tomorrow = await services.stats.digest_due()

    assert (queued, again, requeued) == (True, None, False)
    assert tomorrow is not None and tomorrow.day == date(2026, 11, 28)
    assert await _digest_rows(database) == [
        ("digest:2026-11-27", STAFF_CHAT, "staff_digest"),
        ("digest:2026-11-27:chart", STAFF_CHAT, "staff_digest_chart"),
    ]


async def test_digest_two_instances_at_once_queue_one(database: Database) -> None:
    clock = Clock(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
    one = await _catalogued(database, clock)
    other = _services(database, clock)
    digest = await one.stats.digest_due()
    assert digest is not None

    results = await asyncio.gather(
        one.stats.queue_digest(digest, None), other.stats.queue_digest(digest, None)
    )

    assert sorted(results) == [False, True]
    assert [key for key, _, _ in await _digest_rows(database)] == ["digest:2026-11-27"]


async def test_digest_without_staff_chat_is_never_due(database: Database) -> None:
    clock = Clock(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
    services = await catalogued_services(database, clock)  # no staff chat configured

    assert await services.stats.digest_due() is None
