"""Eligibility rules engine (申报条件): which routes of a level a candidate meets.

Entry points (all pure — no I/O, no clock, no user-facing text):

* ``evaluate(catalog, level_code, profile, exam_date) -> Verdict`` — the answer for one
  level: status, matched route, and for every route of the level what is missing;
* ``suggest_level(catalog, profile, exam_date) -> str | None`` — "which level fits me?";
* ``required_questions(catalog, level_code | None) -> list[str]`` — the ``Profile``
  fields the routes of a level depend on, so the bot asks only those.

The routes are catalogue data (``eligibility.routes`` in ``catalog/exam-catalog.yaml``);
this module only interprets the condition vocabulary documented there. Every date
comparison is made at the exam date: work years, years since a title or a level, and
"graduated yet?" are all counted up to the exam day, so the same profile can be
ineligible for one session and eligible for a later one (``Missing.met_on`` says from
which exam date a condition will hold).

Status rules:

* ``eligible`` — at least one route holds (``matched_route`` is the first in catalogue
  order);
* ``manual_review`` — no route holds but one fails only on points staff can judge: a
  major not on the related-majors list, a technical-school (技工院校) route, or a higher
  title held for fewer years than the lower one requires;
* ``not_eligible`` — otherwise. The verdict then carries suggestions: a lower level the
  candidate is eligible for, and the earliest date a route will hold.
"""

from __future__ import annotations

import calendar
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from bot.domain.catalog import Catalog, Route

__all__ = [
    "PROFILE_FIELDS",
    "Missing",
    "Profile",
    "ProfileError",
    "Requirement",
    "RouteResult",
    "Status",
    "Suggestion",
    "Verdict",
    "add_months",
    "add_years",
    "evaluate",
    "full_years",
    "major_matches",
    "required_questions",
    "suggest_level",
]


class Status(StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    MANUAL_REVIEW = "manual_review"


@dataclass(frozen=True)
class Profile:
    """What the candidate told us. Codes are catalogue codes; None means "not given/none".

    ``graduation_date`` is the actual or expected graduation date. A candidate who has not
    graduated by the exam date is a student: ``final_year`` marks a student in the last
    year when the date is unknown.
    """

    education: str | None = None
    major: str | None = None
    major_code: str | None = None  # set when the major was picked from the catalogue list
    graduation_date: date | None = None
    final_year: bool = False
    title: str | None = None
    title_date: date | None = None
    prior_levels: Mapping[str, date] = field(default_factory=dict)  # level code -> date obtained
    work_start: date | None = None  # start of technical work in this occupation


# The order the bot asks questions in; required_questions() returns a subsequence.
PROFILE_FIELDS = (
    "education",
    "graduation_date",
    "final_year",
    "major",
    "title",
    "title_date",
    "prior_levels",
    "work_start",
)


class ProfileError(ValueError):
    """The profile or level uses a code the catalogue does not know."""

    def __init__(self, field_name: str, value: object) -> None:
        self.field = field_name
        self.value = value
        super().__init__(f"{field_name}: unknown code {value!r}")


@dataclass(frozen=True)
class Missing:
    """One unmet condition of a route.

    ``code``: ``title``, ``years_since_title``, ``education``, ``graduation``,
    ``graduation_window``, ``related_major``, ``work_years``, ``prior_level`` or
    ``years_since_prior_level``. ``need`` / ``have``: what the route asks for and what
    the profile gives (codes, counts or dates). ``met_on``: the first exam date on which
    the condition will hold if nothing else changes, when that can be known.
    ``reviewable``: staff may accept it on manual review.
    """

    code: str
    need: object
    have: object = None
    met_on: date | None = None
    reviewable: bool = False


@dataclass(frozen=True)
class RouteResult:
    route: str
    ok: bool
    manual_review: bool
    missing: list[Missing]
    # When every missing condition is only a matter of time: the first exam date on
    # which the whole route holds.
    eligible_from: date | None = None


@dataclass(frozen=True)
class Requirement:
    """Something the candidate must bring that the engine cannot verify."""

    code: str  # "training_hours"
    need: int


@dataclass(frozen=True)
class Suggestion:
    """What the candidate could do next.

    ``kind``: ``apply_level`` (eligible for ``level`` via ``route`` — a lower level) or
    ``eligible_from`` (``route`` of the requested level will hold for an exam on or after
    ``on``; ``session`` is the first catalogue session offering the level from then).
    """

    kind: str
    level: str
    route: str | None = None
    on: date | None = None
    session: str | None = None


@dataclass(frozen=True)
class Verdict:
    level: str
    exam_date: date
    status: Status
    matched_route: str | None
    routes: list[RouteResult]
    requirements: list[Requirement]
    suggestions: list[Suggestion]

    def route(self, code: str) -> RouteResult:
        return next(result for result in self.routes if result.route == code)


# --- date arithmetic ------------------------------------------------------------------


def add_years(start: date, years: int) -> date:
    """The ``years``-th anniversary; 29 February falls on 1 March in non-leap years.

    1 March rather than 28 February: a year from 29 February is only complete once the
    whole of 28 February has passed.
    """
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return date(start.year + years, 3, 1)


def add_months(start: date, months: int) -> date:
    """Same day ``months`` later, clamped to the end of a shorter month."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def full_years(start: date, end: date) -> int:
    """Completed years from ``start`` to ``end``; the anniversary itself counts."""
    years = end.year - start.year
    if years > 0 and add_years(start, years) > end:
        years -= 1
    return max(years, 0)


# --- major matching -------------------------------------------------------------------


def _normalise_major(text: str) -> str:
    # NFKC folds full-width letters/digits to half-width; dropping everything that is not
    # a letter or digit ignores spaces, commas, "、" and the like; a trailing 专业/major
    # is how people often write it ("自动化专业").
    folded = unicodedata.normalize("NFKC", text).casefold()
    compact = "".join(ch for ch in folded if ch.isalnum())
    for suffix in ("专业", "major"):
        if compact.endswith(suffix) and len(compact) > len(suffix):
            compact = compact[: -len(suffix)]
    return compact


def major_matches(
    catalog: Catalog, list_name: str, major: str | None, major_code: str | None = None
) -> bool:
    """Whether the major (picked code or free text) is on the named related-majors list."""
    majors = catalog.related_majors.get(list_name, ())
    if major_code is not None and any(m.code == major_code for m in majors):
        return True
    if not major:
        return False
    wanted = _normalise_major(major)
    return any(
        wanted in {_normalise_major(m.name.zh_Hans), _normalise_major(m.name.en), m.code}
        for m in majors
    )


# --- route conditions -------------------------------------------------------------------
# Each checker returns the Missing items of one condition family (empty: it holds).


def _is_student(profile: Profile, exam_date: date) -> bool:
    """Not yet graduated on the exam date (the date decides; the flag only if no date)."""
    if profile.graduation_date is not None:
        return profile.graduation_date > exam_date
    return profile.final_year


def _accepted_education(catalog: Catalog, route: Route) -> set[str] | None:
    c = route.conditions
    if c.education_in is None and c.education_at_least is None:
        return None
    accepted = {e.code for e in catalog.education_levels}
    if c.education_in is not None:
        accepted &= set(c.education_in)
    if c.education_at_least is not None:
        floor = catalog.education_level(c.education_at_least).rank
        accepted &= {e.code for e in catalog.education_levels if e.rank >= floor}
    return accepted


def _check_education(
    catalog: Catalog, route: Route, profile: Profile, exam_date: date
) -> list[Missing]:
    accepted = _accepted_education(catalog, route)
    if accepted is None:
        return []
    ordered = tuple(
        e.code
        for e in sorted(catalog.education_levels, key=lambda e: e.rank)
        if e.code in accepted
    )
    if profile.education not in accepted:
        return [Missing("education", need=ordered, have=profile.education)]
    if not _is_student(profile, exam_date):
        return []
    graduation = profile.graduation_date
    if not route.conditions.final_year_allowed:
        # The degree must be held by the exam date on every route except final-year ones.
        return [Missing("graduation", need=exam_date, have=graduation, met_on=graduation)]
    window = catalog.eligibility.final_year_window_months
    if graduation is None:
        return [Missing("graduation_window", need=window, have=None)]
    if graduation > add_months(exam_date, window):
        # A later exam brings the graduation date inside the window.
        return [
            Missing(
                "graduation_window",
                need=window,
                have=graduation,
                met_on=add_months(graduation, -window),
            )
        ]
    return []


def _check_major(catalog: Catalog, route: Route, profile: Profile) -> list[Missing]:
    list_name = route.conditions.related_major
    if list_name is None or major_matches(catalog, list_name, profile.major, profile.major_code):
        return []
    if not profile.major and profile.major_code is None:
        return [Missing("related_major", need=list_name, have=None)]
    # Off-list is "not eligible by the automatic check", never a refusal: staff decide.
    return [
        Missing(
            "related_major",
            need=list_name,
            have=profile.major or profile.major_code,
            reviewable=True,
        )
    ]


def _check_title(
    catalog: Catalog, route: Route, profile: Profile, exam_date: date
) -> list[Missing]:
    c = route.conditions
    if c.title_at_least is None:
        return []
    need_rank = catalog.title(c.title_at_least).rank
    if profile.title is None or catalog.title(profile.title).rank < need_rank:
        return [Missing("title", need=c.title_at_least, have=profile.title)]
    missing = []
    held_from = profile.title_date
    if held_from is not None and held_from > exam_date:
        # A title obtained after the exam day does not count for that exam.
        missing.append(
            Missing("title", need=c.title_at_least, have=profile.title, met_on=held_from)
        )
    if c.years_since_title:
        if held_from is None:
            missing.append(Missing("years_since_title", need=c.years_since_title, have=None))
        elif (years := full_years(held_from, exam_date)) < c.years_since_title:
            # A higher title held "too briefly": the lower one was obtained earlier, so
            # staff can check its date (see the titles section of the catalogue).
            higher = catalog.title(profile.title).rank > need_rank
            missing.append(
                Missing(
                    "years_since_title",
                    need=c.years_since_title,
                    have=years,
                    met_on=add_years(held_from, c.years_since_title),
                    reviewable=higher,
                )
            )
    return missing


def _check_prior_level(route: Route, profile: Profile, exam_date: date) -> list[Missing]:
    c = route.conditions
    if c.prior_level is None:
        return []
    obtained = profile.prior_levels.get(c.prior_level)
    if obtained is None:
        held = tuple(sorted(profile.prior_levels)) or None
        return [Missing("prior_level", need=c.prior_level, have=held)]
    missing = []
    if obtained > exam_date:
        missing.append(
            Missing("prior_level", need=c.prior_level, have=c.prior_level, met_on=obtained)
        )
    if (
        c.years_since_prior_level
        and (years := full_years(obtained, exam_date)) < c.years_since_prior_level
    ):
        met_on = add_years(obtained, c.years_since_prior_level)
        missing.append(
            Missing(
                "years_since_prior_level",
                need=c.years_since_prior_level,
                have=years,
                met_on=met_on,
            )
        )
    return missing


def _check_work(route: Route, profile: Profile, exam_date: date) -> list[Missing]:
    need = route.conditions.min_work_years
    if not need:
        return []
    if profile.work_start is None:
        # Not working yet. A student can start at the earliest on graduating, which gives
        # the earliest date the route could hold; otherwise we cannot say.
        student = profile.graduation_date is not None and profile.graduation_date > exam_date
        met_on = add_years(profile.graduation_date, need) if student else None
        return [Missing("work_years", need=need, have=0, met_on=met_on)]
    years = full_years(profile.work_start, exam_date)
    if years >= need:
        return []
    return [
        Missing("work_years", need=need, have=years, met_on=add_years(profile.work_start, need))
    ]


def _evaluate_route(
    catalog: Catalog, route: Route, profile: Profile, exam_date: date
) -> RouteResult:
    education = _check_education(catalog, route, profile, exam_date)
    # A major is judged against the list of the route's education level; with the wrong
    # education the comparison means nothing and would only add noise.
    wrong_education = any(m.code == "education" for m in education)
    missing = [
        *_check_title(catalog, route, profile, exam_date),
        *education,
        *([] if wrong_education else _check_major(catalog, route, profile)),
        *_check_prior_level(route, profile, exam_date),
        *_check_work(route, profile, exam_date),
    ]
    if route.conditions.manual_review:
        # e.g. 技工院校 graduates: if the rest holds, national rules apply — staff decide.
        return RouteResult(route.code, ok=False, manual_review=not missing, missing=missing)
    manual = bool(missing) and all(m.reviewable for m in missing)
    dates = [m.met_on for m in missing]
    eligible_from = max(dates) if missing and all(d is not None for d in dates) else None  # type: ignore[type-var]
    return RouteResult(
        route.code,
        ok=not missing,
        manual_review=manual,
        missing=missing,
        eligible_from=eligible_from,
    )


# --- entry points -----------------------------------------------------------------------


def _check_codes(catalog: Catalog, level_code: str | None, profile: Profile) -> None:
    if level_code is not None and level_code not in {lvl.code for lvl in catalog.levels}:
        raise ProfileError("level", level_code)
    if profile.education is not None and profile.education not in {
        e.code for e in catalog.education_levels
    }:
        raise ProfileError("education", profile.education)
    if profile.title is not None and profile.title not in {t.code for t in catalog.titles}:
        raise ProfileError("title", profile.title)
    for code in profile.prior_levels:
        if code not in {lvl.code for lvl in catalog.levels}:
            raise ProfileError("prior_levels", code)


def _status(results: list[RouteResult]) -> Status:
    if any(r.ok for r in results):
        return Status.ELIGIBLE
    if any(r.manual_review for r in results):
        return Status.MANUAL_REVIEW
    return Status.NOT_ELIGIBLE


def _route_results(
    catalog: Catalog, level_code: str, profile: Profile, exam_date: date
) -> list[RouteResult]:
    return [
        _evaluate_route(catalog, route, profile, exam_date)
        for route in catalog.routes_for(level_code)
    ]


def _suggestions(
    catalog: Catalog,
    level_code: str,
    profile: Profile,
    exam_date: date,
    results: list[RouteResult],
) -> list[Suggestion]:
    suggestions = []
    # A lower level open now comes first: it is what the candidate can do this session
    # (and passing it often unlocks this level later). Never one the candidate already
    # holds, or one below it: whoever holds 中级 has nothing to gain from 初级.
    held = _held_rank(catalog, profile)
    lower = [
        lvl for lvl in catalog.levels_by_rank() if held < lvl.rank < catalog.level(level_code).rank
    ]
    for level in reversed(lower):
        lower_results = _route_results(catalog, level.code, profile, exam_date)
        matched = next((r.route for r in lower_results if r.ok), None)
        if matched is not None:
            suggestions.append(Suggestion("apply_level", level=level.code, route=matched))
            break
    waiting = [r for r in results if r.eligible_from is not None]
    if waiting:
        soonest = min(waiting, key=lambda r: r.eligible_from)  # type: ignore[arg-type, return-value]
        on = soonest.eligible_from
        session = next(
            (s.code for s in catalog.sessions_for(level_code) if s.exam_date >= on), None
        )  # type: ignore[operator]
        suggestions.append(
            Suggestion(
                "eligible_from", level=level_code, route=soonest.route, on=on, session=session
            )
        )
    return suggestions


def evaluate(catalog: Catalog, level_code: str, profile: Profile, exam_date: date) -> Verdict:
    """Check every route of a level for an exam on ``exam_date``; raises ``ProfileError``."""
    _check_codes(catalog, level_code, profile)
    results = _route_results(catalog, level_code, profile, exam_date)
    status = _status(results)
    matched = next((r.route for r in results if r.ok), None)
    suggestions = (
        []
        if status is Status.ELIGIBLE
        else _suggestions(catalog, level_code, profile, exam_date, results)
    )
    requirements = [
        Requirement("training_hours", catalog.level(level_code).training_hours_required)
    ]
    return Verdict(
        level=level_code,
        exam_date=exam_date,
        status=status,
        matched_route=matched,
        routes=results,
        requirements=requirements,
        suggestions=suggestions,
    )


def _held_rank(catalog: Catalog, profile: Profile) -> int:
    """The rank of the highest level certificate the candidate holds (0: none)."""
    ranks = [catalog.level(code).rank for code in profile.prior_levels]
    return max(ranks, default=0)


def suggest_level(catalog: Catalog, profile: Profile, exam_date: date) -> str | None:
    """The highest level the candidate is eligible for, else the lowest one open to manual
    review, else the next level above the one held, else None.

    Levels the candidate already holds, and those below, are never suggested: whoever holds
    中级 is pointed to 高级 (with what is still missing for it), not to 初级.
    """
    _check_codes(catalog, None, profile)
    held = _held_rank(catalog, profile)
    above = [level for level in catalog.levels_by_rank() if level.rank > held]
    statuses = [
        (level.code, _status(_route_results(catalog, level.code, profile, exam_date)))
        for level in above
    ]
    eligible = [code for code, status in statuses if status is Status.ELIGIBLE]
    if eligible:
        return eligible[-1]
    review = next((code for code, status in statuses if status is Status.MANUAL_REVIEW), None)
    if review is not None or not held:
        return review
    return above[0].code if above else None


# Which Profile fields a condition reads. Education conditions also need the graduation
# date, because a degree counts only once held (except on final-year routes).
_FIELDS_BY_CONDITION = {
    "title_at_least": ("title",),
    "years_since_title": ("title_date",),
    "education_in": ("education", "graduation_date"),
    "education_at_least": ("education", "graduation_date"),
    "related_major": ("major",),
    "final_year_allowed": ("final_year",),
    "min_work_years": ("work_start",),
    "prior_level": ("prior_levels",),
    "years_since_prior_level": ("prior_levels",),
}


def required_questions(catalog: Catalog, level_code: str | None) -> list[str]:
    """Profile fields the routes of ``level_code`` (all levels if None) need, in asking order."""
    if level_code is not None and level_code not in {lvl.code for lvl in catalog.levels}:
        raise ProfileError("level", level_code)
    routes = catalog.eligibility.routes if level_code is None else catalog.routes_for(level_code)
    needed: set[str] = set()
    for route in routes:
        for condition in route.conditions.model_dump(exclude_defaults=True):
            needed.update(_FIELDS_BY_CONDITION.get(condition, ()))
    return [name for name in PROFILE_FIELDS if name in needed]
