"""Identity corrections: a candidate whose identity is frozen (a registration paid or under
payment review, `IDENTITY_FROZEN`) asks the staff to correct it, and staff correct it.

Entry points: `CorrectionService.begin(telegram_id, registration_id)` (the candidate pressed
"Request a correction": their next typed message is the request), `request(telegram_id,
text, staff_chat_id)` (the staff card and an audit entry), `correct(staff_id, reference,
field, value, reason)` (staff: name or ID number).

A correction is audited on the registration with the staff member and the reason (so
`/history` shows it), every ticket of the candidate that printed the old value gets a new
number (the old one then checks as "replaced"), and the candidate is told through the
outbox, all in one transaction. The candidate row is locked first, as the registration
form does, so a correction and a form answer never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.crypto import Vault
from bot.domain.lifecycle import IDENTITY_FROZEN, RegistrationState
from bot.services.answers import parse_text
from bot.services.candidates import candidate_and_flow
from bot.services.errors import InvalidAnswer, InvalidState, NotFound, StaleStep
from bot.services.identity import parse_name, store_id_number
from bot.services.notify import Template, audit, notify_candidate, notify_staff
from bot.services.tickets import reissue_ticket
from storage.models import Candidate, Registration
from storage.uow import UnitOfWork, UowFactory

FLOW = "correction"
REQUEST_STEP = "request"
#: What staff may correct: the name, the ID number (same document), or the document type
#: with its number.
FIELDS = ("name", "id", "resident_id", "passport")
MAX_REQUEST = 500
MAX_REASON = 200
REGISTRATION = "registration"  # the audit log's entity


@dataclass(frozen=True, slots=True)
class CorrectionRequest:
    registration_id: int
    reference: str


@dataclass(frozen=True, slots=True)
class Correction:
    """A correction staff made; ID numbers only masked."""

    reference: str
    field: str  # one of FIELDS
    old: str  # the name, or the masked ID number
    new: str
    tickets: tuple[tuple[str, str], ...]  # (old number, new number) per re-issued ticket
    notified: bool  # False: the candidate has no private chat with the bot


class CorrectionService:
    def __init__(self, uow: UowFactory, clock: Callable[[], datetime], vault: Vault) -> None:
        self._uow = uow
        self._clock = clock
        self._vault = vault

    # --- the candidate's request ------------------------------------------------------

    async def begin(self, telegram_id: int, registration_id: int) -> CorrectionRequest:
        """Wait for the candidate's typed request about their frozen registration."""
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            registration = await self._own(uow, candidate, registration_id)
            if registration.state not in IDENTITY_FROZEN:
                raise InvalidState(registration.state)  # not frozen: the form changes it
            state.enter(FLOW, REQUEST_STEP, answers={"registration_id": registration.id})
            await uow.commit()
            return CorrectionRequest(registration.id, registration.reference)

    async def request(
        self, telegram_id: int, text: str | None, staff_chat_id: int | None
    ) -> CorrectionRequest:
        """Queue the candidate's request to the staff chat and audit it; closes the flow."""
        now = self._clock()
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if state.flow != FLOW:
                raise StaleStep(REQUEST_STEP)
            wanted = parse_text(REQUEST_STEP, text, max_length=MAX_REQUEST)
            registration_id = int(state.answers_of(FLOW).get("registration_id", 0))
            registration = await uow.registrations.get_for_candidate(registration_id, candidate.id)
            key = f"correction_request:{registration_id}:{state.version}"
            state.leave(answers={})
            if registration is None:
                await uow.commit()
                raise NotFound("registration")
            session = await uow.exam_sessions.get(registration.session_id)
            audit(
                uow,
                f"tg:{telegram_id}",
                REGISTRATION,
                registration.id,
                "correction_requested",
                now,
                reason=wanted,
            )
            await notify_staff(
                uow,
                staff_chat_id,
                now,
                key=key,
                template=Template.CORRECTION_REQUEST,
                params={
                    "registration_id": registration.id,
                    "reference": registration.reference,
                    "name": candidate.full_name or candidate.first_name,
                    "telegram_id": candidate.telegram_id,
                    "id_type": candidate.id_doc_type,
                    "id_number": candidate.id_number_masked or "",
                    "level_code": registration.level_code,
                    "session_code": session.code if session else "",
                    "state": registration.state,
                    "request": wanted,
                },
            )
            await uow.commit()
            return CorrectionRequest(registration.id, registration.reference)

    # --- staff ---------------------------------------------------------------------------

    async def correct(
        self, staff_id: int, reference: str, field: str, value: str, reason: str
    ) -> Correction:
        """Correct the candidate behind a registration: `name` or `id` (same document),
        `resident_id` / `passport` (document and number). Raises NotFound (reference),
        InvalidAnswer (field "correct", a missing reason "reason", a value refused as in
        the form: "full_name" / "id_number" reasons)."""
        if field not in FIELDS:
            raise InvalidAnswer("correct", "not_an_option")
        reason = parse_text("reason", reason, max_length=MAX_REASON)
        now = self._clock()
        async with self._uow() as uow:
            registration = await uow.payments.registration_by_reference(reference)
            if registration is None:
                raise NotFound("registration")
            candidate = await uow.candidates.get(registration.candidate_id, for_update=True)
            assert candidate is not None
            if field == "name":
                old, new = candidate.full_name or "", parse_name(value)
                unchanged = new == old
                candidate.full_name = new
            else:
                before = (candidate.id_doc_type, candidate.id_number_hash)
                old = candidate.id_number_masked or ""
                if field != "id":
                    candidate.id_doc_type = field
                await store_id_number(uow, self._vault, candidate, value, now.date())
                new = candidate.id_number_masked or ""
                unchanged = (candidate.id_doc_type, candidate.id_number_hash) == before
            if unchanged:
                raise InvalidAnswer("correct", "unchanged")
            actor = f"tg:{staff_id}"
            audit(
                uow,
                actor,
                REGISTRATION,
                registration.id,
                "identity_corrected",
                now,
                reason=reason,
                details={
                    "field": field,
                    "from": old,
                    "to": new,
                    "document": candidate.id_doc_type,
                },
            )
            tickets = await self._reissue(uow, candidate, now, actor)
            notified = await notify_candidate(
                uow,
                candidate.id,
                now,
                key=f"identity_corrected:{registration.id}:{now.isoformat()}:{field}",
                template=Template.IDENTITY_CORRECTED,
                params={
                    "registration_id": registration.id,
                    "reference": registration.reference,
                    "field": field,
                    "value": new,
                    "reason": reason,
                    "tickets": [number for _, number in tickets],
                    "level_code": registration.level_code,
                },
            )
            await uow.commit()
            return Correction(registration.reference, field, old, new, tickets, notified)

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    async def _own(uow: UnitOfWork, candidate: Candidate, registration_id: int) -> Registration:
        registration = await uow.registrations.get_for_candidate(registration_id, candidate.id)
        if registration is None:
            raise NotFound("registration")
        return registration

    @staticmethod
    async def _reissue(
        uow: UnitOfWork, candidate: Candidate, now: datetime, actor: str
    ) -> tuple[tuple[str, str], ...]:
        """New numbers for every ticket that printed the candidate's old identity."""
        reissued = []
        for registration in await uow.registrations.list_for_candidate(candidate.id):
            if registration.state != RegistrationState.PAID:
                continue  # its ticket admits nobody any more
            numbers = await reissue_ticket(uow, registration, now, actor=actor)
            if numbers is not None:
                reissued.append(numbers)
        return tuple(reissued)
