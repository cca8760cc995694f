"""Eligibility flow: ask only what the level's routes need, evaluate, explain, review.

Entry points:
- `start(telegram_id, level)` / `answer(telegram_id, step, value)` / `current(telegram_id)`:
  the question-by-question check; every answer is saved when given (in the candidate's
  profile, so registration never asks it again) and the step in the flow state.
- `request_review(telegram_id, level)`, `decide_review(review_id, staff_id, approve, reason)`:
  manual review through the staff chat; the first decision wins.
- `override(staff_id, candidate_telegram_id, level, eligible, reason)`: staff override.
- `answers(telegram_id, level)` / `change(telegram_id, level, step)`: the answers a check
  used, and asking one of them again (the others are kept).
- `standing(telegram_id, level)`: may this candidate register for this level, and why.
The rules themselves are pure and live in `bot.domain.eligibility`.

A level passed here (`bot.services.standing.passes_here`: released results, the pass
date being the release day of the later result) counts as held from its pass date:
`profile_from(data, passes)` merges it into the answers for every check, without writing
it to the stored answers. When it covers the prior level the checked level's routes ask for,
"which level do you hold / since when" is not asked (unless the candidate chose to
change that answer); when the candidate also gave the same level with an earlier date,
the earlier date counts (more years held). The outcome names the passes it used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.domain.catalog import Catalog
from bot.domain.eligibility import Profile, Verdict, evaluate, required_questions, suggest_level
from bot.services.answers import parse_choice, parse_date, parse_text
from bot.services.candidates import candidate_and_flow
from bot.services.catalog import CatalogService
from bot.services.errors import AlreadyDecided, InvalidAnswer, NotFound, StaleStep
from bot.services.notify import Template, audit, notify_candidate, notify_staff
from bot.services.standing import LevelPass, passes_here
from storage.models import Candidate, EligibilityReview, FlowState
from storage.uow import UnitOfWork, UowFactory

FLOW = "eligibility"
ASK_PRIOR = "ask_prior"  # flow flag: ask the prior level even though one was passed here
PRIOR_STEPS = ("prior_level", "prior_level_date")
AUTO_LEVEL = "auto"  # "which level fits me?"
NONE = "none"  # an explicit "I have none" answer (title, prior level, work)
#: Profile keys the check asks for; "check again with new answers" clears exactly these.
REVIEW = "eligibility_review"  # the audit log's entity
ANSWER_KEYS = frozenset(
    {
        "education",
        "graduation_date",
        "major",
        "major_code",
        "title",
        "title_date",
        "prior_level",
        "prior_level_date",
        "work_start",
    }
)

# Changing one answer clears the answers that depend on it (the list of majors depends on
# the education; a date belongs to its title or certificate), so they are asked again.
_CLEARS = {
    "education": ("education", "major", "major_code"),
    "major": ("major", "major_code"),
    "title": ("title", "title_date"),
    "prior_level": ("prior_level", "prior_level_date"),
}

# Profile fields (from the rules engine) → the steps that ask them, in order.
_FIELD_STEPS = {
    "education": ("education",),
    "graduation_date": ("graduation_date",),
    "major": ("major",),
    "title": ("title", "title_date"),
    "title_date": (),
    "prior_levels": ("prior_level", "prior_level_date"),
    "work_start": ("work_start",),
    "final_year": (),  # derived from the graduation date
}


@dataclass(frozen=True)
class Question:
    """The next thing to ask; `options` are codes for choice steps."""

    step: str
    options: tuple[str, ...] = ()
    allow_none: bool = False  # a "none / not yet" button
    allow_text: bool = False  # free text accepted besides the options
    list_name: str | None = None  # for majors: which related-majors list is shown


@dataclass(frozen=True)
class Outcome:
    """The result of a check: the engine's verdict for a level and the exam it assumed."""

    level: str
    verdict: Verdict
    session_code: str | None
    suggested_from_auto: bool = False
    # Levels passed here that the level's routes count as a prior level, oldest first.
    passed_here: tuple[LevelPass, ...] = ()


@dataclass(frozen=True)
class Answer:
    """One answer a check used: the step that asked it and the value kept (a catalogue code,
    an ISO date, typed text or `NONE`); `code` is the catalogue code of a listed major."""

    step: str
    value: str
    code: str | None = None


@dataclass(frozen=True)
class Standing:
    """Whether a candidate may register for a level, and on what grounds."""

    level: str
    allowed: bool
    # eligible / approved / overridden / manual_review / pending_review / not_eligible / unknown
    status: str
    route: str | None = None


@dataclass(frozen=True)
class ReviewTicket:
    review_id: int
    created: bool  # False: a pending request for this level already existed


@dataclass(frozen=True)
class ReviewDecision:
    review_id: int
    candidate_telegram_id: int
    level: str
    approved: bool


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value != NONE else None


def profile_from(data: dict[str, Any], passes: Mapping[str, date] | None = None) -> Profile:
    """The engine's Profile from the answers stored on the candidate, with the levels
    passed here (`passes`: level code → pass date) held from their pass date; the earlier
    date wins when the candidate also gave the same level."""
    prior = data.get("prior_level")
    prior_date = _date(data.get("prior_level_date"))
    held = {prior: prior_date} if prior not in (None, NONE) and prior_date else {}
    for level, on in (passes or {}).items():
        held[level] = min(on, held.get(level, on))
    return Profile(
        education=data.get("education"),
        major=data.get("major"),
        major_code=data.get("major_code"),
        graduation_date=_date(data.get("graduation_date")),
        title=None if data.get("title") in (None, NONE) else data.get("title"),
        title_date=_date(data.get("title_date")),
        prior_levels=held,
        work_start=_date(data.get("work_start")),
    )


def answer_names(catalog: Catalog, profile: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The catalogue's names ({language: name}) of the coded answers in `profile`, for a
    card rendered later without the catalogue at hand (education, title, level, major)."""
    found: dict[str, Any] = {
        "education": next(
            (e for e in catalog.education_levels if e.code == profile.get("education")), None
        ),
        "title": next((t for t in catalog.titles if t.code == profile.get("title")), None),
        "prior_level": next(
            (lv for lv in catalog.levels if lv.code == profile.get("prior_level")), None
        ),
        "major": next(
            (
                m
                for majors in catalog.related_majors.values()
                for m in majors
                if m.code == profile.get("major_code")
            ),
            None,
        ),
    }
    return {key: item.name.model_dump() for key, item in found.items() if item is not None}


def _prior_levels_asked(catalog: Catalog, level: str | None) -> set[str]:
    """The prior levels the routes of `level` (every level for "auto") ask for."""
    if level is None or level == AUTO_LEVEL:
        routes = list(catalog.eligibility.routes)
    else:
        routes = list(catalog.routes_for(level))
    return {r.conditions.prior_level for r in routes if r.conditions.prior_level}


def _covers(catalog: Catalog, level: str, passes: Mapping[str, LevelPass]) -> bool:
    """Whether levels passed here answer every prior level the routes ask for."""
    asked = _prior_levels_asked(catalog, level)
    return bool(asked) and asked <= set(passes)


def _relevant(
    catalog: Catalog, level: str, passes: Mapping[str, LevelPass]
) -> tuple[LevelPass, ...]:
    """The passes the routes of `level` count as a prior level, oldest first."""
    asked = _prior_levels_asked(catalog, level)
    return tuple(sorted((p for c, p in passes.items() if c in asked), key=lambda p: p.passed_on))


class EligibilityService:
    def __init__(
        self, uow: UowFactory, clock: Callable[[], datetime], catalog: CatalogService
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog

    # -- the question-by-question check ---------------------------------------------

    async def start(
        self, telegram_id: int, level: str | None = None, *, fresh: bool = False
    ) -> Question | Outcome:
        """Begin a check (for `level`, or "auto" to find the level that fits)."""
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if fresh:
                candidate.profile = {
                    k: v for k, v in candidate.profile.items() if k not in ANSWER_KEYS
                }
            answers = {"level": level} if level else {}
            if level and level != AUTO_LEVEL:
                parse_choice("level", level, [lv.code for lv in catalog.levels])
            state.enter(FLOW, answers=answers)
            passes = await self._passes(uow, catalog, candidate)
            result = self._advance(catalog, candidate, state, answers, passes)
            await uow.commit()
            return result

    async def current(self, telegram_id: int) -> Question | None:
        """The question the candidate is on, for resuming after /start or a restart."""
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if state.flow != FLOW or state.step is None:
                return None
            return self._question(catalog, state.step, candidate.profile, state.answers_of(FLOW))

    async def answer(self, telegram_id: int, step: str, value: str | None) -> Question | Outcome:
        """Save one answer (validated) and return the next question or the outcome."""
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if state.flow != FLOW or state.step != step:
                raise StaleStep(step)
            flow_answers = state.answers_of(FLOW)
            question = self._question(catalog, step, candidate.profile, flow_answers)
            self._store(catalog, candidate, flow_answers, question, value)
            passes = await self._passes(uow, catalog, candidate)
            result = self._advance(catalog, candidate, state, flow_answers, passes)
            await uow.commit()
            return result

    async def answers(self, telegram_id: int, level: str) -> tuple[Answer, ...]:
        """The answers a check of `level` uses, in asking order: what "change my answers"
        offers to change."""
        catalog = await self._catalog.current()
        parse_choice("level", level, [lv.code for lv in catalog.levels])
        async with self._uow() as uow:
            candidate, _ = await candidate_and_flow(uow, telegram_id)
            profile = dict(candidate.profile)
            known = _relevant(catalog, level, await self._passes(uow, catalog, candidate))
        if known and profile.get("prior_level") in (None, NONE):
            # What the check used: the level passed here (changing it asks the question).
            profile["prior_level"] = known[-1].level
            profile["prior_level_date"] = known[-1].passed_on.isoformat()
        return tuple(
            Answer(
                step,
                str(profile[step]),
                profile.get("major_code") if step == "major" else None,
            )
            for step in self._steps(catalog, level)
            if not self._unanswered(step, profile) and profile.get(step) is not None
        )

    async def change(self, telegram_id: int, level: str, step: str) -> Question | Outcome:
        """Forget one answer (and those that depend on it) and ask it again; the check of
        `level` then goes on to its outcome with every other answer kept."""
        catalog = await self._catalog.current()
        parse_choice("level", level, [lv.code for lv in catalog.levels])
        if step not in self._steps(catalog, level):
            raise StaleStep(step)
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            cleared = _CLEARS.get(step, (step,))
            candidate.profile = {k: v for k, v in candidate.profile.items() if k not in cleared}
            answers: dict[str, Any] = {"level": level}
            if step in PRIOR_STEPS:
                answers[ASK_PRIOR] = True  # asked even when a level was passed here
            state.enter(FLOW, answers=answers)
            passes = await self._passes(uow, catalog, candidate)
            result = self._advance(catalog, candidate, state, answers, passes)
            await uow.commit()
            return result

    def _store(
        self,
        catalog: Catalog,
        candidate: Candidate,
        flow: dict[str, Any],
        q: Question,
        value: str | None,
    ) -> None:
        today = self._clock().date()
        profile = dict(candidate.profile)
        step = q.step
        if step == "level":
            flow["level"] = parse_choice(step, value, q.options)
        elif step == "education":
            profile["education"] = parse_choice(step, value, q.options)
            profile.pop("major", None)  # the list of majors depends on the education
            profile.pop("major_code", None)
        elif step == "graduation_date":
            profile["graduation_date"] = _iso(
                parse_date(step, value, today=today, past_only=False, max_future_years=6)
            )
        elif step == "major":
            if value in q.options:
                major = next(
                    m for m in catalog.related_majors[q.list_name or "degree"] if m.code == value
                )
                profile["major_code"], profile["major"] = major.code, major.name.zh_Hans
            else:
                profile["major_code"], profile["major"] = (
                    None,
                    parse_text(step, value, max_length=60),
                )
        elif step in ("title", "prior_level"):
            chosen = parse_choice(step, value, (*q.options, NONE))
            profile[step] = chosen
            if chosen == NONE:
                profile.pop(f"{step}_date", None)
        elif step in ("title_date", "prior_level_date"):
            profile[step] = _iso(parse_date(step, value, today=today, past_only=True))
        elif step == "work_start":
            profile[step] = (
                NONE
                if value == NONE
                else _iso(parse_date(step, value, today=today, past_only=True))
            )
        else:  # pragma: no cover - steps come from _question
            raise StaleStep(step)
        candidate.profile = profile

    def _steps(self, catalog: Catalog, level: str | None) -> list[str]:
        steps: list[str] = []
        for field in required_questions(catalog, None if level in (None, AUTO_LEVEL) else level):
            steps.extend(s for s in _FIELD_STEPS.get(field, ()) if s not in steps)
        return steps

    def _unanswered(self, step: str, profile: dict[str, Any]) -> bool:
        if step == "title_date":
            return profile.get("title") not in (None, NONE) and not profile.get("title_date")
        if step == "prior_level_date":
            return profile.get("prior_level") not in (None, NONE) and not profile.get(
                "prior_level_date"
            )
        return profile.get(step) is None

    async def _passes(
        self, uow: UnitOfWork, catalog: Catalog, candidate: Candidate
    ) -> dict[str, LevelPass]:
        return await passes_here(uow, catalog, candidate.id, self._clock().date())

    def _advance(
        self,
        catalog: Catalog,
        candidate: Candidate,
        state: FlowState,
        flow: dict[str, Any],
        passes: Mapping[str, LevelPass],
    ) -> Question | Outcome:
        """Save the check's answers (`flow`) and move to the first unanswered step, or leave
        the flow with the outcome once everything the level's routes need is known.

        The prior level is not asked when levels passed here cover what the routes ask
        for, unless the candidate chose to change that answer (`ASK_PRIOR`)."""
        level = flow.get("level")
        if level is None:
            state.advance("level", answers=flow)
            return self._question(catalog, "level", candidate.profile, flow)
        known = _covers(catalog, level, passes) and not flow.get(ASK_PRIOR)
        for step in self._steps(catalog, level):
            if known and step in PRIOR_STEPS:
                continue
            if self._unanswered(step, candidate.profile):
                state.advance(step, answers=flow)
                return self._question(catalog, step, candidate.profile, flow)
        outcome = self._evaluate(catalog, level, candidate.profile, passes)
        verdicts = dict(candidate.profile.get("verdicts", {}))
        verdicts[outcome.level] = {
            "status": outcome.verdict.status.value,
            "route": outcome.verdict.matched_route,
            "exam_date": outcome.verdict.exam_date.isoformat(),
            "at": self._clock().isoformat(),
        }
        candidate.profile = {**candidate.profile, "verdicts": verdicts}
        state.leave(answers=flow)
        return outcome

    def _question(
        self, catalog: Catalog, step: str, profile: dict[str, Any], flow: dict[str, Any]
    ) -> Question:
        if step == "level":
            return Question(step, (*(lv.code for lv in catalog.levels), AUTO_LEVEL))
        if step == "education":
            return Question(
                step,
                tuple(e.code for e in sorted(catalog.education_levels, key=lambda e: -e.rank)),
            )
        if step == "major":
            list_name = (
                "associate"
                if profile.get("education") in ("associate", "technical_school")
                else "degree"
            )
            majors = catalog.related_majors.get(list_name, ())
            return Question(
                step, tuple(m.code for m in majors), allow_text=True, list_name=list_name
            )
        if step == "title":
            return Question(
                step,
                tuple(t.code for t in sorted(catalog.titles, key=lambda t: t.rank)),
                allow_none=True,
            )
        if step == "prior_level":
            return Question(step, tuple(lv.code for lv in catalog.levels), allow_none=True)
        if step == "work_start":
            return Question(step, allow_none=True)
        return Question(step)  # dates typed as text

    def _exam(self, catalog: Catalog, level: str | None) -> tuple[date, str | None]:
        """The sitting a check is about: the next session offering the level."""
        now = self._clock()
        sessions = sorted(
            (s for s in catalog.sessions if level in (None, AUTO_LEVEL) or level in s.levels),
            key=lambda s: s.exam_date,
        )
        upcoming = [
            s for s in sessions if catalog.session_timeline(s.code).registration_closes_at > now
        ]
        if upcoming:
            return upcoming[0].exam_date, upcoming[0].code
        return now.date(), None

    def _evaluate(
        self,
        catalog: Catalog,
        level: str,
        data: dict[str, Any],
        passes: Mapping[str, LevelPass],
    ) -> Outcome:
        profile = profile_from(data, {code: p.passed_on for code, p in passes.items()})
        auto = level == AUTO_LEVEL
        if auto:
            exam_date, _ = self._exam(catalog, None)
            level = suggest_level(catalog, profile, exam_date) or catalog.levels_by_rank()[0].code
        exam_date, session = self._exam(catalog, level)
        return Outcome(
            level,
            evaluate(catalog, level, profile, exam_date),
            session,
            suggested_from_auto=auto,
            passed_here=_relevant(catalog, level, passes),
        )

    # -- standing, review, override -----------------------------------------------------

    async def standing(self, telegram_id: int, level: str) -> Standing:
        async with self._uow() as uow:
            candidate, _ = await candidate_and_flow(uow, telegram_id)
            return self._standing(candidate, level)

    @staticmethod
    def _standing(candidate: Candidate, level: str) -> Standing:
        record = candidate.profile.get("verdicts", {}).get(level)
        if not record:
            return Standing(level, False, "unknown")
        status = record["status"]
        allowed = status in ("eligible", "approved", "overridden")
        return Standing(level, allowed, status, record.get("route"))

    async def request_review(
        self, telegram_id: int, level: str, staff_chat_id: int | None
    ) -> ReviewTicket:
        """File a manual review of the last check for `level` and queue the staff card."""
        catalog = await self._catalog.current()
        level_names = (
            catalog.level(level).name.model_dump()
            if level in {lv.code for lv in catalog.levels}
            else {}
        )
        async with self._uow() as uow:
            candidate, _ = await candidate_and_flow(uow, telegram_id)
            pending = await uow.reviews.get_pending(candidate.id, level)
            if pending is not None:  # a double tap, or asking again while staff look at it
                return ReviewTicket(pending.id, created=False)
            standing = self._standing(candidate, level)
            if standing.status not in ("manual_review", "not_eligible"):
                raise InvalidAnswer("review", "nothing_to_review")
            review = EligibilityReview(
                candidate_id=candidate.id,
                level_code=level,
                status="pending",
                profile={k: v for k, v in candidate.profile.items() if k != "verdicts"},
                verdict=candidate.profile["verdicts"][level],
                requested_at=self._clock(),
            )
            uow.reviews.add(review)
            await uow.flush()
            verdicts = dict(candidate.profile["verdicts"])
            verdicts[level] = {**verdicts[level], "status": "pending_review"}
            candidate.profile = {**candidate.profile, "verdicts": verdicts}
            await notify_staff(
                uow,
                staff_chat_id,
                self._clock(),
                key=f"review_request:{review.id}",
                template=Template.ELIGIBILITY_REVIEW_REQUEST,
                params={
                    "review_id": review.id,
                    "name": candidate.full_name or candidate.first_name,
                    "telegram_id": candidate.telegram_id,
                    "level": level,
                    "profile": review.profile,
                    "status": standing.status,
                    "level_names": level_names,
                    "names": answer_names(catalog, review.profile),
                },
            )
            audit(
                uow,
                f"tg:{telegram_id}",
                REVIEW,
                review.id,
                "review_requested",
                self._clock(),
                to_state="pending",
            )
            await uow.commit()
            return ReviewTicket(review.id, created=True)

    async def decide_review(
        self, review_id: int, staff_id: int, *, approve: bool, reason: str | None
    ) -> ReviewDecision:
        """Approve or reject a pending review; a second decision raises AlreadyDecided."""
        status = "approved" if approve else "rejected"
        async with self._uow() as uow:
            review = await uow.reviews.get(review_id)
            if review is None:
                raise NotFound("review")
            if not await uow.reviews.decide(review_id, status, staff_id, self._clock(), reason):
                await uow.reviews.refresh(review)
                raise AlreadyDecided(review.decided_by, review.status)
            candidate = await uow.candidates.get(review.candidate_id, for_update=True)
            self._set_verdict(candidate, review.level_code, status, review.verdict.get("route"))
            audit(
                uow,
                f"tg:{staff_id}",
                REVIEW,
                review.id,
                "review_decided",
                self._clock(),
                from_state="pending",
                to_state=status,
                reason=reason,
            )
            await notify_candidate(
                uow,
                candidate.id,
                self._clock(),
                key=f"review_decided:{review.id}",
                template=Template.ELIGIBILITY_REVIEW_DECIDED,
                params={"level": review.level_code, "approved": approve, "reason": reason},
            )
            await uow.commit()
            return ReviewDecision(review.id, candidate.telegram_id, review.level_code, approve)

    async def override(
        self, staff_id: int, candidate_telegram_id: int, level: str, *, eligible: bool, reason: str
    ) -> None:
        """Staff set the result for a level by hand; the reason is required and recorded,
        and the candidate is told (with the reason) through the outbox."""
        catalog = await self._catalog.current()
        parse_choice("level", level, [lv.code for lv in catalog.levels])
        reason = parse_text("reason", reason, max_length=500, min_length=3)
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(
                candidate_telegram_id, for_update=True
            )
            if candidate is None:
                raise NotFound("candidate")
            old = self._standing(candidate, level).status
            self._set_verdict(candidate, level, "overridden" if eligible else "not_eligible", None)
            audit(
                uow,
                f"tg:{staff_id}",
                "eligibility",
                f"{candidate.id}:{level}",
                "override",
                self._clock(),
                from_state=old,
                reason=reason,
                to_state="eligible" if eligible else "not_eligible",
            )
            now = self._clock()
            await notify_candidate(  # a staff decision is told to the candidate
                uow,
                candidate.id,
                now,
                key=f"eligibility_override:{candidate.id}:{level}:{now.isoformat()}",
                template=Template.ELIGIBILITY_OVERRIDDEN,
                params={"level_code": level, "eligible": eligible, "reason": reason},
            )
            await uow.commit()

    def _set_verdict(
        self, candidate: Candidate, level: str, status: str, route: str | None
    ) -> None:
        verdicts = dict(candidate.profile.get("verdicts", {}))
        verdicts[level] = {
            **verdicts.get(level, {}),
            "status": status,
            "route": route,
            "at": self._clock().isoformat(),
        }
        candidate.profile = {**candidate.profile, "verdicts": verdicts}
