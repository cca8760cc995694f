"""Payments flow: the fee and methods, Telegram invoices, bank receipts reviewed by staff,
the payment-deadline sweep, a registration's history and the list of paid registrations.

Entry points (`PaymentService`): `offer` (what a candidate sees after submitting),
`invoice` / `check_pre_checkout` / `record_telegram_payment` (Telegram Payments and Stars),
`start_receipt` / `submit_receipt` / `decide_receipt` / `ask_reason` / `reject_with_typed_reason`
(bank transfer), `expire_unpaid` (scheduler), `history` and `list_paid` (staff, tickets).
Bank-statement CSV imports live in `payments_bank`, provider notices in `payments_provider`;
both record money through `record_payment` here.

Registration states (docs/payments.md); money is taken once eligibility is settled:
  SUBMITTED / AWAITING_PAYMENT ──receipt──▶ PAYMENT_REVIEW ──reject──▶ AWAITING_PAYMENT
  SUBMITTED / AWAITING_PAYMENT / PAYMENT_REVIEW ──payment or approval──▶ PAID
  SUBMITTED / AWAITING_PAYMENT ──deadline (due + grace) passed──▶ EXPIRED (seat released)
A receipt under review is never expired: staff have not looked at it. A rejection after
the deadline expires the registration at once. Money that arrives for a registration that
is EXPIRED, CANCELLED or already PAID is recorded with `needs_refund` and flagged to staff;
its refund is DUE at once (`refund_fields`), so finance find it in /refunds
(`bot/services/refunds.py`) beside the refunds of registrations staff cancelled.

Idempotency: every payment is unique on (method, external_id): the Telegram charge id,
the provider's transaction id, the bank row's hash, or the receipt's file for a
registration. Staff decisions and state changes are compare-and-set: the first one wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.domain.catalog import Catalog, Fee
from bot.domain.lifecycle import (
    PAYABLE,
    SETTLEABLE,
    PaymentStatus,
    RefundStatus,
    RegistrationState,
)
from bot.services.catalog import CatalogService
from bot.services.errors import (
    AlreadyDecided,
    AlreadyPaid,
    InvalidState,
    NotFound,
    PaymentUnavailable,
    StaleStep,
)
from bot.services.notify import Template, audit, notify_candidate, notify_staff
from bot.services.registration import release_seat_and_promote
from storage.models import Candidate, ExamSession, Payment, Registration
from storage.uow import UnitOfWork, UowFactory

S = RegistrationState
P = PaymentStatus
ELIGIBLE = ("eligible", "approved", "overridden")
#: How long after pressing "other reason" the staff member's next staff-chat text counts
#: as the reason; later text is ordinary conversation.
TYPED_REASON_WINDOW = timedelta(minutes=15)
FLOW = "payment"
RECEIPT_STEP = "receipt:"
REJECT_REASONS = ("amount_wrong", "reference_missing", "unreadable", "not_received")
EXPIRE_BATCH = 500
SYSTEM = "system"
STARS = "XTR"


@dataclass(frozen=True, slots=True)
class PaymentConfig:
    """What the settings enable (the catalogue lists methods; both must agree)."""

    staff_chat_id: int | None = None
    telegram: bool = False  # a provider token is configured
    stars: bool = False


@dataclass(frozen=True, slots=True)
class BankDetails:
    account_name: str
    bank_name: str
    account_number: str
    placeholder: bool


@dataclass(frozen=True, slots=True)
class PaymentOffer:
    """The fee, the deadline and the methods a candidate may pay a registration with."""

    registration_id: int
    reference: str
    state: str
    level_code: str
    session_code: str
    timezone: str
    currency: str
    amount: Decimal | None  # None while the catalogue has not confirmed the fee
    stars: int | None
    due_at: datetime
    deadline_at: datetime  # due + grace: the registration expires after this
    methods: tuple[str, ...]  # offered now: bank_transfer, telegram, stars
    bank: BankDetails | None


@dataclass(frozen=True, slots=True)
class InvoiceSpec:
    registration_id: int
    reference: str
    level_code: str
    session_code: str
    payload: str
    currency: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What became of money that arrived. status: paid, refund_due, mismatch, unmatched."""

    payment_id: int
    registration_id: int | None
    reference: str | None
    status: str
    replay: bool = False  # the same charge / transaction was recorded before: no new effect
    # When a paid registration's admission ticket can be had (None: now, or not paid).
    tickets_from: datetime | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    payment_id: int
    reference: str
    same_file_on: tuple[str, ...]  # references of other registrations with the same file
    replay: bool


@dataclass(frozen=True, slots=True)
class ReceiptDecision:
    payment_id: int
    reference: str
    approved: bool
    reason: str | None
    registration_state: str
    needs_refund: bool


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    actor: str
    entity: str
    action: str
    from_state: str | None
    to_state: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class RegistrationHistory:
    reference: str
    state: str
    entries: tuple[HistoryEntry, ...]
    payments: tuple[
        tuple[int, str, str, int, str, bool], ...
    ]  # id, method, status, amount, currency, refund


@dataclass(frozen=True, slots=True)
class PaidRegistration:
    """A PAID registration: what the admission-ticket flow needs."""

    registration_id: int
    reference: str
    candidate_id: int
    telegram_id: int
    full_name: str | None
    session_code: str
    level_code: str
    direction_code: str | None
    components: tuple[str, ...]
    paid_at: datetime


def deadline_of(session: ExamSession) -> datetime:
    return session.payment_deadline_at or session.payment_due_at


def registration_fee(catalog: Catalog, registration: Registration) -> Fee:
    """What a registration costs: its level's fee, or the catalogue's per-component fee when
    it books fewer components than the level has (a retake, the others carried over). Every
    place that shows, charges or checks a fee asks this."""
    total = len(catalog.components)
    booked = len(registration.components or ()) or total  # rows from before components
    return catalog.fee(registration.level_code).for_components(booked, total)


def expected_amount(catalog: Catalog, registration: Registration, currency: str) -> int | None:
    """The registration's fee in minor units for that currency (fen for CNY, whole Stars
    for XTR)."""
    fee = registration_fee(catalog, registration)
    if currency == STARS:
        return fee.stars
    return fee.amount_minor_units if currency == catalog.fees.currency else None


def receipt_card_key(payment_id: int) -> str:
    """The outbox key of a receipt's staff card (its buttons go once the receipt is moot)."""
    return f"receipt_card:{payment_id}"


async def tickets_from_of(
    uow: UnitOfWork, registration: Registration, now: datetime
) -> tuple[datetime | None, str | None]:
    """From when the admission ticket of a (just) paid registration can be had, in its
    session's zone: the moment, or None when the ticket date has already come."""
    session = await uow.exam_sessions.get(registration.session_id)
    if session is None:
        return None, None
    return (session.tickets_from_at if now < session.tickets_from_at else None), session.timezone


def refund_fields(why: str, actor: str, now: datetime) -> dict[str, Any]:
    """The columns that put money nothing can take on the refund list (refund DUE)."""
    return {
        "needs_refund": True,
        "refund_status": RefundStatus.DUE,
        "refund_reason": why,
        "refund_requested_at": now,
        "refund_requested_by": actor,
    }


def audit_settlement(
    uow: UnitOfWork,
    actor: str,
    registration_id: int,
    now: datetime,
    *,
    payment_id: int,
    reason: str,
    paid_from: str | None = None,
) -> None:
    """A registration's audit entry for a payment: `paid` (from the state `paid_from`) when
    the payment settled it, else `payment_flagged` (the money is kept; `reason` says why)."""
    audit(
        uow,
        actor,
        "registration",
        registration_id,
        "payment_flagged" if paid_from is None else "paid",
        now,
        from_state=paid_from,
        to_state=None if paid_from is None else S.PAID,
        reason=reason,
        details={"payment_id": payment_id},
    )


async def tell_staff_flagged(
    uow: UnitOfWork,
    staff_chat_id: int | None,
    now: datetime,
    *,
    payment_id: int,
    reference: str | None,
    method: str,
    external_id: str,
    amount_minor: int,
    currency: str,
    expected: int | None,
    why: str,
    key: str | None = None,
) -> None:
    """The staff card for money that is kept but settles nothing (`why`): a person looks at
    it. Keyed once per payment unless `key` says otherwise."""
    await notify_staff(
        uow,
        staff_chat_id,
        now,
        key=key or f"payment_flagged:{payment_id}",
        template=Template.PAYMENT_FLAGGED,
        params={
            "payment_id": payment_id,
            "reference": reference,
            "method": method,
            "external_id": external_id,
            "amount_minor": amount_minor,
            "currency": currency,
            "expected": expected,
            "why": why,
        },
    )


async def record_payment(
    uow: UnitOfWork,
    *,
    registration: Registration | None,
    method: str,
    external_id: str,
    amount_minor: int,
    currency: str,
    expected: int | None,
    now: datetime,
    actor: str,
    staff_chat_id: int | None,
    raw: dict[str, Any] | None = None,
    notify: bool = True,
) -> PaymentOutcome:
    """Record money that arrived, once per (method, external_id), and settle the registration.

    A replay returns the first outcome with `replay=True` and changes nothing. Money that
    cannot pay the registration (wrong amount, no registration, expired, cancelled, already
    paid) is kept with `needs_refund` and a card goes to the staff chat.
    """
    reference = registration.reference if registration is not None else None
    payment_id = await uow.payments.add_if_new(
        registration_id=registration.id if registration is not None else None,
        method=method,
        external_id=external_id,
        amount_minor=amount_minor,
        currency=currency,
        status=P.RECEIVED,
        raw=raw or {},
        created_at=now,
    )
    if payment_id is None:
        existing = await uow.payments.get_by_external_id(method, external_id)
        assert existing is not None
        return PaymentOutcome(
            existing.id, existing.registration_id, reference, existing.status, replay=True
        )

    money = {
        "method": method,
        "external_id": external_id,
        "amount_minor": amount_minor,
        "currency": currency,
    }
    if registration is None:
        status, why = P.UNMATCHED, "unknown_reference"
    elif expected is None or amount_minor != expected:
        status, why = P.MISMATCH, "amount_mismatch"
    else:
        state = registration.state
        paid = await uow.registrations.transition(
            registration.id, SETTLEABLE, state=S.PAID, state_changed_at=now
        )
        if paid:
            await uow.payments.decide(payment_id, P.RECEIVED, status=P.PAID, decided_at=now)
            await uow.payments.supersede_pending(registration.id, now, f"paid:{method}")
            audit(
                uow,
                actor,
                "payment",
                payment_id,
                "recorded",
                now,
                to_state=P.PAID,
                details=money,
            )
            audit_settlement(
                uow,
                actor,
                registration.id,
                now,
                payment_id=payment_id,
                reason=method,
                paid_from=state,
            )
            tickets_from, zone = await tickets_from_of(uow, registration, now)
            if notify:
                await notify_candidate(
                    uow,
                    registration.candidate_id,
                    now,
                    key=f"payment_received:{registration.id}",
                    template=Template.PAYMENT_RECEIVED,
                    params={
                        "reference": reference,
                        "method": method,
                        "tickets_from": tickets_from.isoformat() if tickets_from else None,
                        "timezone": zone,
                    },
                )
            return PaymentOutcome(
                payment_id,
                registration.id,
                reference,
                P.PAID,
                tickets_from=tickets_from,
                timezone=zone,
            )
        current = await uow.registrations.get(registration.id)
        state = current.state if current is not None else "missing"
        status, why = (
            P.REFUND_DUE,
            ("double_payment" if state == S.PAID else f"registration_{state}"),
        )

    await uow.payments.decide(
        payment_id,
        P.RECEIVED,
        status=status,
        decided_at=now,
        reason=why,
        **refund_fields(why, actor, now),
    )
    audit(
        uow,
        actor,
        "payment",
        payment_id,
        "flagged",
        now,
        to_state=status,
        reason=why,
        details={**money, "expected": expected},
    )
    if registration is not None:
        audit_settlement(uow, actor, registration.id, now, payment_id=payment_id, reason=why)
        if notify:
            await notify_candidate(
                uow,
                registration.candidate_id,
                now,
                key=f"payment_refund:{payment_id}",
                template=Template.PAYMENT_REFUND_DUE,
                params={"reference": reference, "why": why},
            )
    await tell_staff_flagged(
        uow,
        staff_chat_id,
        now,
        payment_id=payment_id,
        reference=reference or (raw or {}).get("reference"),
        method=method,
        external_id=external_id,
        amount_minor=amount_minor,
        currency=currency,
        expected=expected,
        why=why,
    )
    return PaymentOutcome(payment_id, registration.id if registration else None, reference, status)


class PaymentService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        config: PaymentConfig | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self.config = config or PaymentConfig()

    # --- what the candidate sees --------------------------------------------------------

    def methods(self, catalog: Catalog, fee_confirmed: bool) -> tuple[str, ...]:
        """Methods offered now: listed in the catalogue, enabled in the settings, and for
        invoices only once the fee is confirmed (an invoice states an amount)."""
        enabled = {
            "bank_transfer": catalog.payment.bank_account is not None,
            "telegram": self.config.telegram and fee_confirmed,
            "stars": self.config.stars and fee_confirmed,
        }
        return tuple(m for m in catalog.payment.methods if enabled.get(m, False))

    async def offer(self, telegram_id: int, registration_id: int) -> PaymentOffer:
        """The fee, deadline and methods of a payable registration (eligibility settled).

        Raises NotFound (not the caller's), AlreadyPaid, InvalidState (not payable),
        PaymentUnavailable("eligibility_pending"). Reads only: the state stays as it is.
        """
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            registration, session = await self._own(uow, telegram_id, registration_id)
            await self._check_payable(registration)
            fee = registration_fee(catalog, registration)
            account = catalog.payment.bank_account
            return PaymentOffer(
                registration_id=registration.id,
                reference=registration.reference,
                state=registration.state,
                level_code=registration.level_code,
                session_code=session.code,
                timezone=session.timezone,
                currency=catalog.fees.currency,
                amount=fee.amount if fee.confirmed else None,
                stars=fee.stars if fee.confirmed else None,
                due_at=session.payment_due_at,
                deadline_at=deadline_of(session),
                methods=self.methods(catalog, fee.confirmed),
                bank=BankDetails(
                    account.account_name,
                    account.bank_name,
                    account.account_number,
                    account.placeholder,
                )
                if account is not None
                else None,
            )

    # --- Telegram Payments and Stars --------------------------------------------------------

    async def invoice(self, telegram_id: int, registration_id: int, method: str) -> InvoiceSpec:
        """What to put on an invoice for `method` (telegram: CNY, stars: XTR)."""
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            registration, session = await self._own(uow, telegram_id, registration_id)
            await self._check_payable(registration)
            fee = registration_fee(catalog, registration)
            if method not in self.methods(catalog, fee.confirmed) or method not in (
                "telegram",
                "stars",
            ):
                raise PaymentUnavailable(
                    "fee_unconfirmed" if not fee.confirmed else "method_disabled"
                )
            if now >= deadline_of(session):
                raise PaymentUnavailable("deadline_passed")
            currency = STARS if method == "stars" else catalog.fees.currency
            amount = expected_amount(catalog, registration, currency)
            assert amount is not None
            return InvoiceSpec(
                registration_id=registration.id,
                reference=registration.reference,
                level_code=registration.level_code,
                session_code=session.code,
                payload=f"pay:{registration.id}:{method}",
                currency=currency,
                amount_minor=amount,
            )

    async def check_pre_checkout(self, payload: str, currency: str, total_amount: int) -> None:
        """Answer a pre-checkout query from the database alone: PaymentUnavailable or AlreadyPaid
        when the seat is gone, the amount or currency differ, or it is paid already."""
        catalog = await self._catalog.current()
        now = self._clock()
        registration_id, method = _parse_payload(payload)
        async with self._uow() as uow:
            registration = await uow.registrations.get(registration_id)
            if registration is None:
                raise PaymentUnavailable("unknown_invoice")
            session = await uow.exam_sessions.get(registration.session_id)
            assert session is not None
            if registration.state == S.PAID:
                raise AlreadyPaid()
            if registration.state not in SETTLEABLE:
                raise PaymentUnavailable("not_payable")
            if now >= deadline_of(session):
                raise PaymentUnavailable("deadline_passed")
            expected = expected_amount(catalog, registration, currency)
            if (method == "stars") != (currency == STARS) or total_amount != expected:
                raise PaymentUnavailable("amount_mismatch")

    async def record_telegram_payment(
        self,
        payload: str,
        currency: str,
        total_amount: int,
        charge_id: str,
        provider_charge_id: str | None,
    ) -> PaymentOutcome:
        """A `successful_payment`: recorded once per charge id; late or double money is flagged."""
        catalog = await self._catalog.current()
        now = self._clock()
        try:
            registration_id, _ = _parse_payload(payload)
        except PaymentUnavailable:
            registration_id = 0
        method = "stars" if currency == STARS else "telegram"
        async with self._uow() as uow:
            registration = (
                await uow.registrations.get(registration_id) if registration_id else None
            )
            expected = expected_amount(catalog, registration, currency) if registration else None
            outcome = await record_payment(
                uow,
                registration=registration,
                method=method,
                external_id=charge_id,
                amount_minor=total_amount,
                currency=currency,
                expected=expected,
                now=now,
                actor="telegram",
                staff_chat_id=self.config.staff_chat_id,
                raw={"payload": payload, "provider_payment_charge_id": provider_charge_id},
                notify=False,
            )
            await uow.commit()
            return outcome

    # --- bank transfer receipts ----------------------------------------------------------

    async def start_receipt(self, telegram_id: int, registration_id: int) -> str:
        """Wait for the receipt of this registration (flow state in the
        database); its reference."""
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            registration, _ = await self._own(uow, telegram_id, registration_id)
            if registration.state == S.PAYMENT_REVIEW:
                raise InvalidState(registration.state)
            await self._check_payable(registration)
            if "bank_transfer" not in self.methods(catalog, True):
                raise PaymentUnavailable("method_disabled")
            state = await uow.flows.get_or_add(registration.candidate_id)
            state.enter(FLOW, f"{RECEIPT_STEP}{registration.id}")
            await uow.commit()
            return registration.reference

    async def submit_receipt(
        self,
        telegram_id: int,
        *,
        file_id: str,
        file_unique_id: str,
        kind: str,
        mime_type: str | None = None,
        content_sha256: str | None = None,
    ) -> ReceiptResult:
        """The receipt (photo or PDF) for the registration the candidate is paying: under review.

        Raises StaleStep when the candidate is not uploading a receipt, InvalidState when
        the registration can no longer be paid. The same file sent again is a replay.
        """
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                raise StaleStep(FLOW)
            state = await uow.flows.get_or_add(candidate.id)
            if state.flow != FLOW or not (state.step or "").startswith(RECEIPT_STEP):
                raise StaleStep(FLOW)
            registration = await uow.registrations.get_for_candidate(
                int(state.step.removeprefix(RECEIPT_STEP)), candidate.id
            )
            if registration is None:
                raise StaleStep(FLOW)
            state.leave()
            external_id = f"receipt:{registration.id}:{file_unique_id}"
            if registration.state not in PAYABLE:
                existing = await uow.payments.get_by_external_id("bank_transfer", external_id)
                await uow.commit()
                if existing is not None:  # the same upload processed twice
                    return ReceiptResult(existing.id, registration.reference, (), replay=True)
                raise (
                    AlreadyPaid()
                    if registration.state == S.PAID
                    else InvalidState(registration.state)
                )
            amount = expected_amount(catalog, registration, catalog.fees.currency) or 0
            payment_id = await uow.payments.add_if_new(
                registration_id=registration.id,
                method="bank_transfer",
                external_id=external_id,
                amount_minor=amount,
                currency=catalog.fees.currency,
                status=P.PENDING_REVIEW,
                receipt_file_id=file_id,
                receipt_unique_id=file_unique_id,
                receipt_sha256=content_sha256,
                created_at=now,
                raw={"kind": kind, "mime_type": mime_type},
            )
            if payment_id is None:
                # This very file was sent for this registration before and staff decided on
                # it (rejected, since the registration is payable again): not a new receipt.
                await uow.commit()  # the upload step is over either way
                raise PaymentUnavailable("receipt_already_reviewed")
            old = registration.state
            if not await uow.registrations.transition(
                registration.id, PAYABLE, state=S.PAYMENT_REVIEW, state_changed_at=now
            ):
                raise InvalidState(registration.state)
            others = await uow.payments.list_same_receipt(
                file_unique_id, content_sha256, registration.id
            )
            same_on = tuple(
                sorted(
                    {
                        r.reference
                        for r in [
                            await uow.registrations.get(p.registration_id)
                            for p in others
                            if p.registration_id
                        ]
                        if r
                    }
                )
            )
            audit(
                uow,
                f"tg:{telegram_id}",
                "payment",
                payment_id,
                "receipt_submitted",
                now,
                to_state=P.PENDING_REVIEW,
                details={"kind": kind, "same_file_on": list(same_on)},
            )
            audit(
                uow,
                f"tg:{telegram_id}",
                "registration",
                registration.id,
                "receipt_submitted",
                now,
                from_state=old,
                to_state=S.PAYMENT_REVIEW,
                details={"payment_id": payment_id},
            )
            session = await uow.exam_sessions.get(registration.session_id)
            fee = registration_fee(catalog, registration)
            # A receipt sent again after staff rejected one: the card says so, with why.
            rejected = [
                p
                for p in await uow.payments.list_for_registration(registration.id)
                if p.status == P.REJECTED and p.id != payment_id
            ]
            await notify_staff(
                uow,
                self.config.staff_chat_id,
                now,
                key=receipt_card_key(payment_id),
                template=Template.PAYMENT_RECEIPT_REVIEW,
                params={
                    "payment_id": payment_id,
                    "reference": registration.reference,
                    "name": candidate.full_name or candidate.first_name,
                    "telegram_id": candidate.telegram_id,
                    "level_code": registration.level_code,
                    "session_code": session.code if session else "",
                    "amount": str(fee.amount),
                    "currency": catalog.fees.currency,
                    "fee_confirmed": fee.confirmed,
                    "same_file_on": list(same_on),
                    "kind": kind,
                    "file_id": file_id,
                    "after_rejection": {
                        "payment_id": rejected[-1].id,
                        "reason": rejected[-1].reason,
                    }
                    if rejected
                    else None,
                },
            )
            await uow.commit()
            return ReceiptResult(payment_id, registration.reference, same_on, replay=False)

    async def ask_reason(self, payment_id: int, staff_id: int) -> str:
        """The staff member will type the rejection reason next (marker kept in the database)."""
        async with self._uow() as uow:
            payment = await self._pending_receipt(uow, payment_id)
            registration = await uow.registrations.get(payment.registration_id or 0)
            reference = registration.reference if registration else ""
            await uow.payments.clear_awaiting_reason(staff_id)
            payment.pending_reason_by, payment.pending_reason_at = staff_id, self._clock()
            await uow.commit()
            return reference

    async def reject_with_typed_reason(self, staff_id: int, text: str) -> ReceiptDecision | None:
        """The text a staff member typed after "other reason"; None when they owe none."""
        reason = " ".join(text.split())[:500]
        async with self._uow() as uow:
            payment = await uow.payments.get_awaiting_reason(
                staff_id, self._clock() - TYPED_REASON_WINDOW
            )
            if payment is None or not reason:
                return None
            decision = await self._decide(uow, payment.id, staff_id, approve=False, reason=reason)
            await uow.commit()
            return decision

    async def decide_receipt(
        self, payment_id: int, staff_id: int, *, approve: bool, reason: str | None = None
    ) -> ReceiptDecision:
        """Approve (→ PAID) or reject (→ AWAITING_PAYMENT, or EXPIRED past the deadline) a receipt.

        The first decision wins; a later one raises AlreadyDecided with who decided.
        """
        if not approve and reason not in REJECT_REASONS:
            raise InvalidState("reason_required")
        async with self._uow() as uow:
            decision = await self._decide(
                uow, payment_id, staff_id, approve=approve, reason=reason
            )
            await uow.commit()
            return decision

    async def _decide(
        self, uow: UnitOfWork, payment_id: int, staff_id: int, *, approve: bool, reason: str | None
    ) -> ReceiptDecision:
        now = self._clock()
        payment = await self._pending_receipt(uow, payment_id)
        status = P.APPROVED if approve else P.REJECTED
        if not await uow.payments.decide(
            payment_id,
            P.PENDING_REVIEW,
            status=status,
            decided_by=staff_id,
            decided_at=now,
            reason=reason,
            pending_reason_by=None,
        ):
            payment = await uow.payments.get(payment_id)
            assert payment is not None
            raise AlreadyDecided(payment.decided_by, payment.status)
        registration = await uow.registrations.get(payment.registration_id or 0)
        assert registration is not None
        actor = f"tg:{staff_id}"
        audit(
            uow,
            actor,
            "payment",
            payment_id,
            f"receipt_{status}",
            now,
            from_state=P.PENDING_REVIEW,
            to_state=status,
            reason=reason,
        )
        old = registration.state
        needs_refund = False
        session = await uow.exam_sessions.get(registration.session_id)
        assert session is not None
        if approve:
            if await uow.registrations.transition(
                registration.id, SETTLEABLE, state=S.PAID, state_changed_at=now
            ):
                audit_settlement(
                    uow,
                    actor,
                    registration.id,
                    now,
                    payment_id=payment_id,
                    reason="bank_transfer",
                    paid_from=old,
                )
            else:  # expired, cancelled or paid meanwhile: the money goes back
                needs_refund = True
                why = (
                    "double_payment"
                    if registration.state == S.PAID
                    else f"registration_{registration.state}"
                )
                await uow.payments.decide(payment_id, P.APPROVED, **refund_fields(why, actor, now))
                audit_settlement(
                    uow,
                    actor,
                    registration.id,
                    now,
                    payment_id=payment_id,
                    reason=f"registration_{registration.state}",
                )
                await tell_staff_flagged(
                    uow,
                    self.config.staff_chat_id,
                    now,
                    payment_id=payment_id,
                    reference=registration.reference,
                    method=payment.method,
                    external_id=payment.external_id,
                    amount_minor=payment.amount_minor,
                    currency=payment.currency,
                    expected=payment.amount_minor,
                    why=why,
                )
        else:  # past the deadline the registration expires, else it waits for money again
            late = now >= deadline_of(session)
            to, action, why = (
                (S.EXPIRED, "expired", "receipt_rejected_after_deadline")
                if late
                else (S.AWAITING_PAYMENT, "receipt_rejected", reason)
            )
            if await uow.registrations.transition(
                registration.id, [S.PAYMENT_REVIEW], state=to, state_changed_at=now
            ):
                audit(
                    uow,
                    actor,
                    "registration",
                    registration.id,
                    action,
                    now,
                    from_state=old,
                    to_state=to,
                    reason=why,
                )
                if late:
                    await release_seat_and_promote(uow, registration.session_id, now)
        current = await uow.registrations.get(registration.id)
        assert current is not None
        tickets_from, _ = await tickets_from_of(uow, current, now)
        await notify_candidate(
            uow,
            registration.candidate_id,
            now,
            key=f"receipt_decided:{payment_id}",
            template=Template.PAYMENT_RECEIPT_DECIDED,
            params={
                "reference": registration.reference,
                "approved": approve and not needs_refund,
                "reason": reason,
                "state": current.state,
                "refund": needs_refund,
                "deadline_at": deadline_of(session).isoformat(),
                "timezone": session.timezone,
                "registration_id": registration.id,
                "tickets_from": tickets_from.isoformat() if tickets_from else None,
            },
        )
        return ReceiptDecision(
            payment_id, registration.reference, approve, reason, current.state, needs_refund
        )

    # --- the deadline sweep ---------------------------------------------------------------

    async def expire_unpaid(self) -> int:
        """SUBMITTED / AWAITING_PAYMENT past the session's payment deadline → EXPIRED.

        Each seat goes to the first in line; the candidate is told through the outbox.
        Safe to repeat and to run on several instances: each expiry is compare-and-set.
        """
        now = self._clock()
        expired = 0
        async with self._uow() as uow:
            # Only PAYABLE ones: a receipt under review keeps its seat until staff looked at it.
            for registration in await uow.payments.list_unpaid_past_deadline(
                now, PAYABLE, EXPIRE_BATCH
            ):
                await uow.exam_sessions.lock(registration.session_id)
                old = registration.state
                if not await uow.registrations.transition(
                    registration.id, PAYABLE, state=S.EXPIRED, state_changed_at=now
                ):
                    continue
                session = await uow.exam_sessions.get(registration.session_id)
                assert session is not None
                audit(
                    uow,
                    SYSTEM,
                    "registration",
                    registration.id,
                    "expired",
                    now,
                    from_state=old,
                    to_state=S.EXPIRED,
                    reason="payment_deadline_passed",
                    details={"deadline_at": deadline_of(session).isoformat()},
                )
                await notify_candidate(
                    uow,
                    registration.candidate_id,
                    now,
                    key=f"payment_expired:{registration.id}",
                    template=Template.PAYMENT_EXPIRED,
                    params={"reference": registration.reference, "session_code": session.code},
                )
                await release_seat_and_promote(uow, registration.session_id, now)
                expired += 1
            await uow.commit()
        return expired

    # --- staff reading ---------------------------------------------------------------------

    async def history(self, reference: str) -> RegistrationHistory:
        """Every recorded change of a registration and its payments, oldest first."""
        async with self._uow() as uow:
            registration = await uow.payments.registration_by_reference(reference)
            if registration is None:
                raise NotFound("registration")
            payments = await uow.payments.list_for_registration(registration.id)
            entries = list(await uow.audit.list_for("registration", str(registration.id)))
            for p in payments:
                entries.extend(await uow.audit.list_for("payment", str(p.id)))
            entries.sort(key=lambda e: (e.at, e.id))
            return RegistrationHistory(
                reference=registration.reference,
                state=registration.state,
                entries=tuple(
                    HistoryEntry(
                        e.at, e.actor, e.entity, e.action, e.from_state, e.to_state, e.reason
                    )
                    for e in entries
                ),
                payments=tuple(
                    (p.id, p.method, p.status, p.amount_minor, p.currency, p.needs_refund)
                    for p in payments
                ),
            )

    async def list_paid(self, session_code: str | None = None) -> list[PaidRegistration]:
        """PAID registrations (of one session, or all), by exam date: for admission tickets."""
        async with self._uow() as uow:
            session_id = None
            if session_code is not None:
                session = await uow.exam_sessions.get_by_code(session_code)
                if session is None:
                    raise NotFound("session")
                session_id = session.id
            rows = await uow.payments.list_paid(session_id)
            return [
                PaidRegistration(
                    registration_id=r.id,
                    reference=r.reference,
                    candidate_id=c.id,
                    telegram_id=c.telegram_id,
                    full_name=c.full_name,
                    session_code=s.code,
                    level_code=r.level_code,
                    direction_code=r.direction_code,
                    components=tuple(r.components),
                    paid_at=paid_at or r.state_changed_at,
                )
                for r, c, s, paid_at in rows
            ]

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    async def _own(
        uow: UnitOfWork, telegram_id: int, registration_id: int
    ) -> tuple[Registration, ExamSession]:
        candidate: Candidate | None = await uow.candidates.get_by_telegram_id(telegram_id)
        registration = (
            await uow.registrations.get_for_candidate(registration_id, candidate.id)
            if candidate is not None
            else None
        )
        if registration is None:
            raise NotFound("registration")
        session = await uow.exam_sessions.get(registration.session_id)
        assert session is not None
        return registration, session

    @staticmethod
    async def _check_payable(registration: Registration) -> None:
        if registration.state == S.PAID:
            raise AlreadyPaid()
        if registration.state not in PAYABLE:
            raise InvalidState(registration.state)
        if (registration.eligibility or {}).get("status") not in ELIGIBLE:
            raise PaymentUnavailable("eligibility_pending")

    @staticmethod
    async def _pending_receipt(uow: UnitOfWork, payment_id: int) -> Payment:
        payment = await uow.payments.get(payment_id)
        if payment is None or payment.method != "bank_transfer":
            raise NotFound("payment")
        if payment.status != P.PENDING_REVIEW:
            raise AlreadyDecided(payment.decided_by, payment.status)
        return payment


def _parse_payload(payload: str) -> tuple[int, str]:
    parts = payload.split(":")
    if (
        len(parts) != 3
        or parts[0] != "pay"
        or not parts[1].isdigit()
        or parts[2] not in ("telegram", "stars")
    ):
        raise PaymentUnavailable("unknown_invoice")
    return int(parts[1]), parts[2]
