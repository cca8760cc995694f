"""Scoring (成绩): component results, pass marks, carry-over and level passes.

Entry points (pure: no I/O, no clock, no user-facing text):

* ``parse_score(text, max_score) -> Decimal``: a score as staff write it (0–max, at most
  one decimal); raises ``InvalidScore`` with a reason code;
* ``to_tenths`` / ``from_tenths``: the exact integer form the database stores;
* ``ScoringRules.from_catalog(catalog)``: pass marks, maximum scores and the carry-over
  period (``components``, ``retention_years`` in the catalogue);
* ``ScoringRules.outcome(result)``: passed / failed / absent / disqualified;
* ``ScoringRules.carries_over_until(result)``: the last exam date a passed component
  still counts for;
* ``ScoringRules.standing(results, today)``: whether a level is passed (and since when),
  and each component's state with its carry-over expiry.

Rules (DOMAIN.md, "Results, re-marking and certificates"): a component result is a
score, or absent (缺考), or disqualified (违纪: failed, no carry-over, not re-markable).
A component is passed with a score ≥ its pass mark. A level is passed when every
component is passed, the later one sat within the carry-over period of the earlier;
the pass date is the release date of the later result.

CHOICE: the carry-over period runs from the exam date of the sitting where the
component was passed, and a later sitting counts when its exam date falls within it
(on the anniversary itself included). Counting from the exam date rather than from the
results release means a retake booked while the carry-over holds cannot be lost just
because its own results come out after the anniversary.

Results not yet released do not count: before release a candidate has no result.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from bot.domain.catalog import Catalog
from bot.domain.eligibility import add_years

__all__ = [
    "ComponentState",
    "ComponentStatus",
    "ImportStatus",
    "InvalidScore",
    "LevelStanding",
    "Mark",
    "Outcome",
    "ReleaseStatus",
    "RemarkStatus",
    "ScoringRules",
    "SittingResult",
    "from_tenths",
    "parse_score",
    "to_tenths",
]


class Mark(StrEnum):
    """What a component result is (stored as this value)."""

    SCORED = "scored"
    ABSENT = "absent"  # 缺考
    DISQUALIFIED = "disqualified"  # 违纪


class Outcome(StrEnum):
    """One component result judged against its pass mark."""

    PASSED = "passed"
    FAILED = "failed"
    ABSENT = "absent"
    DISQUALIFIED = "disqualified"


class ComponentStatus(StrEnum):
    """Where a candidate stands on one component of a level."""

    PASSED = "passed"  # part of a level pass, or a pass whose carry-over still holds
    EXPIRED = "expired"  # passed once, but the carry-over ran out before the level was passed
    FAILED = "failed"
    ABSENT = "absent"
    DISQUALIFIED = "disqualified"
    NOT_TAKEN = "not_taken"  # no released result


class ImportStatus(StrEnum):
    """A results import: staged for preview, then confirmed, cancelled or superseded (another
    import of the same session was confirmed first)."""

    PREVIEW = "preview"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


class RemarkStatus(StrEnum):
    """A 复核 request for one component: open (waiting for a staff decision; with a fee,
    first for staff to confirm the fee was paid), then decided, the score unchanged or
    changed."""

    AWAITING_FEE = "awaiting_fee"
    OPEN = "open"
    UNCHANGED = "unchanged"
    CHANGED = "changed"


class ReleaseStatus(StrEnum):
    """A session's results release: scheduled, being announced, done."""

    SCHEDULED = "scheduled"
    RELEASING = "releasing"
    RELEASED = "released"


# --- scores ---------------------------------------------------------------------------


class InvalidScore(ValueError):
    """A score cell that is not a score; ``reason``: not_a_number, out_of_range,
    too_many_decimals."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Plain decimal notation only: "1e2" or "NaN" are not what anyone means by a score.
_NUMBER = re.compile(r"^[+-]?\d+(\.\d*)?$|^[+-]?\.\d+$")
_TENTH = Decimal("0.1")


def parse_score(text: str, max_score: int = 100) -> Decimal:
    """A score from 0 to ``max_score`` with at most one decimal, e.g. ``"72.5"``."""
    cleaned = text.strip()
    if not _NUMBER.match(cleaned):
        raise InvalidScore("not_a_number")
    value = Decimal(cleaned)
    if not 0 <= value <= max_score:
        raise InvalidScore("out_of_range")
    if value != value.quantize(_TENTH):
        raise InvalidScore("too_many_decimals")
    return value.quantize(_TENTH)


def to_tenths(score: Decimal) -> int:
    """72.5 → 725: exact on every database."""
    return int(score.quantize(_TENTH) * 10)


def from_tenths(tenths: int) -> Decimal:
    return (Decimal(tenths) / 10).quantize(_TENTH)


# --- results and standing -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SittingResult:
    """One component's result at one sitting."""

    component: str
    mark: Mark
    score: Decimal | None  # only for Mark.SCORED
    sat_on: date  # the sitting's exam date
    released_at: datetime | None = None  # None: not yet released, does not count

    @classmethod
    def stored(
        cls,
        component: str,
        mark: str,
        score_tenths: int | None,
        sat_on: date,
        released_at: datetime | None = None,
    ) -> SittingResult:
        """A result as the database keeps it (score in tenths, mark as text)."""
        score = None if score_tenths is None else from_tenths(score_tenths)
        return cls(component, Mark(mark), score, sat_on, released_at)


@dataclass(frozen=True, slots=True)
class ComponentState:
    component: str
    status: ComponentStatus
    result: SittingResult | None  # the result the status rests on
    # For a pass not yet part of a level pass: the last exam date it counts for
    # (in the past for EXPIRED). None otherwise.
    carries_over_until: date | None = None


@dataclass(frozen=True, slots=True)
class LevelStanding:
    passed: bool
    passed_at: datetime | None  # release of the later result of the pass
    components: tuple[ComponentState, ...]

    @property
    def to_retake(self) -> tuple[str, ...]:
        """Components still to pass (everything not PASSED), in catalogue order."""
        return tuple(c.component for c in self.components if c.status != ComponentStatus.PASSED)


@dataclass(frozen=True, slots=True)
class ScoringRules:
    pass_marks: Mapping[str, Decimal]  # component code → pass mark, in catalogue order
    max_scores: Mapping[str, int]
    retention_years: int

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> ScoringRules:
        return cls(
            pass_marks={c.code: Decimal(c.pass_mark) for c in catalog.components},
            max_scores={c.code: c.max_score for c in catalog.components},
            retention_years=catalog.retention_years,
        )

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.pass_marks)

    def outcome(self, result: SittingResult) -> Outcome:
        if result.mark == Mark.ABSENT:
            return Outcome.ABSENT
        if result.mark == Mark.DISQUALIFIED:
            return Outcome.DISQUALIFIED
        assert result.score is not None, "a scored result without a score"
        passed = result.score >= self.pass_marks[result.component]
        return Outcome.PASSED if passed else Outcome.FAILED

    def passed(self, result: SittingResult) -> bool:
        return self.outcome(result) == Outcome.PASSED

    def carries_over_until(self, result: SittingResult) -> date | None:
        """The last exam date this result counts for; None unless it is a pass
        (a disqualification gives no carry-over, nor does a fail)."""
        if not self.passed(result):
            return None
        return add_years(result.sat_on, self.retention_years)

    def standing(self, results: Iterable[SittingResult], today: date) -> LevelStanding:
        """Where a candidate stands on one level, from every result of theirs for it."""
        released = [r for r in results if r.released_at is not None]
        by_component = {
            code: sorted(
                (r for r in released if r.component == code),
                key=lambda r: (r.sat_on, r.released_at),
            )
            for code in self.components
        }
        level_pass = self._level_pass(by_component)
        if level_pass is not None:
            return LevelStanding(
                passed=True,
                passed_at=max(r.released_at for r in level_pass),  # type: ignore[type-var]
                components=tuple(
                    ComponentState(r.component, ComponentStatus.PASSED, r) for r in level_pass
                ),
            )
        states = tuple(self._state(code, by_component[code], today) for code in self.components)
        return LevelStanding(passed=False, passed_at=None, components=states)

    def _level_pass(
        self, by_component: Mapping[str, list[SittingResult]]
    ) -> tuple[SittingResult, ...] | None:
        """The passes (one per component) that pass the level earliest, if any do."""
        passes = [[r for r in by_component[code] if self.passed(r)] for code in self.components]
        best: tuple[SittingResult, ...] | None = None
        for combo in itertools.product(*passes):
            first = min(r.sat_on for r in combo)
            if max(r.sat_on for r in combo) > add_years(first, self.retention_years):
                continue
            if best is None or _released(combo) < _released(best):
                best = combo
        return best

    def _state(self, code: str, results: list[SittingResult], today: date) -> ComponentState:
        if not results:
            return ComponentState(code, ComponentStatus.NOT_TAKEN, None)
        holding = [r for r in results if self.passed(r) and today <= self._until(r)]
        if holding:
            latest = holding[-1]
            return ComponentState(code, ComponentStatus.PASSED, latest, self._until(latest))
        latest = results[-1]
        if self.passed(latest):
            return ComponentState(code, ComponentStatus.EXPIRED, latest, self._until(latest))
        return ComponentState(code, ComponentStatus(self.outcome(latest).value), latest)

    def _until(self, result: SittingResult) -> date:
        return add_years(result.sat_on, self.retention_years)


def _released(combo: tuple[SittingResult, ...]) -> datetime:
    return max(r.released_at for r in combo)  # type: ignore[type-var]
