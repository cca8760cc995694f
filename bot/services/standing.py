"""Standing: what examdesk itself knows a candidate has achieved (docs/results.md, "Next
level, status and reminders").

Entry points:

* `passes_here(uow, catalog, candidate_id, today)`: the levels passed here, by released
  results (`ScoringRules.standing`), each with its pass date (the release day of the
  later result, in its session's zone) and the registration of that later sitting. A
  level whose certificate was revoked does not count. The eligibility engine reads it
  inside its own unit of work, so it takes one.
* `StandingService.for_candidate(telegram_id)`: per registration, what `/status` adds to
  its card: the released results (score or mark, passed or not) or when they come out,
  the level passed with this sitting, and the certificate (number and issue date, revoked
  with the date, or about when it is expected).

Read only: nothing here writes, queues or audits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.domain.catalog import Catalog
from bot.domain.certificates import CertificateStatus
from bot.domain.lifecycle import RegistrationState
from bot.domain.scoring import Outcome, ScoringRules, SittingResult
from bot.services.catalog import CatalogService
from storage.models import ComponentResult, ExamSession, Registration
from storage.repositories.standing import CertificateState
from storage.uow import UnitOfWork, UowFactory

__all__ = [
    "CertificateState",
    "ComponentLine",
    "LevelPass",
    "RegistrationStanding",
    "StandingService",
    "passes_here",
]


@dataclass(frozen=True, slots=True)
class LevelPass:
    """A level passed here: held from `passed_on` for the next level's routes."""

    level: str
    passed_on: date  # release day of the later result, in its session's zone
    registration_id: int  # the registration of the later sitting (the certificate's)


@dataclass(frozen=True, slots=True)
class ComponentLine:
    component: str
    names: dict[str, str]  # the component's names by language
    mark: str  # a `Mark`: scored / absent / disqualified
    score: Decimal | None
    passed: bool


@dataclass(frozen=True, slots=True)
class RegistrationStanding:
    """What `/status` shows of one registration's results and certificate."""

    registration_id: int
    timezone: str
    results: tuple[ComponentLine, ...] = ()  # released only, in catalogue order
    results_at: datetime | None = None  # not released yet: when they come out
    passed_on: date | None = None  # the level was passed with this sitting
    certificate: CertificateState | None = None
    certificates_at: datetime | None = None  # passed, no certificate yet: expected about


@dataclass(frozen=True, slots=True)
class _Row:
    result: ComponentResult
    registration: Registration
    session: ExamSession


def _sitting(row: _Row) -> SittingResult:
    r = row.result
    return SittingResult.stored(
        r.component, r.mark, r.score_tenths, row.session.exam_date, r.released_at
    )


def _level_passes(
    rules: ScoringRules, rows: list[_Row], today: date
) -> dict[str, tuple[date, _Row]]:
    """Level code → (pass date, the row of the later result), from released results."""
    by_level: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        if row.result.released_at is not None:
            by_level[row.registration.level_code].append(row)
    passes: dict[str, tuple[date, _Row]] = {}
    for level, level_rows in by_level.items():
        standing = rules.standing([_sitting(r) for r in level_rows], today)
        if not standing.passed or standing.passed_at is None:
            continue
        used = {_sitting_key(c.result) for c in standing.components if c.result is not None}
        later = max(
            (r for r in level_rows if _sitting_key(_sitting(r)) in used),
            key=lambda r: (r.result.released_at, r.session.exam_date),
        )
        zone = ZoneInfo(later.session.timezone)
        passes[level] = (standing.passed_at.astimezone(zone).date(), later)
    return passes


def _sitting_key(result: SittingResult) -> tuple[str, date, datetime | None]:
    # One registration per level and sitting, so component and exam date name the result.
    return (result.component, result.sat_on, result.released_at)


async def _rows(uow: UnitOfWork, candidate_id: int) -> list[_Row]:
    return [_Row(*row) for row in await uow.results.for_candidate(candidate_id)]


def _revoked(certificates: list[CertificateState]) -> set[int]:
    return {c.registration_id for c in certificates if c.status == CertificateStatus.REVOKED}


async def passes_here(
    uow: UnitOfWork, catalog: Catalog, candidate_id: int, today: date
) -> dict[str, LevelPass]:
    """The levels the candidate passed here (released results), by level code."""
    rules = ScoringRules.from_catalog(catalog)
    revoked = _revoked(await uow.standing.certificates_for_candidate(candidate_id))
    return {
        level: LevelPass(level, on, row.registration.id)
        for level, (on, row) in _level_passes(rules, await _rows(uow, candidate_id), today).items()
        if row.registration.id not in revoked
    }


class StandingService:
    def __init__(
        self, uow: UowFactory, clock: Callable[[], datetime], catalog: CatalogService
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog

    async def for_candidate(self, telegram_id: int) -> dict[int, RegistrationStanding]:
        """Registration id → its results and certificate; registrations with nothing to say
        (no results, none coming, no certificate) are left out."""
        catalog = await self._catalog.current()
        today = self._clock().date()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                return {}
            rows = await _rows(uow, candidate.id)
            certificates = {
                c.registration_id: c
                for c in await uow.standing.certificates_for_candidate(candidate.id)
            }
            registrations = await uow.registrations.list_for_candidate(candidate.id)
            sessions = await uow.exam_sessions.list_by_ids([r.session_id for r in registrations])
            releases = {
                session_id: await uow.results.get_release(session_id) for session_id in sessions
            }
            # Built inside the unit of work: the rows are live ORM objects.
            results, unreleased, passed = _results(catalog, rows, today)
            found: dict[int, RegistrationStanding] = {}
            for registration in registrations:
                session = sessions[registration.session_id]
                release = releases.get(session.id)
                # Results are awaited once the candidate has sat (a paid seat, the exam
                # day reached) until the session's release, or while imported ones wait.
                waiting = registration.id in unreleased or (
                    registration.state == RegistrationState.PAID
                    and session.exam_date <= today
                    and (release is None or release.released_at is None)
                    and registration.id not in results
                )
                certificate = certificates.get(registration.id)
                passed_on = passed.get(registration.id)
                standing = RegistrationStanding(
                    registration_id=registration.id,
                    timezone=session.timezone,
                    results=results.get(registration.id, ()),
                    results_at=(
                        (release.release_at if release else session.results_at)
                        if waiting
                        else None
                    ),
                    passed_on=passed_on,
                    certificate=certificate,
                    certificates_at=(
                        _certificates_at(catalog, session)
                        if passed_on and certificate is None
                        else None
                    ),
                )
                if standing.results or standing.results_at or standing.certificate:
                    found[registration.id] = standing
            return found


def _results(
    catalog: Catalog, rows: list[_Row], today: date
) -> tuple[dict[int, tuple[ComponentLine, ...]], set[int], dict[int, date]]:
    """Per registration: its released results in catalogue order; the registrations with
    results not yet released; the registrations whose sitting passed the level (pass date)."""
    rules = ScoringRules.from_catalog(catalog)
    names = {c.code: c.name.model_dump() for c in catalog.components}
    order = {code: index for index, code in enumerate(rules.components)}
    released: dict[int, list[ComponentLine]] = defaultdict(list)
    unreleased: set[int] = set()
    for row in sorted(rows, key=lambda r: order.get(r.result.component, len(order))):
        if row.result.released_at is None:
            unreleased.add(row.registration.id)
            continue
        sitting = _sitting(row)
        released[row.registration.id].append(
            ComponentLine(
                sitting.component,
                names.get(sitting.component, {"en": sitting.component}),
                sitting.mark.value,
                sitting.score,
                rules.outcome(sitting) == Outcome.PASSED,
            )
        )
    passed = {row.registration.id: on for on, row in _level_passes(rules, rows, today).values()}
    return {k: tuple(v) for k, v in released.items()}, unreleased, passed


def _certificates_at(catalog: Catalog, session: ExamSession) -> datetime:
    """About when certificates come: the catalogue's `timeline.certificates` for the
    session, or as many days after its results for a session the catalogue no longer has."""
    if any(s.code == session.code for s in catalog.sessions):
        return catalog.session_timeline(session.code).certificates_at
    days = catalog.timeline.certificates - catalog.timeline.results
    return session.results_at + timedelta(days=days)
