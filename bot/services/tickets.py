"""Admission ticket flow (准考证): number and seat, the ticket's content, delivery, staff checks.

Entry points: `TicketService.ticket(telegram_id, registration_id=None)` (a candidate's own
ticket: NotFound, NotPaid, TicketNotYetAvailable), `issue_due_tickets()` (the scheduler:
tickets for PAID registrations whose session's `tickets_from_at` has passed, and a
`ticket_ready` notification in the outbox, key `ticket:{registration id}`, followed by the
site's map pin, key `ticket:{registration id}:venue`) and
`verify(signed_reference)` (staff and the public check page) and `check_number(number)` (a
number typed at the door: no signature to check); `reissue_ticket(uow, …)` gives a ticket
a new number inside another service's transaction (staff corrected the identity printed on
it).

Numbers: `{session code}-{level initial}-{seq:04d}`, e.g. `2027-01-J-0007`; the seat is a
per-session sequence (`007`) used in the room of each component. Both are drawn from
`ticket_counters` while the session's counter row is locked (see `TicketRepository`), and
both are unique in the database, so concurrent issuers (the job on two instances, a
candidate's /ticket) never share one and never leave a gap.

The QR code on the ticket carries `Vault.sign("tk:<ticket number>")`, written as the bot's
check-in deep link `https://t.me/<bot>?start=ci_<ticket number>_<signature>` when the bot's
username is known (`checkin_code`: the same signature, so a phone camera opens the bot at
the door), else as the public check URL or bare. `extract_reference` reads every form
back, so tickets printed before the deep link still check. A registration moved
to another session is reissued (new number and seat), and one whose name or ID number staff
corrected gets a new number (same seat): the old reference stops verifying and its check
says "replaced" and by which number (`superseded_tickets` keeps every replaced number). A
ticket whose registration is no longer PAID (cancelled, refunded) stops verifying too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from bot.crypto import Vault
from bot.domain.catalog import Catalog
from bot.domain.idcard import mask_id_number
from bot.domain.lifecycle import RegistrationState
from bot.services.catalog import CatalogService
from bot.services.errors import CatalogMissing, NotFound, NotPaid, TicketNotYetAvailable
from bot.services.notify import Template, audit, notify_candidate
from storage.models import AdmissionTicket, Candidate, ExamSession, Registration
from storage.uow import UnitOfWork, UowFactory

REFERENCE_PREFIX = "tk:"
#: What `Vault.sign("tk:<ticket number>")` can look like: ticket numbers are catalogue codes
#: and digits, the signature is URL-safe base64. Anything else (non-ASCII, spaces, a long
#: text) is forged before any signature check or query.
_SIGNED_REFERENCE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
#: The check-in deep link's payload: `ci_<ticket number>_<signature>` (Telegram allows
#: letters, digits, `_` and `-`, at most 64 characters, after `?start=`).
CHECKIN_PREFIX = "ci_"
_START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SIGNATURE_CHARS = 16  # `Vault.sign`: 12 bytes of HMAC in unpadded URL-safe base64
SEAT_DIGITS = 3
#: Registrations handled per job tick; the next tick takes the rest.
ISSUE_BATCH = 200

CheckReason = Literal["ok", "forged", "unknown", "not_paid", "replaced"]


@dataclass(frozen=True, slots=True)
class TicketComponent:
    code: str
    name: dict[str, str]  # {"zh_Hans": ..., "en": ...}
    starts_at: datetime  # aware UTC
    ends_at: datetime
    room: dict[str, str]
    seat: str


@dataclass(frozen=True, slots=True)
class TicketData:
    """Everything printed on one admission ticket; names localized as {"zh_Hans", "en"}."""

    registration_id: int
    ticket_number: str
    signed_reference: str  # what the QR code carries (`verify` takes it back)
    qr_payload: str  # the signed reference, or the public check URL carrying it
    full_name: str
    gender: str | None  # "male" / "female"
    id_number_masked: str
    photo_file_id: str | None  # a Telegram file id: the handler downloads it
    level_code: str
    level_name: dict[str, str]
    direction_name: dict[str, str] | None
    session_code: str
    exam_date: date
    timezone: str
    components: tuple[TicketComponent, ...]
    site_name: dict[str, str]
    site_address: dict[str, str]
    organisation_name: dict[str, str]
    occupation_name: dict[str, str]
    issued_at: datetime
    id_doc_type: str | None = None  # "resident_id" / "passport": the document to bring


@dataclass(frozen=True, slots=True)
class TicketCheck:
    """The answer to a scanned reference. Only `valid` and the masked fields are public."""

    valid: bool
    reason: CheckReason
    ticket_number: str | None = None
    name_masked: str | None = None
    session_code: str | None = None
    level_code: str | None = None
    exam_date: date | None = None
    # "replaced": the number in force now; None while the moved registration's new ticket
    # is not issued yet (`session_code` is then the session it moved to).
    replaced_by: str | None = None
    # For staff only (the /checkticket reply), never on the public route:
    full_name: str | None = None
    id_number_masked: str | None = None
    registration_id: int | None = None
    telegram_id: int | None = None
    seat: str | None = None


def mask_name(name: str) -> str:
    """张小三 → 张*三, 张三 → 张*, Ann Smith → A** S****: enough to match a
    face, not to identify."""
    words = name.split()
    if len(words) > 1:
        return " ".join(w[0] + "*" * (len(w) - 1) for w in words)
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def masked_id(vault: Vault, candidate: Candidate) -> str:
    """The candidate's ID number masked as it may be shown ("" when none is on file)."""
    if candidate.id_number_masked:
        return candidate.id_number_masked
    if candidate.id_number_encrypted:
        return mask_id_number(vault.decrypt(candidate.id_number_encrypted))
    return ""


def level_initial(level_code: str) -> str:
    return level_code[:1].upper() or "X"


class TicketService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        vault: Vault,
        *,
        public_url: str | None = None,
        bot_username: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._vault = vault
        self._public_url = public_url.rstrip("/") if public_url else None
        self._bot_username = bot_username

    # --- a candidate's ticket ---------------------------------------------------------

    async def ticket(self, telegram_id: int, registration_id: int | None = None) -> TicketData:
        """The candidate's ticket for a registration (None: their next PAID sitting).

        Issues the number and seat the first time. Raises NotFound (no such registration
        of theirs), NotPaid (with the state), TicketNotYetAvailable (with the date).
        """
        catalog = await self._catalog.current()  # before the unit of work: one open at a time
        now = self._clock()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                raise NotFound("registration")
            registration = await self._pick(uow, candidate, registration_id, now)
            if registration.state != RegistrationState.PAID:
                raise NotPaid(registration.state)
            session = await uow.exam_sessions.get(registration.session_id)
            if session is None:
                raise NotFound("session")
            if now < session.tickets_from_at:
                raise TicketNotYetAvailable(session.tickets_from_at, session.timezone)
            ticket, _ = await self._issue(uow, registration, session, now)
            data = self._data(catalog, candidate, registration, session, ticket)
            await uow.commit()
            return data

    async def _pick(
        self, uow: UnitOfWork, candidate: Candidate, registration_id: int | None, now: datetime
    ) -> Registration:
        if registration_id is not None:
            registration = await uow.registrations.get_for_candidate(registration_id, candidate.id)
            if registration is None:
                raise NotFound("registration")
            return registration
        registrations = list(await uow.registrations.list_for_candidate(candidate.id))
        if not registrations:
            raise NotFound("registration")
        paid = [r for r in registrations if r.state == RegistrationState.PAID]
        if not paid:
            raise NotPaid(registrations[0].state)
        sessions = await uow.exam_sessions.list_by_ids([r.session_id for r in paid])
        # The next sitting first; once every sitting has passed, the latest one.
        upcoming = [r for r in paid if sessions[r.session_id].exam_date >= now.date()]
        if upcoming:
            return min(upcoming, key=lambda r: (sessions[r.session_id].exam_date, r.id))
        return max(paid, key=lambda r: (sessions[r.session_id].exam_date, r.id))

    # --- the scheduler ----------------------------------------------------------------

    async def issue_due_tickets(self) -> int:
        """Issue tickets that are due and queue "your ticket is ready" (once per ticket).

        Returns how many notifications were queued. Safe to repeat and to run on several
        instances: issuing is serialised per session and the outbox key is unique.
        """
        now = self._clock()
        queued = 0
        venue = await self._site_venue()  # before the unit of work: one open at a time
        async with self._uow() as uow:
            for registration, _ in await uow.tickets.list_due(now, ISSUE_BATCH):
                session = await uow.exam_sessions.get(registration.session_id)
                assert session is not None
                ticket, reissued = await self._issue(uow, registration, session, now)
                if ticket.notified_at is not None and not reissued:
                    continue  # another instance told them meanwhile
                starts = min((c.starts_at for c in session.components), default=None)
                ticket.notified_at = now
                if starts is not None and now >= starts:
                    continue  # the exam has begun: nothing useful to say any more
                if await self._notify(
                    uow, registration, session, ticket, now, starts, reissued, venue
                ):
                    queued += 1
            await uow.commit()
        return queued

    async def _notify(
        self,
        uow: UnitOfWork,
        registration: Registration,
        session: ExamSession,
        ticket: AdmissionTicket,
        now: datetime,
        expires_at: datetime | None,
        reissued: bool,
        venue: dict[str, Any] | None,
    ) -> bool:
        key = f"ticket:{registration.id}" + (f":{ticket.ticket_number}" if reissued else "")
        queued = await notify_candidate(
            uow,
            registration.candidate_id,
            now,
            key=key,
            template=Template.TICKET_READY,
            params={
                "registration_id": registration.id,
                "ticket_number": ticket.ticket_number,
                "session_code": session.code,
                "level_code": registration.level_code,
                "exam_date": session.exam_date.isoformat(),
            },
            expires_at=expires_at,
        )
        if queued and venue is not None:
            # The site's map pin right after the notice: a row of its own (one row, one
            # message), queued after it in the same transaction, so sent after it.
            await notify_candidate(
                uow,
                registration.candidate_id,
                now,
                key=f"{key}:venue",
                template=Template.VENUE,
                params={**venue, "registration_id": registration.id},
                expires_at=expires_at,
            )
        return queued

    async def _site_venue(self) -> dict[str, Any] | None:
        """The exam site's map pin from the catalogue in force (None: no location set)."""
        try:
            return (await self._catalog.current()).site.venue()
        except CatalogMissing:
            return None

    # --- checking a scanned ticket ----------------------------------------------------

    async def verify(self, signed_reference: str) -> TicketCheck:
        """Check a reference from a ticket's QR code (or the check URL that carries it).

        Whatever the text, the answer is a check: a malformed one is `forged`, never an error.
        """
        signed = extract_reference(signed_reference)
        if not _SIGNED_REFERENCE.fullmatch(signed):
            return TicketCheck(valid=False, reason="forged")
        reference = self._vault.verify(signed)
        if reference is None or not reference.startswith(REFERENCE_PREFIX):
            return TicketCheck(valid=False, reason="forged")
        return await self.check_number(reference.removeprefix(REFERENCE_PREFIX))

    async def check_number(self, number: str) -> TicketCheck:
        """Check a ticket number as such (typed from the paper at the door, or the number a
        verified reference carries): whose it is, and whether it still admits them."""
        if not _START_PAYLOAD.fullmatch(number):
            return TicketCheck(valid=False, reason="unknown")
        async with self._uow() as uow:
            ticket = await uow.tickets.get_by_number(number)
            if ticket is None:
                return await self._replaced(uow, number)
            registration = await uow.registrations.get(ticket.registration_id)
            if registration is None:
                return TicketCheck(valid=False, reason="unknown")
            if registration.session_id != ticket.session_id:
                # Moved to another session; the new ticket is issued from its ticket date.
                return await self._replaced_check(uow, number, registration, None)
            candidate = await uow.candidates.get(registration.candidate_id)
            session = await uow.exam_sessions.get(ticket.session_id)
            assert candidate is not None and session is not None
            name = candidate.full_name or ""
            return TicketCheck(
                valid=registration.state == RegistrationState.PAID,
                reason="ok" if registration.state == RegistrationState.PAID else "not_paid",
                ticket_number=ticket.ticket_number,
                name_masked=mask_name(name),
                session_code=session.code,
                level_code=registration.level_code,
                exam_date=session.exam_date,
                full_name=name,
                id_number_masked=self._masked_id(candidate),
                registration_id=registration.id,
                telegram_id=candidate.telegram_id,
                seat=_seat(ticket.seat),
            )

    async def _replaced(self, uow: UnitOfWork, number: str) -> TicketCheck:
        superseded = await uow.tickets.get_superseded(number)
        registration = (
            await uow.registrations.get(superseded.registration_id) if superseded else None
        )
        if registration is None:
            return TicketCheck(valid=False, reason="unknown")
        current = await uow.tickets.get_for_registration(registration.id)
        in_force = current if current and current.session_id == registration.session_id else None
        return await self._replaced_check(
            uow, number, registration, in_force.ticket_number if in_force else None
        )

    async def _replaced_check(
        self, uow: UnitOfWork, number: str, registration: Registration, replaced_by: str | None
    ) -> TicketCheck:
        """A number that no longer admits anyone, with what replaced it (no seat: it is gone)."""
        candidate = await uow.candidates.get(registration.candidate_id)
        session = await uow.exam_sessions.get(registration.session_id)
        assert candidate is not None and session is not None
        name = candidate.full_name or ""
        return TicketCheck(
            valid=False,
            reason="replaced",
            ticket_number=number,
            name_masked=mask_name(name),
            session_code=session.code,
            level_code=registration.level_code,
            exam_date=session.exam_date,
            replaced_by=replaced_by,
            full_name=name,
            id_number_masked=self._masked_id(candidate),
            registration_id=registration.id,
            telegram_id=candidate.telegram_id,
        )

    # --- helpers ---------------------------------------------------------------------

    async def _issue(
        self, uow: UnitOfWork, registration: Registration, session: ExamSession, now: datetime
    ) -> tuple[AdmissionTicket, bool]:
        """The registration's ticket, issued now if it has none (or one for another session).

        Returns (ticket, reissued). Lock first, then look: a ticket committed by someone
        else while we waited for the lock is found, and no number is drawn for nothing.
        """
        ticket = await uow.tickets.get_for_registration(registration.id)
        if ticket is not None and ticket.session_id == session.id:
            return ticket, False
        await uow.tickets.lock_session_counters(session.id)
        ticket = await uow.tickets.get_for_registration(registration.id)
        if ticket is not None and ticket.session_id == session.id:
            return ticket, False
        seat = await uow.tickets.next_value(session.id, uow.tickets.SEAT)
        number = await _draw_number(uow, session, registration.level_code)
        reissued = ticket is not None
        if ticket is None:
            ticket = AdmissionTicket(registration_id=registration.id, issued_at=now)
            uow.tickets.add(ticket)
        else:  # printed for the session it moved away from: say what replaced it
            uow.tickets.add_superseded(ticket.ticket_number, registration.id, now, "moved")
        ticket.session_id, ticket.seat, ticket.ticket_number = session.id, seat, number
        ticket.issued_at, ticket.notified_at = now, None
        await uow.flush()
        action = "ticket_reissued" if reissued else "ticket_issued"
        audit(
            uow,
            "system",
            "registration",
            registration.id,
            action,
            now,
            details={"ticket_number": number, "seat": seat},
        )
        return ticket, reissued

    def _masked_id(self, candidate: Candidate) -> str:
        return masked_id(self._vault, candidate)

    def signed_reference(self, ticket_number: str) -> str:
        return self._vault.sign(REFERENCE_PREFIX + ticket_number)

    def _qr_payload(self, signed: str) -> str:
        """What the QR code carries: the check-in deep link (the camera opens the bot), else
        the public check URL, else the bare reference."""
        username, code = self._bot_username(), checkin_code(signed)
        if username and code:
            return f"https://t.me/{username}?start={code}"
        if self._public_url:
            return f"{self._public_url}/tickets/verify?ref={signed}"
        return signed

    def _data(
        self,
        catalog: Catalog,
        candidate: Candidate,
        registration: Registration,
        session: ExamSession,
        ticket: AdmissionTicket,
    ) -> TicketData:
        signed = self.signed_reference(ticket.ticket_number)
        wanted = set(registration.components or [c.component for c in session.components])
        components = tuple(
            TicketComponent(
                code=c.component,
                name=_catalog_name(catalog.component, c.component),
                starts_at=c.starts_at,
                ends_at=c.ends_at,
                room=dict(c.room),
                seat=_seat(ticket.seat),
            )
            for c in session.components
            if c.component in wanted
        )
        photo: dict[str, Any] = (candidate.profile or {}).get("photo") or {}
        return TicketData(
            registration_id=registration.id,
            ticket_number=ticket.ticket_number,
            signed_reference=signed,
            qr_payload=self._qr_payload(signed),
            full_name=candidate.full_name or "",
            gender=candidate.gender,
            id_number_masked=self._masked_id(candidate),
            photo_file_id=photo.get("file_id") if isinstance(photo, dict) else None,
            level_code=registration.level_code,
            level_name=_catalog_name(catalog.level, registration.level_code),
            direction_name=_catalog_name(catalog.direction, registration.direction_code)
            if registration.direction_code
            else None,
            session_code=session.code,
            exam_date=session.exam_date,
            timezone=session.timezone,
            components=components,
            site_name=_names(catalog.site.name),
            site_address=_names(catalog.site.address),
            organisation_name=_names(catalog.evaluation_organisation.name),
            occupation_name=_names(catalog.occupation.name),
            issued_at=ticket.issued_at,
            id_doc_type=candidate.id_doc_type,
        )


async def reissue_ticket(
    uow: UnitOfWork, registration: Registration, now: datetime, *, actor: str
) -> tuple[str, str] | None:
    """Give the registration's ticket a new number (same session and seat) because what is
    printed on it changed; the old number then checks as "replaced". Runs in the caller's
    transaction. Returns (old number, new number), or None when there is no ticket for its
    current session (none issued yet, or a moved one that is reissued anyway)."""
    ticket = await uow.tickets.get_for_registration(registration.id)
    if ticket is None or ticket.session_id != registration.session_id:
        return None
    session = await uow.exam_sessions.get(ticket.session_id)
    if session is None:
        raise NotFound("session")
    await uow.tickets.lock_session_counters(session.id)
    old = ticket.ticket_number
    number = await _draw_number(uow, session, registration.level_code)
    uow.tickets.add_superseded(old, registration.id, now, "corrected")
    ticket.ticket_number, ticket.issued_at = number, now
    await uow.flush()
    audit(
        uow,
        actor,
        "registration",
        registration.id,
        "ticket_reissued",
        now,
        details={"ticket_number": number, "replaces": old, "seat": ticket.seat},
    )
    return old, number


async def _draw_number(uow: UnitOfWork, session: ExamSession, level_code: str) -> str:
    """The next ticket number of the session for the level (hold the session's lock)."""
    initial = level_initial(level_code)
    seq = await uow.tickets.next_value(session.id, f"number:{initial}")
    return f"{session.code}-{initial}-{seq:04d}"


def extract_reference(text: str) -> str:
    """The signed reference from what a scanner read: the bare reference, a check URL
    (`?ref=`), the check-in deep link (`?start=ci_…`) or its payload (`ci_…`)."""
    text = text.strip()
    if "ref=" in text or "start=" in text:
        try:
            query = parse_qs(urlsplit(text).query)
        except ValueError:  # not a URL after all (e.g. an unclosed "[" host)
            return ""
        if "ref" in query:
            return query["ref"][0]
        return reference_from_checkin(query.get("start", [""])[0]) or ""
    if text.startswith(CHECKIN_PREFIX):
        return reference_from_checkin(text) or ""
    return text


def checkin_code(signed: str) -> str | None:
    """`tk:<number>.<signature>` → `ci_<number>_<signature>`, the deep link's payload; None
    when it would not be one (over 64 characters: a very long session code)."""
    reference, _, signature = signed.rpartition(".")
    code = f"{CHECKIN_PREFIX}{reference.removeprefix(REFERENCE_PREFIX)}_{signature}"
    return code if _START_PAYLOAD.fullmatch(code) else None


def reference_from_checkin(code: str) -> str | None:
    """`ci_<number>_<signature>` → the signed reference it stands for (the signature is
    checked by `verify`, not here); None when the text has not that shape."""
    body = code.removeprefix(CHECKIN_PREFIX)
    if not code.startswith(CHECKIN_PREFIX) or not _START_PAYLOAD.fullmatch(code):
        return None
    number, separator = body[: -_SIGNATURE_CHARS - 1], body[-_SIGNATURE_CHARS - 1 :][:1]
    if not number or separator != "_":
        return None
    return f"{REFERENCE_PREFIX}{number}.{body[-_SIGNATURE_CHARS:]}"


def _seat(seat: int) -> str:
    return f"{seat:0{SEAT_DIGITS}d}"


def _names(text: Any) -> dict[str, str]:
    return {k: v for k, v in text.model_dump().items() if v}


def _catalog_name(lookup: Callable[[str], Any], code: str) -> dict[str, str]:
    try:
        return _names(lookup(code).name)
    except KeyError:  # a code the catalogue in force no longer lists: show the code
        return {"en": code}
