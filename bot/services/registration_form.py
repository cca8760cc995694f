"""Registration form flow: collect the candidate's registration data, one saved answer at a time.

Entry points: `open_levels(telegram_id)`, `start(telegram_id, level)`, `current`,
`answer(telegram_id, step, Input)`, `edit(telegram_id, field)` (from the summary),
`submit(telegram_id, join_waitlist)`.
Each answer is validated and written when given: personal fields on the candidate row
(the ID number encrypted, with a keyed hash for duplicates and a masked copy for display),
choices (level, direction, session) in the flow state. A candidate who leaves, or whose bot
restarts, resumes at the same step with every earlier answer intact. Seats are taken by
`RegistrationService.submit`, only after the summary is confirmed.

Identity (`bot.services.identity`: name, ID document and number, and what a passport
adds) is frozen while the candidate has a registration in `IDENTITY_FROZEN` (paid, or a
receipt being checked): money was paid against it and the ticket prints it, so answers
and edits of those steps raise IdentityFrozen and staff correct them (`CorrectionService`). A level
with an active registration is not opened again: `start` raises AlreadyRegistered.

Retakes: a candidate with released results for the level (`RegistrationService.retake`) is
not asked about eligibility again (the earlier registration's snapshot stands), may open
the form although that earlier, sat registration is still PAID, and the summary says which
passed components carry over to the chosen session and which are booked. A level already
passed raises LevelPassed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bot.crypto import Vault
from bot.domain.catalog import Catalog
from bot.services.answers import parse_choice, parse_date, parse_text
from bot.services.candidates import candidate_and_flow
from bot.services.catalog import CatalogService
from bot.services.errors import (
    AlreadyRegistered,
    FormIncomplete,
    IdentityFrozen,
    InvalidAnswer,
    NotEligible,
    StaleStep,
)
from bot.services.identity import IDENTITY, frozen_by, parse_name, store_id_number
from bot.services.registration import (
    LevelPassed,
    RegistrationService,
    Retake,
    RetakePlan,
    SessionOption,
    SubmitResult,
)
from storage.models import Candidate, FlowState
from storage.uow import UnitOfWork, UowFactory

FLOW = "registration"
SUMMARY = "summary"
ALLOWED = ("eligible", "approved", "overridden")  # eligibility verdicts that may register
ID_TYPES = ("resident_id", "passport")
GENDERS = ("male", "female")
NONE = "none"
MAX_TEXT = 60
PHOTO_MIN_WIDTH, PHOTO_MIN_HEIGHT = 295, 413  # a 2-inch photo (35 x 49 mm) at ~215-300 dpi
PHOTO_MAX_BYTES = 5 * 1024 * 1024

#: The form in order; `gender` and `birth_date` are asked only for passports (a resident
#: ID number carries both), `prior_certificate` only from holders of a lower level.
STEPS = (
    "full_name",
    "id_type",
    "id_number",
    "gender",
    "birth_date",
    "phone",
    "email",
    "school",
    "work_unit",
    "prior_certificate",
    "direction",
    "session",
    "photo",
)
EDITABLE = frozenset(STEPS)


@dataclass(frozen=True)
class Input:
    """One answer as it arrived: typed text, a pressed option, a shared contact or a photo."""

    text: str | None = None
    choice: str | None = None
    contact_phone: str | None = None
    contact_is_own: bool = False
    photo: dict[str, Any] | None = (
        None  # file_id, file_unique_id, width, height, file_size, mime_type
    )


@dataclass(frozen=True)
class Summary:
    level: str
    full_name: str | None
    id_type: str | None
    id_masked: str | None
    gender: str | None
    birth_date: date | None
    phone: str | None
    email: str | None
    education: str | None
    major: str | None  # as typed, or the catalogue's Chinese name of `major_code`
    major_code: str | None  # a major from the catalogue's lists: shown in the reader's language
    graduation_date: str | None
    school: str | None
    work_unit: str | None
    work_start: str | None
    title: str | None
    prior_level: str | None
    prior_certificate: str | None
    direction: str | None
    session: str | None
    has_photo: bool
    session_option: SessionOption | None = None  # the chosen session's date, times and zone
    frozen_by: int | None = None  # the paid / under-review registration freezing identity
    retake: RetakePlan | None = None  # a retake: what the chosen session books, what carries


@dataclass(frozen=True)
class Step:
    """What to ask next; `options` for choices, `sessions` for the session step."""

    step: str
    options: tuple[str, ...] = ()
    sessions: tuple[SessionOption, ...] = ()
    summary: Summary | None = None
    level: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class RegistrationFormService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        registrations: RegistrationService,
        vault: Vault,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._registrations = registrations
        self._vault = vault

    async def open_levels(self, telegram_id: int) -> tuple[str, ...]:
        """Levels the candidate may open the form for: eligible by their verdict, or a
        retake of a level sat before (results released, not passed)."""
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            candidate, _ = await candidate_and_flow(uow, telegram_id)
            verdicts = candidate.profile.get("verdicts", {})
            await uow.commit()
        levels = []
        for level in catalog.levels:
            if verdicts.get(level.code, {}).get("status") in ALLOWED:
                levels.append(level.code)
                continue
            try:
                retake = await self._registrations.retake(telegram_id, level.code)
            except LevelPassed:
                continue
            if retake is not None:
                levels.append(level.code)
        return tuple(levels)

    async def start(self, telegram_id: int, level: str) -> Step:
        """Open the form for a level the candidate may register for (LevelPassed: passed)."""
        catalog = await self._catalog.current()
        parse_choice("level", level, [lv.code for lv in catalog.levels])
        retake = await self._registrations.retake(telegram_id, level)
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            active = await uow.registrations.find_active(candidate.id, level_code=level)
            if active is not None and not _sat(retake, active.id):
                raise AlreadyRegistered(active.id)  # show it, never a fresh summary over it
            verdict = candidate.profile.get("verdicts", {}).get(level, {})
            if retake is None and verdict.get("status") not in ALLOWED:
                raise NotEligible(level, verdict.get("status", "unknown"))
            form = state.answers_of(FLOW)
            if form.get("level") != level:
                form = {"level": level}  # another level: the session chosen before no longer fits
            state.enter(FLOW)
            name = self._next(candidate, state, form)
            snapshot = await self._summary(uow, candidate, form)
            await uow.commit()
        return await self._build(name, snapshot, telegram_id, catalog)

    async def current(self, telegram_id: int) -> Step | None:
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if state.flow != FLOW or state.step is None:
                return None
            snapshot = await self._summary(uow, candidate, state.answers_of(FLOW))
            name = state.step
        return await self._build(name, snapshot, telegram_id)

    async def edit(self, telegram_id: int, field_name: str) -> Step:
        """Jump from the summary to one field; after answering, back to the summary."""
        if field_name not in EDITABLE:
            raise InvalidAnswer("edit", "not_an_option")
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if state.flow != FLOW or state.step != SUMMARY:
                raise StaleStep(field_name)
            if field_name in IDENTITY:
                await self._check_not_frozen(uow, candidate, field_name)
            form = {**state.answers_of(FLOW), "editing": True}
            form.pop("review", None)
            state.advance(field_name, answers=form)
            snapshot = await self._summary(uow, candidate, form)
            await uow.commit()
        return await self._build(field_name, snapshot, telegram_id)

    async def answer(self, telegram_id: int, step: str, value: Input) -> Step:
        """Validate and save one answer, then return the next step (or the summary).

        Everything read from other services (catalogue, open sessions) is read before this
        service opens its own transaction: on SQLite a second transaction opened inside the
        first would wait for the first one's write lock forever.
        """
        catalog = await self._catalog.current()
        sessions: list[SessionOption] = []
        if step == "session":
            level = await self._form_level(telegram_id)
            sessions = (
                await self._registrations.list_sessions(level, telegram_id=telegram_id)
                if level
                else []
            )
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if state.flow != FLOW or state.step != step or step == SUMMARY:
                raise StaleStep(step)
            form = state.answers_of(FLOW)
            if step in IDENTITY and not self._missing(candidate, form, step):
                await self._check_not_frozen(uow, candidate, step)
            await self._save(uow, candidate, form, step, value, catalog, sessions)
            if form.pop("editing", False) and self._complete(candidate, form):
                form["review"] = True
            name = self._next(candidate, state, form)
            snapshot = await self._summary(uow, candidate, form)
            await uow.commit()
        return await self._build(name, snapshot, telegram_id, catalog)

    async def _form_level(self, telegram_id: int) -> str | None:
        async with self._uow() as uow:
            _, state = await candidate_and_flow(uow, telegram_id)
            return state.answers_of(FLOW).get("level")

    async def submit(self, telegram_id: int, *, join_waitlist: bool = False) -> SubmitResult:
        """Confirm the summary: take a seat (or join the waitlist) and close the form.

        StaleStep when the form is closed (submitted already); FormIncomplete with the
        steps still to answer when the candidate is in the form but not done with it.
        A retake is decided again by `RegistrationService.submit`, from the database.
        """
        level = await self._form_level(telegram_id)
        retake = await self._registrations.retake(telegram_id, level) if level else None
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            form = state.answers_of(FLOW)
            if state.flow != FLOW:
                raise StaleStep(SUMMARY)
            missing = tuple(s for s in STEPS if self._missing(candidate, form, s))
            if missing or state.step != SUMMARY:
                raise FormIncomplete(missing or (state.step or SUMMARY,))
            level, session, direction = form["level"], form["session"], form.get("direction")
            eligibility = candidate.profile.get("verdicts", {}).get(level, {})
            if retake is not None and retake.level_code == level:
                eligibility = retake.eligibility  # the earlier sitting's: not asked again
            elif eligibility.get("status") not in ALLOWED:
                # Staff may have rejected a review or overridden while the form was open.
                raise NotEligible(level, eligibility.get("status", "unknown"))
        catalog = await self._catalog.current()
        result = await self._registrations.submit(
            telegram_id,
            session_code=session,
            level_code=level,
            direction_code=direction,
            components=[c.code for c in catalog.components],
            eligibility=eligibility,
            join_waitlist=join_waitlist,
        )
        async with self._uow() as uow:
            _, state = await candidate_and_flow(uow, telegram_id)
            form = state.answers_of(FLOW)
            form.pop("session", None)  # the next registration picks its own session
            state.leave(answers=form)
            await uow.commit()
        return result

    # -- steps ------------------------------------------------------------------------

    def _complete(self, candidate: Candidate, form: dict[str, Any]) -> bool:
        return all(not self._missing(candidate, form, step) for step in STEPS)

    def _missing(self, candidate: Candidate, form: dict[str, Any], step: str) -> bool:
        profile = candidate.profile
        passport = candidate.id_doc_type == "passport"
        values = {
            "full_name": candidate.full_name,
            "id_type": candidate.id_doc_type,
            "id_number": candidate.id_number_hash,
            "gender": candidate.gender if passport else "n/a",
            "birth_date": candidate.birth_date if passport else "n/a",
            "phone": candidate.phone,
            "email": candidate.email,
            "school": profile.get("school"),
            "work_unit": profile.get("work_unit"),
            "direction": form.get("direction"),
            "session": form.get("session"),
            "photo": profile.get("photo"),
            "prior_certificate": (
                profile.get("prior_certificate")
                if profile.get("prior_level") not in (None, NONE)
                else "n/a"
            ),
        }
        return values[step] is None

    def _next(self, candidate: Candidate, state: FlowState, form: dict[str, Any]) -> str:
        """The first unanswered step (or the summary), recorded with the
        form as the current one."""
        step = SUMMARY
        if not form.get("review"):
            step = next((s for s in STEPS if self._missing(candidate, form, s)), SUMMARY)
        state.advance(step, answers=form)
        return step

    async def _build(
        self, step: str, summary: Summary, telegram_id: int, catalog: Catalog | None = None
    ) -> Step:
        """What the handler shows for a step; reads the catalogue and sessions it needs.

        Sessions are the ones this candidate can take (none on the day of another of their
        registrations)."""
        level = summary.level
        if step == "id_type":
            return Step(step, ID_TYPES, level=level)
        if step == "gender":
            return Step(step, GENDERS, level=level)
        if step == "direction":
            catalog = catalog or await self._catalog.current()
            return Step(step, tuple(d.code for d in catalog.directions), level=level)
        if step == "session":
            sessions = [
                s
                for s in await self._registrations.list_sessions(level, telegram_id=telegram_id)
                if s.availability in ("open", "full")
            ]
            extra: dict[str, Any] = {}
            if not sessions:  # none open now: say when the next one opens
                upcoming = [
                    s
                    for s in await self._registrations.list_sessions(
                        level, include_closed=True, telegram_id=telegram_id
                    )
                    if s.availability == "not_yet_open"
                ]
                if upcoming:
                    extra = {
                        "opens_at": upcoming[0].registration_opens_at,
                        "timezone": upcoming[0].timezone,
                        "exam_date": upcoming[0].exam_date,
                    }
            return Step(
                step,
                tuple(s.code for s in sessions),
                sessions=tuple(sessions),
                level=level,
                extra=extra,
            )
        if step == "work_unit":
            return Step(step, (NONE,), level=level)
        if step == SUMMARY:
            chosen = [
                s
                for s in await self._registrations.list_sessions(level, include_closed=True)
                if s.code == summary.session
            ]
            if chosen:
                summary = replace(summary, session_option=chosen[0])
                retake = await self._retake(telegram_id, level)
                if retake is not None:
                    summary = replace(summary, retake=retake.plan(chosen[0].exam_date))
            return Step(step, summary=summary, level=level)
        return Step(step, level=level)

    async def _retake(self, telegram_id: int, level: str) -> Retake | None:
        try:
            return await self._registrations.retake(telegram_id, level)
        except LevelPassed:  # released while the form was open: submitting will say so
            return None

    @staticmethod
    async def _check_not_frozen(uow: UnitOfWork, candidate: Candidate, step: str) -> None:
        frozen = await frozen_by(uow, candidate.id)
        if frozen is not None:
            raise IdentityFrozen(frozen, step)

    async def _summary(
        self, uow: UnitOfWork, candidate: Candidate, form: dict[str, Any]
    ) -> Summary:
        p = candidate.profile
        return Summary(
            level=form.get("level", ""),
            full_name=candidate.full_name,
            id_type=candidate.id_doc_type,
            id_masked=candidate.id_number_masked,
            gender=candidate.gender,
            birth_date=candidate.birth_date,
            phone=candidate.phone,
            email=candidate.email,
            education=p.get("education"),
            major=p.get("major"),
            major_code=p.get("major_code"),
            graduation_date=p.get("graduation_date"),
            school=p.get("school"),
            work_unit=p.get("work_unit"),
            work_start=p.get("work_start"),
            title=p.get("title"),
            prior_level=p.get("prior_level"),
            prior_certificate=p.get("prior_certificate"),
            direction=form.get("direction"),
            session=form.get("session"),
            has_photo=bool(p.get("photo")),
            frozen_by=await frozen_by(uow, candidate.id),
        )

    # -- saving one answer --------------------------------------------------------------

    async def _save(
        self,
        uow: UnitOfWork,
        candidate: Candidate,
        form: dict[str, Any],
        step: str,
        value: Input,
        catalog: Catalog,
        sessions: list[SessionOption],
    ) -> None:
        today = self._clock().date()
        if step == "full_name":
            candidate.full_name = parse_name(value.text)
        elif step == "id_type":
            chosen = parse_choice(step, value.choice, ID_TYPES)
            if chosen != candidate.id_doc_type:
                candidate.id_doc_type = chosen
                # A different document type needs a new number (and, for
                # passports, gender/birth date).
                candidate.id_number_encrypted = candidate.id_number_hash = (
                    candidate.id_number_masked
                ) = None
                candidate.gender = candidate.birth_date = None
        elif step == "id_number":
            await store_id_number(uow, self._vault, candidate, value.text, today)
        elif step == "gender":
            candidate.gender = parse_choice(step, value.choice, GENDERS)
        elif step == "birth_date":
            candidate.birth_date = parse_date(step, value.text, today=today, past_only=True)
        elif step == "phone":
            candidate.phone = _phone(value)
        elif step == "email":
            candidate.email = _email(value.text)
        elif step == "school":
            candidate.profile = {
                **candidate.profile,
                "school": parse_text(step, value.text, max_length=MAX_TEXT),
            }
        elif step == "work_unit":
            unit = (
                NONE if value.choice == NONE else parse_text(step, value.text, max_length=MAX_TEXT)
            )
            candidate.profile = {**candidate.profile, "work_unit": unit}
        elif step == "prior_certificate":
            number = parse_text(step, value.text, max_length=40).replace(" ", "")
            if not catalog.certificates.number_is_valid(number):
                raise InvalidAnswer(step, "certificate_number")
            candidate.profile = {**candidate.profile, "prior_certificate": number}
        elif step == "direction":
            form["direction"] = parse_choice(
                step, value.choice, [d.code for d in catalog.directions]
            )
        elif step == "session":
            form["session"] = parse_choice(
                step,
                value.choice,
                [s.code for s in sessions if s.availability in ("open", "full")],
            )
        elif step == "photo":
            candidate.profile = {**candidate.profile, "photo": _photo(value)}
        else:  # pragma: no cover - steps come from STEPS
            raise StaleStep(step)


def _sat(retake: Retake | None, registration_id: int) -> bool:
    """The registration is an earlier sitting of the level being retaken (results out)."""
    return retake is not None and registration_id in retake.sat


def _phone(value: Input) -> str:
    if value.contact_phone is not None and not value.contact_is_own:
        raise InvalidAnswer("phone", "contact_not_own")
    raw = value.contact_phone if value.contact_phone is not None else value.text
    if raw is None:
        raise InvalidAnswer("phone", "phone_expected")
    raw = raw.strip()
    if raw.isdigit() and len(raw) > 11 and not raw.startswith("0"):
        raw = "+" + raw  # shared contacts come without the plus sign
    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        raise InvalidAnswer("phone", "phone_invalid") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidAnswer("phone", "phone_invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(text: str | None) -> str:
    if text is None:
        raise InvalidAnswer("email", "text_expected")
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidAnswer("email", "email_invalid") from None


def _photo(value: Input) -> dict[str, Any]:
    photo = value.photo
    if photo is None:
        raise InvalidAnswer("photo", "photo_expected")
    if not str(photo.get("mime_type", "image/jpeg")).startswith("image/"):
        raise InvalidAnswer("photo", "photo_not_image")
    width, height = photo.get("width"), photo.get("height")
    if (photo.get("file_size") or 0) > PHOTO_MAX_BYTES:
        raise InvalidAnswer("photo", "photo_too_large", limit_mb=PHOTO_MAX_BYTES // (1024 * 1024))
    if width is not None and height is not None:
        # Orientation first: a landscape photo is usually big enough but turned, and "too
        # small" would send the candidate looking for a sharper one instead of rotating it.
        if width > height:
            raise InvalidAnswer("photo", "photo_landscape")
        if height == width:
            raise InvalidAnswer("photo", "photo_not_portrait")
        if width < PHOTO_MIN_WIDTH or height < PHOTO_MIN_HEIGHT:
            raise InvalidAnswer(
                "photo", "photo_too_small", width=PHOTO_MIN_WIDTH, height=PHOTO_MIN_HEIGHT
            )
    return {
        k: photo.get(k)
        for k in ("file_id", "file_unique_id", "width", "height", "file_size", "mime_type")
    }
