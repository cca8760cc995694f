"""Registration flow: seats, the waitlist, cancelling and moving between sessions.

Entry points: `RegistrationService.list_sessions`, `submit`, `list_for_candidate`,
`get_for_candidate`, `cancel`, `move`, `accept_offer`, `decline_offer` (a candidate's
actions) and `expire_offers` (a scheduler sweep). `release_seat_and_promote` is shared
with the payments flow, which frees seats when a payment deadline passes.

Seats: `exam_sessions.seats_taken` moves only by conditional UPDATE (take: `seats_taken <
capacity`; release: `seats_taken > 0`), and the partial unique indexes on `registrations`
allow one active registration per candidate and level and per candidate and session. A
seat held by an OFFERED registration counts as taken: a freed seat goes straight to the
first in line rather than back to the pool, so a newcomer can never jump the waitlist.

Concurrency: on SQLite every transaction is `BEGIN IMMEDIATE`, so writers queue. On
PostgreSQL the conditional UPDATEs are atomic per row, registration state changes are
compare-and-set (`RegistrationRepository.transition`), and every path that frees a seat
or joins the waitlist locks the session row first, so a seat released while someone joins
the line can never end up free with people still waiting. Lock order: session rows by id,
then registration rows.

Retakes (docs/results.md, "Retake with carry-over"): `retake(telegram_id, level)` reads the
candidate's released results for the level from the database and says which passed
components carry over (`ScoringRules.standing`). `submit` decides the components itself
for a candidate with released results: a session whose exam date falls within a pass's
carry-over books only the rest; later, everything. The earlier sitting's eligibility
snapshot is reused, and its PAID registration, the sitting being over, becomes COMPLETED
in the same transaction (one active registration per level still holds). A level already
passed is refused with LevelPassed.

Waitlist offers: a freed seat is held for the next in line (OFFERED) for the session's
`waitlist_offer_hours`; accepting makes it SUBMITTED; declining cancels it; letting it run
out makes it EXPIRED (the candidate leaves the line: they were offered their turn) and the
seat passes to the next in line. Offers and their expiry reach the candidate through the
outbox, written in the same transaction.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from bot.domain.catalog import Catalog
from bot.domain.lifecycle import (
    ACTIVE,
    IDENTITY_FROZEN,
    MOVABLE,
    SEAT_HOLDING,
    SELF_CANCELLABLE,
    DuplicateActiveRegistration,
    RegistrationState,
)
from bot.domain.scoring import ComponentStatus, ScoringRules, SittingResult
from bot.services.catalog import CatalogService
from bot.services.errors import (
    AlreadyRegistered,
    CancellationClosed,
    CatalogMissing,
    InvalidState,
    LevelNotOffered,
    NotFound,
    OfferExpired,
    RegistrationClosed,
    RegistrationNotOpen,
    ServiceError,
    SessionFull,
)
from bot.services.notify import Template, audit, notify_candidate
from storage.models import Candidate, ExamSession, Registration
from storage.uow import UnitOfWork, UowFactory

#: Hours a freed seat is held for the next in line when the session does not say.
DEFAULT_OFFER_HOURS = 24
#: Expired offers handled per sweep; a later tick takes the rest.
EXPIRE_BATCH = 500

Availability = Literal["open", "full", "not_yet_open", "closed"]
SYSTEM = "system"
REGISTRATION = "registration"  # the audit log's entity


@dataclass(frozen=True, slots=True)
class ComponentView:
    component: str
    starts_at: datetime
    ends_at: datetime
    room: dict[str, Any]  # localized: {"zh_Hans": ..., "en": ...}


@dataclass(frozen=True, slots=True)
class SessionOption:
    """A session a candidate may pick for a level, with its seats and registration window."""

    code: str
    exam_date: date
    timezone: str
    levels: tuple[str, ...]
    capacity: int
    seats_left: int
    registration_opens_at: datetime
    registration_closes_at: datetime
    availability: Availability
    components: tuple[ComponentView, ...]


@dataclass(frozen=True, slots=True)
class RegistrationView:
    """What a candidate sees of one of their registrations."""

    id: int
    session_code: str
    exam_date: date
    timezone: str
    level_code: str
    direction_code: str | None
    state: str
    reference: str
    waitlist_position: int | None  # 1-based, only while WAITLISTED
    offer_expires_at: datetime | None
    payment_due_at: datetime
    cancellation_cutoff_at: datetime
    can_cancel: bool
    can_move: bool
    submitted_at: datetime | None
    identity_frozen: bool = False  # paid or under review: staff correct name and ID number
    # From when the admission ticket can be had; None once that moment has passed.
    tickets_from_at: datetime | None = None
    components: tuple[str, ...] = ()  # booked; empty on rows written before components


@dataclass(frozen=True, slots=True)
class CarriedPass:
    """A component passed at an earlier sitting, and the last exam date it counts for."""

    component: str
    passed_on: date  # the exam date of the sitting that passed it
    until: date


@dataclass(frozen=True, slots=True)
class RetakePlan:
    """What a retake books at a session: `book` (catalogue order), the passes `carried`
    over to it, and the passes `expired` by its exam date (booked again)."""

    exam_date: date
    book: tuple[str, ...]
    carried: tuple[CarriedPass, ...]
    expired: tuple[CarriedPass, ...]


@dataclass(frozen=True, slots=True)
class Retake:
    """A level the candidate sat before, with results released, and has not passed."""

    level_code: str
    registration_id: int  # the latest sitting with released results
    eligibility: dict[str, Any]  # that registration's eligibility snapshot, reused
    components: tuple[str, ...]  # the level's components, catalogue order
    passes: tuple[CarriedPass, ...]  # passes not yet part of a level pass (some expired)
    sat: frozenset[int]  # registrations of the level with released results

    def plan(self, exam_date: date) -> RetakePlan:
        carried = tuple(p for p in self.passes if exam_date <= p.until)
        kept = {p.component for p in carried}
        return RetakePlan(
            exam_date=exam_date,
            book=tuple(c for c in self.components if c not in kept),
            carried=carried,
            expired=tuple(p for p in self.passes if exam_date > p.until),
        )


class LevelPassed(ServiceError):
    """The candidate passed this level already (released results): nothing to book."""

    def __init__(self, level_code: str, passed_at: datetime) -> None:
        super().__init__(level_code)
        self.level_code = level_code
        self.passed_at = passed_at


async def find_retake(
    uow: UnitOfWork, rules: ScoringRules, candidate_id: int, level_code: str, today: date
) -> Retake | None:
    """The candidate's retake of `level_code`, from their released results; None when they
    have none for it. Raises LevelPassed when the results pass the level."""
    sittings: list[SittingResult] = []
    sat: set[int] = set()
    latest: tuple[date, int, Registration] | None = None
    for result, registration, session in await uow.results.for_candidate(candidate_id):
        if registration.level_code != level_code or result.released_at is None:
            continue
        sat.add(registration.id)
        sittings.append(
            SittingResult.stored(
                result.component,
                result.mark,
                result.score_tenths,
                session.exam_date,
                result.released_at,
            )
        )
        if latest is None or (session.exam_date, registration.id) > latest[:2]:
            latest = (session.exam_date, registration.id, registration)
    if latest is None:
        return None
    standing = rules.standing(sittings, today)
    if standing.passed:
        assert standing.passed_at is not None
        raise LevelPassed(level_code, standing.passed_at)
    passes = tuple(
        CarriedPass(c.component, c.result.sat_on, c.carries_over_until)
        for c in standing.components
        if c.status in (ComponentStatus.PASSED, ComponentStatus.EXPIRED)
        and c.result is not None
        and c.carries_over_until is not None
    )
    return Retake(
        level_code=level_code,
        registration_id=latest[2].id,
        eligibility=dict(latest[2].eligibility or {}),
        components=rules.components,
        passes=passes,
        sat=frozenset(sat),
    )


@dataclass(frozen=True, slots=True)
class SubmitResult:
    registration: RegistrationView
    seat_taken: bool  # False: the candidate joined the waitlist


def new_reference() -> str:
    """A short unique code for bank transfers: 'ED' + 8 base32 characters (no 0/1/8/9)."""
    return "ED" + base64.b32encode(secrets.token_bytes(5)).decode("ascii")


def availability(session: ExamSession, now: datetime) -> Availability:
    if session.cancelled or now >= session.registration_closes_at:
        return "closed"
    if now < session.registration_opens_at:
        return "not_yet_open"
    if session.seats_taken >= session.capacity:
        return "full"
    return "open"


async def release_seat_and_promote(
    uow: UnitOfWork, session_id: int, now: datetime, *, offer_hours: int | None = None
) -> int | None:
    """A seat of `session_id` was freed: offer it to the first in line, or give it back.

    Returns the id of the registration now OFFERED, or None when the seat went back to the
    pool. Call it inside the transaction that freed the seat, after the registration that
    held it has left its seat-holding state. The session row is locked first (PostgreSQL)
    and each promotion is compare-and-set, so two concurrent releases make two offers to
    two different people, never one seat to two.
    """
    await uow.exam_sessions.lock(session_id)
    session = await uow.exam_sessions.get(session_id)
    if session is None:
        raise NotFound("session")
    if not session.cancelled:
        hours = offer_hours or session.waitlist_offer_hours or DEFAULT_OFFER_HOURS
        expires_at = now + timedelta(hours=hours)
        tried: list[int] = []
        while (
            waiting := await uow.registrations.next_waitlisted(session_id, skip=tried)
        ) is not None:
            offered = await uow.registrations.transition(
                waiting.id,
                [RegistrationState.WAITLISTED],
                state=RegistrationState.OFFERED,
                offer_expires_at=expires_at,
                state_changed_at=now,
            )
            if not offered:  # the candidate left the line meanwhile; next one
                tried.append(waiting.id)
                continue
            audit(
                uow,
                SYSTEM,
                REGISTRATION,
                waiting.id,
                "offer",
                now,
                from_state=RegistrationState.WAITLISTED,
                to_state=RegistrationState.OFFERED,
                reason="seat_freed",
                details={"offer_expires_at": expires_at.isoformat()},
            )
            await notify_candidate(
                uow,
                waiting.candidate_id,
                now,
                key=f"waitlist_offer:{waiting.id}:{expires_at.isoformat()}",
                template=Template.WAITLIST_OFFER,
                params={
                    "registration_id": waiting.id,
                    "session_code": session.code,
                    "level_code": waiting.level_code,
                    "offer_expires_at": expires_at.isoformat(),
                },
                expires_at=expires_at,
            )
            return waiting.id
    await uow.exam_sessions.release_seat(session_id)
    return None


class RegistrationService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        *,
        offer_hours: int | None = None,
        catalog: CatalogService | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._offer_hours = offer_hours  # overrides the session's waitlist_offer_hours
        self._catalog = catalog  # pass marks and carry-over for retakes; None: no retakes

    async def _rules(self) -> ScoringRules | None:
        """The scoring rules, read before a transaction opens (SQLite: one writer)."""
        if self._catalog is None:
            return None
        try:
            catalog: Catalog = await self._catalog.current()
        except CatalogMissing:
            return None
        return ScoringRules.from_catalog(catalog)

    async def retake(self, telegram_id: int, level_code: str) -> Retake | None:
        """The candidate's retake of the level (see `find_retake`); LevelPassed when passed."""
        rules = await self._rules()
        if rules is None:
            return None
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                return None
            return await find_retake(uow, rules, candidate.id, level_code, self._clock().date())

    # --- reading --------------------------------------------------------------------

    async def list_sessions(
        self,
        level_code: str,
        *,
        include_closed: bool = False,
        telegram_id: int | None = None,
        moving: int | None = None,
    ) -> list[SessionOption]:
        """Sessions offering the level, by exam date; closed ones only when asked for.

        With `telegram_id`, only sessions that candidate can take: none on the exam day of
        another of their active registrations (`moving`: the one being moved, not "another").
        """
        now = self._clock()
        async with self._uow() as uow:
            sessions = await uow.exam_sessions.list_for_level(level_code)
            busy: dict[date, int] = {}
            if telegram_id is not None:
                candidate = await uow.candidates.get_by_telegram_id(telegram_id)
                if candidate is not None:
                    busy = await self._busy_days(uow, candidate.id, moving=moving)
            options = [_session_option(s, now) for s in sessions if s.exam_date not in busy]
        return [o for o in options if include_closed or o.availability != "closed"]

    async def list_for_candidate(self, telegram_id: int) -> list[RegistrationView]:
        """The candidate's registrations, newest first."""
        now = self._clock()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                return []
            registrations = await uow.registrations.list_for_candidate(candidate.id)
            sessions = await uow.exam_sessions.list_by_ids([r.session_id for r in registrations])
            return [await self._view(uow, r, sessions[r.session_id], now) for r in registrations]

    async def get_for_candidate(self, telegram_id: int, registration_id: int) -> RegistrationView:
        async with self._uow() as uow:
            registration = await self._own(uow, telegram_id, registration_id)
            return await self._view(uow, registration, None, self._clock())

    # --- submitting -----------------------------------------------------------------

    async def submit(
        self,
        telegram_id: int,
        *,
        session_code: str,
        level_code: str,
        direction_code: str | None,
        components: list[str],
        eligibility: dict[str, Any],
        join_waitlist: bool = False,
    ) -> SubmitResult:
        """Take a seat for the candidate, or put them in line when `join_waitlist`.

        Raises LevelNotOffered, RegistrationNotOpen, RegistrationClosed, AlreadyRegistered,
        LevelPassed, SessionFull (with the length of the line) and NotFound (candidate,
        session). For a retake (released results for the level) the components and the
        eligibility snapshot come from the database, not from the arguments.
        """
        now = self._clock()
        rules = await self._rules()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                raise NotFound("candidate")
            session = await uow.exam_sessions.get_by_code(session_code)
            if session is None:
                raise NotFound("session")
            if level_code not in session.levels:
                raise LevelNotOffered(session_code, level_code)
            await self._check_window(uow, session, level_code, now)
            retake = (
                await find_retake(uow, rules, candidate.id, level_code, now.date())
                if rules is not None
                else None
            )
            existing = await uow.registrations.find_active(
                candidate.id, level_code=level_code, session_id=session.id
            )
            if retake is not None and existing is not None and existing.id in retake.sat:
                await self._complete(uow, existing, telegram_id, session.code, now)
                existing = await uow.registrations.find_active(
                    candidate.id, level_code=level_code, session_id=session.id
                )
            if existing is not None:
                raise AlreadyRegistered(existing.id)
            same_day = (await self._busy_days(uow, candidate.id)).get(session.exam_date)
            if same_day is not None:  # two exams at the same hours: one seat would stay empty
                raise AlreadyRegistered(same_day)
            if (
                direction_code is not None
                and await uow.catalog.get_direction(direction_code) is None
            ):
                raise NotFound("direction")
            offered = {c.component for c in session.components}
            carried: list[str] = []
            if retake is not None:
                plan = retake.plan(session.exam_date)
                components = list(plan.book)
                carried = [p.component for p in plan.carried]
                eligibility = retake.eligibility
            unknown = sorted(set(components) - offered)
            if unknown:
                raise NotFound(f"component:{unknown[0]}")

            seat_taken = await uow.exam_sessions.take_seat(session.id)
            if not seat_taken:
                waiting = await uow.registrations.count_waitlisted(session.id)
                if not join_waitlist:
                    raise SessionFull(waiting)
                # Serialise with releases of this session, then look again: a seat freed
                # just now must go to us, not stay free while we wait in line.
                await uow.exam_sessions.lock(session.id)
                seat_taken = await uow.exam_sessions.take_seat(session.id)

            state = RegistrationState.SUBMITTED if seat_taken else RegistrationState.WAITLISTED
            registration = Registration(
                candidate_id=candidate.id,
                session_id=session.id,
                level_code=level_code,
                direction_code=direction_code,
                state=state,
                reference=new_reference(),
                components=sorted(components or offered),
                eligibility=eligibility,
                waitlisted_at=None if seat_taken else now,
                submitted_at=now if seat_taken else None,
                state_changed_at=now,
                created_at=now,
            )
            try:
                await uow.registrations.insert(registration)
            except DuplicateActiveRegistration:
                # The twin of a double tap committed first; our seat goes back with the rollback.
                raise AlreadyRegistered() from None
            audit(
                uow,
                f"tg:{telegram_id}",
                REGISTRATION,
                registration.id,
                "submit",
                now,
                to_state=state,
                details={
                    "session": session.code,
                    "level": level_code,
                    "components": registration.components,
                    "carried_over": carried,
                },
            )
            view = await self._view(uow, registration, session, now)
            await uow.commit()
            return SubmitResult(registration=view, seat_taken=seat_taken)

    # --- a candidate's changes --------------------------------------------------------

    async def cancel(
        self, telegram_id: int, registration_id: int, *, reason: str | None = None
    ) -> RegistrationView:
        """Cancel before the session's cut-off; a held seat goes to the first in line."""
        now = self._clock()
        async with self._uow() as uow:
            registration = await self._own(uow, telegram_id, registration_id)
            state = RegistrationState(registration.state)
            if state not in SELF_CANCELLABLE:
                raise InvalidState(state)
            session = await self._session(uow, registration.session_id)
            if now >= session.cancellation_cutoff_at:
                raise CancellationClosed(session.cancellation_cutoff_at)
            held_seat = state in SEAT_HOLDING
            if held_seat:
                await uow.exam_sessions.lock(session.id)
            if not await uow.registrations.transition(
                registration.id, [state], state=RegistrationState.CANCELLED, state_changed_at=now
            ):
                raise InvalidState(await self._current_state(uow, registration.id))
            audit(
                uow,
                f"tg:{telegram_id}",
                REGISTRATION,
                registration.id,
                "cancel",
                now,
                from_state=state,
                to_state=RegistrationState.CANCELLED,
                reason=reason,
                details={"held_seat": held_seat, "was_paid": state == RegistrationState.PAID},
            )
            if held_seat:
                await self.release_seat_and_promote(uow, session.id, now)
            view = await self._reloaded_view(uow, registration.id, now)
            await uow.commit()
            return view

    async def move(
        self, telegram_id: int, registration_id: int, new_session_code: str
    ) -> RegistrationView:
        """Move a seat-holding registration to another open session of the same level.

        The registration keeps its id, state and reference. Moving never waitlists:
        SessionFull when the target has no free seat, and nothing changes.
        """
        now = self._clock()
        async with self._uow() as uow:
            registration = await self._own(uow, telegram_id, registration_id)
            state = RegistrationState(registration.state)
            if state not in MOVABLE:
                raise InvalidState(state)
            old = await self._session(uow, registration.session_id)
            if now >= old.cancellation_cutoff_at:
                raise CancellationClosed(old.cancellation_cutoff_at)
            new = await uow.exam_sessions.get_by_code(new_session_code)
            if new is None:
                raise NotFound("session")
            if new.id == old.id:
                raise AlreadyRegistered(registration.id)
            if registration.level_code not in new.levels:
                raise LevelNotOffered(new.code, registration.level_code)
            await self._check_window(uow, new, registration.level_code, now)
            clash = await uow.registrations.find_active(
                registration.candidate_id, session_id=new.id
            )
            if clash is not None:
                raise AlreadyRegistered(clash.id)
            busy = await self._busy_days(uow, registration.candidate_id, moving=registration.id)
            if new.exam_date in busy:
                raise AlreadyRegistered(busy[new.exam_date])

            await uow.exam_sessions.lock(old.id, new.id)
            if not await uow.exam_sessions.take_seat(new.id):
                raise SessionFull(await uow.registrations.count_waitlisted(new.id))
            try:
                moved = await uow.registrations.move(
                    registration.id, [state], to_session=new.id, state_changed_at=now
                )
            except DuplicateActiveRegistration:
                # Registered at the target meanwhile (for another level).
                raise AlreadyRegistered() from None
            if not moved:
                raise InvalidState(await self._current_state(uow, registration.id))
            audit(
                uow,
                f"tg:{telegram_id}",
                REGISTRATION,
                registration.id,
                "move",
                now,
                from_state=state,
                to_state=state,
                details={"from_session": old.code, "to_session": new.code},
            )
            await self.release_seat_and_promote(uow, old.id, now)
            view = await self._reloaded_view(uow, registration.id, now)
            await uow.commit()
            return view

    async def accept_offer(self, telegram_id: int, registration_id: int) -> RegistrationView:
        """Take the seat held for the candidate: OFFERED → SUBMITTED while the offer runs."""
        now = self._clock()
        async with self._uow() as uow:
            registration = await self._own(uow, telegram_id, registration_id)
            state = RegistrationState(registration.state)
            if state == RegistrationState.EXPIRED and registration.submitted_at is None:
                raise OfferExpired()
            if state != RegistrationState.OFFERED:
                raise InvalidState(state)
            assert registration.offer_expires_at is not None
            if now >= registration.offer_expires_at:
                raise OfferExpired()
            if not await uow.registrations.transition(
                registration.id,
                [RegistrationState.OFFERED],
                state=RegistrationState.SUBMITTED,
                submitted_at=now,
                state_changed_at=now,
            ):
                current = await self._current_state(uow, registration.id)
                raise (
                    OfferExpired()
                    if current == RegistrationState.EXPIRED
                    else InvalidState(current)
                )
            audit(
                uow,
                f"tg:{telegram_id}",
                REGISTRATION,
                registration.id,
                "accept_offer",
                now,
                from_state=state,
                to_state=RegistrationState.SUBMITTED,
            )
            view = await self._reloaded_view(uow, registration.id, now)
            await uow.commit()
            return view

    async def decline_offer(self, telegram_id: int, registration_id: int) -> RegistrationView:
        """Turn the offered seat down: OFFERED → CANCELLED, the seat goes to the next in line."""
        now = self._clock()
        async with self._uow() as uow:
            registration = await self._own(uow, telegram_id, registration_id)
            state = RegistrationState(registration.state)
            if state != RegistrationState.OFFERED:
                raise InvalidState(state)
            await uow.exam_sessions.lock(registration.session_id)
            if not await uow.registrations.transition(
                registration.id,
                [RegistrationState.OFFERED],
                state=RegistrationState.CANCELLED,
                state_changed_at=now,
            ):
                raise InvalidState(await self._current_state(uow, registration.id))
            audit(
                uow,
                f"tg:{telegram_id}",
                REGISTRATION,
                registration.id,
                "decline_offer",
                now,
                from_state=state,
                to_state=RegistrationState.CANCELLED,
            )
            await self.release_seat_and_promote(uow, registration.session_id, now)
            view = await self._reloaded_view(uow, registration.id, now)
            await uow.commit()
            return view

    # --- the scheduler's sweep ----------------------------------------------------------

    async def expire_offers(self) -> int:
        """OFFERED past `offer_expires_at` → EXPIRED, each seat to the next in line.

        Returns how many offers expired. Safe to repeat and to run on several instances
        at once: each expiry is compare-and-set and its outbox rows are keyed.
        """
        now = self._clock()
        expired = 0
        async with self._uow() as uow:
            for offer in await uow.registrations.list_expired_offers(now, EXPIRE_BATCH):
                await uow.exam_sessions.lock(offer.session_id)
                if not await uow.registrations.transition(
                    offer.id,
                    [RegistrationState.OFFERED],
                    state=RegistrationState.EXPIRED,
                    state_changed_at=now,
                ):
                    continue  # accepted, declined or expired by someone else meanwhile
                session = await self._session(uow, offer.session_id)
                assert offer.offer_expires_at is not None
                audit(
                    uow,
                    SYSTEM,
                    REGISTRATION,
                    offer.id,
                    "offer_expired",
                    now,
                    from_state=RegistrationState.OFFERED,
                    to_state=RegistrationState.EXPIRED,
                    reason="offer_not_accepted",
                )
                await notify_candidate(
                    uow,
                    offer.candidate_id,
                    now,
                    key=f"waitlist_offer_expired:{offer.id}:{offer.offer_expires_at.isoformat()}",
                    template=Template.WAITLIST_OFFER_EXPIRED,
                    params={"registration_id": offer.id, "session_code": session.code},
                )
                await self.release_seat_and_promote(uow, offer.session_id, now)
                expired += 1
            await uow.commit()
        return expired

    async def release_seat_and_promote(
        self, uow: UnitOfWork, session_id: int, now: datetime
    ) -> int | None:
        """See the module-level `release_seat_and_promote`; uses this service's offer hours."""
        return await release_seat_and_promote(uow, session_id, now, offer_hours=self._offer_hours)

    # --- helpers ---------------------------------------------------------------------

    @staticmethod
    async def _complete(
        uow: UnitOfWork, sat: Registration, telegram_id: int, retake_session: str, now: datetime
    ) -> None:
        """The earlier sitting of a level being retaken is over: PAID → COMPLETED, so the
        retake becomes the level's one active registration."""
        if not await uow.registrations.transition(
            sat.id,
            [RegistrationState.PAID],
            state=RegistrationState.COMPLETED,
            state_changed_at=now,
        ):
            raise AlreadyRegistered(sat.id)
        audit(
            uow,
            f"tg:{telegram_id}",
            REGISTRATION,
            sat.id,
            "completed",
            now,
            from_state=RegistrationState.PAID,
            to_state=RegistrationState.COMPLETED,
            reason="retake",
            details={"retake_session": retake_session},
        )

    async def _own(self, uow: UnitOfWork, telegram_id: int, registration_id: int) -> Registration:
        """The registration if it is the caller's; NotFound for anyone else's (forged ids)."""
        candidate: Candidate | None = await uow.candidates.get_by_telegram_id(telegram_id)
        if candidate is None:
            raise NotFound("registration")
        registration = await uow.registrations.get_for_candidate(registration_id, candidate.id)
        if registration is None:
            raise NotFound("registration")
        return registration

    @staticmethod
    async def _busy_days(
        uow: UnitOfWork, candidate_id: int, *, moving: int | None = None
    ) -> dict[date, int]:
        """Exam days of the candidate's active registrations (but `moving`) → registration id."""
        active = [
            r
            for r in await uow.registrations.list_for_candidate(candidate_id)
            if r.state in ACTIVE and r.id != moving
        ]
        sessions = await uow.exam_sessions.list_by_ids([r.session_id for r in active])
        return {sessions[r.session_id].exam_date: r.id for r in active}

    @staticmethod
    async def _session(uow: UnitOfWork, session_id: int) -> ExamSession:
        session = await uow.exam_sessions.get(session_id)
        if session is None:
            raise NotFound("session")
        return session

    @staticmethod
    async def _current_state(uow: UnitOfWork, registration_id: int) -> str:
        registration = await uow.registrations.get(registration_id)
        return registration.state if registration is not None else "missing"

    async def _check_window(
        self, uow: UnitOfWork, session: ExamSession, level_code: str, now: datetime
    ) -> None:
        if session.cancelled or now >= session.registration_closes_at:
            raise RegistrationClosed(
                await self._next_open_session(uow, level_code, now, exclude=session.id)
            )
        if now < session.registration_opens_at:
            raise RegistrationNotOpen(session.registration_opens_at)

    @staticmethod
    async def _next_open_session(
        uow: UnitOfWork, level_code: str, now: datetime, *, exclude: int
    ) -> str | None:
        for session in await uow.exam_sessions.list_for_level(level_code):
            if session.id != exclude and availability(session, now) in ("open", "full"):
                return session.code
        return None

    async def _reloaded_view(
        self, uow: UnitOfWork, registration_id: int, now: datetime
    ) -> RegistrationView:
        registration = await uow.registrations.get(registration_id)
        assert registration is not None
        return await self._view(uow, registration, None, now)

    async def _view(
        self,
        uow: UnitOfWork,
        registration: Registration,
        session: ExamSession | None,
        now: datetime,
    ) -> RegistrationView:
        if session is None or session.id != registration.session_id:
            session = await self._session(uow, registration.session_id)
        state = RegistrationState(registration.state)
        before_cutoff = now < session.cancellation_cutoff_at
        position = (
            await uow.registrations.waitlist_position(registration)
            if state == RegistrationState.WAITLISTED
            else None
        )
        return RegistrationView(
            id=registration.id,
            session_code=session.code,
            exam_date=session.exam_date,
            timezone=session.timezone,
            level_code=registration.level_code,
            direction_code=registration.direction_code,
            state=state.value,
            reference=registration.reference,
            waitlist_position=position,
            offer_expires_at=registration.offer_expires_at
            if state == RegistrationState.OFFERED
            else None,
            payment_due_at=session.payment_due_at,
            cancellation_cutoff_at=session.cancellation_cutoff_at,
            can_cancel=state in SELF_CANCELLABLE and before_cutoff,
            can_move=state in MOVABLE and before_cutoff,
            submitted_at=registration.submitted_at,
            identity_frozen=state in IDENTITY_FROZEN,
            tickets_from_at=session.tickets_from_at if now < session.tickets_from_at else None,
            components=tuple(registration.components or ()),
        )


def _session_option(session: ExamSession, now: datetime) -> SessionOption:
    return SessionOption(
        code=session.code,
        exam_date=session.exam_date,
        timezone=session.timezone,
        levels=tuple(session.levels),
        capacity=session.capacity,
        seats_left=max(session.capacity - session.seats_taken, 0),
        registration_opens_at=session.registration_opens_at,
        registration_closes_at=session.registration_closes_at,
        availability=availability(session, now),
        components=tuple(
            ComponentView(
                component=c.component, starts_at=c.starts_at, ends_at=c.ends_at, room=dict(c.room)
            )
            for c in session.components
        ),
    )
