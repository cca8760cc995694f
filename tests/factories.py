"""Test helpers that put catalogue rows, sessions and candidates straight into a database.

Use them in service tests instead of loading a whole catalogue:

    clock = Clock()
    await make_session(database, "S1", capacity=20, now=clock.now)
    [candidate_id] = await make_candidates(database, [1001])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update

from bot.config import PROJECT_ROOT
from bot.domain.catalog import load_catalog
from bot.domain.lifecycle import RegistrationState
from bot.services import Services, build_services
from bot.services.registration import new_reference
from storage.db import Database
from storage.models import (
    Candidate,
    Direction,
    ExamSession,
    Level,
    Registration,
    SessionComponent,
)
from storage.uow import UnitOfWork

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LEVELS = (("junior", 1, 128), ("intermediate", 2, 128), ("senior", 3, 160))
DIRECTIONS = (
    "equipment_development",
    "equipment_application",
    "production_control",
    "smart_maintenance",
)


class Clock:
    """A clock the test moves by hand: `clock.now += timedelta(hours=25)`."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def catalogued_services(
    database: Database, clock: Clock | None = None, *, secret_key: str | None = None
) -> Services:
    """The services with the shipped catalogue loaded (as `examdesk catalog load` does)."""
    services = build_services(database, clock or Clock(), secret_key=secret_key)
    await services.catalog.load(load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml"))
    return services


def uow_factory(database: Database):  # type: ignore[no-untyped-def]
    return lambda: UnitOfWork(database.sessions)


async def ensure_levels(database: Database) -> None:
    """The three levels and four directions, unless a test or catalogue added them already."""
    async with UnitOfWork(database.sessions) as uow:
        levels = set((await uow.session.scalars(select(Level.code))).all())
        for code, rank, hours in LEVELS:
            if code not in levels:
                uow.session.add(
                    Level(code=code, rank=rank, names={"en": code}, training_hours=hours)
                )
        directions = set((await uow.session.scalars(select(Direction.code))).all())
        for code in DIRECTIONS:
            if code not in directions:
                uow.session.add(Direction(code=code, names={"en": code}))
        await uow.commit()


async def make_session(
    database: Database,
    code: str,
    *,
    capacity: int = 20,
    seats_taken: int = 0,
    levels: Sequence[str] = ("junior", "intermediate"),
    now: datetime = NOW,
    exam_date: date | None = None,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
    cancellation_cutoff_at: datetime | None = None,
    waitlist_offer_hours: int = 24,
    cancelled: bool = False,
) -> int:
    """An exam session open for registration at `now` (unless told otherwise); returns its id.

    Defaults follow the DOMAIN timeline around an exam 30 days after `now`: opened
    yesterday, closes in 9 days, cancellation cut-off in 23 days.
    """
    await ensure_levels(database)
    exam_date = exam_date or (now + timedelta(days=30)).date()
    exam_day = datetime.combine(exam_date, datetime.min.time(), tzinfo=UTC)
    session = ExamSession(
        code=code,
        exam_date=exam_date,
        timezone="Asia/Shanghai",
        capacity=capacity,
        seats_taken=seats_taken,
        levels=list(levels),
        registration_opens_at=opens_at or now - timedelta(days=1),
        registration_closes_at=closes_at or now + timedelta(days=9),
        payment_due_at=exam_day - timedelta(days=14),
        payment_deadline_at=exam_day - timedelta(days=14) + timedelta(hours=12),
        tickets_from_at=exam_day - timedelta(days=7),
        results_at=exam_day + timedelta(days=28),
        cancellation_cutoff_at=cancellation_cutoff_at or exam_day - timedelta(days=7),
        waitlist_offer_hours=waitlist_offer_hours,
        cancelled=cancelled,
        components=[
            SessionComponent(
                component="theory",
                starts_at=exam_day + timedelta(hours=1),
                ends_at=exam_day + timedelta(hours=2, minutes=30),
                room={"zh_Hans": "机房 A301", "en": "Computer room A301"},
            ),
            SessionComponent(
                component="practical",
                starts_at=exam_day + timedelta(hours=5, minutes=30),
                ends_at=exam_day + timedelta(hours=7, minutes=30),
                room={"zh_Hans": "智能制造实训中心 B105", "en": "Smart manufacturing lab B105"},
            ),
        ],
    )
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(session)
        await uow.commit()
        return session.id


async def make_candidates(
    database: Database, telegram_ids: Iterable[int], *, with_chat: bool = True
) -> list[int]:
    """Candidates keyed by Telegram id (chat id = Telegram id unless `with_chat` is False)."""
    rows = [
        Candidate(
            telegram_id=tid, chat_id=tid if with_chat else None, first_name=f"C{tid}", profile={}
        )
        for tid in telegram_ids
    ]
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add_all(rows)
        await uow.commit()
        return [row.id for row in rows]


async def make_registration(
    database: Database,
    telegram_id: int,
    session_id: int,
    *,
    state: RegistrationState = RegistrationState.PAID,
    candidate: Mapping[str, object] | None = None,
    **fields: object,
) -> Registration:
    """A candidate (its columns set to `candidate`) with one submitted registration in `state`
    for junior, both components; `fields` set other registration columns."""
    [candidate_id] = await make_candidates(database, [telegram_id])
    async with UnitOfWork(database.sessions) as uow:
        if candidate:
            await uow.session.execute(
                update(Candidate).where(Candidate.id == candidate_id).values(**candidate)
            )
        columns: dict[str, object] = {
            "level_code": "junior",
            "components": ["practical", "theory"],
            "eligibility": {},
            "submitted_at": NOW,
            "state_changed_at": NOW,
        }
        registration = Registration(
            candidate_id=candidate_id,
            session_id=session_id,
            state=state,
            reference=new_reference(),
            **(columns | fields),
        )
        uow.session.add(registration)
        await uow.commit()
        return registration
