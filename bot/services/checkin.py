"""Check-in at the door (issue 14 point 7; docs/staff.md, "Check-in").

Entry points (`CheckinService`):

* `scan(text)`: what the door sees for a scanned or typed ticket: the check-in deep link's
  payload (`ci_<number>_<signature>`), a signed reference or a check URL (signature
  checked), or a ticket number typed from the paper (looked up as typed). Returns a
  `CheckinCard` (photo, name, masked ID, session, level, components with room and seat,
  and whether the ticket may be checked in now), or raises `TicketForged` (tampered or
  unknown), `TicketReplaced` (moved or corrected: the number in force) or
  `TicketNotAdmitted` (the registration is no longer PAID: cancelled, refunded…);
* `present(staff_id, registration_id)`: record the check-in (the "✅ Present" button). It
  checks everything again; the first press wins (`AlreadyCheckedIn` with when and by
  whom after that), audited (entity `attendance`);
* `status(session_code)`: present / expected per room (`/checkin_status`);
* `attended(session_id)` is what the results import reads (inside its own unit of work,
  through `uow.checkin`).

Which session is "held today": a session whose exam date, or the local date of one of its
components, is today in the session's own time zone. A ticket of another session, while
one is held today, is refused (`WRONG_SESSION`). On a day no session is held the card
warns (`NO_SESSION_TODAY`) and check-in is still allowed: staff at the door know better
than a catalogue date that may be out of date, and the audit keeps the warning.
Attendance is per registration (the door), not per component.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.crypto import Vault
from bot.domain.lifecycle import RegistrationState
from bot.services.catalog import CatalogService
from bot.services.errors import NotFound, ServiceError
from bot.services.notify import audit
from bot.services.tickets import TicketCheck, TicketService, masked_id
from storage.models import Candidate, ExamSession, Registration
from storage.uow import UnitOfWork, UowFactory

ENTITY = "attendance"  # the audit log's entity (id: the registration)
OK = "ok"
WRONG_SESSION = "wrong_session"  # another session is held today
NO_SESSION_TODAY = "no_session_today"  # allowed, with a warning
CHECKED_IN = "checked_in"  # a second scan
#: A ticket number as printed: `{session code}-{level initial}-{sequence}`.
_TICKET_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*-[A-Za-z]-[0-9]{4,}")
#: How far around today to look for sessions (time zones, components on later days).
_AROUND = timedelta(days=3)


class TicketForged(ServiceError):
    """The code is not a genuine ticket reference (tampered, or unknown)."""


class TicketReplaced(ServiceError):
    """The ticket was replaced: `check.replaced_by` (None while a moved registration's new
    ticket is not issued yet; `check.session_code` is the session it moved to)."""

    def __init__(self, check: TicketCheck) -> None:
        super().__init__(check.ticket_number)
        self.check = check


class TicketNotAdmitted(ServiceError):
    """The registration is no longer PAID (`state`: cancelled, expired, …)."""

    def __init__(self, check: TicketCheck, state: str) -> None:
        super().__init__(check.ticket_number, state)
        self.check = check
        self.state = state


class WrongSession(ServiceError):
    """The ticket's session is not held today; `held` are the sessions that are."""

    def __init__(self, session_code: str, held: tuple[str, ...]) -> None:
        super().__init__(session_code, held)
        self.session_code = session_code
        self.held = held


class AlreadyCheckedIn(ServiceError):
    """Checked in before, at `at` (aware UTC) by staff member `by` (`by_name` if known)."""

    def __init__(self, at: datetime, by: int, by_name: str | None, timezone: str) -> None:
        super().__init__(at, by)
        self.at = at
        self.by = by
        self.by_name = by_name
        self.timezone = timezone


@dataclass(frozen=True, slots=True)
class CardComponent:
    code: str
    names: dict[str, str]  # by language
    room: dict[str, str]
    starts_at: datetime  # aware UTC


@dataclass(frozen=True, slots=True)
class CheckinCard:
    """What the door sees. `status`: OK, WRONG_SESSION, NO_SESSION_TODAY or CHECKED_IN."""

    registration_id: int
    ticket_number: str
    full_name: str
    id_number_masked: str
    photo_file_id: str | None
    session_code: str
    exam_date: date
    timezone: str
    level_code: str
    seat: str
    components: tuple[CardComponent, ...]
    status: str
    held_today: tuple[str, ...]  # the sessions held today (codes)
    typed: bool  # looked up by a typed number: there was no signature to check
    checked_in_at: datetime | None = None
    checked_in_by: int | None = None
    checked_in_by_name: str | None = None

    @property
    def admissible(self) -> bool:
        """Whether the "Present" button is offered."""
        return self.status in (OK, NO_SESSION_TODAY)


@dataclass(frozen=True, slots=True)
class Presence:
    registration_id: int
    ticket_number: str
    full_name: str
    session_code: str
    at: datetime
    timezone: str
    warning: str | None  # NO_SESSION_TODAY when checked in on a day no session is held
    present: int  # checked in so far at the session
    expected: int  # PAID registrations of the session


@dataclass(frozen=True, slots=True)
class RoomCount:
    room: dict[str, str]
    components: tuple[str, ...]  # the session's components held in this room
    present: int
    expected: int


@dataclass(frozen=True, slots=True)
class CheckinStatus:
    session_code: str
    exam_date: date
    timezone: str
    rooms: tuple[RoomCount, ...]
    present: int
    expected: int
    held_today: bool


class CheckinService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        vault: Vault,
        tickets: TicketService,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._vault = vault
        self._tickets = tickets

    # --- the scan ------------------------------------------------------------------------

    async def scan(self, text: str) -> CheckinCard:
        """The card of a scanned or typed ticket. Raises TicketForged, TicketReplaced,
        TicketNotAdmitted."""
        text = text.strip()
        typed = bool(_TICKET_NUMBER.fullmatch(text))
        if typed:
            check = await self._tickets.check_number(text)
            if check.reason == "unknown" and text != text.upper():
                check = await self._tickets.check_number(text.upper())
        else:
            check = await self._tickets.verify(text)
        if check.reason in ("forged", "unknown") or check.registration_id is None:
            raise TicketForged()
        if check.reason == "replaced":
            raise TicketReplaced(check)
        catalog = await self._catalog.current()
        names = {c.code: c.name.model_dump() for c in catalog.components}
        now = self._clock()
        async with self._uow() as uow:
            registration, candidate, session, seat = await self._seat(uow, check.registration_id)
            if registration.state != RegistrationState.PAID:
                raise TicketNotAdmitted(check, registration.state)
            held = await _held_today(uow, now)
            attendance = await uow.checkin.get(registration.id)
            by_name = (
                await uow.checkin.staff_name(attendance.checked_in_by) if attendance else None
            )
            if attendance is not None:
                status = CHECKED_IN
            elif not held:
                status = NO_SESSION_TODAY
            elif session.code not in held:
                status = WRONG_SESSION
            else:
                status = OK
            wanted = set(registration.components or [c.component for c in session.components])
            photo: Any = (candidate.profile or {}).get("photo") or {}
            return CheckinCard(
                registration_id=registration.id,
                ticket_number=check.ticket_number or "",
                full_name=candidate.full_name or "",
                id_number_masked=self._masked_id(candidate),
                photo_file_id=photo.get("file_id") if isinstance(photo, dict) else None,
                session_code=session.code,
                exam_date=session.exam_date,
                timezone=session.timezone,
                level_code=registration.level_code,
                seat=seat,
                components=tuple(
                    CardComponent(
                        c.component,
                        names.get(c.component, {"en": c.component}),
                        dict(c.room),
                        c.starts_at,
                    )
                    for c in session.components
                    if c.component in wanted
                ),
                status=status,
                held_today=held,
                typed=typed,
                checked_in_at=attendance.checked_in_at if attendance else None,
                checked_in_by=attendance.checked_in_by if attendance else None,
                checked_in_by_name=by_name,
            )

    # --- "Present" -----------------------------------------------------------------------

    async def present(self, staff_id: int, registration_id: int) -> Presence:
        """Check the registration in, once. Raises NotFound (no ticket for its session),
        TicketNotAdmitted, WrongSession, AlreadyCheckedIn."""
        now = self._clock()
        async with self._uow() as uow:
            registration, candidate, session, _ = await self._seat(uow, registration_id)
            ticket = await uow.tickets.get_for_registration(registration.id)
            assert ticket is not None  # _seat found it
            if registration.state != RegistrationState.PAID:
                check = TicketCheck(
                    valid=False, reason="not_paid", ticket_number=ticket.ticket_number
                )
                raise TicketNotAdmitted(check, registration.state)
            held = await _held_today(uow, now)
            if held and session.code not in held:
                raise WrongSession(session.code, held)
            if not await uow.checkin.add_if_new(registration.id, session.id, now, staff_id):
                raise await _already(uow, registration.id, session.timezone)
            warning = None if held else NO_SESSION_TODAY
            audit(
                uow,
                f"tg:{staff_id}",
                ENTITY,
                registration.id,
                "checked_in",
                now,
                details={
                    "session": session.code,
                    "ticket_number": ticket.ticket_number,
                    "warning": warning,
                },
            )
            present = len(await uow.checkin.for_session(session.id))
            expected = len(await uow.checkin.expected(session.id))
            await uow.commit()
            return Presence(
                registration_id=registration.id,
                ticket_number=ticket.ticket_number,
                full_name=candidate.full_name or "",
                session_code=session.code,
                at=now,
                timezone=session.timezone,
                warning=warning,
                present=present,
                expected=expected,
            )

    # --- the session's figures -----------------------------------------------------------

    async def status(self, session_code: str) -> CheckinStatus:
        """Present / expected per room of the session. Raises NotFound (session)."""
        now = self._clock()
        async with self._uow() as uow:
            session = await uow.exam_sessions.get_by_code(session_code)
            if session is None:
                raise NotFound("session")
            expected = await uow.checkin.expected(session.id)
            came = await uow.checkin.for_session(session.id)
            offered = [c.component for c in session.components]
            rooms: dict[tuple[tuple[str, str], ...], list[str]] = {}
            for c in session.components:
                rooms.setdefault(tuple(sorted(c.room.items())), []).append(c.component)
            counts = []
            for room, components in rooms.items():
                there = [r for r in expected if set(r.components or offered) & set(components)]
                counts.append(
                    RoomCount(
                        room=dict(room),
                        components=tuple(components),
                        present=sum(1 for r in there if r.id in came),
                        expected=len(there),
                    )
                )
            return CheckinStatus(
                session_code=session.code,
                exam_date=session.exam_date,
                timezone=session.timezone,
                rooms=tuple(counts),
                present=sum(1 for r in expected if r.id in came),
                expected=len(expected),
                held_today=session.code in await _held_today(uow, now),
            )

    # --- helpers -------------------------------------------------------------------------

    async def _seat(
        self, uow: UnitOfWork, registration_id: int
    ) -> tuple[Registration, Candidate, ExamSession, str]:
        """The registration, its candidate, its session and the seat of its ticket for it."""
        registration = await uow.registrations.get(registration_id)
        if registration is None:
            raise NotFound("registration")
        ticket = await uow.tickets.get_for_registration(registration.id)
        if ticket is None or ticket.session_id != registration.session_id:
            raise NotFound("ticket")
        candidate = await uow.candidates.get(registration.candidate_id)
        session = await uow.exam_sessions.get(registration.session_id)
        assert candidate is not None and session is not None
        return registration, candidate, session, f"{ticket.seat:03d}"

    def _masked_id(self, candidate: Candidate) -> str:
        return masked_id(self._vault, candidate)


async def _held_today(uow: UnitOfWork, now: datetime) -> tuple[str, ...]:
    """The codes of the sessions held today, each in its own time zone."""
    day = now.date()
    held = []
    for session in await uow.checkin.sessions_between(day - _AROUND, day + _AROUND):
        zone = ZoneInfo(session.timezone)
        today = now.astimezone(zone).date()
        days = {session.exam_date} | {
            c.starts_at.astimezone(zone).date() for c in session.components
        }
        if today in days:
            held.append(session.code)
    return tuple(held)


async def _already(uow: UnitOfWork, registration_id: int, timezone: str) -> AlreadyCheckedIn:
    attendance = await uow.checkin.get(registration_id)
    assert attendance is not None
    name = await uow.checkin.staff_name(attendance.checked_in_by)
    return AlreadyCheckedIn(attendance.checked_in_at, attendance.checked_in_by, name, timezone)
