"""Cancel and refund (issue 14, point 3; docs/payments.md "Refunds", docs/staff.md "Cancel
and refund"): finance staff cancel any registration with a reason, and money paid becomes
a refund that finance settle once.

Entry points (`RefundService`; every one needs the finance role, an admin passes):

* `cancel(staff_id, registration_id, reason, new_level=None)`: an ACTIVE registration →
  CANCELLED, audited with actor, time and reason; a held seat goes to the first in line
  (`registration.release_seat_and_promote`, the one every seat release uses); each
  settled payment's refund becomes DUE; the candidate is told (the reason, "your refund
  of X is being arranged", and with `new_level` how to register for that level). A
  level change is exactly this: cancel and refund, then the candidate registers again
  (identity and answers are kept), so no second registration path exists.
* The conversation around it, kept in the staff member's flow state (`FLOW`, so a
  restart or another instance continues it): `ask_cancel` (the `desk:cancel` button:
  the typed reason comes next), `prepare_cancel` (`/cancel_registration` and
  `/change_level` with the reason given: straight to the confirmation),
  `confirm_cancel` (the confirm button), `ask_refund_reference` / `ask_refusal_reason`
  (a /refunds button: the reference or reason comes next), `take_text` (the typed
  text, whatever was asked), `stop`.
* `open_refunds()`: DUE refunds (and payments flagged `needs_refund` before refunds had
  states), oldest first: what `/refunds` lists.
* `refund_stars(staff_id, payment_id, refund)`: a Stars payment back through the Bot API.
  The service does not talk to Telegram: the handler passes `refund` (a `StarsRefunder`),
  which calls `refundStarPayment` and raises `RefundCallFailed` with Telegram's words;
  the refund then stays DUE with the error kept in `refund_note` and audited.
* `mark_refunded(staff_id, payment_id, reference)` (CNY invoice, provider, bank money:
  refunded outside the bot, the external reference recorded) and `refuse(staff_id,
  payment_id, reason)`. Each tells the candidate, if the money named a registration.

First decision wins: cancelling is a compare-and-set on the registration's state, every
refund decision one on the payment's refund status (`decide_refund`); the loser gets
InvalidState (already cancelled) or AlreadyDecided (with who decided first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.catalog import Catalog
from bot.domain.lifecycle import (
    ACTIVE,
    PAYMENT_ACCEPTED,
    SEAT_HOLDING,
    RefundStatus,
    RegistrationState,
)
from bot.domain.roles import Role
from bot.services.candidates import candidate_and_flow
from bot.services.catalog import CatalogService
from bot.services.errors import (
    AlreadyDecided,
    InvalidAnswer,
    InvalidState,
    NotFound,
    ServiceError,
    StaleStep,
)
from bot.services.notify import Template, audit, notify_candidate
from bot.services.registration import release_seat_and_promote
from bot.services.staff import StaffService
from storage.models import Candidate, Payment, Registration
from storage.uow import UnitOfWork, UowFactory

R = RegistrationState
FLOW = "refund_desk"  # a staff member's typed answer is owed to this flow
CANCEL_REASON = "cancel_reason"  # the reason for cancelling comes next
CANCEL_CONFIRM = "cancel_confirm"  # reason known, the confirm button comes next
REFUND_REFERENCE = "refund_reference"  # the external reference of a refund made
REFUSAL_REASON = "refusal_reason"  # why a refund is refused
#: How long a question waits for its typed answer; later text is ordinary conversation.
TYPED_WINDOW = timedelta(minutes=15)
MAX_REASON = 500
MAX_REFERENCE = 128
OPEN_LIST_LIMIT = 50
STARS = "stars"
ALREADY_REFUNDED = "already refunded"  # the note when Telegram says the charge was refunded

#: Calls `refundStarPayment(user_id, charge_id)`: True when refunded now, False when
#: Telegram says the charge was refunded before; raises RefundCallFailed otherwise.
StarsRefunder = Callable[[int, str], Awaitable[bool]]


class RefundCallFailed(ServiceError):
    """The Bot API refused or did not answer a Stars refund; `description` says why."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class NotStars(ServiceError):
    """Only a Stars payment is refunded through Telegram; others are marked by hand."""


class StarsByHand(ServiceError):
    """A Stars payment is refunded through Telegram, not marked refunded by hand."""


@dataclass(frozen=True, slots=True)
class RefundView:
    """One refund: the money, whose it is, why it goes back and where it stands."""

    payment_id: int
    method: str
    amount_minor: int
    currency: str
    status: str  # a RefundStatus
    reason: str | None  # a code (double_payment, registration_expired…) or staff's words
    requested_at: datetime | None
    registration_id: int | None = None
    reference: str | None = None  # the registration's
    name: str | None = None
    telegram_id: int | None = None
    refund_reference: str | None = None
    note: str | None = None  # a refusal's reason, or the last failed Stars call


@dataclass(frozen=True, slots=True)
class CancelPreview:
    """What cancelling a registration would do: shown before staff confirm."""

    registration_id: int
    reference: str
    name: str | None
    telegram_id: int
    level_code: str
    session_code: str
    state: str
    refunds: tuple[RefundView, ...]  # the settled money that would go back
    reason: str | None = None
    new_level: str | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    registration_id: int
    reference: str
    from_state: str
    reason: str
    new_level: str | None
    offered_to: int | None  # the registration the freed seat was offered to
    refunds: tuple[RefundView, ...]  # DUE now (settled money, and anything flagged before)
    told: bool  # the candidate's notice was queued


@dataclass(frozen=True, slots=True)
class RefundDecision:
    payment_id: int
    reference: str | None
    status: str  # refunded / refused
    amount_minor: int
    currency: str
    method: str
    refund_reference: str | None
    note: str | None
    told: bool


@dataclass(frozen=True, slots=True)
class RefundPrompt:
    """A /refunds button asked for typed text about this refund."""

    step: str
    refund: RefundView


def _clean(text: str | None, limit: int) -> str:
    return " ".join((text or "").split())[:limit]


def _view(p: Payment, r: Registration | None = None, c: Candidate | None = None) -> RefundView:
    return RefundView(
        payment_id=p.id,
        method=p.method,
        amount_minor=p.amount_minor,
        currency=p.currency,
        status=p.refund_status or (RefundStatus.DUE if p.needs_refund else ""),
        reason=p.refund_reason or (p.reason if p.needs_refund else None),
        requested_at=p.refund_requested_at or (p.decided_at if p.needs_refund else None),
        registration_id=r.id if r is not None else p.registration_id,
        reference=r.reference if r is not None else None,
        name=(c.full_name or c.first_name) if c is not None else None,
        telegram_id=c.telegram_id if c is not None else None,
        refund_reference=p.refund_reference,
        note=p.refund_note,
    )


def _is_open(p: Payment) -> bool:
    return p.refund_status == RefundStatus.DUE or (p.refund_status is None and p.needs_refund)


def level_code_of(catalog: Catalog, text: str) -> str | None:
    """A level named by its code or either of its names (`senior`, `高级`, `Senior`)."""
    wanted = text.strip().casefold()
    for level in catalog.levels:
        if wanted in {level.code.casefold(), level.name.en.casefold(), level.name.zh_Hans}:
            return level.code
    return None


class RefundService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        staff: StaffService,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._staff = staff

    # --- cancelling ------------------------------------------------------------------------

    async def cancel(
        self, staff_id: int, registration_id: int, reason: str, *, new_level: str | None = None
    ) -> Cancelled:
        """Cancel an ACTIVE registration with a reason. Raises NotAllowed, NotFound,
        InvalidAnswer ("reason": missing), InvalidState (not active: already cancelled,
        expired, …; the first of two presses wins)."""
        await self._staff.require(staff_id, Role.FINANCE)
        names = await self._level_names(new_level)
        reason = _clean(reason, MAX_REASON)
        if not reason:
            raise InvalidAnswer("reason", "reason_missing")
        async with self._uow() as uow:
            cancelled = await self._cancel(uow, staff_id, registration_id, reason, names)
            await uow.commit()
        return cancelled

    async def _level_names(self, level_code: str | None) -> dict[str, str] | None:
        """A new level's names ({language: name}) for the candidate's notice; InvalidAnswer
        ("level": unknown_level) for a code the catalogue does not know."""
        if level_code is None:
            return None
        catalog = await self._catalog.current()
        code = level_code_of(catalog, level_code)
        if code is None:
            raise InvalidAnswer("level", "unknown_level", level=level_code)
        return {"code": code, **catalog.level(code).name.model_dump()}

    async def _cancel(
        self,
        uow: UnitOfWork,
        staff_id: int,
        registration_id: int,
        reason: str,
        new_level_names: dict[str, str] | None,
    ) -> Cancelled:
        now = self._clock()
        new_level = new_level_names["code"] if new_level_names else None
        actor = f"tg:{staff_id}"
        registration = await uow.registrations.get(registration_id)
        if registration is None:
            raise NotFound("registration")
        state = R(registration.state)
        if state not in ACTIVE:
            raise InvalidState(state)
        held_seat = state in SEAT_HOLDING
        if held_seat:  # lock order: the session row, then the registration
            await uow.exam_sessions.lock(registration.session_id)
        if not await uow.registrations.transition(
            registration.id, [state], state=R.CANCELLED, state_changed_at=now
        ):
            current = await uow.registrations.get(registration.id)
            raise InvalidState(current.state if current is not None else "missing")
        payments = list(await uow.payments.list_for_registration(registration.id))
        for p in payments:
            settled = p.status in PAYMENT_ACCEPTED and not p.needs_refund
            if settled and await uow.payments.request_refund(
                p.id,
                needs_refund=True,
                refund_status=RefundStatus.DUE,
                refund_reason=reason,
                refund_requested_at=now,
                refund_requested_by=actor,
            ):
                audit(
                    uow,
                    actor,
                    "payment",
                    p.id,
                    "refund_requested",
                    now,
                    to_state=RefundStatus.DUE,
                    reason=reason,
                )
        # Re-read: the UPDATEs above do not refresh the rows already loaded.
        fresh = [await uow.payments.get(p.id) for p in payments]
        refunds = tuple(_view(p, registration) for p in fresh if p is not None and _is_open(p))
        audit(
            uow,
            actor,
            "registration",
            registration.id,
            "staff_cancel" if new_level is None else "level_change",
            now,
            from_state=state,
            to_state=R.CANCELLED,
            reason=reason,
            details={
                "held_seat": held_seat,
                "was_paid": state == R.PAID,
                "refunds": [r.payment_id for r in refunds],
                "new_level": new_level,
            },
        )
        offered_to = None
        if held_seat:
            offered_to = await release_seat_and_promote(uow, registration.session_id, now)
        session = await uow.exam_sessions.get(registration.session_id)
        told = await notify_candidate(
            uow,
            registration.candidate_id,
            now,
            key=f"staff_cancel:{registration.id}",
            template=Template.REGISTRATION_CANCELLED_BY_STAFF,
            params={
                "reference": registration.reference,
                "level_code": registration.level_code,
                "session_code": session.code if session is not None else "",
                "reason": reason,
                "refunds": [
                    {"amount_minor": r.amount_minor, "currency": r.currency, "method": r.method}
                    for r in refunds
                ],
                "new_level": new_level,
                "new_level_names": new_level_names,
            },
        )
        return Cancelled(
            registration.id,
            registration.reference,
            state,
            reason,
            new_level,
            offered_to,
            refunds,
            told,
        )

    async def preview(self, staff_id: int, registration_id: int) -> CancelPreview:
        """What cancelling would do (NotFound; InvalidState when it is not active)."""
        await self._staff.require(staff_id, Role.FINANCE)
        async with self._uow() as uow:
            return await self._preview(uow, registration_id)

    async def find(self, staff_id: int, text: str) -> int:
        """The registration named by its reference or its admission ticket number."""
        await self._staff.require(staff_id, Role.FINANCE)
        async with self._uow() as uow:
            return await self._find(uow, text)

    async def ask_cancel(self, staff_id: int, registration_id: int, chat_id: int) -> CancelPreview:
        """The `desk:cancel` button: the staff member types the reason next (in `chat_id`)."""
        await self._staff.require(staff_id, Role.FINANCE)
        async with self._uow() as uow:
            preview = await self._preview(uow, registration_id)
            await self._ask(
                uow, staff_id, CANCEL_REASON, chat_id, registration_id=preview.registration_id
            )
            await uow.commit()
        return preview

    async def prepare_cancel(
        self,
        staff_id: int,
        text: str,
        reason: str,
        chat_id: int,
        *,
        new_level: str | None = None,
    ) -> CancelPreview:
        """`/cancel_registration <reference|ticket> <reason>` or `/change_level <reference>
        <level> <reason>`: the preview to confirm. Raises NotFound, InvalidState,
        InvalidAnswer ("reason": reason_missing; "level": unknown_level, same_level)."""
        catalog = await self._catalog.current()
        await self._staff.require(staff_id, Role.FINANCE)
        reason = _clean(reason, MAX_REASON)
        level = None
        if new_level is not None:
            level = level_code_of(catalog, new_level)
            if level is None:
                raise InvalidAnswer("level", "unknown_level", level=new_level)
        if not reason:
            raise InvalidAnswer("reason", "reason_missing")
        async with self._uow() as uow:
            preview = await self._preview(uow, await self._find(uow, text))
            if level is not None and level == preview.level_code:
                raise InvalidAnswer("level", "same_level", level=level)
            await self._ask(
                uow,
                staff_id,
                CANCEL_CONFIRM,
                chat_id,
                registration_id=preview.registration_id,
                reason=reason,
                new_level=level,
            )
            await uow.commit()
        return _with(preview, reason, level)

    async def confirm_cancel(self, staff_id: int, registration_id: int) -> Cancelled:
        """The confirm button: cancel with the reason given. StaleStep when this staff member
        has no confirmation of this registration pending (an old button, someone else's)."""
        await self._staff.require(staff_id, Role.FINANCE)
        async with self._uow() as uow:  # read first: the catalogue opens its own
            _staff, state = await candidate_and_flow(uow, staff_id)
            new_level = state.answers_of(FLOW).get("new_level")
        names = await self._level_names(new_level)
        async with self._uow() as uow:
            _staff, state = await candidate_and_flow(uow, staff_id)
            answers = state.answers_of(FLOW)
            if (
                state.flow != FLOW
                or state.step != CANCEL_CONFIRM
                or answers.get("registration_id") != registration_id
            ):
                registration = await uow.registrations.get(registration_id)
                if registration is not None and registration.state not in ACTIVE:
                    raise InvalidState(registration.state)  # a second press: it is done
                raise StaleStep(FLOW)
            state.leave(answers={})
            try:
                cancelled = await self._cancel(
                    uow,
                    staff_id,
                    registration_id,
                    answers["reason"],
                    names if answers.get("new_level") == new_level else None,
                )
            except ServiceError:
                await uow.commit()  # the question is over either way
                raise
            await uow.commit()
        return cancelled

    async def stop(self, staff_id: int) -> bool:
        """Forget what the staff member was asked; False when nothing was."""
        async with self._uow() as uow:
            _staff, state = await candidate_and_flow(uow, staff_id)
            if state.flow != FLOW:
                return False
            state.leave(answers={})
            await uow.commit()
            return True

    # --- refunds ---------------------------------------------------------------------------

    async def open_refunds(self, staff_id: int) -> list[RefundView]:
        await self._staff.require(staff_id, Role.FINANCE)
        async with self._uow() as uow:
            rows = await uow.payments.list_open_refunds(OPEN_LIST_LIMIT)
            return [_view(p, r, c) for p, r, c in rows]

    async def ask_refund_reference(
        self, staff_id: int, payment_id: int, chat_id: int
    ) -> RefundPrompt:
        """ "Refunded" pressed on a non-Stars refund: its external reference comes next."""
        return await self._ask_about(staff_id, payment_id, chat_id, REFUND_REFERENCE)

    async def ask_refusal_reason(
        self, staff_id: int, payment_id: int, chat_id: int
    ) -> RefundPrompt:
        """ "Refuse" pressed: the reason comes next."""
        return await self._ask_about(staff_id, payment_id, chat_id, REFUSAL_REASON)

    async def _ask_about(
        self, staff_id: int, payment_id: int, chat_id: int, step: str
    ) -> RefundPrompt:
        await self._staff.require(staff_id, Role.FINANCE)
        async with self._uow() as uow:
            payment = await self._open(uow, payment_id)
            if step == REFUND_REFERENCE and payment.method == STARS:
                raise StarsByHand()
            await self._ask(uow, staff_id, step, chat_id, payment_id=payment_id)
            view = await self._full_view(uow, payment)
            await uow.commit()
        return RefundPrompt(step, view)

    async def take_text(
        self, staff_id: int, chat_id: int, text: str | None
    ) -> CancelPreview | RefundDecision | None:
        """Text a staff member typed in `chat_id`: the answer to what they were asked there
        (a preview to confirm, or a refund decision), or None when they owe nothing there
        (or the question is older than TYPED_WINDOW). Raises InvalidAnswer and keeps
        waiting on empty text; the refusals of `cancel` / `mark_refunded` / `refuse`."""
        now = self._clock()
        await self._staff.require(staff_id, Role.FINANCE)
        async with self._uow() as uow:
            _staff, state = await candidate_and_flow(uow, staff_id)
            answers = state.answers_of(FLOW)
            if state.flow != FLOW or answers.get("chat_id") != chat_id:
                return None
            if state.step == CANCEL_CONFIRM:
                return None  # waiting for a button, not for text
            if now - datetime.fromisoformat(answers["asked_at"]) > TYPED_WINDOW:
                state.leave(answers={})
                await uow.commit()
                return None
            step = state.step or ""
            words = _clean(text, MAX_REFERENCE if step == REFUND_REFERENCE else MAX_REASON)
            if not words:
                raise InvalidAnswer(step, "text_expected")
            if step == CANCEL_REASON:
                try:
                    preview = await self._preview(uow, int(answers["registration_id"]))
                except ServiceError:
                    state.leave(answers={})
                    await uow.commit()
                    raise
                state.advance(CANCEL_CONFIRM, answers={**answers, "reason": words})
                await uow.commit()
                return _with(preview, words, None)
            state.leave(answers={})
            to = RefundStatus.REFUNDED if step == REFUND_REFERENCE else RefundStatus.REFUSED
            try:
                decision = await self._decide(uow, staff_id, int(answers["payment_id"]), to, words)
            except ServiceError:
                await uow.commit()
                raise
            await uow.commit()
        return decision

    async def mark_refunded(
        self, staff_id: int, payment_id: int, reference: str
    ) -> RefundDecision:
        """A refund made outside the bot (CNY invoice, provider, bank): its reference. Raises
        NotFound, AlreadyDecided, StarsByHand, InvalidAnswer (no reference)."""
        await self._staff.require(staff_id, Role.FINANCE)
        reference = _clean(reference, MAX_REFERENCE)
        if not reference:
            raise InvalidAnswer(REFUND_REFERENCE, "text_expected")
        async with self._uow() as uow:
            decision = await self._decide(
                uow, staff_id, payment_id, RefundStatus.REFUNDED, reference
            )
            await uow.commit()
        return decision

    async def refuse(self, staff_id: int, payment_id: int, reason: str) -> RefundDecision:
        """No refund, with a reason the candidate is told. Raises NotFound, AlreadyDecided,
        InvalidAnswer (no reason)."""
        await self._staff.require(staff_id, Role.FINANCE)
        reason = _clean(reason, MAX_REASON)
        if not reason:
            raise InvalidAnswer(REFUSAL_REASON, "text_expected")
        async with self._uow() as uow:
            decision = await self._decide(uow, staff_id, payment_id, RefundStatus.REFUSED, reason)
            await uow.commit()
        return decision

    async def refund_stars(
        self, staff_id: int, payment_id: int, refund: StarsRefunder
    ) -> RefundDecision:
        """Give a Stars payment back through the Bot API. Raises NotFound, NotStars,
        AlreadyDecided, RefundCallFailed (the refund stays DUE; the error is kept and
        audited). No transaction is open while Telegram answers."""
        await self._staff.require(staff_id, Role.FINANCE)
        async with self._uow() as uow:
            payment = await self._open(uow, payment_id)
            if payment.method != STARS or not payment.external_id:
                raise NotStars()
            registration = await uow.registrations.get(payment.registration_id or 0)
            candidate = (
                await uow.candidates.get(registration.candidate_id) if registration else None
            )
            if candidate is None:
                raise NotFound("candidate")
            user_id, charge_id = candidate.telegram_id, payment.external_id
        try:
            fresh = await refund(user_id, charge_id)
        except RefundCallFailed as exc:
            now = self._clock()
            async with self._uow() as uow:
                if await uow.payments.decide_refund(payment_id, refund_note=exc.description[:500]):
                    audit(
                        uow,
                        f"tg:{staff_id}",
                        "payment",
                        payment_id,
                        "refund_failed",
                        now,
                        reason=exc.description[:500],
                        details={"charge_id": charge_id},
                    )
                await uow.commit()
            raise
        async with self._uow() as uow:
            decision = await self._decide(
                uow,
                staff_id,
                payment_id,
                RefundStatus.REFUNDED,
                charge_id,
                note=None if fresh else ALREADY_REFUNDED,
                via_telegram=True,
            )
            await uow.commit()
        return decision

    # --- helpers ---------------------------------------------------------------------------

    async def _decide(
        self,
        uow: UnitOfWork,
        staff_id: int,
        payment_id: int,
        to: RefundStatus,
        words: str,
        *,
        note: str | None = None,
        via_telegram: bool = False,
    ) -> RefundDecision:
        """Settle an open refund once: REFUNDED (`words`: the reference) or REFUSED
        (`words`: the reason); audited, and the candidate told."""
        now = self._clock()
        payment = await self._open(uow, payment_id)
        if to is RefundStatus.REFUNDED and payment.method == STARS and not via_telegram:
            raise StarsByHand()  # Stars go back through Telegram, never "by hand"
        was = payment.refund_status or RefundStatus.DUE
        refunded = to is RefundStatus.REFUNDED
        values: dict[str, Any] = {
            "refund_status": to,
            "refund_decided_at": now,
            "refund_decided_by": f"tg:{staff_id}",
            "refund_note": note if refunded else words,
        }
        if refunded:
            values["refund_reference"] = words
        if payment.refund_status is None:  # flagged before refunds had states
            values |= {"refund_reason": payment.reason, "refund_requested_at": payment.decided_at}
        if not await uow.payments.decide_refund(payment_id, **values):
            current = await uow.payments.get(payment_id)
            assert current is not None
            by = (current.refund_decided_by or "").removeprefix("tg:")
            raise AlreadyDecided(int(by) if by.isdigit() else None, current.refund_status or "")
        audit(
            uow,
            f"tg:{staff_id}",
            "payment",
            payment_id,
            "refunded" if refunded else "refund_refused",
            now,
            from_state=was,
            to_state=to,
            reason=None if refunded else words,
            details={"refund_reference": words} if refunded else {},
        )
        registration = await uow.registrations.get(payment.registration_id or 0)
        told = False
        if registration is not None:
            told = await notify_candidate(
                uow,
                registration.candidate_id,
                now,
                key=f"refund_{to}:{payment_id}",
                template=Template.REFUND_REFUNDED if refunded else Template.REFUND_REFUSED,
                params={
                    "reference": registration.reference,
                    "amount_minor": payment.amount_minor,
                    "currency": payment.currency,
                    "method": payment.method,
                    "refund_reference": words if refunded else None,
                    "reason": None if refunded else words,
                },
            )
        return RefundDecision(
            payment_id,
            registration.reference if registration is not None else None,
            to,
            payment.amount_minor,
            payment.currency,
            payment.method,
            words if refunded else None,
            values["refund_note"],
            told,
        )

    @staticmethod
    async def _open(uow: UnitOfWork, payment_id: int) -> Payment:
        """An open refund's payment: NotFound, or AlreadyDecided once it is settled."""
        payment = await uow.payments.get(payment_id)
        if payment is None or (payment.refund_status is None and not payment.needs_refund):
            raise NotFound("payment")
        if not _is_open(payment):
            by = (payment.refund_decided_by or "").removeprefix("tg:")
            raise AlreadyDecided(int(by) if by.isdigit() else None, payment.refund_status or "")
        return payment

    @staticmethod
    async def _full_view(uow: UnitOfWork, payment: Payment) -> RefundView:
        registration = await uow.registrations.get(payment.registration_id or 0)
        candidate = await uow.candidates.get(registration.candidate_id) if registration else None
        return _view(payment, registration, candidate)

    @staticmethod
    async def _find(uow: UnitOfWork, text: str) -> int:
        words = text.strip()
        if not words:
            raise NotFound("registration")
        registration = await uow.payments.registration_by_reference(words)
        if registration is not None:
            return registration.id
        ticket = await uow.tickets.get_by_number(words) or await uow.tickets.get_by_number(
            words.upper()
        )
        if ticket is None:
            raise NotFound("registration")
        return ticket.registration_id

    @staticmethod
    async def _preview(uow: UnitOfWork, registration_id: int) -> CancelPreview:
        registration = await uow.registrations.get(registration_id)
        if registration is None:
            raise NotFound("registration")
        if registration.state not in ACTIVE:
            raise InvalidState(registration.state)
        candidate = await uow.candidates.get(registration.candidate_id)
        session = await uow.exam_sessions.get(registration.session_id)
        assert candidate is not None and session is not None
        payments = await uow.payments.list_for_registration(registration.id)
        refunds = tuple(
            _view(p, registration, candidate)
            for p in payments
            if _is_open(p) or (p.status in PAYMENT_ACCEPTED and p.refund_status is None)
        )
        return CancelPreview(
            registration_id=registration.id,
            reference=registration.reference,
            name=candidate.full_name or candidate.first_name,
            telegram_id=candidate.telegram_id,
            level_code=registration.level_code,
            session_code=session.code,
            state=registration.state,
            refunds=refunds,
        )

    async def _ask(
        self, uow: UnitOfWork, staff_id: int, step: str, chat_id: int, **answers: Any
    ) -> None:
        """Put the staff member at `step`: their next text in `chat_id` answers it."""
        _staff, state = await candidate_and_flow(uow, staff_id)
        state.enter(
            FLOW,
            step,
            answers={**answers, "chat_id": chat_id, "asked_at": self._clock().isoformat()},
        )


def _with(preview: CancelPreview, reason: str | None, new_level: str | None) -> CancelPreview:
    return CancelPreview(
        preview.registration_id,
        preview.reference,
        preview.name,
        preview.telegram_id,
        preview.level_code,
        preview.session_code,
        preview.state,
        preview.refunds,
        reason,
        new_level,
    )
