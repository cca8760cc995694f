"""Results flow, second step: releasing a session's results (docs/results.md).

Entry points (`ResultsReleaseService`):

* `preview_release(session_code, at=None)`: how many candidates will be told, and when
  (the time given, the one staff chose before, or the catalogue's `timeline.results`).
* `schedule_release(session_code, at, staff_id)`: writes the session's `result_releases`
  row (audited); `at=None` goes back to the catalogue's time.
* `release_due()`: the tick. Releases every session whose time has come: sets
  `released_at` on its component results and queues one `RESULTS_RELEASED` notification
  per registration. One transaction per session, behind a conditional UPDATE of the
  release row and outbox keys `results:<registration id>:<release id>`: a restart or a
  second instance never notifies twice.
* `candidate_results(telegram_id)`: what `/results` shows: released results only, by
  level with their standing, and when unreleased ones will come out.
* `progress(session_code)`: what `/results_status` shows: the release's time and state,
  and of its messages how many were sent, are waiting, and who was not reached. When the
  last message of a release is settled, the tick posts these figures to the staff chat
  once (`RESULTS_RELEASE_REPORT`, key `results-report:<release id>`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.catalog import Catalog
from bot.domain.lifecycle import OutboxStatus
from bot.domain.scoring import (
    LevelStanding,
    ReleaseStatus,
    ScoringRules,
    SittingResult,
)
from bot.services.catalog import CatalogService
from bot.services.errors import NotFound, ResultsReleased
from bot.services.notify import Template, audit, notify_candidate, notify_staff
from storage.models import ComponentResult, ExamSession, Registration, ResultRelease
from storage.uow import UnitOfWork, UowFactory

ENTITY = "result_release"  # the audit log's entity
RELEASE_BATCH = 500  # registrations read per query while queuing a release
# A release is reported to staff once all its messages are settled; one that is still
# not settled after this long is not looked at again (it would be a sender outage).
REPORT_WITHIN = timedelta(days=7)
REPORT_NAMES = 30  # not-reached candidates named in the staff report; the rest counted


@dataclass(frozen=True, slots=True)
class ReleasePreview:
    session_code: str
    release_at: datetime
    recipients: int  # registrations with a result: one message each
    chosen: bool  # a time staff gave, not the catalogue's
    timezone: str  # the session's, to show the time in


@dataclass(frozen=True, slots=True)
class LevelResults:
    level_code: str
    standing: LevelStanding
    sittings: tuple[SittingResult, ...]  # released results, oldest first, catalogue order
    passed: tuple[bool, ...]  # for each sitting result: passed against its pass mark


@dataclass(frozen=True, slots=True)
class CandidateResults:
    levels: tuple[LevelResults, ...]
    pending: tuple[tuple[str, datetime], ...]  # (session code, release time) not yet out
    timezone: str
    names: dict[str, dict[str, str]]  # component code → its names by language


@dataclass(frozen=True, slots=True)
class Unreached:
    """A candidate the release message did not reach, named as staff can look them up."""

    registration_id: int
    ticket_number: str | None
    reference: str
    id_masked: str | None  # the masked ID number on file (never the number itself)
    why: str  # unreachable (blocked the bot) | failed | no_chat | cancelled


@dataclass(frozen=True, slots=True)
class ReleaseProgress:
    """A session's release as it stands. `status`: scheduled (not released yet),
    releasing (released, messages still waiting), released (every message settled)."""

    session_code: str
    timezone: str
    status: str
    release_at: datetime
    released_at: datetime | None
    recipients: int  # candidates to tell (one per registration with a result)
    sent: int
    waiting: int
    not_reached: tuple[Unreached, ...]


class ResultsReleaseService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        *,
        staff_chat_id: int | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._staff_chat_id = staff_chat_id

    async def preview_release(
        self, session_code: str, at: datetime | None = None
    ) -> ReleasePreview:
        """`at` without a zone is the session's local time. Raises NotFound (session),
        ResultsReleased."""
        async with self._uow() as uow:
            session = await _session(uow, session_code)
            release = await uow.results.get_release(session.id)
            _check_open(session, release)
            recipients = len(await uow.results.registrations_with_results(session.id))
            zone = session.timezone
            if at is None and release is not None:
                chosen = release.chosen_by is not None
                return ReleasePreview(session.code, release.release_at, recipients, chosen, zone)
            when = _aware(at, zone) or session.results_at
            return ReleasePreview(session.code, when, recipients, at is not None, zone)

    async def schedule_release(
        self, session_code: str, at: datetime | None, staff_id: int | None
    ) -> ReleasePreview:
        """Set the release time (None: the catalogue's). Raises NotFound, ResultsReleased."""
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            session = await _session(uow, session_code)
            await uow.exam_sessions.lock(session.id)
            release = await uow.results.get_release(session.id)
            _check_open(session, release)
            when = _aware(at, session.timezone) or session.results_at
            before = None if release is None else release.release_at.isoformat()
            if release is None:
                release = ResultRelease(session_id=session.id, release_at=when, created_at=now)
                uow.results.add_release(release)
            release.release_at = when
            release.chosen_by = actor if at is not None else None
            release.updated_at = now
            await uow.flush()
            audit(
                uow,
                actor,
                ENTITY,
                release.id,
                "scheduled",
                now,
                to_state=ReleaseStatus.SCHEDULED,
                details={"session": session.code, "from": before, "to": when.isoformat()},
            )
            recipients = len(await uow.results.registrations_with_results(session.id))
            await uow.commit()
            return ReleasePreview(session.code, when, recipients, at is not None, session.timezone)

    async def release_due(self) -> int:
        """Release every session whose time has come; the number of messages queued."""
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            session_ids = await uow.results.sessions_with_unreleased()
        queued = 0
        for session_id in session_ids:
            queued += await self._release(session_id, catalog, now)
        await self._report_settled(now)
        return queued

    async def progress(self, session_code: str) -> ReleaseProgress:
        """The release's state and its messages' fate. Raises NotFound (session)."""
        async with self._uow() as uow:
            session = await _session(uow, session_code)
            return await _progress(uow, session)

    async def _report_settled(self, now: datetime) -> int:
        """Tell the staff chat, once per release, the figures of each recent release
        whose messages are all settled (sent, failed or unreachable)."""
        if self._staff_chat_id is None:
            return 0
        reported = 0
        async with self._uow() as uow:
            for release in await uow.results.releases_since(now - REPORT_WITHIN):
                key = f"results-report:{release.id}"
                if await uow.outbox.has_key(key):
                    continue
                session = await uow.exam_sessions.get(release.session_id)
                assert session is not None, "a release of a session that is gone"
                progress = await _progress(uow, session)
                if progress.waiting:
                    continue
                reported += await notify_staff(
                    uow,
                    self._staff_chat_id,
                    now,
                    key=key,
                    template=Template.RESULTS_RELEASE_REPORT,
                    params=_report_params(progress),
                )
            await uow.commit()
        return reported

    async def _release(self, session_id: int, catalog: Catalog, now: datetime) -> int:
        async with self._uow() as uow:
            # Serialises a second instance: it waits here, then finds the row released.
            await uow.exam_sessions.lock(session_id)
            session = await uow.exam_sessions.get(session_id)
            assert session is not None, "results of a session that is gone"
            release = await uow.results.get_release(session_id)
            if release is None:
                if session.results_at > now:
                    return 0
                release = ResultRelease(
                    session_id=session_id, release_at=session.results_at, created_at=now
                )
                uow.results.add_release(release)
                await uow.flush()
            if release.release_at > now:
                return 0
            registrations = await uow.results.registrations_with_results(session_id)
            if not await uow.results.mark_released(release.id, now, len(registrations)):
                return 0
            await uow.results.release_results(session_id, now)
            deadline = recheck_until(catalog, session, now)
            queued = 0
            # Read in batches (registrations with their candidates, every result of those
            # candidates), so a release costs about one INSERT per candidate.
            for start in range(0, len(registrations), RELEASE_BATCH):
                batch = await uow.results.registrations_and_candidates(
                    registrations[start : start + RELEASE_BATCH]
                )
                results = await uow.results.for_candidates([c.id for _, c in batch])
                for registration, candidate in batch:
                    params = _params(catalog, results[candidate.id], session, now, deadline)
                    queued += await notify_candidate(
                        uow,
                        candidate.id,
                        now,
                        key=f"results:{registration.id}:{release.id}",
                        template=Template.RESULTS_RELEASED,
                        params=params,
                    )
            audit(
                uow,
                "system",
                ENTITY,
                release.id,
                "released",
                now,
                from_state=ReleaseStatus.SCHEDULED,
                to_state=ReleaseStatus.RELEASED,
                details={"session": session.code, "recipients": len(registrations)},
            )
            await uow.commit()
            return queued

    async def candidate_results(self, telegram_id: int) -> CandidateResults:
        """The candidate's released results by level; unreleased ones only as a date."""
        catalog = await self._catalog.current()
        rules = ScoringRules.from_catalog(catalog)
        today = self._clock().date()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                raise NotFound("candidate")
            rows = await uow.results.for_candidate(candidate.id)
            by_level: dict[str, list[SittingResult]] = defaultdict(list)
            pending: dict[str, datetime] = {}
            zone = "UTC"
            for result, registration, session in rows:
                zone = session.timezone
                if result.released_at is None:
                    release = await uow.results.get_release(session.id)
                    pending[session.code] = release.release_at if release else session.results_at
                    continue
                by_level[registration.level_code].append(_sitting(result, session.exam_date))
        order = {code: i for i, code in enumerate(rules.components)}
        levels = []
        for level, sittings in by_level.items():
            sittings.sort(key=lambda r: (r.sat_on, order.get(r.component, len(order))))
            levels.append(
                LevelResults(
                    level,
                    rules.standing(sittings, today),
                    tuple(sittings),
                    tuple(rules.passed(r) for r in sittings),
                )
            )
        names = {c.code: c.name.model_dump() for c in catalog.components}
        return CandidateResults(tuple(levels), tuple(sorted(pending.items())), zone, names)


# --- helpers ----------------------------------------------------------------------------


async def _session(uow: UnitOfWork, code: str) -> ExamSession:
    session = await uow.exam_sessions.get_by_code(code)
    if session is None:
        raise NotFound("session")
    return session


def _check_open(session: ExamSession, release: ResultRelease | None) -> None:
    if release is not None and release.status == ReleaseStatus.RELEASED:
        assert release.released_at is not None
        raise ResultsReleased(session.code, release.released_at)


def _aware(at: datetime | None, zone: str) -> datetime | None:
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=ZoneInfo(zone))


def recheck_until(catalog: Catalog, session: ExamSession, released_at: datetime) -> datetime:
    """The re-mark deadline: `recheck_window_days` after release, at the deadline time."""
    zone = ZoneInfo(session.timezone)
    day = released_at.astimezone(zone).date() + timedelta(
        days=catalog.timeline.recheck_window_days
    )
    local = datetime.combine(day, catalog.timeline.deadline_time, tzinfo=zone)
    return local.astimezone(released_at.tzinfo)


def _sitting(result: ComponentResult, sat_on: date) -> SittingResult:
    return SittingResult.stored(
        result.component, result.mark, result.score_tenths, sat_on, result.released_at
    )


def _params(
    catalog: Catalog,
    results: list[tuple[ComponentResult, Registration, ExamSession]],
    session: ExamSession,
    now: datetime,
    deadline: datetime,
) -> dict[str, Any]:
    """The release message's params: this sitting's marks and the level's standing (with
    the results just released counted)."""
    rules = ScoringRules.from_catalog(catalog)
    names = {c.code: c.name.model_dump() for c in catalog.components}
    level_code = ""
    this: list[SittingResult] = []
    level_results: dict[str, list[SittingResult]] = defaultdict(list)
    for result, registration, sitting in results:
        released = _sitting(result, sitting.exam_date)
        if sitting.id == session.id:
            level_code = registration.level_code
            this.append(released)
        if result.released_at is not None:
            level_results[registration.level_code].append(released)
    standing = rules.standing(level_results[level_code], now.date())
    this.sort(key=lambda r: rules.components.index(r.component))
    return {
        "session": session.code,
        "level_code": level_code,
        "timezone": session.timezone,
        "components": [
            {
                "component": r.component,
                "name": names.get(r.component, {"en": r.component}),
                "mark": r.mark.value,
                "score": None if r.score is None else str(r.score),
                "outcome": rules.outcome(r).value,
            }
            for r in this
        ],
        "passed": standing.passed,
        "retake": [{"component": c, "name": names.get(c, {"en": c})} for c in standing.to_retake],
        "carry_over": [
            {
                "component": c.component,
                "name": names.get(c.component, {"en": c.component}),
                "until": c.carries_over_until.isoformat(),
            }
            for c in standing.components
            if c.carries_over_until is not None and c.status == "passed"
        ],
        "recheck_until": deadline.isoformat(),
    }


async def _progress(uow: UnitOfWork, session: ExamSession) -> ReleaseProgress:
    release = await uow.results.get_release(session.id)
    told = await uow.results.registrations_with_results(session.id)
    release_at = release.release_at if release is not None else session.results_at
    if release is None or release.status != ReleaseStatus.RELEASED:
        status = ReleaseStatus.SCHEDULED
        return ReleaseProgress(
            session.code, session.timezone, status, release_at, None, len(told), 0, 0, ()
        )
    # One message per registration, keyed results:<registration id>:<release id>.
    fate: dict[int, str] = {}
    for key, outbox_status in await uow.outbox.statuses_like(f"results:%:{release.id}"):
        registration_id = key.split(":")[1]
        if registration_id.isdigit():
            fate[int(registration_id)] = outbox_status
    waiting = sum(1 for s in fate.values() if s == OutboxStatus.PENDING)
    sent = sum(1 for s in fate.values() if s == OutboxStatus.SENT)
    seats = {r.id: (r, c, t) for r, c, t in await uow.results.seated(session.id)}
    not_reached = []
    for registration_id in told:
        why = fate.get(registration_id, "no_chat")
        if why in (OutboxStatus.PENDING, OutboxStatus.SENT) or registration_id not in seats:
            continue
        registration, candidate, ticket = seats[registration_id]
        not_reached.append(
            Unreached(
                registration_id,
                ticket.ticket_number if ticket is not None else None,
                registration.reference,
                candidate.id_number_masked,
                str(why),
            )
        )
    status = ReleaseStatus.RELEASING if waiting else ReleaseStatus.RELEASED
    return ReleaseProgress(
        session.code,
        session.timezone,
        status,
        release_at,
        release.released_at,
        release.recipients,
        sent,
        waiting,
        tuple(not_reached),
    )


def _report_params(progress: ReleaseProgress) -> dict[str, Any]:
    """The staff report's params: figures, and who was not reached (a few, by label)."""
    return {
        "session": progress.session_code,
        "recipients": progress.recipients,
        "sent": progress.sent,
        "not_reached": [
            {"ticket": u.ticket_number, "reference": u.reference, "id": u.id_masked, "why": u.why}
            for u in progress.not_reached[:REPORT_NAMES]
        ],
        "not_reached_count": len(progress.not_reached),
    }


def _actor(staff_id: int | None) -> str:
    return "cli" if staff_id is None else f"tg:{staff_id}"
