"""Lifecycles: the states of registrations, payments, broadcasts and outbox messages, and
the named sets of states that say what each allows.

One home for "which states allow what": services check a state against these sets,
repositories filter by them, and `storage.models` builds its partial indexes from
them. The values are the ones stored in the database (plain strings), so a
`RegistrationState` compares equal to the column's value.

Registrations (docs/flows.md, docs/payments.md); every change is a compare-and-set on
the state:

    (submit) ──seat free──▶ SUBMITTED ──▶ AWAITING_PAYMENT ──receipt──▶ PAYMENT_REVIEW
    (submit) ──full, join the line──▶ WAITLISTED ──seat freed──▶ OFFERED ──accept──▶ SUBMITTED
    OFFERED ──not accepted in time──▶ EXPIRED          OFFERED ──decline──▶ CANCELLED
    SUBMITTED / AWAITING_PAYMENT / PAYMENT_REVIEW ──money or approved receipt──▶ PAID
    PAYMENT_REVIEW ──receipt rejected──▶ AWAITING_PAYMENT (EXPIRED past the deadline)
    SUBMITTED / AWAITING_PAYMENT ──payment deadline passed──▶ EXPIRED
    WAITLISTED / OFFERED / SUBMITTED / AWAITING_PAYMENT ──candidate cancels──▶ CANCELLED
    PAID ──results released, a retake of the level booked──▶ COMPLETED
    any ACTIVE state ──staff (finance) cancel with a reason──▶ CANCELLED

Once money is paid or a receipt is being checked, the candidate cannot cancel alone:
finance staff cancel (`bot/services/refunds.py`) and the money paid becomes a refund
with its own states on the payment (`RefundStatus`: due → refunded | refused).

Pure: no I/O, imports nothing from storage or services.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE",
    "BROADCAST_HELD",
    "BROADCAST_OPEN",
    "BROADCAST_STATE_GROUPS",
    "BROADCAST_TICKING",
    "IDENTITY_FROZEN",
    "MOVABLE",
    "OUTBOX_ATTEMPTED",
    "OUTBOX_NOT_REACHED",
    "PAYABLE",
    "PAYMENT_ACCEPTED",
    "PAYMENT_UNMATCHED",
    "SEAT_HOLDING",
    "SELF_CANCELLABLE",
    "SETTLEABLE",
    "BroadcastStatus",
    "DuplicateActiveRegistration",
    "OutboxStatus",
    "PaymentStatus",
    "RefundStatus",
    "RegistrationState",
]


# --- registrations ----------------------------------------------------------------------


class RegistrationState(StrEnum):
    """States of a registration."""

    WAITLISTED = "waitlisted"  # no seat; waiting in line for the session
    OFFERED = "offered"  # a freed seat is held for this candidate until offer_expires_at
    SUBMITTED = "submitted"  # seat taken; eligibility still to be settled
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_REVIEW = "payment_review"  # a bank receipt is waiting for staff
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # unpaid at the payment deadline, or an offer not taken; seat released
    REJECTED = "rejected"  # eligibility refused by staff
    # Sat, results released, and a retake of the level booked since: the sitting is history
    # (its results still count for carry-over), no longer the candidate's active one.
    COMPLETED = "completed"


_R = RegistrationState

#: Holding or waiting for a seat: at most one per candidate and level, and per candidate
#: and session (the partial unique indexes on `registrations`). Order is the index text's.
ACTIVE: tuple[RegistrationState, ...] = (
    _R.WAITLISTED,
    _R.OFFERED,
    _R.SUBMITTED,
    _R.AWAITING_PAYMENT,
    _R.PAYMENT_REVIEW,
    _R.PAID,
)
#: Holding one of the session's seats (an OFFERED seat is held for the one offered it).
SEAT_HOLDING: tuple[RegistrationState, ...] = (
    _R.OFFERED,
    _R.SUBMITTED,
    _R.AWAITING_PAYMENT,
    _R.PAYMENT_REVIEW,
    _R.PAID,
)
#: May be moved to another session (it keeps its state there).
MOVABLE: tuple[RegistrationState, ...] = (
    _R.SUBMITTED,
    _R.AWAITING_PAYMENT,
    _R.PAYMENT_REVIEW,
    _R.PAID,
)
#: A candidate may cancel alone (before the session's cut-off). Not PAYMENT_REVIEW or
#: PAID: with money paid or a receipt being checked, cancelling means a refund.
SELF_CANCELLABLE: tuple[RegistrationState, ...] = tuple(
    s for s in ACTIVE if s not in (_R.PAYMENT_REVIEW, _R.PAID)
)
#: Seat taken, money still owed: money and receipts are accepted, the payment deadline
#: expires them, and "please pay" reminders and the "unpaid" broadcast concern them.
PAYABLE: tuple[RegistrationState, ...] = (_R.SUBMITTED, _R.AWAITING_PAYMENT)
#: Money that arrives (or a receipt staff approve) makes these PAID. PAYMENT_REVIEW is
#: never expired by the deadline sweep: staff have not looked at its receipt yet.
SETTLEABLE: tuple[RegistrationState, ...] = (*PAYABLE, _R.PAYMENT_REVIEW)

#: While a candidate has a registration in one of these, their identity (name, ID document
#: and number, and the registration's level) is what money was paid or a receipt is being
#: checked against: the candidate cannot change it, staff correct it with a reason.
IDENTITY_FROZEN: tuple[RegistrationState, ...] = (_R.PAYMENT_REVIEW, _R.PAID)

#: Registration states per broadcast audience "state" value (staff pick one of the keys).
BROADCAST_STATE_GROUPS: dict[str, tuple[RegistrationState, ...]] = {
    "unpaid": PAYABLE,
    "waitlisted": (_R.WAITLISTED,),
    "paid": (_R.PAID,),
}


class DuplicateActiveRegistration(Exception):
    """A write would give a candidate a second ACTIVE registration for the same level or
    at the same session (raised by the repository where the unique index refuses it)."""


# --- payments ---------------------------------------------------------------------------


class PaymentStatus(StrEnum):
    """States of a payment row (money that arrived, or a receipt claiming it did)."""

    RECEIVED = "received"  # just recorded; settled in the same transaction
    PAID = "paid"  # paid its registration
    REFUND_DUE = "refund_due"  # the registration could not take it (expired, cancelled, paid)
    MISMATCH = "mismatch"  # not the expected amount / currency
    UNMATCHED = "unmatched"  # the reference names no registration
    PENDING_REVIEW = "pending_review"  # a bank receipt waiting for staff
    APPROVED = "approved"  # a receipt staff accepted
    REJECTED = "rejected"  # a receipt staff refused
    SUPERSEDED = "superseded"  # a receipt still under review when money paid it another way


_P = PaymentStatus

#: Money accepted for its registration (when a registration was paid).
PAYMENT_ACCEPTED: tuple[PaymentStatus, ...] = (_P.PAID, _P.APPROVED)
#: Money that matched no registration or not its fee: kept, flagged, and refused to the sender.
PAYMENT_UNMATCHED: tuple[PaymentStatus, ...] = (_P.MISMATCH, _P.UNMATCHED)


class RefundStatus(StrEnum):
    """States of a refund on a payment (`payments.refund_status`; None: nothing to refund).

    DUE when staff cancel a paid registration, or when money arrives that nothing can take
    (`Payment.needs_refund`: late, duplicate, wrong amount); then finance decides once:
    REFUNDED (Stars through the Bot API, other methods with the external reference) or
    REFUSED with a reason. A flagged payment from before refunds had states has
    `needs_refund` and no status: it counts as DUE.
    """

    DUE = "due"
    REFUNDED = "refunded"
    REFUSED = "refused"


# --- broadcasts -------------------------------------------------------------------------


class BroadcastStatus(StrEnum):
    """States of a staff broadcast; transitions live in the broadcasts service."""

    DRAFT = "draft"  # being composed (content, audience, time)
    SCHEDULED = "scheduled"  # confirmed; its outbox rows wait for `scheduled_at`
    SENDING = "sending"
    PAUSED = "paused"  # its pending outbox rows are not claimed
    CANCELLED = "cancelled"
    DONE = "done"  # nothing left pending; the report went out


_B = BroadcastStatus

#: Confirmed and not finished: may be paused, resumed or cancelled.
BROADCAST_OPEN: tuple[BroadcastStatus, ...] = (_B.SCHEDULED, _B.SENDING, _B.PAUSED)
#: Progress may still change (a cancelled one still has rows in flight until it finishes).
BROADCAST_TICKING: tuple[BroadcastStatus, ...] = (*BROADCAST_OPEN, _B.CANCELLED)
#: The sender claims none of its pending rows.
BROADCAST_HELD: tuple[BroadcastStatus, ...] = (_B.PAUSED, _B.CANCELLED)


# --- outbox -----------------------------------------------------------------------------


class OutboxStatus(StrEnum):
    """States of an outbox row: pending until the sender settles it once."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"


_O = OutboxStatus

#: Handed to Telegram, with whatever result (what a sending rate is measured on).
OUTBOX_ATTEMPTED: tuple[OutboxStatus, ...] = (_O.SENT, _O.FAILED, _O.UNREACHABLE)
#: Did not reach its recipient (listed in a broadcast's report).
OUTBOX_NOT_REACHED: tuple[OutboxStatus, ...] = (_O.FAILED, _O.UNREACHABLE, _O.CANCELLED)
