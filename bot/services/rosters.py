"""Rosters and exports (issue 14 point 6; docs/staff.md "Rosters and exports").

Entry points (`RosterService`), each checking the caller's role and audited:

* `roster(staff_id, session_code, full_ids=False)`: everyone holding a seat at a session
  (and COMPLETED sittings), sorted by ticket number (registrations without a ticket yet
  last): role checkin (admins always). `full_ids=True` decrypts the ID numbers: admin
  only, audited as `roster_full_ids`.
* `signin_sheets(staff_id, session_code)`: one sheet per component (its room and time) of
  the PAID registrations that booked it, by seat: role checkin.
* `export_registrations(staff_id, session_code=None, state=None)` and
  `export_payments(staff_id, session_code=None, status=None)`: the finance exports with
  their filters: role finance.

Nothing here issues a ticket or changes a registration; the results are plain values
(codes and catalogue names in both languages) that `handlers/rosters.py` writes as
XLSX, CSV and PDF. Raises NotAllowed (`bot.services.staff`), NotFound (the session).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from bot.crypto import Vault
from bot.domain.catalog import Catalog
from bot.domain.idcard import mask_id_number
from bot.domain.lifecycle import SEAT_HOLDING, PaymentStatus, RegistrationState
from bot.domain.roles import Role
from bot.services.catalog import CatalogService
from bot.services.errors import CatalogMissing, NotFound
from bot.services.notify import audit
from bot.services.staff import StaffService
from storage.models import AdmissionTicket, Attendance, Candidate, ExamSession, Registration
from storage.uow import UnitOfWork, UowFactory

log = logging.getLogger(__name__)

#: Who is on a session's roster: every seat holder, and sittings already completed.
ROSTER_STATES: tuple[str, ...] = (*SEAT_HOLDING, RegistrationState.COMPLETED)
#: Who signs in at the door: paid registrations only.
SIGNIN_STATES: tuple[str, ...] = (RegistrationState.PAID,)
REGISTRATION_STATES: tuple[str, ...] = tuple(s.value for s in RegistrationState)
PAYMENT_STATUSES: tuple[str, ...] = tuple(s.value for s in PaymentStatus)
SEAT_DIGITS = 3  # as on the admission ticket

Names = dict[str, str]  # {"zh_Hans": ..., "en": ...}


@dataclass(frozen=True, slots=True)
class RosterComponent:
    code: str
    name: Names
    starts_at: datetime  # aware UTC
    ends_at: datetime
    room: Names


@dataclass(frozen=True, slots=True)
class RosterEntry:
    registration_id: int
    ticket_number: str | None  # None: no ticket issued for this session yet
    seat: str | None
    full_name: str
    gender: str | None  # male | female
    id_doc_type: str | None
    id_masked: str
    id_full: str | None  # only in an admin's full roster; None there: cannot be decrypted
    phone: str | None
    level_code: str
    level_name: Names
    direction_code: str | None
    direction_name: Names | None
    components: tuple[str, ...]  # the codes booked, in the session's order
    state: str  # a RegistrationState
    paid_by: str | None  # the method of the accepted payment
    checked_in_at: datetime | None
    photo_file_id: str | None  # the registration photo (a Telegram file id)


@dataclass(frozen=True, slots=True)
class Roster:
    session_code: str
    exam_date: date
    timezone: str
    components: tuple[RosterComponent, ...]
    entries: tuple[RosterEntry, ...]
    full_ids: bool


@dataclass(frozen=True, slots=True)
class SigninSheet:
    """The sign-in sheet of one component's room: its candidates by seat."""

    session_code: str
    exam_date: date
    timezone: str
    component: RosterComponent
    entries: tuple[RosterEntry, ...]


@dataclass(frozen=True, slots=True)
class RegistrationLine:
    reference: str
    session_code: str
    full_name: str
    id_masked: str
    phone: str | None
    email: str | None
    level_code: str
    level_name: Names
    direction_code: str | None
    direction_name: Names | None
    components: tuple[str, ...]
    state: str
    created_at: datetime
    submitted_at: datetime | None
    state_changed_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentLine:
    payment_id: int
    reference: str | None  # the registration's, None for money that matched none
    session_code: str | None
    full_name: str | None
    method: str
    external_id: str | None
    amount_minor: int
    currency: str
    status: str  # a PaymentStatus
    created_at: datetime
    decided_at: datetime | None
    reason: str | None
    refund_status: str | None
    refund_reference: str | None


@dataclass(frozen=True, slots=True)
class Export:
    """Rows of a finance export and the filters that chose them."""

    kind: str  # registrations | payments
    session_code: str | None
    state: str | None
    rows: tuple[Any, ...]
    timezone: str  # the site's: the times are shown in it


class RosterService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        vault: Vault,
        staff: StaffService,
        *,
        site_zone: str = "Asia/Shanghai",
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._vault = vault
        self._staff = staff
        self._site_zone = site_zone

    # --- the exam day: roster and sign-in sheets -------------------------------------

    async def roster(self, staff_id: int, session_code: str, *, full_ids: bool = False) -> Roster:
        """The session's roster. Raises NotAllowed (checkin; admin for `full_ids`), NotFound."""
        await self._staff.require(staff_id, Role.ADMIN if full_ids else Role.CHECKIN)
        catalog = await self._current_catalog()
        now = self._clock()
        async with self._uow() as uow:
            session = await uow.exam_sessions.get_by_code(session_code)
            if session is None:
                raise NotFound("session")
            rows = await uow.rosters.list_roster(session.id, ROSTER_STATES)
            methods = await uow.rosters.accepted_methods([r[0].id for r in rows])
            order = [c.component for c in session.components]
            entries = [
                self._entry(catalog, order, registration, candidate, ticket, attended, methods)
                for registration, candidate, ticket, attended in rows
            ]
            if full_ids:
                entries = [
                    replace(e, id_full=self._full_id(c))
                    for e, (_, c, _, _) in zip(entries, rows, strict=True)
                ]
            entries.sort(
                key=lambda e: (e.ticket_number is None, e.ticket_number or "", e.registration_id)
            )
            audit(
                uow,
                f"tg:{staff_id}",
                "exam_session",
                session.id,
                "roster_full_ids" if full_ids else "roster_exported",
                now,
                details={"session": session.code, "rows": len(entries), "full_ids": full_ids},
            )
            await uow.commit()
        return Roster(
            session_code=session.code,
            exam_date=session.exam_date,
            timezone=session.timezone,
            components=_components(catalog, session),
            entries=tuple(entries),
            full_ids=full_ids,
        )

    async def signin_sheets(self, staff_id: int, session_code: str) -> tuple[SigninSheet, ...]:
        """One sheet per component of the session (its room), PAID candidates who booked
        it, by seat. Raises NotAllowed (checkin), NotFound (session)."""
        await self._staff.require(staff_id, Role.CHECKIN)
        catalog = await self._current_catalog()
        now = self._clock()
        async with self._uow() as uow:
            session = await uow.exam_sessions.get_by_code(session_code)
            if session is None:
                raise NotFound("session")
            rows = await uow.rosters.list_roster(session.id, SIGNIN_STATES)
            order = [c.component for c in session.components]
            entries = [
                self._entry(catalog, order, registration, candidate, ticket, attended, {})
                for registration, candidate, ticket, attended in rows
            ]
            entries.sort(key=lambda e: (e.seat is None, e.seat or "", e.registration_id))
            audit(
                uow,
                f"tg:{staff_id}",
                "exam_session",
                session.id,
                "signin_exported",
                now,
                details={"session": session.code, "rows": len(entries)},
            )
            await uow.commit()
        return tuple(
            SigninSheet(
                session_code=session.code,
                exam_date=session.exam_date,
                timezone=session.timezone,
                component=component,
                entries=tuple(e for e in entries if component.code in e.components),
            )
            for component in _components(catalog, session)
        )

    # --- finance exports ----------------------------------------------------------------

    async def export_registrations(
        self, staff_id: int, session_code: str | None = None, state: str | None = None
    ) -> Export:
        """Registrations (all sessions, or one; any state, or one). Raises NotAllowed
        (finance), NotFound (session), ValueError (not a registration state)."""
        if state is not None and state not in REGISTRATION_STATES:
            raise ValueError(f"not a registration state: {state}")
        await self._staff.require(staff_id, Role.FINANCE)
        catalog = await self._current_catalog()
        now = self._clock()
        async with self._uow() as uow:
            session_id = await self._session_id(uow, session_code)
            found = await uow.rosters.list_registrations(session_id, state)
            rows = tuple(
                RegistrationLine(
                    reference=r.reference,
                    session_code=code,
                    full_name=c.full_name or "",
                    id_masked=self._masked(c),
                    phone=c.phone,
                    email=c.email,
                    level_code=r.level_code,
                    level_name=_name(catalog, "level", r.level_code),
                    direction_code=r.direction_code,
                    direction_name=_name(catalog, "direction", r.direction_code)
                    if r.direction_code
                    else None,
                    components=tuple(r.components or ()),
                    state=r.state,
                    created_at=r.created_at,
                    submitted_at=r.submitted_at,
                    state_changed_at=r.state_changed_at,
                )
                for r, c, code in found
            )
            self._audit_export(uow, staff_id, "registrations", session_code, state, len(rows), now)
            await uow.commit()
        return Export("registrations", session_code, state, rows, self._site_zone)

    async def export_payments(
        self, staff_id: int, session_code: str | None = None, status: str | None = None
    ) -> Export:
        """Payments (all, or of one session's registrations; any status, or one). Raises
        NotAllowed (finance), NotFound (session), ValueError (not a payment status)."""
        if status is not None and status not in PAYMENT_STATUSES:
            raise ValueError(f"not a payment status: {status}")
        await self._staff.require(staff_id, Role.FINANCE)
        now = self._clock()
        async with self._uow() as uow:
            session_id = await self._session_id(uow, session_code)
            found = await uow.rosters.list_payments(session_id, status)
            rows = tuple(
                PaymentLine(
                    payment_id=p.id,
                    reference=r.reference if r else None,
                    session_code=code,
                    full_name=(c.full_name or "") if c else None,
                    method=p.method,
                    external_id=p.external_id,
                    amount_minor=p.amount_minor,
                    currency=p.currency,
                    status=p.status,
                    created_at=p.created_at,
                    decided_at=p.decided_at,
                    reason=p.reason,
                    refund_status=p.refund_status,
                    refund_reference=p.refund_reference,
                )
                for p, r, c, code in found
            )
            self._audit_export(uow, staff_id, "payments", session_code, status, len(rows), now)
            await uow.commit()
        return Export("payments", session_code, status, rows, self._site_zone)

    # --- helpers ------------------------------------------------------------------------

    async def _current_catalog(self) -> Catalog | None:
        try:
            return await self._catalog.current()
        except CatalogMissing:  # names then show as codes
            return None

    @staticmethod
    async def _session_id(uow: UnitOfWork, session_code: str | None) -> int | None:
        if session_code is None:
            return None
        session = await uow.exam_sessions.get_by_code(session_code)
        if session is None:
            raise NotFound("session")
        return int(session.id)

    @staticmethod
    def _audit_export(
        uow: UnitOfWork,
        staff_id: int,
        kind: str,
        session_code: str | None,
        state: str | None,
        count: int,
        now: datetime,
    ) -> None:
        audit(
            uow,
            f"tg:{staff_id}",
            "export",
            kind,
            f"{kind}_exported",
            now,
            details={"session": session_code, "state": state, "rows": count},
        )

    def _masked(self, candidate: Candidate) -> str:
        if candidate.id_number_masked:
            return candidate.id_number_masked
        if candidate.id_number_encrypted:
            try:
                return mask_id_number(self._vault.decrypt(candidate.id_number_encrypted))
            except ValueError:
                log.warning("ID number of candidate %s cannot be decrypted", candidate.id)
        return ""

    def _full_id(self, candidate: Candidate) -> str | None:
        if candidate.id_number_encrypted:
            try:
                return self._vault.decrypt(candidate.id_number_encrypted)
            except ValueError:
                log.warning("ID number of candidate %s cannot be decrypted", candidate.id)
        return None

    def _entry(
        self,
        catalog: Catalog | None,
        order: list[str],
        registration: Registration,
        candidate: Candidate,
        ticket: AdmissionTicket | None,
        attended: Attendance | None,
        methods: dict[int, str],
    ) -> RosterEntry:
        booked = set(registration.components or order)
        photo = (candidate.profile or {}).get("photo") or {}
        return RosterEntry(
            registration_id=registration.id,
            ticket_number=ticket.ticket_number if ticket else None,
            seat=f"{ticket.seat:0{SEAT_DIGITS}d}" if ticket else None,
            full_name=candidate.full_name or "",
            gender=candidate.gender,
            id_doc_type=candidate.id_doc_type,
            id_masked=self._masked(candidate),
            id_full=None,
            phone=candidate.phone,
            level_code=registration.level_code,
            level_name=_name(catalog, "level", registration.level_code),
            direction_code=registration.direction_code,
            direction_name=_name(catalog, "direction", registration.direction_code)
            if registration.direction_code
            else None,
            components=tuple(c for c in order if c in booked),
            state=registration.state,
            paid_by=methods.get(registration.id),
            checked_in_at=attended.checked_in_at if attended else None,
            photo_file_id=photo.get("file_id") if isinstance(photo, dict) else None,
        )


def _components(catalog: Catalog | None, session: ExamSession) -> tuple[RosterComponent, ...]:
    return tuple(
        RosterComponent(
            code=c.component,
            name=_name(catalog, "component", c.component),
            starts_at=c.starts_at,
            ends_at=c.ends_at,
            room={k: v for k, v in dict(c.room).items() if v},
        )
        for c in session.components
    )


def _name(catalog: Catalog | None, kind: str, code: str) -> Names:
    """A catalogue name in both languages; the code when the catalogue does not list it."""
    if catalog is None:
        return {"en": code}
    try:
        item = getattr(catalog, kind)(code)
    except KeyError:
        return {"en": code}
    return {k: v for k, v in item.name.model_dump().items() if v}
