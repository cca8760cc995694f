"""Repositories: get, list and add rows for the services. They never commit.

The unit of work (`storage.uow`) owns the transaction; a repository only shapes queries.
Statements that must be atomic across instances (insert-or-ignore, conditional updates,
claims) are written here once, for both SQLite and PostgreSQL.

One module per aggregate; every public name is re-exported here, so
`from storage.repositories import …` is the import to use:

- `candidates`: `CandidateRepository`, `FlowStateRepository`
- `inbox`: `InboxRepository`
- `set_aside`: `SetAsideRepository` (updates kept for staff)
- `outbox`: `OutboxRepository`
- `catalog`: `CatalogRepository`, `SessionRepository` (catalogue and exam sessions)
- `audit`: `AuditRepository`
- `registrations`: `RegistrationRepository`, `ReviewRepository` (registrations and
  eligibility reviews)
- `payments`: `PaymentRepository`, `StatementImportRepository`
- `tickets`: `TicketRepository`
- `broadcasts`: `BroadcastRepository`
- `reminders`: `ReminderRepository`
- `results`: `ResultRepository` (result imports, component results, releases)
- `rosters`: `RosterRepository` (rosters, sign-in sheets, finance exports; read only)
- `checkin`: `CheckinRepository` (attendance at the door)
- `certificates`: `CertificateRepository` (certificates, their number counter, staged
  batches)
- `remarks`: `RemarkRepository` (re-mark requests and the decision's rescore)
- `staff`: `StaffRepository` (staff roles)
- `find`: `FindRepository`, `SearchParts` (finding a candidate, their card; read only)
- `support`: `SupportRepository` (support threads and their messages)
- `standing`: `StandingRepository` (a candidate's certificates, read only)
- `stats`: `StatsRepository` (the day's figures, read only)
- `verification`: `VerificationRepository` (certificate look-ups, the look-up throttle)
- `_sql`: private helpers shared by the modules above (`_is_postgresql`, `_insert`,
  `_is_unique_violation`, `_not_held`)

The states rows are filtered by (which registrations are active, which broadcasts hold
their rows, …) come from `bot.domain.lifecycle`.
"""

from __future__ import annotations

from storage.repositories.audit import AuditRepository
from storage.repositories.broadcasts import BroadcastRepository
from storage.repositories.candidates import CandidateRepository, FlowStateRepository
from storage.repositories.catalog import CatalogRepository, SessionRepository
from storage.repositories.certificates import CertificateRepository
from storage.repositories.checkin import CheckinRepository
from storage.repositories.find import FindRepository, SearchParts
from storage.repositories.inbox import InboxRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.payments import PaymentRepository, StatementImportRepository
from storage.repositories.registrations import RegistrationRepository, ReviewRepository
from storage.repositories.remarks import RemarkRepository
from storage.repositories.reminders import ReminderRepository
from storage.repositories.results import ResultRepository
from storage.repositories.rosters import RosterRepository
from storage.repositories.set_aside import SetAsideRepository
from storage.repositories.staff import StaffRepository
from storage.repositories.standing import StandingRepository
from storage.repositories.stats import StatsRepository
from storage.repositories.support import SupportRepository
from storage.repositories.tickets import TicketRepository
from storage.repositories.verification import VerificationRepository

__all__ = [
    "AuditRepository",
    "BroadcastRepository",
    "CandidateRepository",
    "CatalogRepository",
    "CertificateRepository",
    "CheckinRepository",
    "FindRepository",
    "FlowStateRepository",
    "InboxRepository",
    "OutboxRepository",
    "PaymentRepository",
    "RegistrationRepository",
    "RemarkRepository",
    "ReminderRepository",
    "ResultRepository",
    "ReviewRepository",
    "RosterRepository",
    "SearchParts",
    "SessionRepository",
    "SetAsideRepository",
    "StaffRepository",
    "StandingRepository",
    "StatementImportRepository",
    "StatsRepository",
    "SupportRepository",
    "TicketRepository",
    "VerificationRepository",
]
