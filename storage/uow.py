"""Unit of work: one transaction per service call.

    async with uow_factory() as uow:
        ...
        await uow.commit()

Leaving the block without `commit()` rolls back. Repositories hang off the unit of work
and share its session; they never commit. Services reach the database only through the
repositories (`session` is theirs, and the tests'). A unit of work that queued an outbox
row (`queued`, set by `bot.services.notify`) calls `after_outbox_commit` once committed,
so the sender looks at the table at once instead of at its next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.repositories import (
    AuditRepository,
    BroadcastRepository,
    CandidateRepository,
    CatalogRepository,
    CertificateRepository,
    CheckinRepository,
    FindRepository,
    FlowStateRepository,
    InboxRepository,
    OutboxRepository,
    PaymentRepository,
    RegistrationRepository,
    RemarkRepository,
    ReminderRepository,
    ResultRepository,
    ReviewRepository,
    RosterRepository,
    SessionRepository,
    SetAsideRepository,
    StaffRepository,
    StandingRepository,
    StatementImportRepository,
    StatsRepository,
    SupportRepository,
    TicketRepository,
    VerificationRepository,
)


class UnitOfWork:
    """A database transaction and the repositories that work inside it."""

    session: AsyncSession

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        after_outbox_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._after_outbox_commit = after_outbox_commit
        self.queued = False  # an outbox row was written in this transaction

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self.candidates = CandidateRepository(self.session)
        self.flows = FlowStateRepository(self.session)
        self.inbox = InboxRepository(self.session)
        self.set_aside = SetAsideRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.catalog = CatalogRepository(self.session)
        self.audit = AuditRepository(self.session)
        self.reviews = ReviewRepository(self.session)
        self.exam_sessions = SessionRepository(self.session)  # exam sessions, not the DB one
        self.registrations = RegistrationRepository(self.session)
        self.reminders = ReminderRepository(self.session)
        self.broadcasts = BroadcastRepository(self.session)
        self.payments = PaymentRepository(self.session)
        self.statements = StatementImportRepository(self.session)
        self.tickets = TicketRepository(self.session)
        self.results = ResultRepository(self.session)
        self.rosters = RosterRepository(self.session)
        self.certificates = CertificateRepository(self.session)
        self.standing = StandingRepository(self.session)
        self.remarks = RemarkRepository(self.session)
        self.verification = VerificationRepository(self.session)
        self.staff = StaffRepository(self.session)
        self.checkin = CheckinRepository(self.session)
        self.find = FindRepository(self.session)
        self.stats = StatsRepository(self.session)
        self.support = SupportRepository(self.session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()
        if self.queued and self._after_outbox_commit is not None:
            self._after_outbox_commit()
        self.queued = False

    async def flush(self) -> None:
        await self.session.flush()


UowFactory = Callable[[], UnitOfWork]
