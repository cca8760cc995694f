"""SQLAlchemy models: the tables that hold every piece of examdesk's state.

Candidates and their flow state, the loaded exam catalogue (levels, directions, sessions
and their components), registrations with an explicit state, payments, the inbox of raw
Telegram updates, the outbox of messages to send, and the audit log. Times are stored as
UTC-aware datetimes on both SQLite and PostgreSQL (see `UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from bot.domain.certificates import CertificateStatus

# The lifecycles (states and what each allows) live in the domain; the models store their
# values as plain strings and keep the names importable from here.
from bot.domain.lifecycle import ACTIVE, BroadcastStatus, OutboxStatus
from bot.domain.lifecycle import PaymentStatus as PaymentStatus
from bot.domain.lifecycle import RegistrationState as RegistrationState
from bot.domain.scoring import ImportStatus, ReleaseStatus, RemarkStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC; SQLite's naive values come back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; examdesk stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


#: The condition of the one-active-registration indexes (`ACTIVE`, in the migration's order).
_ACTIVE_SQL = "state IN ({})".format(", ".join(f"'{s.value}'" for s in ACTIVE))


class Candidate(Base):
    """A person talking to the bot (candidate or staff), keyed by Telegram user id."""

    __tablename__ = "candidates"
    # `/find` (issue 14): partial matches on names, phone and the masked ID number. On
    # PostgreSQL trigram GIN indexes (pg_trgm) serve LIKE '%…%'; SQLite gets plain ones.
    __table_args__ = tuple(
        Index(
            f"ix_candidates_{column}_trgm",
            column,
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )
        for column in ("full_name", "first_name", "phone", "id_number_masked")
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    first_name: Mapped[str] = mapped_column(String(128), default="")
    username: Mapped[str | None] = mapped_column(String(64))
    telegram_language: Mapped[str | None] = mapped_column(String(35))
    language: Mapped[str | None] = mapped_column(String(16))  # the candidate's own choice
    # Registration data (DOMAIN.md). The ID number is encrypted; the hash finds duplicates.
    full_name: Mapped[str | None] = mapped_column(String(64))
    id_doc_type: Mapped[str | None] = mapped_column(String(16))
    id_number_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    gender: Mapped[str | None] = mapped_column(String(8))
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)  # education, work, titles
    unreachable_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FlowState(Base):
    """Where a candidate is in a conversation: flow, current step and answers so far."""

    __tablename__ = "flow_states"

    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )
    flow: Mapped[str | None] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(64))
    # answers per flow: {"registration": {...}, "eligibility": {...}}; kept after /cancel
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=0)  # counts moves: enter, advance, leave
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # The only ways services move a candidate through a flow. `answers` is always the whole
    # answer dict of the flow (stored by replacement, so the JSON column sees the change).

    def enter(
        self, flow: str, step: str | None = None, *, answers: dict[str, Any] | None = None
    ) -> None:
        """Put the candidate in `flow` at `step`; `answers` replaces that flow's saved answers."""
        self.flow, self.step = flow, step
        self._save(flow, answers)

    def advance(self, step: str, *, answers: dict[str, Any] | None = None) -> None:
        """Move to `step` of the current flow; `answers` replaces the flow's saved answers."""
        assert self.flow is not None, "advance() outside a flow"
        self.step = step
        self._save(self.flow, answers)

    def leave(self, *, answers: dict[str, Any] | None = None) -> None:
        """Leave the flow; its answers stay saved (`answers` replaces them first)."""
        if self.flow is not None:
            self._save(self.flow, answers)
        self.flow, self.step = None, None

    def answers_of(self, flow: str) -> dict[str, Any]:
        """A copy of the answers saved for `flow` (edit it, then hand it back)."""
        return dict(self.answers.get(flow, {}))

    def _save(self, flow: str, answers: dict[str, Any] | None) -> None:
        if answers is not None:
            self.answers = {**self.answers, flow: answers}
        self.version += 1


class CatalogVersion(Base):
    """Every catalogue document ever loaded; the newest active one is in force."""

    __tablename__ = "catalog_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    document: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    loaded_by: Mapped[str] = mapped_column(String(64), default="cli")


class Level(Base):
    __tablename__ = "levels"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    rank: Mapped[int]
    names: Mapped[dict[str, Any]]
    training_hours: Mapped[int]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Direction(Base):
    __tablename__ = "directions"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    names: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ExamSession(Base):
    """One sitting of the exam at the site; seats are taken by a conditional UPDATE."""

    __tablename__ = "exam_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    exam_date: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    capacity: Mapped[int]
    seats_taken: Mapped[int] = mapped_column(default=0)
    levels: Mapped[list[Any]]
    registration_opens_at: Mapped[datetime]
    registration_closes_at: Mapped[datetime]
    payment_due_at: Mapped[datetime]
    payment_deadline_at: Mapped[datetime | None]  # payment_due_at + grace; None: no grace
    tickets_from_at: Mapped[datetime]
    results_at: Mapped[datetime]
    cancellation_cutoff_at: Mapped[datetime]
    waitlist_offer_hours: Mapped[int] = mapped_column(default=24)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    components: Mapped[list[SessionComponent]] = relationship(
        back_populates="session",
        cascade="all, delete-orphan",
        order_by="SessionComponent.starts_at",
    )


class SessionComponent(Base):
    """A component (theory / practical) of a session: when and where."""

    __tablename__ = "session_components"
    __table_args__ = (UniqueConstraint("session_id", "component"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id", ondelete="CASCADE"))
    component: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    room: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"zh_Hans": ..., "en": ...}

    session: Mapped[ExamSession] = relationship(back_populates="components")


class Registration(Base):
    """A candidate's registration for a level at a session, moving through `RegistrationState`
    (`bot.domain.lifecycle`)."""

    __tablename__ = "registrations"
    __table_args__ = (
        # One active registration per candidate and level, and per candidate and session.
        Index(
            "uq_registrations_active_level",
            "candidate_id",
            "level_code",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index(
            "uq_registrations_active_session",
            "candidate_id",
            "session_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_registrations_session_state", "session_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"))
    level_code: Mapped[str] = mapped_column(ForeignKey("levels.code"))
    direction_code: Mapped[str | None] = mapped_column(ForeignKey("directions.code"))
    state: Mapped[str] = mapped_column(String(24))  # a RegistrationState
    reference: Mapped[str] = mapped_column(String(16), unique=True)  # bank-transfer reference
    components: Mapped[list[Any]] = mapped_column(default=list)
    eligibility: Mapped[dict[str, Any]] = mapped_column(default=dict)  # verdict snapshot
    waitlisted_at: Mapped[datetime | None]
    offer_expires_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=0)
    # "I have read the exam-day rules" pressed on the exam reminder (reminders flow).
    rules_acknowledged_at: Mapped[datetime | None]


class EligibilityReview(Base):
    """A candidate's request for manual review of eligibility; the first staff decision wins."""

    __tablename__ = "eligibility_reviews"
    __table_args__ = (
        Index(
            "uq_eligibility_reviews_pending",
            "candidate_id",
            "level_code",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    level_code: Mapped[str] = mapped_column(String(32))
    profile: Mapped[dict[str, Any]]
    verdict: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending/approved/rejected
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)


class Payment(Base):
    """A payment or a claim of one; idempotent on (method, external_id)."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("method", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None only for a provider notice whose reference matches no registration (kept, flagged).
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id"), index=True)
    method: Mapped[str] = mapped_column(
        String(24)
    )  # telegram, stars, bank_transfer, bank_statement, provider
    external_id: Mapped[str | None] = mapped_column(String(128))  # charge / transaction id
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24))  # a PaymentStatus
    receipt_file_id: Mapped[str | None] = mapped_column(String(256))
    receipt_unique_id: Mapped[str | None] = mapped_column(String(128), index=True)
    receipt_sha256: Mapped[str | None] = mapped_column(
        String(64), index=True
    )  # the same file re-uploaded
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    needs_refund: Mapped[bool] = mapped_column(Boolean, default=False)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A staff member who chose "other reason" on this receipt and owes the typed reason.
    pending_reason_by: Mapped[int | None] = mapped_column(BigInteger)
    pending_reason_at: Mapped[datetime | None]  # when "other reason" was pressed; it expires
    # Refunds (issue 14; docs/payments.md "Refunds"): a RefundStatus (due → refunded |
    # refused), why the money goes back, the external reference of the refund (or the
    # Stars charge refunded), a refusal's reason, who asked and who decided.
    refund_status: Mapped[str | None] = mapped_column(String(16), index=True)
    refund_reason: Mapped[str | None] = mapped_column(Text)
    refund_reference: Mapped[str | None] = mapped_column(String(128))
    refund_note: Mapped[str | None] = mapped_column(Text)
    refund_requested_at: Mapped[datetime | None]
    refund_requested_by: Mapped[str | None] = mapped_column(String(64))
    refund_decided_at: Mapped[datetime | None]
    refund_decided_by: Mapped[str | None] = mapped_column(String(64))


class StatementImport(Base):
    """A bank-statement CSV sent by staff: its classified rows, waiting for confirmation."""

    __tablename__ = "statement_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str | None] = mapped_column(String(256))
    rows: Mapped[list[Any]] = mapped_column(default=list)  # classified rows, see payments_bank
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending/applied/discarded
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None]


class InboxUpdate(Base):
    """A raw Telegram update, stored before it is acknowledged (unique on update_id)."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_pending", "processed_at", "claimed_until"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # The instance working on it (PostgreSQL: the key of that instance's session-level
    # advisory lock, so a dead owner is seen at once); None when nobody holds it.
    owner: Mapped[int | None] = mapped_column(Integer)


class SetAsideUpdate(Base):
    """An update that could not be stored or kept failing, kept for staff with the reason.

    Nobody else waits for it: the webhook answers 200 and polling moves past it. The body
    is kept as received, with ID-like numbers masked, cut at 64 KiB.
    """

    __tablename__ = "set_aside_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(16))  # webhook | polling | processing
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")


class OutboxMessage(Base):
    """A message to send later (reminder, broadcast, notification), one row per message."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "not_before"),
        Index("ix_outbox_session_status", "session_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(191), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    # Who holds the lease: a fresh token per claim. A result is recorded and a send made only
    # under the token of the claim, so a worker that lost its claim (frozen past the lease)
    # can never settle or resend a row another worker took over.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    # Telegram's id of the message once sent: a staff card whose buttons no longer apply
    # (a receipt paid another way) has them taken away by this id.
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    broadcast_id: Mapped[int | None] = mapped_column(Integer)
    # What the message is about, when it is about a registration or a session: the
    # reminders planner drops pending rows that no longer apply by these (docs/reminders.md).
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("exam_sessions.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who changed what, when and why (registrations, payments, catalogue, overrides)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # "tg:<user id>", "system", "cli"
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Broadcast(Base):
    """An announcement from staff to a set of candidates, sent as one outbox row per recipient."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by: Mapped[int] = mapped_column(BigInteger)  # staff Telegram id
    chat_id: Mapped[int] = mapped_column(
        BigInteger
    )  # where it was composed; progress and report go there
    language: Mapped[str] = mapped_column(String(16))  # of the progress message
    status: Mapped[str] = mapped_column(String(16), default=BroadcastStatus.DRAFT)
    text: Mapped[str | None] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(256))  # file_id
    document: Mapped[str | None] = mapped_column(String(256))  # file_id
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"kind": ..., "value": ...}
    recipients: Mapped[int] = mapped_column(default=0)  # rows queued for sending
    skipped: Mapped[int] = mapped_column(default=0)  # known unreachable at confirmation: not sent
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    scheduled_at: Mapped[datetime | None]
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_fingerprint: Mapped[str | None] = mapped_column(
        String(64)
    )  # what the message shows now
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_by: Mapped[int | None] = mapped_column(BigInteger)
    confirmed_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]  # sending began (now, or the scheduled time)
    finished_at: Mapped[datetime | None]  # done, or cancelled with nothing left in flight


class AdmissionTicket(Base):
    """A PAID registration's admission ticket (准考证): number and seat, assigned once.

    The seat is one number per session, used in the room of each of the session's
    components. A registration moved to another session gets a new number and seat
    (the row is reissued), so a ticket printed for the old session stops verifying.
    """

    __tablename__ = "admission_tickets"
    __table_args__ = (UniqueConstraint("session_id", "seat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), unique=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"))
    ticket_number: Mapped[str] = mapped_column(String(48), unique=True)
    seat: Mapped[int]
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified_at: Mapped[datetime | None]  # "your ticket is ready" queued in the outbox


class SupersededTicket(Base):
    """A ticket number that no longer admits anyone: its registration moved to another
    session or staff corrected the identity printed on it, and a new number was issued.
    Kept so a check of the old ticket says what replaced it instead of "unknown"."""

    __tablename__ = "superseded_tickets"

    ticket_number: Mapped[str] = mapped_column(String(48), primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"))
    replaced_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(16))  # moved | corrected


class TicketCounter(Base):
    """Per-session sequences for ticket numbers (scope `number:<initial>`) and seats (`seat`).

    Moved only by `UPDATE … SET last = last + 1 … RETURNING` while the session's `seat`
    row is locked, so concurrent issuers never draw the same value.
    """

    __tablename__ = "ticket_counters"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


# --- results (issue 10; docs/results.md) ------------------------------------------------


class ResultImport(Base):
    """A results file for one session: its checked rows, staged until staff confirm.

    `status` is an `ImportStatus` (`bot.domain.scoring`): preview → confirmed, cancelled,
    or superseded when another import of the session was confirmed first. `rows` holds
    every row as checked at preview (line, registration, marks, refusal reason); nothing
    reaches `component_results` before confirmation.
    """

    __tablename__ = "result_imports"
    __table_args__ = (Index("ix_result_imports_session_status", "session_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"))
    file_name: Mapped[str] = mapped_column(String(256), default="")
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.PREVIEW)
    rows: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)  # counts shown at preview
    created_by: Mapped[str] = mapped_column(String(64))  # "tg:<staff id>" or "cli"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]


class ComponentResult(Base):
    """One component's result for one registration: a score in tenths (725 = 72.5), or a
    mark (absent / disqualified), as a `Mark` of `bot.domain.scoring`.

    Invisible to the candidate until `released_at`. Before release a new import replaces
    it; after release only a re-mark decision or an audited staff correction changes it.
    `version` counts changes; each change after the first write is in the audit log.
    """

    __tablename__ = "component_results"
    __table_args__ = (
        UniqueConstraint("registration_id", "component"),
        Index("ix_component_results_session", "session_id", "component"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"))
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"))
    component: Mapped[str] = mapped_column(String(32))
    mark: Mapped[str] = mapped_column(String(16))  # scored | absent | disqualified
    score_tenths: Mapped[int | None]  # only when scored
    import_id: Mapped[int | None] = mapped_column(ForeignKey("result_imports.id"))
    released_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    updated_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ResultRelease(Base):
    """When a session's results become visible, and how far announcing them got.

    `release_at` comes from the catalogue (`timeline.results`) unless staff chose a time
    (`chosen_by`). `status` is a `ReleaseStatus`: scheduled → releasing (notifications
    being queued, resumable) → released. One row per session.
    """

    __tablename__ = "result_releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"), unique=True)
    release_at: Mapped[datetime]
    chosen_by: Mapped[str | None] = mapped_column(String(64))  # None: the catalogue's time
    status: Mapped[str] = mapped_column(String(16), default=ReleaseStatus.SCHEDULED)
    released_at: Mapped[datetime | None]
    recipients: Mapped[int] = mapped_column(default=0)  # notifications queued
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RemarkRequest(Base):
    """A candidate's 复核 (re-marking) request for one component of one sitting.

    One per registration and component, ever (DOMAIN.md: one request per component per
    sitting). `status` is a `RemarkStatus`. `old_*` keep the result as it was when asked;
    a decision that changes the score writes `new_*` and updates the component result
    (audited); the first decision wins (conditional UPDATE on `status`).
    """

    __tablename__ = "remark_requests"
    __table_args__ = (
        UniqueConstraint("registration_id", "component"),
        Index("ix_remark_requests_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"))
    component: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=RemarkStatus.OPEN)
    fee_minor: Mapped[int | None]  # the catalogue's fee when asked, in fen; None: free
    fee_confirmed_by: Mapped[str | None] = mapped_column(String(64))
    fee_confirmed_at: Mapped[datetime | None]
    old_mark: Mapped[str] = mapped_column(String(16))
    old_score_tenths: Mapped[int | None]
    new_score_tenths: Mapped[int | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- certificates (issue 10; docs/certificates.md) ----------------------------------------


class Certificate(Base):
    """The certificate (专业技术等级证书) of a level passed through one registration.

    `number` as the evaluation organisation wrote it (or as examdesk assigned it);
    `number_key` its look-up form (`bot.domain.certificates.number_key`), unique.
    `verify_code` is the random code of the QR link and of the `verify_<code>` deep link.
    `status` is a `CertificateStatus`; a revocation keeps its date, actor and reason
    (the reason is never shown to the public).
    """

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), unique=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    level_code: Mapped[str] = mapped_column(ForeignKey("levels.code"))
    direction_code: Mapped[str | None] = mapped_column(ForeignKey("directions.code"))
    number: Mapped[str] = mapped_column(String(48))
    number_key: Mapped[str] = mapped_column(String(48), unique=True)
    issued_on: Mapped[date] = mapped_column(Date)
    verify_code: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=CertificateStatus.VALID)
    source: Mapped[str] = mapped_column(String(16))  # imported | assigned
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime | None]  # "your certificate is issued" queued
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CertificateBatch(Base):
    """A certificates file (`kind` import, `source` the file name) or an assignment by the
    catalogue's pattern (`kind` assign, `source` the session code), staged for staff.

    `status` is an `ImportStatus` (preview → confirmed | cancelled; the first decision
    wins by a conditional UPDATE). `rows` holds every row as checked at preview; nothing
    reaches `certificates` before confirmation.
    """

    __tablename__ = "certificate_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # import | assign
    source: Mapped[str] = mapped_column(String(256))
    issued_on: Mapped[date | None] = mapped_column(Date)  # assign: the issue date given
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.PREVIEW)
    rows: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]


class LookupThrottle(Base):
    """Failed certificate look-ups per client within a window, shared by every instance
    (the verification page and `/verify`). `key` is a keyed hash of the address or the
    Telegram user, never the raw value."""

    __tablename__ = "lookup_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_started_at: Mapped[datetime]
    failures: Mapped[int] = mapped_column(default=0)


# --- the staff desk (issue 14; docs/staff.md) ----------------------------------------------


class StaffRole(Base):
    """A role (`bot.domain.roles.Role`) held by a staff member; EXAMDESK_ADMIN_IDS are
    admins without a row."""

    __tablename__ = "staff_roles"

    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupportThread(Base):
    """A candidate's conversation with the exam centre ("Ask the exam centre")."""

    __tablename__ = "support_threads"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | answered
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupportMessage(Base):
    """One message of a thread: from the candidate (`in`) or from staff (`out`).

    `staff_chat_message_id` is the message in the staff chat that carries it, so a staff
    member's reply to that message finds the thread.
    """

    __tablename__ = "support_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("support_threads.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out
    text: Mapped[str | None] = mapped_column(Text)
    file_id: Mapped[str | None] = mapped_column(String(256))
    file_kind: Mapped[str | None] = mapped_column(String(16))  # photo | document
    staff_chat_message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    candidate_message_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attendance(Base):
    """A candidate checked in at the door on exam day; the first scan wins."""

    __tablename__ = "attendance"

    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"), index=True)
    checked_in_at: Mapped[datetime]
    checked_in_by: Mapped[int] = mapped_column(BigInteger)
