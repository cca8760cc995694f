"""Finding a candidate (issue 14 point 2; docs/staff.md "Find a candidate").

Entry points (`FindService`), for staff with any role (admins always):

* `find(staff_id, text)`: what `/find <text>` shows. The text is read as every kind of
  query it can be (`parse_query`): words of a name (partial, Chinese or Latin, any case;
  the name on the ID document or the Telegram name), phone digits (4 or more, anywhere in
  the number), the last 4 characters of the ID number, a Telegram id, a registration
  reference or a ticket number (exactly, any case), an @username. Returns the first
  `LIST_LIMIT` matches with the total, and the card when exactly one candidate matches.
* `card(staff_id, candidate_id)`: one candidate: who they are (ID number masked), each
  registration with its session, state, deadline and ticket, the payments with receipts
  waiting and refunds, and the most recent history (audit entries of the registrations
  and payments, as `/history` shows them), plus the caller's roles, which decide the card's
  action buttons.
* `reveal_id(staff_id, candidate_id)`: the full ID number, decrypted; admins only
  (`NotAllowed` otherwise), audited (entity `candidate`, action `id_revealed`).

Refusals: `NotAllowed` (no role at all; its `roles` are all of them), `BadQuery`
(`reason`: empty, too_short, too_long, unsearchable), `NotFound` (no such candidate, or no
ID number on file to reveal).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from bot.crypto import Vault
from bot.domain.lifecycle import ACTIVE, PAYABLE, PaymentStatus, RegistrationState
from bot.domain.roles import Role
from bot.services.errors import NotFound, ServiceError
from bot.services.notify import audit
from bot.services.payments import HistoryEntry, deadline_of
from bot.services.staff import StaffService
from storage.models import Candidate
from storage.repositories.find import SearchParts
from storage.uow import UnitOfWork, UowFactory

LIST_LIMIT = 10  # matches listed (as buttons); the rest are counted
HISTORY_LIMIT = 8  # audit entries on a card
MIN_NAME = 2  # characters of a name
MIN_DIGITS = 4  # digits of a phone number
MAX_QUERY = 64
ENTITY = "candidate"  # the audit log's entity of a revealed ID number

_PHONE_SEPARATORS = re.compile(r"[\s\-+().]")
_DIGITS = re.compile(r"[0-9]+")
_LAST4 = re.compile(r"[0-9A-Za-z]{4}")
_USERNAME = re.compile(r"@[A-Za-z0-9_]{4,32}")
_HAS_DIGIT = re.compile(r"[0-9]")
_MAX_TELEGRAM_ID = 2**63 - 1


class BadQuery(ServiceError):
    """A `/find` text that cannot be searched; `reason`: empty, too_short, too_long,
    unsearchable (digits mixed into several words)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Match:
    candidate_id: int
    full_name: str | None  # as on the ID document; None before the form
    telegram_name: str
    username: str | None
    id_masked: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class RegistrationView:
    registration_id: int
    reference: str
    level_code: str
    direction_code: str | None
    session_code: str
    exam_date: date
    timezone: str  # the session's, to show its times in
    state: str  # a RegistrationState
    active: bool  # holding or waiting for a seat: staff may cancel it
    pay_by: datetime | None  # the payment deadline, while money is owed
    offer_expires_at: datetime | None  # a waitlist seat offered, until then
    ticket_number: str | None
    seat: int | None


@dataclass(frozen=True, slots=True)
class PaymentView:
    payment_id: int
    reference: str  # of its registration
    method: str
    amount_minor: int
    currency: str
    status: str  # a PaymentStatus
    created_at: datetime
    receipt_waiting: bool  # a bank receipt staff have not looked at yet
    needs_refund: bool
    refund_status: str | None  # due | refunded | refused


@dataclass(frozen=True, slots=True)
class CandidateCard:
    candidate_id: int
    telegram_id: int
    full_name: str | None
    telegram_name: str
    username: str | None
    id_doc_type: str | None
    id_masked: str | None
    has_id_number: bool  # an encrypted number is on file (admins may reveal it)
    phone: str | None
    email: str | None
    language: str | None  # the candidate's own choice
    telegram_language: str | None  # their Telegram app's language code
    reachable: bool  # the bot can write to them (they have not blocked it)
    registrations: tuple[RegistrationView, ...]
    payments: tuple[PaymentView, ...]
    history: tuple[HistoryEntry, ...]
    roles: frozenset[Role]  # the caller's: which actions the card offers


@dataclass(frozen=True, slots=True)
class FindResult:
    query: str  # as searched (spaces tidied)
    matches: tuple[Match, ...]
    total: int
    card: CandidateCard | None  # when exactly one candidate matches


def tidy(text: str | None) -> str:
    """The query as searched: full-width forms folded (NFKC), spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text or "").split())


def parse_query(text: str | None) -> SearchParts:
    """Every kind of query `text` can be; raises BadQuery when it is none."""
    query = tidy(text)
    if not query:
        raise BadQuery("empty")
    if len(query) > MAX_QUERY:
        raise BadQuery("too_long")
    single = " " not in query
    codes = tuple(dict.fromkeys((query.upper(), query))) if single else ()
    compact = _PHONE_SEPARATORS.sub("", query)
    if _DIGITS.fullmatch(compact):
        if len(compact) < MIN_DIGITS:
            raise BadQuery("too_short")
        number = int(compact)
        return SearchParts(
            phone_digits=compact,
            id_last4=compact if len(compact) == 4 else None,
            telegram_id=number if number <= _MAX_TELEGRAM_ID else None,
            codes=codes,
        )
    if _USERNAME.fullmatch(query):
        return SearchParts(username=query[1:])
    if _HAS_DIGIT.search(query):
        if not single:
            raise BadQuery("unsearchable")
        last4 = query.upper() if _LAST4.fullmatch(query) else None
        return SearchParts(id_last4=last4, codes=codes)
    if len(query.replace(" ", "")) < MIN_NAME:
        raise BadQuery("too_short")
    return SearchParts(name_words=tuple(query.split()), codes=codes)


class FindService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        staff: StaffService,
        vault: Vault,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._staff = staff
        self._vault = vault

    async def _roles(self, staff_id: int) -> frozenset[Role]:
        """The caller's roles; any role will do (raises NotAllowed without one)."""
        return await self._staff.require(staff_id, *Role)

    async def find(self, staff_id: int, text: str | None) -> FindResult:
        """The candidates `text` finds (raises NotAllowed, BadQuery)."""
        roles = await self._roles(staff_id)
        parts = parse_query(text)
        async with self._uow() as uow:
            found, total = await uow.find.search(parts, LIST_LIMIT)
            card = await _card(uow, found[0], roles) if total == 1 else None
            matches = tuple(
                Match(c.id, c.full_name, c.first_name, c.username, c.id_number_masked, c.phone)
                for c in found
            )
        return FindResult(tidy(text), matches, total, card)

    async def card(self, staff_id: int, candidate_id: int) -> CandidateCard:
        """One candidate's card (raises NotAllowed, NotFound)."""
        roles = await self._roles(staff_id)
        async with self._uow() as uow:
            candidate = await uow.find.candidate(candidate_id)
            if candidate is None:
                raise NotFound("candidate")
            return await _card(uow, candidate, roles)

    async def reveal_id(self, staff_id: int, candidate_id: int) -> str:
        """The full ID number (admins only; raises NotAllowed, NotFound), audited."""
        await self._staff.require(staff_id, Role.ADMIN)
        async with self._uow() as uow:
            candidate = await uow.find.candidate(candidate_id)
            if candidate is None or candidate.id_number_encrypted is None:
                raise NotFound("id_number")
            number = self._vault.decrypt(candidate.id_number_encrypted)
            audit(uow, f"tg:{staff_id}", ENTITY, candidate.id, "id_revealed", self._clock())
            await uow.commit()
        return number


async def _card(uow: UnitOfWork, c: Candidate, roles: frozenset[Role]) -> CandidateCard:
    rows = await uow.find.registrations(c.id)
    registrations = tuple(
        RegistrationView(
            registration_id=r.id,
            reference=r.reference,
            level_code=r.level_code,
            direction_code=r.direction_code,
            session_code=s.code,
            exam_date=s.exam_date,
            timezone=s.timezone,
            state=r.state,
            active=r.state in ACTIVE,
            pay_by=deadline_of(s)
            if r.state in (*PAYABLE, RegistrationState.PAYMENT_REVIEW)
            else None,
            offer_expires_at=r.offer_expires_at if r.state == RegistrationState.OFFERED else None,
            ticket_number=t.ticket_number if t is not None else None,
            seat=t.seat if t is not None else None,
        )
        for r, s, t in rows
    )
    references = {r.registration_id: r.reference for r in registrations}
    payments = await uow.find.payments(list(references))
    entries = await uow.find.recent_history(
        list(references), [p.id for p in payments], HISTORY_LIMIT
    )
    return CandidateCard(
        candidate_id=c.id,
        telegram_id=c.telegram_id,
        full_name=c.full_name,
        telegram_name=c.first_name,
        username=c.username,
        id_doc_type=c.id_doc_type,
        id_masked=c.id_number_masked,
        has_id_number=c.id_number_encrypted is not None,
        phone=c.phone,
        email=c.email,
        language=c.language,
        telegram_language=c.telegram_language,
        reachable=c.chat_id is not None and c.unreachable_at is None,
        registrations=registrations,
        payments=tuple(
            PaymentView(
                payment_id=p.id,
                reference=references.get(p.registration_id or 0, "-"),
                method=p.method,
                amount_minor=p.amount_minor,
                currency=p.currency,
                status=p.status,
                created_at=p.created_at,
                receipt_waiting=p.status == PaymentStatus.PENDING_REVIEW,
                needs_refund=p.needs_refund,
                refund_status=p.refund_status,
            )
            for p in payments
        ),
        history=tuple(
            HistoryEntry(e.at, e.actor, e.entity, e.action, e.from_state, e.to_state, e.reason)
            for e in entries
        ),
        roles=roles,
    )
