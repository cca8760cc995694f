"""Certificates flow (证书, docs/certificates.md): numbers imported or assigned, the holder's
notice and record, revocation.

Entry points (`CertificateService`):

* `preview_import(file_name, data, staff_id)`: reads a CSV or XLSX file (registration
  reference or ticket number, certificate number, issue date: `certificates_file`),
  checks every row and stages the batch; returns the counts and each refused row with its
  line and a reason.
* `preview_assign(session_code, issued_on, staff_id)`: numbers by the catalogue's
  `certificates.number_format` for every registration of the session whose level was
  passed there and that has no certificate yet; staged the same way.
* `confirm(batch_id, staff_id)` / `cancel(batch_id, staff_id)`: the first decision on a
  batch wins. Confirming writes the certificates (each row checked again), gives each a
  `verify_code` and tells each holder once (`CERTIFICATE_ISSUED`, outbox key
  `certificate:<id>`). A row already recorded with the same number is left as it is, so
  confirming the same file twice changes nothing and tells nobody twice.
* `revoke(number, reason, staff_id)`: audited with the reason; the holder is told
  (`CERTIFICATE_REVOKED`, with the reason: the holder may know it, the public never).
* `candidate_certificates(telegram_id)`: what `/certificate` shows, and for a level passed
  without a certificate yet, when it is expected (catalogue `timeline.certificates`).

`certificate_link(verify_code, public_url=…, bot_username=…)` is the verification link the
notice and the PDF's QR code both carry.

A level passed counts through `ScoringRules.standing` on released results; passed with
carry-over across two registrations, the certificate belongs to the registration of the
later sitting. A staged batch is a `certificate_batches` row with the checked rows; the
first decision wins (a conditional UPDATE of its status); previews and decisions are
audited (entity `certificate_batch`).

Refusal reasons (codes; handlers and the CLI word them): no_reference, unknown_reference,
number_missing, number_format, date_missing, date_invalid, not_passed, passed_elsewhere
(`reference`), issued_before_pass (`passed_on`), other_number (`number`), number_taken,
duplicate_number (`lines`), duplicate_registration (`lines`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.crypto import Vault
from bot.domain.catalog import Catalog
from bot.domain.certificates import CertificateStatus, new_verify_code, number_key
from bot.domain.scoring import ImportStatus, ScoringRules, SittingResult
from bot.services.catalog import CatalogService
from bot.services.certificates_file import CertificateLine, read_certificates_file
from bot.services.errors import (
    AlreadyDecided,
    InvalidAnswer,
    NotFound,
    ServiceError,
)
from bot.services.file_rows import RowRefused as _Refused
from bot.services.file_rows import identify
from bot.services.notify import Template, audit, notify_candidate
from bot.services.tickets import masked_id
from storage.models import (
    Candidate,
    Certificate,
    CertificateBatch,
    ExamSession,
    Registration,
)
from storage.repositories.certificates import COUNTER_SCOPE
from storage.uow import UnitOfWork, UowFactory

ENTITY = "certificate"  # the audit log's entity of a certificate
BATCH = "certificate_batch"  # …and of a staged import or assignment
MAX_REASON = 500
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def certificate_link(verify_code: str, *, public_url: str | None, bot_username: str | None) -> str:
    """The verification link of a certificate: the public page when there is one, else the
    bot's `verify_<code>` deep link; "" when neither is known."""
    if public_url:
        return f"{public_url.rstrip('/')}/certificates/verify/{verify_code}"
    if bot_username:
        return f"https://t.me/{bot_username}?start=verify_{verify_code}"
    return ""


class AlreadyRevoked(ServiceError):
    """The certificate `number` was revoked already, at `revoked_at` (aware UTC)."""

    def __init__(self, number: str, revoked_at: datetime) -> None:
        super().__init__(number, revoked_at)
        self.number = number
        self.revoked_at = revoked_at


class NoNumberFormat(ServiceError):
    """The catalogue has no `certificates.number_format`: numbers only come from an import."""


@dataclass(frozen=True, slots=True)
class RefusedRow:
    line: int | None  # the file's line; None in an assignment
    code: str  # the reference or ticket number as given
    reason: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchPreview:
    batch_id: int
    kind: str  # import | assign
    source: str  # the file name, or the session code
    rows: int  # rows read (import), registrations that passed here (assign)
    new: int  # certificates confirming would write
    unchanged: int  # already recorded with that number (or, assigning, with any)
    refused: tuple[RefusedRow, ...]
    issued_on: date | None = None  # the assignment's issue date


@dataclass(frozen=True, slots=True)
class BatchConfirmed:
    batch_id: int
    kind: str
    added: int
    unchanged: int
    skipped: int  # rows that no longer fit at confirmation (changed since the preview)


@dataclass(frozen=True, slots=True)
class Revoked:
    number: str
    level_code: str
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """One certificate as its holder sees it (/certificate and the PDF record)."""

    number: str
    level_code: str
    level_names: dict[str, str]
    direction_names: dict[str, str] | None
    occupation_names: dict[str, str]
    organisation_names: dict[str, str]
    issued_on: date
    status: str
    revoked_at: datetime | None
    holder_name: str
    id_doc_type: str | None
    id_number_masked: str | None
    link: str
    timezone: str

    @property
    def revoked(self) -> bool:
        return self.status == CertificateStatus.REVOKED


@dataclass(frozen=True, slots=True)
class Awaited:
    """A level passed with no certificate yet: expected about `expected_at` (None: the
    session is no longer in the catalogue)."""

    level_code: str
    session_code: str
    expected_at: datetime | None
    timezone: str


@dataclass(frozen=True, slots=True)
class CandidateCertificates:
    certificates: tuple[CertificateRecord, ...]
    awaited: tuple[Awaited, ...]


@dataclass(frozen=True, slots=True)
class _Pass:
    registration: Registration
    session: ExamSession
    passed_on: date  # the pass date in the session's zone


class CertificateService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        vault: Vault,
        *,
        public_url: str | None = None,
        bot_username: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._vault = vault
        self._public_url = public_url
        self._bot_username = bot_username

    def link(self, verify_code: str) -> str:
        return certificate_link(
            verify_code, public_url=self._public_url, bot_username=self._bot_username()
        )

    # --- import

    async def preview_import(
        self, file_name: str, data: bytes, staff_id: int | None
    ) -> BatchPreview:
        """Read and check the file; stage it. Raises ResultsFileInvalid, CatalogMissing."""
        catalog = await self._catalog.current()
        lines = read_certificates_file(file_name, data)
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            checker = _Checker(uow, ScoringRules.from_catalog(catalog), now.date())
            rows = [await self._check_row(uow, checker, catalog, line) for line in lines]
            _refuse_duplicates(rows, "number_key", "duplicate_number")
            _refuse_duplicates(rows, "registration_id", "duplicate_registration")
            entry = await _stage(uow, actor, now, "import", file_name[:256], rows, None)
            await uow.commit()
            return _preview(entry)

    async def _check_row(
        self, uow: UnitOfWork, checker: _Checker, catalog: Catalog, line: CertificateLine
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "line": line.line,
            "code": line.ticket or line.reference,
            "registration_id": None,
            "number": line.number,
            "number_key": None,
            "issued_on": None,
            "status": "refused",
            "reason": None,
            "params": {},
        }
        try:
            registration = await identify(uow, line.ticket, line.reference)
            row["registration_id"] = registration.id
            if not line.number:
                raise _Refused("number_missing")
            if not catalog.certificates.number_is_valid(line.number):
                raise _Refused("number_format")
            row["number_key"] = number_key(line.number)
            issued_on = _issue_date(line.issued)
            row["issued_on"] = issued_on.isoformat()
            await checker.check_pass(registration, issued_on)
            row["status"] = await checker.check_number(registration, row["number_key"])
        except _Refused as refused:
            row["reason"], row["params"] = refused.reason, refused.params
            row["status"] = "refused"
        return row

    # --- assign by pattern

    async def preview_assign(
        self, session_code: str, issued_on: date, staff_id: int | None
    ) -> BatchPreview:
        """Who gets a number. Raises NotFound (session), NoNumberFormat, CatalogMissing."""
        catalog = await self._catalog.current()
        if catalog.certificates.number_format is None:
            raise NoNumberFormat()
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            session = await uow.exam_sessions.get_by_code(session_code)
            if session is None:
                raise NotFound("session")
            checker = _Checker(uow, ScoringRules.from_catalog(catalog), now.date())
            rows = []
            for registration, _candidate, _ticket in await uow.results.seated(session.id):
                row = await self._assign_row(checker, registration, issued_on)
                if row is not None:
                    rows.append(row)
            entry = await _stage(uow, actor, now, "assign", session.code, rows, issued_on)
            await uow.commit()
            return _preview(entry)

    @staticmethod
    async def _assign_row(
        checker: _Checker, registration: Registration, issued_on: date
    ) -> dict[str, Any] | None:
        """The registration's row, or None when its level was not passed through it."""
        row: dict[str, Any] = {
            "line": None,
            "code": registration.reference,
            "registration_id": registration.id,
            "issued_on": issued_on.isoformat(),
            "status": "new",
            "reason": None,
            "params": {},
        }
        try:
            await checker.check_pass(registration, issued_on)
        except _Refused as refused:
            if refused.reason != "issued_before_pass":
                return None
            row.update(status="refused", reason=refused.reason, params=refused.params)
            return row
        certificate = await checker.certificate_of(registration.id)
        if certificate is not None:
            row["status"] = "unchanged"
        return row

    # --- decisions

    async def confirm(self, batch_id: int, staff_id: int | None) -> BatchConfirmed:
        """Write the batch's certificates and tell their holders. Raises NotFound,
        AlreadyDecided, NoNumberFormat (an assignment after the catalogue lost its format)."""
        catalog = await self._catalog.current()
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            batch = await _decide(uow, batch_id, ImportStatus.CONFIRMED, actor, now)
            checker = _Checker(uow, ScoringRules.from_catalog(catalog), now.date())
            session = None
            if batch.kind == "assign":
                if catalog.certificates.number_format is None:
                    raise NoNumberFormat()
                session = await uow.exam_sessions.get_by_code(batch.source)
                if session is None:
                    raise NotFound("session")
                # Two assignments of one session wait for each other here: the second then
                # finds the certificates the first wrote and skips those registrations.
                await uow.certificates.lock_counter(session.id)
            counts: dict[str, int] = defaultdict(int)
            for row in batch.rows:
                if row["status"] == "refused":
                    continue
                outcome = await self._write(uow, checker, catalog, session, row, actor, now)
                counts[outcome] += 1
            result = BatchConfirmed(
                batch_id, batch.kind, counts["added"], counts["unchanged"], counts["skipped"]
            )
            audit(
                uow,
                actor,
                BATCH,
                batch.id,
                "confirmed",
                now,
                from_state="preview",
                to_state="confirmed",
                details={"batch_id": batch_id, **counts},
            )
            await uow.commit()
            return result

    async def cancel(self, batch_id: int, staff_id: int | None) -> None:
        """Drop a staged batch. Raises NotFound, AlreadyDecided."""
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            batch = await _decide(uow, batch_id, ImportStatus.CANCELLED, actor, now)
            audit(
                uow,
                actor,
                BATCH,
                batch.id,
                "cancelled",
                now,
                from_state="preview",
                to_state="cancelled",
                details={"batch_id": batch_id},
            )
            await uow.commit()

    async def _write(
        self,
        uow: UnitOfWork,
        checker: _Checker,
        catalog: Catalog,
        session: ExamSession | None,
        row: dict[str, Any],
        actor: str,
        now: datetime,
    ) -> str:
        """One staged row, checked again: added, unchanged or skipped."""
        registration = await uow.registrations.get(row["registration_id"])
        if registration is None:
            return "skipped"
        issued_on = date.fromisoformat(row["issued_on"])
        existing = await checker.certificate_of(registration.id)
        if existing is not None:
            same = session is not None or existing.number_key == row["number_key"]
            return "unchanged" if same else "skipped"
        try:
            await checker.check_pass(registration, issued_on)
        except _Refused:
            return "skipped"
        if session is None:
            number = row["number"]
        else:
            number = await _draw_number(uow, catalog, session, registration, issued_on)
        certificate = Certificate(
            registration_id=registration.id,
            candidate_id=registration.candidate_id,
            level_code=registration.level_code,
            direction_code=registration.direction_code,
            number=number,
            number_key=number_key(number),
            issued_on=issued_on,
            verify_code=new_verify_code(),
            status=CertificateStatus.VALID,
            source="imported" if session is None else "assigned",
            notified_at=now,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        if not await uow.certificates.add(certificate):
            return "skipped"  # the number was taken (or the registration got one) meanwhile
        audit(
            uow,
            actor,
            ENTITY,
            certificate.id,
            "issued",
            now,
            to_state=CertificateStatus.VALID,
            details={"number": number, "registration_id": registration.id},
        )
        await notify_candidate(
            uow,
            registration.candidate_id,
            now,
            key=f"certificate:{certificate.id}",
            template=Template.CERTIFICATE_ISSUED,
            params={
                "level_code": certificate.level_code,
                "number": number,
                "issued_on": issued_on.isoformat(),
                "link": self.link(certificate.verify_code),
            },
        )
        return "added"

    # --- revocation

    async def revoke(self, number: str, reason: str, staff_id: int | None) -> Revoked:
        """Revoke a certificate, with the reason (audited, told to the holder). Raises
        NotFound, AlreadyRevoked, InvalidAnswer (no reason)."""
        reason = reason.strip()
        if not reason:
            raise InvalidAnswer("revoke", "reason_missing")
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            certificate = await uow.certificates.get_by_number_key(number_key(number))
            if certificate is None:
                raise NotFound(ENTITY)
            if certificate.status == CertificateStatus.REVOKED:
                assert certificate.revoked_at is not None
                raise AlreadyRevoked(certificate.number, certificate.revoked_at)
            if not await uow.certificates.revoke(certificate.id, actor, reason[:MAX_REASON], now):
                certificate = await uow.certificates.get_by_number_key(certificate.number_key)
                assert certificate is not None and certificate.revoked_at is not None
                raise AlreadyRevoked(certificate.number, certificate.revoked_at)
            audit(
                uow,
                actor,
                ENTITY,
                certificate.id,
                "revoked",
                now,
                from_state=CertificateStatus.VALID,
                to_state=CertificateStatus.REVOKED,
                reason=reason[:MAX_REASON],
                details={"number": certificate.number},
            )
            registration = await uow.registrations.get(certificate.registration_id)
            assert registration is not None, "a certificate without its registration"
            session = await uow.exam_sessions.get(registration.session_id)
            await notify_candidate(
                uow,
                certificate.candidate_id,
                now,
                key=f"certificate:{certificate.id}:revoked",
                template=Template.CERTIFICATE_REVOKED,
                params={
                    "level_code": certificate.level_code,
                    "number": certificate.number,
                    "revoked_at": now.isoformat(),
                    "timezone": session.timezone if session else "UTC",
                    "reason": reason[:MAX_REASON],
                },
            )
            await uow.commit()
            return Revoked(certificate.number, certificate.level_code, now)

    # --- the holder's view

    async def candidate_certificates(self, telegram_id: int) -> CandidateCertificates:
        """The candidate's certificates (revoked ones too), and the levels passed that still
        wait for one."""
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                return CandidateCertificates((), ())
            records = tuple(
                self._record(catalog, candidate, certificate, session)
                for certificate, session in await uow.certificates.for_candidate(candidate.id)
            )
            checker = _Checker(uow, ScoringRules.from_catalog(catalog), self._clock().date())
            have = {r.level_code for r in records}
            awaited = []
            for level, passed in (await checker.passes(candidate.id)).items():
                if level in have:
                    continue
                awaited.append(
                    Awaited(
                        level,
                        passed.session.code,
                        _certificates_at(catalog, passed.session.code),
                        passed.session.timezone,
                    )
                )
        return CandidateCertificates(records, tuple(awaited))

    def _record(
        self,
        catalog: Catalog,
        candidate: Candidate,
        certificate: Certificate,
        session: ExamSession,
    ) -> CertificateRecord:
        direction = None
        if certificate.direction_code:
            direction = _names(lambda: catalog.direction(certificate.direction_code or ""))
        return CertificateRecord(
            number=certificate.number,
            level_code=certificate.level_code,
            level_names=_names(lambda: catalog.level(certificate.level_code))
            or {"en": certificate.level_code},
            direction_names=direction,
            occupation_names=catalog.occupation.name.model_dump(),
            organisation_names=catalog.evaluation_organisation.name.model_dump(),
            issued_on=certificate.issued_on,
            status=certificate.status,
            revoked_at=certificate.revoked_at,
            holder_name=candidate.full_name or candidate.first_name,
            id_doc_type=candidate.id_doc_type,
            id_number_masked=self._masked_id(candidate),
            link=self.link(certificate.verify_code),
            timezone=session.timezone,
        )

    def _masked_id(self, candidate: Candidate) -> str | None:
        return masked_id(self._vault, candidate) or None


# --- checks against the database -------------------------------------------------------


class _Checker:
    """Passes and certificates looked up once per candidate within one unit of work."""

    def __init__(self, uow: UnitOfWork, rules: ScoringRules, today: date) -> None:
        self._uow = uow
        self._rules = rules
        self._today = today
        self._passes: dict[int, dict[str, _Pass]] = {}

    async def passes(self, candidate_id: int) -> dict[str, _Pass]:
        """Level code → how it was passed: the registration of the later sitting of the
        pass, and the pass date."""
        if candidate_id in self._passes:
            return self._passes[candidate_id]
        owners: dict[int, tuple[Registration, ExamSession]] = {}
        by_level: dict[str, list[SittingResult]] = defaultdict(list)
        for result, registration, session in await self._uow.results.for_candidate(candidate_id):
            sitting = SittingResult.stored(
                result.component,
                result.mark,
                result.score_tenths,
                session.exam_date,
                result.released_at,
            )
            owners[id(sitting)] = (registration, session)
            by_level[registration.level_code].append(sitting)
        found: dict[str, _Pass] = {}
        for level, sittings in by_level.items():
            standing = self._rules.standing(sittings, self._today)
            if not standing.passed or standing.passed_at is None:
                continue
            results = [c.result for c in standing.components if c.result is not None]
            later = max(results, key=lambda r: (r.sat_on, r.released_at))
            registration, session = owners[id(later)]
            passed_on = standing.passed_at.astimezone(ZoneInfo(session.timezone)).date()
            found[level] = _Pass(registration, session, passed_on)
        self._passes[candidate_id] = found
        return found

    async def check_pass(self, registration: Registration, issued_on: date) -> None:
        passed = (await self.passes(registration.candidate_id)).get(registration.level_code)
        if passed is None:
            raise _Refused("not_passed")
        if passed.registration.id != registration.id:
            raise _Refused("passed_elsewhere", reference=passed.registration.reference)
        if issued_on < passed.passed_on:
            raise _Refused("issued_before_pass", passed_on=passed.passed_on.isoformat())

    async def certificate_of(self, registration_id: int) -> Certificate | None:
        found = await self._uow.certificates.by_registrations([registration_id])
        return found.get(registration_id)

    async def check_number(self, registration: Registration, key: str) -> str:
        """new, or unchanged (recorded already with that number); refuses a registration
        recorded with another number and a number another certificate has."""
        mine = await self.certificate_of(registration.id)
        if mine is not None:
            if mine.number_key == key:
                return "unchanged"
            raise _Refused("other_number", number=mine.number)
        if await self._uow.certificates.get_by_number_key(key) is not None:
            raise _Refused("number_taken")
        return "new"


async def _draw_number(
    uow: UnitOfWork,
    catalog: Catalog,
    session: ExamSession,
    registration: Registration,
    issued_on: date,
) -> str:
    """The next number of the session's counter that no certificate has (an imported one
    may already use a number of the pattern)."""
    while True:
        seq = await uow.tickets.next_value(session.id, COUNTER_SCOPE)
        number = catalog.certificates.assign_number(
            session=session.code, level=registration.level_code, year=issued_on.year, seq=seq
        )
        if await uow.certificates.get_by_number_key(number_key(number)) is None:
            return number


async def _decide(
    uow: UnitOfWork, batch_id: int, status: ImportStatus, actor: str, now: datetime
) -> CertificateBatch:
    """Take the first decision on a staged batch. Raises NotFound, AlreadyDecided."""
    batch = await uow.certificates.get_batch(batch_id)
    if batch is None:
        raise NotFound(BATCH)
    if not await uow.certificates.decide_batch(batch_id, status, actor, now):
        batch = await uow.certificates.get_batch(batch_id)
        assert batch is not None
        raise AlreadyDecided(_staff_id(batch.decided_by), batch.status)
    return batch


async def _stage(
    uow: UnitOfWork,
    actor: str,
    now: datetime,
    kind: str,
    source: str,
    rows: list[dict[str, Any]],
    issued_on: date | None,
) -> CertificateBatch:
    batch = CertificateBatch(
        kind=kind,
        source=source,
        issued_on=issued_on,
        status=ImportStatus.PREVIEW,
        rows=rows,
        created_by=actor,
        created_at=now,
    )
    uow.certificates.add_batch(batch)
    await uow.flush()
    audit(
        uow,
        actor,
        BATCH,
        batch.id,
        "previewed",
        now,
        to_state=ImportStatus.PREVIEW,
        details={"kind": kind, "source": source, "rows": len(rows)},
    )
    return batch


def _issue_date(text: str) -> date:
    """YYYY-MM-DD; an Excel date cell arrives as YYYY-MM-DDT00:00:00."""
    if not text:
        raise _Refused("date_missing")
    day, _, clock = text.partition("T")
    if clock.strip("0:") or not _ISO_DAY.fullmatch(day):
        raise _Refused("date_invalid", value=text)
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise _Refused("date_invalid", value=text) from None


def _refuse_duplicates(rows: list[dict[str, Any]], key: str, reason: str) -> None:
    """Refuse every row sharing `key` with another: which one is right is for staff to say."""
    lines: dict[Any, list[int]] = defaultdict(list)
    for row in rows:
        if row.get(key) is not None:
            lines[row[key]].append(row["line"])
    for row in rows:
        same = lines.get(row.get(key), [])
        if len(same) > 1:
            others = [line for line in same if line != row["line"]]
            row.update(status="refused", reason=reason, params={"lines": others})


# --- small helpers ----------------------------------------------------------------------


def _preview(batch: CertificateBatch) -> BatchPreview:
    rows = batch.rows
    return BatchPreview(
        batch_id=batch.id,
        kind=batch.kind,
        source=batch.source,
        rows=len(rows),
        new=sum(1 for r in rows if r["status"] == "new"),
        unchanged=sum(1 for r in rows if r["status"] == "unchanged"),
        refused=tuple(
            RefusedRow(r["line"], r["code"], r["reason"], r["params"])
            for r in rows
            if r["status"] == "refused"
        ),
        issued_on=batch.issued_on,
    )


def _certificates_at(catalog: Catalog, session_code: str) -> datetime | None:
    try:
        return catalog.session_timeline(session_code).certificates_at
    except (KeyError, ValueError):
        return None


def _names(lookup: Callable[[], Any]) -> dict[str, str] | None:
    try:
        return dict(lookup().name.model_dump())
    except (KeyError, ValueError):
        return None


def _actor(staff_id: int | None) -> str:
    return "cli" if staff_id is None else f"tg:{staff_id}"


def _staff_id(actor: str | None) -> int | None:
    if actor and actor.startswith("tg:") and actor[3:].lstrip("-").isdigit():
        return int(actor[3:])
    return None
