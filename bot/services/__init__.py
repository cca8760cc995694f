"""The services of examdesk, one module per flow, and `build_services`, which builds them all.

A service takes plain values, opens one unit of work per call, returns a small result
object or raises a `bot.services.errors.ServiceError`, and never builds user-facing text
or talks to Telegram. Handlers reach them through `context.services`; the composition root
(`bot.app`) and tests build them with `build_services(database, clock, ...)`.

A new flow adds its service here: one field on `Services`, one line in `build_services`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.crypto import Vault
from bot.services.broadcasts import BroadcastService
from bot.services.candidates import CandidateService
from bot.services.catalog import CatalogService
from bot.services.certificates import CertificateService
from bot.services.checkin import CheckinService
from bot.services.corrections import CorrectionService
from bot.services.eligibility import EligibilityService
from bot.services.find import FindService
from bot.services.inbox import InboxService
from bot.services.payments import PaymentConfig, PaymentService
from bot.services.payments_bank import StatementService
from bot.services.payments_provider import ProviderPaymentService
from bot.services.refunds import RefundService
from bot.services.registration import RegistrationService
from bot.services.registration_form import RegistrationFormService
from bot.services.remarks import RemarkService
from bot.services.reminders import RemindersService
from bot.services.results import ResultsService
from bot.services.results_release import ResultsReleaseService
from bot.services.rosters import RosterService
from bot.services.staff import StaffService
from bot.services.staff_files import StaffFileService
from bot.services.standing import StandingService
from bot.services.stats import StatsService
from bot.services.support import SupportService
from bot.services.tickets import TicketService
from bot.services.verification import VerificationService
from storage.db import Database
from storage.locks import InstanceLock, LeaderLock
from storage.models import utcnow
from storage.uow import UnitOfWork

__all__ = ["Services", "build_services"]


@dataclass
class Services:
    """Every service, built once; handlers reach them through `context.services`."""

    candidates: CandidateService
    inbox: InboxService
    catalog: CatalogService
    eligibility: EligibilityService
    registration: RegistrationService
    registration_form: RegistrationFormService
    corrections: CorrectionService
    payments: PaymentService
    statements: StatementService
    provider_payments: ProviderPaymentService
    broadcasts: BroadcastService
    tickets: TicketService
    reminders: RemindersService
    results: ResultsService
    results_release: ResultsReleaseService
    rosters: RosterService
    refunds: RefundService
    certificates: CertificateService
    remarks: RemarkService
    staff_files: StaffFileService
    standing: StandingService
    verification: VerificationService
    staff: StaffService
    checkin: CheckinService
    stats: StatsService
    support: SupportService
    find: FindService
    # Not a service: the lease on singleton work (planning, sweeps) among instances.
    leader: LeaderLock
    # Not a service: this process's presence, the owner of the updates it stores.
    instance: InstanceLock


def build_services(
    database: Database,
    clock: Callable[[], datetime] = utcnow,
    *,
    secret_key: str | None = None,
    public_url: str | None = None,
    staff_ids: frozenset[int] = frozenset(),
    site_zone: str = "Asia/Shanghai",
    paid_broadcasts: bool = False,
    payment_config: PaymentConfig | None = None,
    bot_username: Callable[[], str | None] = lambda: None,
    after_outbox_commit: Callable[[], None] | None = None,
) -> Services:
    """All services on one database. Without `secret_key` the vault gets a throw-away key:
    fine for callers that never store personal data (catalogue loading, some tests)."""

    def uow() -> UnitOfWork:
        return UnitOfWork(database.sessions, after_outbox_commit)

    vault = Vault(secret_key or secrets.token_urlsafe(32))
    catalog = CatalogService(uow, clock)
    registration = RegistrationService(uow, clock, catalog=catalog)
    instance = InstanceLock(database.engine)
    staff = StaffService(uow, clock, staff_ids)  # one role check for every service
    staff_chat_id = (payment_config or PaymentConfig()).staff_chat_id
    tickets = TicketService(
        uow, clock, catalog, vault, public_url=public_url, bot_username=bot_username
    )
    return Services(
        candidates=CandidateService(uow, clock),
        inbox=InboxService(uow, clock, vault, instance),
        catalog=catalog,
        eligibility=EligibilityService(uow, clock, catalog),
        registration=registration,
        registration_form=RegistrationFormService(uow, clock, catalog, registration, vault),
        corrections=CorrectionService(uow, clock, vault),
        payments=PaymentService(uow, clock, catalog, payment_config),
        statements=StatementService(uow, clock, catalog, payment_config),
        provider_payments=ProviderPaymentService(uow, clock, catalog, payment_config),
        broadcasts=BroadcastService(
            uow, clock, staff=staff, site_zone=site_zone, paid_allowed=paid_broadcasts
        ),
        tickets=tickets,
        reminders=RemindersService(uow, clock, catalog),
        results=ResultsService(uow, clock, catalog, vault),
        results_release=ResultsReleaseService(uow, clock, catalog, staff_chat_id=staff_chat_id),
        certificates=CertificateService(
            uow, clock, catalog, vault, public_url=public_url, bot_username=bot_username
        ),
        remarks=RemarkService(uow, clock, catalog),
        staff_files=StaffFileService(uow, clock),
        standing=StandingService(uow, clock, catalog),
        verification=VerificationService(uow, clock, vault, site_zone=site_zone),
        staff=staff,
        checkin=CheckinService(uow, clock, catalog, vault, tickets),
        stats=StatsService(
            uow,
            clock,
            catalog,
            site_zone=site_zone,
            staff_chat_id=staff_chat_id,
        ),
        support=SupportService(uow, clock, staff_chat_id=staff_chat_id),
        find=FindService(uow, clock, staff, vault),
        refunds=RefundService(uow, clock, catalog, staff),
        rosters=RosterService(uow, clock, catalog, vault, staff, site_zone=site_zone),
        leader=LeaderLock(database.engine),
        instance=instance,
    )
