"""Reminders flow: the catalogue's reminder offsets turned into outbox rows, kept true to
the tables, and the exam-day rules acknowledgement.

Entry points:
- `RemindersService.plan()`: the scheduler's tick (singleton work, see `storage.locks`).
  It reconciles, then plans:
  1. every session's reminder moments are computed from its row (times in UTC) and the
     catalogue's `reminders` (kind, anchor, offsets);
  2. pending reminder rows that no longer apply are cancelled: their moment changed or
     left the catalogue (`rescheduled`), or their registration left the session or the
     states the reminder concerns (`no_longer_applies`);
  3. reminders due within `plan_ahead` whose moment has not passed are inserted, one
     row per registration (candidate for `registration_closing`), set-wise
     (INSERT … SELECT … ON CONFLICT DO NOTHING).
  A tick whose inputs did not change (reminder moments, registrations, candidates, the
  reminders inside the horizon) does nothing but two aggregate queries.
- `acknowledge_rules(telegram_id, registration_id)`: "I have read the rules".
- `unacknowledged(session_code, page)`: staff list of PAID candidates who have not.

Rules (docs/reminders.md):
- A row's `not_before` is the reminder time, its `expires_at` the moment it is about or
  the next reminder of the same kind, whichever is first: the sender cancels it after
  that. So after downtime a missed reminder is sent if its moment has not passed and
  skipped if it has, and of several missed ones of a kind only the latest goes out.
- Keys: `reminder:<registration id>:<session>:<kind>:<offset>:<UTC time>` and
  `reminder:c<candidate id>:…` for registration_closing. The time is part of the key, so
  a moved session plans new rows (and its old pending rows are cancelled), and a
  reminder already sent goes again, with the new time, when its moment changed.
- Map pin: an `exam` reminder within `VENUE_WITHIN` (48 h) of the start is followed by an
  `exam_venue` row (template `venue`: the catalogue's site name, address and point), its
  own key and the reminder's times, so it is planned, moved, dropped and expired with it;
  none when the catalogue's site has no `location`.
- Whom each kind concerns: `AUDIENCE`. Kinds the code does not know are skipped (there
  is no text for them) and logged.
- `results_released` is about the release itself: its anchor and moment are the time
  the session's results come out (`result_releases.release_at`, the time staff chose,
  else the catalogue's `timeline.results`). "The results are out" is sent by the release
  (`ResultsReleaseService.release_due`, one message per registration with results), so
  an offset of 0 or later plans nothing here; an earlier one ("-1d": "results come out
  tomorrow") expires at the release and is not planned once the session is released.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.catalog import Catalog, SessionTimeline, parse_offset
from bot.domain.lifecycle import PAYABLE, RegistrationState
from bot.services.catalog import CatalogService
from bot.services.errors import CatalogMissing, InvalidState, NotFound
from bot.services.notify import Template, audit, payload
from storage.models import ExamSession, ResultRelease
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

REGISTRATION_PREFIX = "reminder:"
CANDIDATE_PREFIX = "reminder:c"
CANDIDATE_KIND = "registration_closing"
RESULTS_KIND = "results_released"
#: The map pin that follows an exam reminder: its own row (own key), so a crash between the
#: reminder and the pin repeats neither. Only for exam reminders this close to the start.
VENUE_KIND = "exam_venue"
VENUE_WITHIN = timedelta(hours=48)
#: Eligibility statuses that let a candidate register (see EligibilityService.standing).
ALLOWED_VERDICTS = ("eligible", "approved", "overridden")
#: Registration states each reminder kind concerns. None: candidates without a registration.
AUDIENCE: dict[str, tuple[str, ...] | None] = {
    CANDIDATE_KIND: None,
    # Those who still have to pay; PAYMENT_REVIEW sent a receipt that staff are checking,
    # so a "please pay" would be wrong.
    "payment_due": PAYABLE,
    # Unpaid registrations have expired by then (payment deadline before E−7).
    "ticket_available": (RegistrationState.PAID,),
    "exam": (RegistrationState.PAID,),
    VENUE_KIND: (RegistrationState.PAID,),
    "results_released": (RegistrationState.PAID,),
}
#: A full reconcile at least this often, even when the fingerprint did not change.
FULL_PASS_EVERY = timedelta(minutes=15)
PAGE_SIZE = 30
RESCHEDULED = "rescheduled"
NO_LONGER_APPLIES = "no_longer_applies"


@dataclass(frozen=True, slots=True)
class ReminderSlot:
    """One reminder of one session: when it goes out and until when it may."""

    session_id: int
    session_code: str
    timezone: str
    kind: str
    offset: str
    at: datetime  # reminder time (aware UTC)
    moment: datetime  # the moment it is about
    expires_at: datetime  # the moment, or the next reminder of the kind if sooner

    @property
    def suffix(self) -> str:
        return (
            f":{self.session_code}:{self.kind}:{self.offset}:"
            f"{self.at.astimezone(UTC):%Y%m%dT%H%MZ}"
        )

    @property
    def states(self) -> tuple[str, ...] | None:
        return AUDIENCE[self.kind]


@dataclass(frozen=True, slots=True)
class PlanResult:
    created: int = 0
    cancelled: int = 0
    skipped: bool = False  # nothing changed since the last tick


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    registration_id: int
    session_code: str
    first: bool  # False: it had been recorded before (a second tap)


@dataclass(frozen=True, slots=True)
class Unacknowledged:
    name: str
    telegram_id: int
    level_code: str


@dataclass(frozen=True, slots=True)
class UnacknowledgedPage:
    session_code: str
    total: int
    page: int  # 1-based
    pages: int
    people: tuple[Unacknowledged, ...]


def exam_start(session: ExamSession) -> datetime:
    """Start of the session's first component (midnight in its zone when it has none)."""
    if session.components:
        return min(c.starts_at for c in session.components)
    return datetime.combine(
        session.exam_date, time(0), tzinfo=ZoneInfo(session.timezone)
    ).astimezone(UTC)


def session_slots(
    session: ExamSession, catalog: Catalog, release: ResultRelease | None = None
) -> list[ReminderSlot]:
    """The reminders of a session from its row and the catalogue's offsets, by time.

    The row is the truth for times (a session kept from an older catalogue file still has
    its reminders); anchors the row does not store come from the catalogue's timeline.
    `release` is the session's results release row, if any: its time is the results
    anchor, and once released nothing about the release is reminded any more.
    """
    if session.cancelled:
        return []
    released = release is not None and release.released_at is not None
    results_at = release.release_at if release is not None else session.results_at
    timeline: SessionTimeline | None = None
    if any(s.code == session.code for s in catalog.sessions):
        timeline = catalog.session_timeline(session.code)
    starts = exam_start(session)
    pinned = catalog.site.location is not None
    anchors: dict[str, datetime | None] = {
        "registration_opens": session.registration_opens_at,
        "registration_closes": session.registration_closes_at,
        "payment_due": session.payment_due_at,
        "tickets_from": session.tickets_from_at,
        "exam_start": starts,
        "results": results_at,
    }
    moments = {
        CANDIDATE_KIND: session.registration_closes_at,
        "payment_due": session.payment_due_at,
        "ticket_available": starts,
        "exam": starts,
        "results_released": results_at,  # the release sends "results are out" itself
    }
    slots: list[ReminderSlot] = []
    for reminder in catalog.reminders:
        if reminder.kind not in AUDIENCE or reminder.kind == VENUE_KIND:
            log.warning("reminder kind %r has no audience or text; skipped", reminder.kind)
            continue
        if reminder.kind == RESULTS_KIND and released:
            continue
        base = anchors.get(reminder.anchor) or (
            timeline.anchor(reminder.anchor) if timeline else None
        )
        if base is None:
            continue
        times = sorted((base + parse_offset(offset), offset) for offset in reminder.offsets)
        for index, (at, offset) in enumerate(times):
            moment = moments[reminder.kind]
            expires = min(moment, times[index + 1][0]) if index + 1 < len(times) else moment
            if at < expires:  # a reminder at or after its moment could never go out
                slot = ReminderSlot(
                    session.id,
                    session.code,
                    session.timezone,
                    reminder.kind,
                    offset,
                    at,
                    moment,
                    expires,
                )
                slots.append(slot)
                if reminder.kind == "exam" and pinned and moment - at <= VENUE_WITHIN:
                    slots.append(replace(slot, kind=VENUE_KIND))
    # The pin right after its reminder: rows are sent by (not_before, id) and planned in
    # this order, so in the chat the reminder comes first.
    return sorted(slots, key=lambda s: (s.at, s.kind == VENUE_KIND, s.kind))


class RemindersService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        *,
        plan_ahead: timedelta = timedelta(hours=24),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self.plan_ahead = plan_ahead
        self._last: tuple[Any, ...] | None = None
        self._last_full: datetime | None = None

    # --- planning -----------------------------------------------------------------------

    async def plan(self) -> PlanResult:
        """Reconcile pending reminders with the tables, then plan the ones now due soon."""
        now = self._clock()
        try:
            catalog = await self._catalog.current()  # before our transaction (SQLite: one writer)
        except CatalogMissing:
            return PlanResult(skipped=True)
        async with self._uow() as uow:
            sessions = await uow.catalog.list_sessions()
            releases = await uow.results.list_releases()
            slots = {s.id: session_slots(s, catalog, releases.get(s.id)) for s in sessions}
            levels = {s.id: tuple(s.levels) for s in sessions}
            components = {s.id: _components(s, catalog) for s in sessions}
            horizon = [
                slot
                for per in slots.values()
                for slot in per
                if slot.at <= now + self.plan_ahead and slot.expires_at > now
            ]
            fingerprint = (
                tuple(
                    (sid, tuple((x.suffix, x.expires_at) for x in per))
                    for sid, per in sorted(slots.items())
                ),
                tuple(sorted(f"{x.session_id}{x.suffix}" for x in horizon)),
                await uow.reminders.fingerprint(),
            )
            full_due = self._last_full is None or now - self._last_full >= FULL_PASS_EVERY
            if fingerprint == self._last and not full_due:
                return PlanResult(skipped=True)
            cancelled = 0
            for session_id, per in slots.items():
                cancelled += await self._reconcile(uow, session_id, per, levels[session_id], now)
            created = 0
            for slot in horizon:
                created += await self._insert(
                    uow,
                    slot,
                    levels[slot.session_id],
                    components[slot.session_id],
                    catalog.site.venue(),
                    now,
                )
            if created:
                uow.queued = True  # rows planned in bulk, past `notify.queue`: wake the sender
            await uow.commit()
        self._last, self._last_full = fingerprint, now
        return PlanResult(created=created, cancelled=cancelled)

    async def _reconcile(
        self,
        uow: UnitOfWork,
        session_id: int,
        slots: list[ReminderSlot],
        levels: tuple[str, ...],
        now: datetime,
    ) -> int:
        per_registration = [s for s in slots if s.states is not None]
        per_candidate = [s for s in slots if s.states is None]
        cancelled = await uow.reminders.drop_off_schedule(
            session_id,
            registration_prefix=REGISTRATION_PREFIX,
            registration_suffixes=[s.suffix for s in per_registration],
            candidate_prefix=CANDIDATE_PREFIX,
            candidate_suffixes=[s.suffix for s in per_candidate],
            now=now,
            reason=RESCHEDULED,
        )
        cancelled += await uow.reminders.drop_unconcerned_registrations(
            session_id,
            prefix=REGISTRATION_PREFIX,
            slots=[(s.suffix, s.states or ()) for s in per_registration],
            now=now,
            reason=NO_LONGER_APPLIES,
        )
        cancelled += await uow.reminders.drop_unconcerned_candidates(
            session_id, levels=levels, allowed=ALLOWED_VERDICTS, now=now, reason=NO_LONGER_APPLIES
        )
        return cancelled

    async def _insert(
        self,
        uow: UnitOfWork,
        slot: ReminderSlot,
        levels: tuple[str, ...],
        components: list[dict[str, Any]],
        venue: dict[str, Any] | None,
        now: datetime,
    ) -> int:
        params: dict[str, Any] = {
            "kind": slot.kind,
            "offset": slot.offset,
            "session_code": slot.session_code,
            "timezone": slot.timezone,
            "at": slot.at.isoformat(),
            "moment": slot.moment.isoformat(),
        }
        if slot.kind == "exam":
            params["components"] = components
        template = Template.REMINDER
        if slot.kind == VENUE_KIND:
            if venue is None:
                return 0
            params |= venue
            template = Template.VENUE
        common = {
            "suffix": slot.suffix,
            "session_id": slot.session_id,
            "payload": payload(template, params),
            "not_before": slot.at,
            "expires_at": slot.expires_at,
            "now": now,
        }
        if slot.states is None:
            return await uow.reminders.plan_for_candidates(
                prefix=CANDIDATE_PREFIX, levels=levels, allowed=ALLOWED_VERDICTS, **common
            )
        return await uow.reminders.plan_for_registrations(
            prefix=REGISTRATION_PREFIX, states=slot.states, **common
        )

    async def slots(self, session_code: str) -> list[ReminderSlot]:
        """A session's reminders as the planner sees them (staff tools, tests)."""
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            session = await uow.exam_sessions.get_by_code(session_code)
            if session is None:
                raise NotFound("session")
            return session_slots(session, catalog, await uow.results.get_release(session.id))

    # --- exam-day rules -------------------------------------------------------------------

    async def acknowledge_rules(self, telegram_id: int, registration_id: int) -> Acknowledgement:
        """Record that the candidate read the exam-day rules (their own PAID registration)."""
        now = self._clock()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            registration = (
                await uow.registrations.get_for_candidate(registration_id, candidate.id)
                if candidate
                else None
            )
            if registration is None:
                raise NotFound("registration")
            if registration.state != RegistrationState.PAID:
                raise InvalidState(registration.state)
            session = await uow.exam_sessions.get(registration.session_id)
            assert session is not None
            first = await uow.reminders.acknowledge_rules(registration.id, now)
            if first:
                audit(
                    uow,
                    f"tg:{telegram_id}",
                    "registration",
                    registration.id,
                    "rules_acknowledged",
                    now,
                    details={"session": session.code},
                )
            await uow.commit()
            return Acknowledgement(registration.id, session.code, first)

    async def unacknowledged(
        self, session_code: str, page: int = 1, page_size: int = PAGE_SIZE
    ) -> UnacknowledgedPage:
        """PAID candidates of a session who have not confirmed the rules, a page at a time."""
        async with self._uow() as uow:
            session = await uow.exam_sessions.get_by_code(session_code)
            if session is None:
                raise NotFound("session")
            total = await uow.reminders.count_unacknowledged(session.id)
            pages = max(1, math.ceil(total / page_size))
            page = min(max(page, 1), pages)
            rows = await uow.reminders.list_unacknowledged(
                session.id, (page - 1) * page_size, page_size
            )
            people = tuple(Unacknowledged(name, tid, level) for name, tid, level in rows)
            return UnacknowledgedPage(session.code, total, page, pages, people)


def _components(session: ExamSession, catalog: Catalog) -> list[dict[str, Any]]:
    """What the exam reminder shows of each component: name, times and room."""
    names = {c.code: c.name.model_dump() for c in catalog.components}
    return [
        {
            "component": c.component,
            "name": names.get(c.component, {"en": c.component}),
            "starts_at": c.starts_at.isoformat(),
            "ends_at": c.ends_at.isoformat(),
            "room": dict(c.room),
        }
        for c in sorted(session.components, key=lambda c: c.starts_at)
    ]
