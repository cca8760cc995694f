"""Notify and audit: the one way services queue a message or write an audit entry.

Every notification is an outbox row written in the caller's transaction (so it is sent
exactly when the change it reports is committed) and named by a `Template`. The
renderers live in `handlers/` (each module's `TEMPLATES`); a test checks that every
member of `Template` has one. After a commit that queued a row, the unit of work wakes
the sender (`UnitOfWork.queued`), so nothing waits for the sender's next poll.

Entry points: `notify_candidate`, `notify_staff`, `audit`, `Template`; `queue` for a row
that is not a template notification (`OutboxService.enqueue`), `payload` for rows planned
in bulk by a repository (reminders), whose service then sets `uow.queued` itself.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from storage.models import AuditEntry
from storage.uow import UnitOfWork


class Template(enum.StrEnum):
    """Every notification template a service can queue."""

    ELIGIBILITY_REVIEW_REQUEST = "eligibility_review_request"
    ELIGIBILITY_REVIEW_DECIDED = "eligibility_review_decided"
    WAITLIST_OFFER = "waitlist_offer"
    WAITLIST_OFFER_EXPIRED = "waitlist_offer_expired"
    PAYMENT_RECEIPT_REVIEW = "payment_receipt_review"
    PAYMENT_RECEIPT_DECIDED = "payment_receipt_decided"
    PAYMENT_RECEIVED = "payment_received"
    PAYMENT_REFUND_DUE = "payment_refund_due"
    PAYMENT_FLAGGED = "payment_flagged"
    PAYMENT_EXPIRED = "payment_expired"
    TICKET_READY = "ticket_ready"
    CORRECTION_REQUEST = "correction_request"
    IDENTITY_CORRECTED = "identity_corrected"
    REMINDER = "reminder"
    BROADCAST_REPORT = "broadcast_report"
    RESULTS_RELEASED = "results_released"
    CERTIFICATE_ISSUED = "certificate_issued"
    CERTIFICATE_REVOKED = "certificate_revoked"
    REMARK_REQUEST = "remark_request"
    REMARK_FEE_CONFIRMED = "remark_fee_confirmed"
    REMARK_DECIDED = "remark_decided"
    RESULTS_RELEASE_REPORT = "results_release_report"
    RESULT_CORRECTED = "result_corrected"
    SUPPORT_QUESTION = "support_question"  # the candidate's message, a card in the staff chat
    SUPPORT_ANSWER = "support_answer"  # staff's message to the candidate
    ELIGIBILITY_OVERRIDDEN = "eligibility_overridden"  # /override, told to the candidate
    REGISTRATION_CANCELLED_BY_STAFF = "registration_cancelled_by_staff"  # refunds flow
    REFUND_REFUNDED = "refund_refunded"
    REFUND_REFUSED = "refund_refused"
    VENUE = "venue"  # the exam site as a map pin, after a ticket notice or an exam reminder
    STAFF_ROLE_GRANTED = "staff_role_granted"
    STAFF_DIGEST = "staff_digest"  # the day's figures, to the staff chat
    STAFF_DIGEST_CHART = "staff_digest_chart"  # their chart (a PNG in the params)


def payload(template: Template, params: dict[str, Any]) -> dict[str, Any]:
    """The outbox payload naming a template (rendered at send time)."""
    return {"template": str(template), "params": params}


async def notify_candidate(
    uow: UnitOfWork,
    candidate_id: int,
    now: datetime,
    *,
    key: str,
    template: Template,
    params: dict[str, Any],
    expires_at: datetime | None = None,
) -> bool:
    """Queue a message to a candidate (once per `key`); False without a private chat or
    when the key was queued before."""
    candidate = await uow.candidates.get(candidate_id)
    if candidate is None or candidate.chat_id is None:
        return False
    return await queue(
        uow,
        key=key,
        chat_id=candidate.chat_id,
        candidate_id=candidate_id,
        kind="notification",
        payload=payload(template, params),
        not_before=now,
        expires_at=expires_at,
    )


async def notify_staff(
    uow: UnitOfWork,
    staff_chat_id: int | None,
    now: datetime,
    *,
    key: str,
    template: Template,
    params: dict[str, Any],
) -> bool:
    """Queue a card to the staff chat (once per `key`); False when there is no staff chat."""
    if staff_chat_id is None:
        return False
    return await queue(
        uow,
        key=key,
        chat_id=staff_chat_id,
        candidate_id=None,
        kind="staff",
        payload=payload(template, params),
        not_before=now,
    )


async def queue(uow: UnitOfWork, *, key: str, **values: Any) -> bool:
    """Write one outbox row unless its idempotency key exists; marks the unit of work so
    its commit wakes the sender."""
    created = await uow.outbox.add_if_new(idempotency_key=key, **values)
    if created:
        uow.queued = True
    return created


def audit(
    uow: UnitOfWork,
    actor: str,
    entity: str,
    entity_id: int | str,
    action: str,
    at: datetime,
    *,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record who changed what, when and why (in the caller's transaction)."""
    uow.audit.add(
        AuditEntry(
            actor=actor,
            entity=entity,
            entity_id=str(entity_id),
            action=action,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            details=details or {},
            at=at,
        )
    )
