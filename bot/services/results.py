"""Results flow, first step: importing a session's results file (docs/results.md).

Entry points (`ResultsService`):

* `preview(session_code, file_name, data, staff_id)` reads a CSV or XLSX file, checks
  every row against the database and stages it in `result_imports`; it returns the
  counts (passed / failed / absent / refused) and each refused row with its line number
  and a reason code. Nothing reaches `component_results` yet.
* `confirm(import_id, staff_id)` writes the accepted rows. For each component column in
  the file, the file is the whole truth about the session: earlier unreleased results
  it changes are replaced and those it no longer lists are removed, each change audited.
* `cancel(import_id, staff_id)` drops a preview.
* `correct(staff_id, code, component, value, reason)` changes one component result by
  hand (`/results_correct`, `examdesk results correct`): before release it replaces the
  unreleased value; after release it is a correction the candidate is told about (new
  score, pass state, the level newly passed or no longer passed). Either way it is
  audited (entity `component_result`, action `corrected`: actor, old, new, reason) and
  written by the re-mark decision's statement (`uow.remarks.rescore`: `version + 1`).

When the session has any check-in (`attendance`), the preview also warns, row by row
(warnings, not refusals): a score or disqualification for a candidate never checked in
(`not_checked_in`), and "absent" for one who was (`checked_in_absent`, with the time).

`staff_id` is a Telegram user id, or None for the command line (`examdesk results
import`). Once a session's results are released an import raises `ResultsReleased`:
after release a score changes only through a re-mark decision or a staff correction.

Refusal reasons (codes; handlers and the CLI translate them): no_reference,
unknown_reference, not_in_session, not_paid (`state`), id_missing, id_not_on_file,
id_mismatch, duplicate (`lines`: the other lines naming the same registration),
score_missing, component_not_booked, score_not_a_number, score_out_of_range,
score_too_many_decimals (all with `component`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from bot.crypto import Vault
from bot.domain.lifecycle import RegistrationState
from bot.domain.scoring import (
    ImportStatus,
    InvalidScore,
    Outcome,
    ScoringRules,
    SittingResult,
    from_tenths,
)
from bot.services.catalog import CatalogService
from bot.services.errors import (
    AlreadyDecided,
    InvalidAnswer,
    NotFound,
    ResultsReleased,
    ServiceError,
)
from bot.services.file_rows import RowRefused as _Refused
from bot.services.file_rows import identify, row_codes
from bot.services.notify import Template, audit, notify_candidate
from bot.services.results_file import FileRow, parse_mark, read_results_file
from storage.models import Candidate, ComponentResult, ExamSession, Registration, ResultImport
from storage.uow import UnitOfWork, UowFactory

ENTITY = "result_import"  # the audit log's entity
MAX_REASON = 500  # a correction's reason, in characters


class UnknownComponent(ServiceError):
    """No catalogue component has this code or name."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True, slots=True)
class RowWarning:
    """A cross-check with the door's check-ins: `not_checked_in` (a score or a
    disqualification for someone never checked in) or `checked_in_absent` (`at`: when)."""

    line: int
    reason: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Correction:
    """A component result corrected by hand. Marks are `Mark` values, scores text
    ("72.5") or None. The standing fields are None before release (nothing to tell)."""

    registration_id: int
    reference: str
    ticket_number: str | None
    session_code: str
    level_code: str
    component: str
    component_names: dict[str, str]
    old_mark: str
    old_score: str | None
    new_mark: str
    new_score: str | None
    changed: bool  # False: the result already was this; nothing written
    released: bool
    component_passed: bool
    level_passed_before: bool | None = None
    level_passed: bool | None = None
    notified: bool = False


@dataclass(frozen=True, slots=True)
class RefusedRow:
    line: int
    reason: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportPreview:
    """What confirming the import would do. `replaced` / `removed` count the session's
    earlier unreleased results that it would change / delete."""

    import_id: int
    session_code: str
    file_name: str
    components: tuple[str, ...]  # the component columns found, in catalogue order
    rows: int
    passed: int
    failed: int
    absent: int
    refused: tuple[RefusedRow, ...]
    replaced: int
    removed: int
    warnings: tuple[RowWarning, ...] = ()  # check-in cross-checks, in line order

    @property
    def accepted(self) -> int:
        return self.rows - len(self.refused)


@dataclass(frozen=True, slots=True)
class ImportConfirmed:
    import_id: int
    session_code: str
    added: int  # component results written for the first time
    replaced: int
    unchanged: int
    removed: int
    skipped: int  # accepted rows whose registration left the session since the preview


@dataclass(frozen=True, slots=True)
class _Seat:
    registration: Registration
    candidate: Candidate


class ResultsService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        vault: Vault,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._vault = vault

    # --- preview

    async def preview(
        self, session_code: str, file_name: str, data: bytes, staff_id: int | None
    ) -> ImportPreview:
        """Read and check the file; stage it for confirmation. Raises NotFound (session),
        ResultsFileInvalid, ResultsReleased, CatalogMissing."""
        catalog = await self._catalog.current()
        rules = ScoringRules.from_catalog(catalog)
        table = read_results_file(file_name, data, catalog)
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            session = await self._session_open_for_import(uow, session_code)
            seats = await self._seats(uow, session.id)
            offered = [c.component for c in session.components]
            rows = [await self._check_row(uow, row, seats, offered, rules) for row in table.rows]
            _refuse_duplicates(rows)
            for row in rows:
                if row["status"] == "accepted":
                    row["outcome"] = _row_outcome(rules, row["results"], session.exam_date)
            attended = await uow.checkin.for_session(session.id)
            if attended:  # no check-in at all: the door did not use the bot; nothing to say
                for row in rows:
                    row["warnings"] = _attendance_warnings(row, attended)
            existing = await uow.results.list_for_session(session.id)
            replaced, removed = _changes(existing, rows, table.components)
            summary = {
                "components": list(table.components),
                "rows": len(rows),
                "passed": _count(rows, "passed"),
                "failed": _count(rows, "failed"),
                "absent": _count(rows, "absent"),
                "refused": sum(1 for r in rows if r["status"] == "refused"),
                "replaced": replaced,
                "removed": removed,
                "warnings": sum(len(row.get("warnings", [])) for row in rows),
            }
            staged = ResultImport(
                session_id=session.id,
                file_name=file_name[:256],
                status=ImportStatus.PREVIEW,
                rows=rows,
                summary=summary,
                created_by=actor,
                created_at=now,
            )
            uow.results.add_import(staged)
            await uow.flush()
            details = {"session": session.code, "file_name": file_name, **summary}
            audit(
                uow,
                actor,
                ENTITY,
                staged.id,
                "previewed",
                now,
                to_state="preview",
                details=details,
            )
            await uow.commit()
            return _preview(staged, session.code)

    async def _check_row(
        self,
        uow: UnitOfWork,
        file_row: FileRow,
        seats: dict[str, _Seat],
        offered: list[str],
        rules: ScoringRules,
    ) -> dict[str, Any]:
        """The row as staged: accepted with its results, or refused with a reason."""
        row: dict[str, Any] = {
            "line": file_row.line,
            "code": file_row.ticket or file_row.reference,
            "registration_id": None,
            "status": "refused",
            "reason": None,
            "params": {},
            "results": {},
        }
        try:
            seat = await self._identify(uow, file_row.ticket, file_row.reference, seats)
            row["registration_id"] = seat.registration.id
            self._check_paid_and_id(seat, file_row.id_last4)
            row["results"] = _results(file_row, seat.registration, offered, rules)
        except _Refused as refused:
            row["reason"], row["params"] = refused.reason, refused.params
            return row
        row["status"] = "accepted"
        return row

    async def _identify(
        self, uow: UnitOfWork, ticket: str, reference: str, seats: dict[str, _Seat]
    ) -> _Seat:
        for code in row_codes(ticket, reference):
            if code in seats:
                return seats[code]
        await identify(uow, ticket, reference)  # no_reference, unknown_reference
        raise _Refused("not_in_session")

    def _check_paid_and_id(self, seat: _Seat, last4: str) -> None:
        if seat.registration.state != RegistrationState.PAID:
            raise _Refused("not_paid", state=seat.registration.state)
        if not last4:
            raise _Refused("id_missing")
        stored = self._id_last4(seat.candidate)
        if stored is None:
            raise _Refused("id_not_on_file")
        # A spreadsheet turns "0012" into the number 12: pad what lost its zeros.
        given = last4.upper().zfill(4) if last4.isdigit() else last4.upper()
        if given != stored:
            raise _Refused("id_mismatch")

    def _id_last4(self, candidate: Candidate) -> str | None:
        if candidate.id_number_encrypted:
            return self._vault.decrypt(candidate.id_number_encrypted)[-4:].upper()
        masked = (candidate.id_number_masked or "")[-4:]
        return masked.upper() if len(masked) == 4 and "*" not in masked else None

    # --- confirm and cancel

    async def confirm(self, import_id: int, staff_id: int | None) -> ImportConfirmed:
        """Write the accepted rows; the first decision on a preview wins. Raises NotFound,
        AlreadyDecided, ResultsReleased."""
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            staged = await self._open_import(uow, import_id)
            session = await uow.exam_sessions.get(staged.session_id)
            assert session is not None, "an import of a session that is gone"
            # Serialise confirmations of one session (SQLite's BEGIN IMMEDIATE already does).
            await uow.exam_sessions.lock(session.id)
            await self._check_not_released(uow, session)
            if not await uow.results.decide_import(import_id, ImportStatus.CONFIRMED, actor, now):
                raise await self._decided(uow, import_id)
            await uow.results.supersede_previews(session.id, actor, now)
            result = await self._apply(uow, staged, session, actor, now)
            audit(
                uow,
                actor,
                ENTITY,
                import_id,
                "confirmed",
                now,
                from_state="preview",
                to_state="confirmed",
                details=_counts(result),
            )
            await uow.commit()
            return result

    async def cancel(self, import_id: int, staff_id: int | None) -> None:
        """Drop a preview. Raises NotFound, AlreadyDecided."""
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            await self._open_import(uow, import_id)
            if not await uow.results.decide_import(import_id, ImportStatus.CANCELLED, actor, now):
                raise await self._decided(uow, import_id)
            audit(
                uow,
                actor,
                ENTITY,
                import_id,
                "cancelled",
                now,
                from_state="preview",
                to_state="cancelled",
            )
            await uow.commit()

    async def _apply(
        self,
        uow: UnitOfWork,
        staged: ResultImport,
        session: ExamSession,
        actor: str,
        now: datetime,
    ) -> ImportConfirmed:
        # Registrations may have changed since the preview (moved, refunded): only rows
        # whose registration still sits the session, paid, are written.
        seated = {
            seat.registration.id
            for seat in (await self._seats(uow, session.id)).values()
            if seat.registration.state == RegistrationState.PAID
        }
        existing = {
            (r.registration_id, r.component): r
            for r in await uow.results.list_for_session(session.id)
        }
        counts: Counter[str] = Counter()
        written: set[tuple[int, str]] = set()
        for row in staged.rows:
            if row["status"] != "accepted":
                continue
            if row["registration_id"] not in seated:
                counts["skipped"] += 1
                continue
            for component, value in row["results"].items():
                key = (row["registration_id"], component)
                written.add(key)
                counts[_write(uow, staged, existing.get(key), key, value, actor, now)] += 1
        removed = 0
        for key, current in existing.items():
            if key[1] in staged.summary["components"] and key not in written:
                _audit_change(uow, actor, now, current, "removed", staged.id, None)
                await uow.results.delete(current)
                removed += 1
        return ImportConfirmed(
            import_id=staged.id,
            session_code=session.code,
            added=counts["added"],
            replaced=counts["replaced"],
            unchanged=counts["unchanged"],
            removed=removed,
            skipped=counts["skipped"],
        )

    # --- a correction by hand

    async def correct(
        self, staff_id: int | None, code: str, component: str, value: str, reason: str
    ) -> Correction:
        """Set one component result of the registration a ticket number or reference names.

        Raises NotFound ("registration", "result": nothing imported for that component),
        UnknownComponent, InvalidAnswer ("score": not_a_number / out_of_range /
        too_many_decimals with `max`; "reason": missing / too_long with `limit`),
        CatalogMissing.
        """
        catalog = await self._catalog.current()
        rules = ScoringRules.from_catalog(catalog)
        component_code = _component_code(catalog, component)
        why = " ".join(reason.split())
        if not why:
            raise InvalidAnswer("reason", "missing")
        if len(why) > MAX_REASON:
            raise InvalidAnswer("reason", "too_long", limit=MAX_REASON)
        highest = rules.max_scores[component_code]
        try:
            mark, tenths = parse_mark(value, highest)
        except InvalidScore as exc:
            raise InvalidAnswer("score", exc.reason, max=highest) from None
        now, actor = self._clock(), _actor(staff_id)
        async with self._uow() as uow:
            registration = await _registration(uow, code)
            session = await uow.exam_sessions.get(registration.session_id)
            assert session is not None
            # Serialised with imports and the release tick, which lock the session too.
            await uow.exam_sessions.lock(session.id)
            current = await uow.remarks.get_result_for(registration.id, component_code)
            if current is None:
                raise NotFound("result")
            ticket = await uow.tickets.get_for_registration(registration.id)
            old, version = _value(current), current.version
            new = {"mark": mark.value, "score_tenths": tenths}
            released = current.released_at is not None
            result = Correction(
                registration_id=registration.id,
                reference=registration.reference,
                ticket_number=ticket.ticket_number if ticket else None,
                session_code=session.code,
                level_code=registration.level_code,
                component=component_code,
                component_names=_names_of(catalog, component_code),
                old_mark=old["mark"],
                old_score=_score_text(old["score_tenths"]),
                new_mark=mark.value,
                new_score=_score_text(tenths),
                changed=new != old,
                released=released,
                component_passed=rules.passed(_sitting(component_code, new, session.exam_date)),
            )
            if not result.changed:
                return result
            before = await _level_standing(uow, rules, registration, now.date())
            await uow.remarks.rescore(current.id, tenths, actor, now, mark=mark.value)
            audit(
                uow,
                actor,
                "component_result",
                f"{registration.id}:{component_code}",
                "corrected",
                now,
                reason=why,
                details={"from": old, "to": new, "released": released},
            )
            if released:
                after = await _level_standing(uow, rules, registration, now.date())
                result = _told(result, before.passed, after.passed)
                notified = await notify_candidate(
                    uow,
                    registration.candidate_id,
                    now,
                    key=f"result_corrected:{current.id}:{version + 1}",
                    template=Template.RESULT_CORRECTED,
                    params=_correction_params(result),
                )
                result = _told(result, before.passed, after.passed, notified)
            await uow.commit()
            return result

    # --- helpers

    async def _session_open_for_import(self, uow: UnitOfWork, code: str) -> ExamSession:
        session = await uow.exam_sessions.get_by_code(code)
        if session is None:
            raise NotFound("session")
        await self._check_not_released(uow, session)
        return session

    @staticmethod
    async def _check_not_released(uow: UnitOfWork, session: ExamSession) -> None:
        released_at = await uow.results.released_at(session.id)
        if released_at is not None:
            raise ResultsReleased(session.code, released_at)

    @staticmethod
    async def _seats(uow: UnitOfWork, session_id: int) -> dict[str, _Seat]:
        """The session's registrations by reference and by ticket number (upper case)."""
        seats: dict[str, _Seat] = {}
        for registration, candidate, ticket in await uow.results.seated(session_id):
            seat = _Seat(registration, candidate)
            seats[registration.reference.upper()] = seat
            if ticket is not None:
                seats[ticket.ticket_number.upper()] = seat
        return seats

    @staticmethod
    async def _open_import(uow: UnitOfWork, import_id: int) -> ResultImport:
        staged = await uow.results.get_import(import_id)
        if staged is None:
            raise NotFound(ENTITY)
        if staged.status != ImportStatus.PREVIEW:
            raise AlreadyDecided(_staff_id(staged.decided_by), staged.status)
        return staged

    @staticmethod
    async def _decided(uow: UnitOfWork, import_id: int) -> AlreadyDecided:
        staged = await uow.results.get_import(import_id)
        return AlreadyDecided(
            _staff_id(staged.decided_by) if staged else None,
            staged.status if staged else "missing",
        )


# --- pure helpers -----------------------------------------------------------------------


def _results(
    file_row: FileRow, registration: Registration, offered: list[str], rules: ScoringRules
) -> dict[str, dict[str, Any]]:
    """The row's marks per component; raises _Refused on the first bad cell. A component
    the registration did not book (a retake with carry-over) must be left empty."""
    booked = set(registration.components or offered)
    results = {}
    for component, text in file_row.marks.items():
        if not text:
            if component in booked:
                raise _Refused("score_missing", component=component)
            continue
        if component not in booked:
            raise _Refused("component_not_booked", component=component)
        max_score = rules.max_scores[component]
        try:
            mark, tenths = parse_mark(text, max_score)
        except InvalidScore as exc:
            bound = {"max_score": max_score} if exc.reason == "out_of_range" else {}
            raise _Refused(
                f"score_{exc.reason}", component=component, value=text, **bound
            ) from None
        results[component] = {"mark": mark.value, "score_tenths": tenths}
    return results


def _refuse_duplicates(rows: list[dict[str, Any]]) -> None:
    """Refuse every row naming a registration another row names too: which of them is
    right is for staff to say, not for the import to guess."""
    lines: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row["registration_id"] is not None:
            lines[row["registration_id"]].append(row["line"])
    for row in rows:
        same = lines.get(row["registration_id"], [])
        if len(same) > 1:
            others = [line for line in same if line != row["line"]]
            row.update(status="refused", reason="duplicate", params={"lines": others}, results={})


def _sitting(component: str, value: dict[str, Any], sat_on: date) -> SittingResult:
    return SittingResult.stored(component, value["mark"], value["score_tenths"], sat_on)


def _row_outcome(rules: ScoringRules, results: dict[str, Any], sat_on: date) -> str:
    outcomes = {rules.outcome(_sitting(c, v, sat_on)) for c, v in results.items()}
    if outcomes == {Outcome.PASSED}:
        return "passed"
    if outcomes == {Outcome.ABSENT}:
        return "absent"
    return "failed"


def _changes(
    existing: list[ComponentResult], rows: list[dict[str, Any]], components: tuple[str, ...]
) -> tuple[int, int]:
    new = {
        (row["registration_id"], component): value
        for row in rows
        if row["status"] == "accepted"
        for component, value in row["results"].items()
    }
    replaced = sum(
        1
        for r in existing
        if (r.registration_id, r.component) in new
        and new[(r.registration_id, r.component)] != _value(r)
    )
    removed = sum(
        1
        for r in existing
        if r.component in components and (r.registration_id, r.component) not in new
    )
    return replaced, removed


def _write(
    uow: UnitOfWork,
    staged: ResultImport,
    current: ComponentResult | None,
    key: tuple[int, str],
    value: dict[str, Any],
    actor: str,
    now: datetime,
) -> str:
    """Write one component result; says whether it was added, replaced or unchanged."""
    if current is None:
        uow.results.add(
            ComponentResult(
                registration_id=key[0],
                session_id=staged.session_id,
                component=key[1],
                mark=value["mark"],
                score_tenths=value["score_tenths"],
                import_id=staged.id,
                version=1,
                updated_by=actor,
                created_at=now,
                updated_at=now,
            )
        )
        return "added"
    if _value(current) == value:
        return "unchanged"
    _audit_change(uow, actor, now, current, "replaced", staged.id, value)
    current.mark, current.score_tenths = value["mark"], value["score_tenths"]
    current.import_id, current.updated_by, current.updated_at = staged.id, actor, now
    current.version += 1
    return "replaced"


def _value(result: ComponentResult) -> dict[str, Any]:
    return {"mark": result.mark, "score_tenths": result.score_tenths}


def _audit_change(
    uow: UnitOfWork,
    actor: str,
    now: datetime,
    current: ComponentResult,
    action: str,
    import_id: int,
    new: dict[str, Any] | None,
) -> None:
    audit(
        uow,
        actor,
        "component_result",
        f"{current.registration_id}:{current.component}",
        action,
        now,
        details={"import_id": import_id, "from": _value(current), "to": new},
    )


def _count(rows: list[dict[str, Any]], outcome: str) -> int:
    return sum(1 for r in rows if r["status"] == "accepted" and r.get("outcome") == outcome)


def _preview(staged: ResultImport, session_code: str) -> ImportPreview:
    s = staged.summary
    return ImportPreview(
        import_id=staged.id,
        session_code=session_code,
        file_name=staged.file_name,
        components=tuple(s["components"]),
        rows=s["rows"],
        passed=s["passed"],
        failed=s["failed"],
        absent=s["absent"],
        refused=tuple(
            RefusedRow(r["line"], r["reason"], r["params"])
            for r in staged.rows
            if r["status"] == "refused"
        ),
        replaced=s["replaced"],
        removed=s["removed"],
        warnings=tuple(
            RowWarning(r["line"], w["reason"], {k: v for k, v in w.items() if k != "reason"})
            for r in staged.rows
            for w in r.get("warnings", [])
        ),
    )


def _counts(result: ImportConfirmed) -> dict[str, int]:
    return {
        "added": result.added,
        "replaced": result.replaced,
        "unchanged": result.unchanged,
        "removed": result.removed,
        "skipped": result.skipped,
    }


def _actor(staff_id: int | None) -> str:
    return "cli" if staff_id is None else f"tg:{staff_id}"


def _staff_id(actor: str | None) -> int | None:
    if actor and actor.startswith("tg:") and actor[3:].lstrip("-").isdigit():
        return int(actor[3:])
    return None


# --- check-in cross-checks and corrections -------------------------------------------------


def _attendance_warnings(row: dict[str, Any], attended: dict[int, Any]) -> list[dict[str, Any]]:
    """The row's disagreements with the door (only accepted rows have marks to compare)."""
    if row["status"] != "accepted":
        return []
    marks = row["results"]
    came = attended.get(row["registration_id"])
    if came is None:
        there = sorted(c for c, v in marks.items() if v["mark"] != "absent")
        return [{"reason": "not_checked_in", "components": there}] if there else []
    away = sorted(c for c, v in marks.items() if v["mark"] == "absent")
    if not away:
        return []
    at = came.checked_in_at.isoformat()
    return [{"reason": "checked_in_absent", "components": away, "at": at}]


def _component_code(catalog: Any, text: str) -> str:
    """The catalogue component a code or name (English or Chinese) names."""
    wanted = _squash(text)
    for c in catalog.components:
        if wanted in {_squash(c.code), *(_squash(n) for n in c.name.model_dump().values() if n)}:
            return str(c.code)
    raise UnknownComponent(text)


def _squash(text: str) -> str:
    return "".join(text.lower().replace("_", " ").replace("-", " ").split())


def _names_of(catalog: Any, code: str) -> dict[str, str]:
    for c in catalog.components:
        if c.code == code:
            return {k: v for k, v in c.name.model_dump().items() if v}
    return {"en": code}


async def _registration(uow: UnitOfWork, code: str) -> Registration:
    text = code.strip()
    registration = await uow.results.find_registration(text)
    if registration is None and text != text.upper():
        registration = await uow.results.find_registration(text.upper())
    if registration is None:
        raise NotFound("registration")
    return registration


def _score_text(tenths: int | None) -> str | None:
    return None if tenths is None else str(from_tenths(tenths))


async def _level_standing(
    uow: UnitOfWork, rules: ScoringRules, registration: Registration, today: date
) -> Any:
    """The level's standing from the candidate's released results as stored now."""
    results = [
        SittingResult.stored(r.component, r.mark, r.score_tenths, sitting.exam_date, r.released_at)
        for r, reg, sitting in await uow.results.for_candidate(registration.candidate_id)
        if reg.level_code == registration.level_code and r.released_at is not None
    ]
    return rules.standing(results, today)


def _told(result: Correction, before: bool, after: bool, notified: bool = False) -> Correction:
    return replace(result, level_passed_before=before, level_passed=after, notified=notified)


def _correction_params(result: Correction) -> dict[str, Any]:
    """The candidate's message (rendered in their language when sent)."""
    return {
        "session_code": result.session_code,
        "level_code": result.level_code,
        "component": result.component,
        "component_names": result.component_names,
        "old_mark": result.old_mark,
        "old": result.old_score,
        "new_mark": result.new_mark,
        "new": result.new_score,
        "component_passed": result.component_passed,
        "level_passed_before": result.level_passed_before,
        "level_passed": result.level_passed,
    }
