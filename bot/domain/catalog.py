"""Exam catalogue: typed models of ``catalog/exam-catalog.yaml`` and its loader.

Entry points:

* ``load_catalog(path) -> Catalog`` — read and check the YAML file staff edit;
* ``parse_catalog(text_or_mapping) -> Catalog`` — the same from YAML text or a mapping.

Both raise ``CatalogError`` listing every problem found, one line each, as
``<field path>: <reason>`` (e.g. ``sessions[1].capacity: must be greater than 0``).
Checking happens in two passes: pydantic validates each field (types, ranges, time
zones, regexes), then ``_cross_check`` validates references between sections (unique
codes, routes pointing at existing levels, timeline order, ...). The second pass only
runs once the first is clean, because cross references are meaningless on broken data.

``Catalog.content_hash()`` identifies the content independently of YAML formatting and
comments, so reloading an unchanged file can be detected as a no-op.

Session times are written in the session's local time; ``Session.slots()`` and
``Catalog.session_timeline()`` turn them into aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "BankAccount",
    "Catalog",
    "CatalogError",
    "Certificates",
    "Component",
    "ComponentSlot",
    "Conditions",
    "Contact",
    "Direction",
    "EducationLevel",
    "Eligibility",
    "Fee",
    "Fees",
    "Level",
    "LevelFee",
    "LocalizedText",
    "Location",
    "Major",
    "Payment",
    "Problem",
    "Reminder",
    "ReminderTime",
    "Route",
    "Session",
    "SessionComponent",
    "SessionTimeline",
    "StaffDigest",
    "Timeline",
    "TimelineOverrides",
    "Title",
    "load_catalog",
    "parse_catalog",
]


# --- errors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One catalogue problem: where (dotted field path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class CatalogError(ValueError):
    """The catalogue is invalid; ``problems`` lists each problem, the message one per line."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("<catalog>", problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --- small value types ------------------------------------------------------------------

_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
Code = str  # documented alias: an identifier stored in the database


class _Model(BaseModel):
    # Frozen: a loaded catalogue is shared by every request; extra="forbid" so a typo in
    # a key ("capcity") is reported instead of silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalizedText(_Model):
    zh_Hans: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        """Text for a language code (``zh``, ``zh-hans``, ``en``...); English otherwise."""
        return self.zh_Hans if language.lower().startswith("zh") else self.en


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)"
        ) from None
    return value


def _parse_clock(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 13:30 as the sexagesimal integer 810; say so plainly.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('write clock times in quotes, e.g. "13:30"')
    return value


_OFFSET_RE = re.compile(r"^([+-]?)(\d+)([dhm])$")
_OFFSET_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_offset(text: str) -> timedelta:
    """Parse a reminder offset such as ``-3d``, ``-48h``, ``0h`` or ``+30m``."""
    match = _OFFSET_RE.match(text.strip())
    if match is None:
        raise ValueError(f"invalid offset {text!r} (expected e.g. -3d, -48h, 0h, -30m)")
    sign, amount, unit = match.groups()
    delta = timedelta(**{_OFFSET_UNITS[unit]: int(amount)})
    return -delta if sign == "-" else delta


# --- sections ---------------------------------------------------------------------------


class Location(_Model):
    """A point on the map in WGS-84 decimal degrees, as Telegram's sendVenue takes it
    (north and east positive; e.g. 37.1650, 122.4250)."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Site(_Model):
    name: LocalizedText
    address: LocalizedText
    time_zone: str = "Asia/Shanghai"
    location: Location | None = None  # absent: no map pin is sent

    _zone = field_validator("time_zone")(_check_time_zone)

    def venue(self) -> dict[str, Any] | None:
        """The site as a map pin, JSON-ready (outbox payloads): name and address in both
        languages and the point; None without a location."""
        if self.location is None:
            return None
        return {
            "latitude": self.location.latitude,
            "longitude": self.location.longitude,
            "title": self.name.model_dump(),
            "address": self.address.model_dump(),
        }


_PHONE_RE = re.compile(r"\+?[0-9][0-9 ()-]{4,30}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Contact(_Model):
    """How candidates reach the exam centre: at least a phone or an e-mail address."""

    placeholder: bool = False  # true: the details are not final; the bot says so
    phone: str | None = None
    email: str | None = None
    hours: LocalizedText | None = None  # office hours, as staff write them

    @field_validator("phone", mode="before")
    @classmethod
    def _phone_shape(cls, value: Any) -> Any:
        # YAML reads an unquoted 0631… as a number; say what to write instead.
        if value is not None and not (isinstance(value, str) and _PHONE_RE.fullmatch(value)):
            raise ValueError(
                'write it in quotes: digits, spaces, + - ( ), e.g. "+86 631 1234 5678"'
            )
        return value

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL_RE.fullmatch(value):
            raise ValueError("not an e-mail address (name@example.edu.cn)")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if self.phone is None and self.email is None:
            raise ValueError("give a phone or an email (or both)")
        return self


class Organisation(_Model):
    name: LocalizedText


class Occupation(_Model):
    name: LocalizedText
    code: str = Field(min_length=1)
    standard: LocalizedText


class Level(_Model):
    code: Code = Field(pattern=_CODE_PATTERN)
    name: LocalizedText
    rank: int
    training_hours_required: int = Field(gt=0)


class Direction(_Model):
    code: Code = Field(pattern=_CODE_PATTERN)
    name: LocalizedText


class Component(_Model):
    code: Code = Field(pattern=_CODE_PATTERN)
    name: LocalizedText
    mode: Literal["computer", "on_site", "paper"]
    duration_minutes: int = Field(gt=0)
    max_score: int = Field(gt=0)
    pass_mark: int = Field(ge=0)


class EducationLevel(_Model):
    code: Code = Field(pattern=_CODE_PATTERN)
    name: LocalizedText
    rank: int


class Title(_Model):
    code: Code = Field(pattern=_CODE_PATTERN)
    name: LocalizedText
    rank: int


class Major(_Model):
    code: Code = Field(pattern=_CODE_PATTERN)
    name: LocalizedText


class Conditions(_Model):
    """A route's conditions; the vocabulary is explained in the YAML and the engine."""

    title_at_least: Code | None = None
    years_since_title: int | None = Field(default=None, ge=0)
    education_in: tuple[Code, ...] | None = Field(default=None, min_length=1)
    education_at_least: Code | None = None
    related_major: str | None = None
    final_year_allowed: bool = False
    min_work_years: int | None = Field(default=None, ge=0)
    prior_level: Code | None = None
    years_since_prior_level: int | None = Field(default=None, ge=0)
    manual_review: bool = False


class Route(_Model):
    code: Code = Field(pattern=_CODE_PATTERN)
    level: Code
    description: LocalizedText | None = None
    conditions: Conditions


class Eligibility(_Model):
    final_year_window_months: int = Field(default=12, ge=0)
    routes: tuple[Route, ...] = Field(min_length=1)


class TimelineOverrides(_Model):
    """Per-session overrides: any field of ``Timeline``, all optional."""

    registration_opens: int | None = None
    registration_closes: int | None = None
    eligibility_review_done: int | None = None
    payment_due: int | None = None
    tickets_from: int | None = None
    results: int | None = None
    certificates: int | None = None
    recheck_window_days: int | None = None
    payment_grace_hours: int | None = None
    cancellation_cutoff_days: int | None = None
    waitlist_offer_hours: int | None = None
    opening_time: time | None = None
    deadline_time: time | None = None

    _clock = field_validator("opening_time", "deadline_time", mode="before")(_parse_clock)


class Timeline(_Model):
    """Days relative to exam day E (negative = before), plus a few durations."""

    registration_opens: int = -45
    registration_closes: int = -21
    eligibility_review_done: int = -18
    payment_due: int = -14
    tickets_from: int = -7
    results: int = 28
    certificates: int = 70
    recheck_window_days: int = Field(default=7, ge=0)
    payment_grace_hours: int = Field(default=12, ge=0)
    cancellation_cutoff_days: int = Field(default=7, ge=0)
    waitlist_offer_hours: int = Field(default=24, gt=0)
    opening_time: time = time(9, 0)
    deadline_time: time = time(18, 0)

    _clock = field_validator("opening_time", "deadline_time", mode="before")(_parse_clock)

    def with_overrides(self, overrides: TimelineOverrides | None) -> Timeline:
        if overrides is None:
            return self
        return self.model_copy(update=overrides.model_dump(exclude_none=True))


ReminderAnchor = Literal[
    "registration_opens",
    "registration_closes",
    "eligibility_review_done",
    "payment_due",
    "tickets_from",
    "exam_start",
    "results",
    "certificates",
    "recheck_until",
]


class Reminder(_Model):
    kind: Code = Field(pattern=_CODE_PATTERN)
    anchor: ReminderAnchor
    offsets: tuple[str, ...] = Field(min_length=1)

    @field_validator("offsets")
    @classmethod
    def _offsets_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_offset(text)
        return value


class Fee(_Model):
    amount: Decimal = Field(ge=0)
    confirmed: bool = False
    stars: int | None = Field(default=None, gt=0)  # price in Telegram Stars (XTR), if offered

    @property
    def amount_minor_units(self) -> int:
        """Amount in fen (1/100 CNY), the unit Telegram invoices use."""
        return int(self.amount * 100)


class LevelFee(Fee):
    """A level's fee; `component` is the fee of a retake booking one component while the
    other carries over (absent: the full fee)."""

    component: Fee | None = None

    def for_components(self, booked: int, total: int) -> Fee:
        """The fee of a booking of `booked` of the level's `total` components."""
        if booked < total and self.component is not None:
            return self.component
        return Fee(amount=self.amount, confirmed=self.confirmed, stars=self.stars)


class Fees(_Model):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    levels: dict[Code, LevelFee]
    # 复核 (re-marking) fee per component; absent: re-marking is free (DOMAIN.md default).
    remark: Fee | None = None


class BankAccount(_Model):
    placeholder: bool = False
    account_name: str = Field(min_length=1)
    bank_name: str = Field(min_length=1)
    account_number: str = Field(min_length=1)
    remark_template: str | None = None


#: Payment methods a catalogue may enable (docs/payments.md). Telegram invoices also need
#: the settings: a provider token (`telegram`) or EXAMDESK_PAYMENT_STARS (`stars`).
PAYMENT_METHODS = ("bank_transfer", "telegram", "stars", "provider")


class Payment(_Model):
    methods: tuple[Code, ...] = Field(min_length=1)
    bank_account: BankAccount | None = None


class StaffDigest(_Model):
    """The day's figures posted to the staff chat once a day at `time` (the site's zone)."""

    enabled: bool = True
    time: dt.time = dt.time(8, 0)

    _clock = field_validator("time", mode="before")(_parse_clock)


class Certificates(_Model):
    number_pattern: str
    # How examdesk assigns numbers itself when the centre asks it to (`examdesk
    # certificates assign`): {session} (code without dashes), {level} (level code, upper
    # case), {year} (of the issue date) and {seq} (a per-session counter, e.g. {seq:04d}).
    # Absent: numbers only come from an import.
    number_format: str | None = None

    @field_validator("number_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @field_validator("number_format")
    @classmethod
    def _format_has_session_and_seq(cls, value: str | None) -> str | None:
        if value is not None and ("{session}" not in value or "{seq" not in value):
            raise ValueError("must contain {session} and {seq} (numbers must be unique)")
        return value

    def number_is_valid(self, number: str) -> bool:
        return re.fullmatch(self.number_pattern, number) is not None

    def assign_number(self, *, session: str, level: str, year: int, seq: int) -> str:
        """A number by `number_format` (which must be set)."""
        if self.number_format is None:
            raise ValueError("certificates.number_format is not set")
        return self.number_format.format(
            session=session.replace("-", ""), level=level.upper(), year=year, seq=seq
        )


class SessionComponent(_Model):
    component: Code
    date: dt.date | None = None  # defaults to the session's exam_date
    start: time
    end: time
    room: LocalizedText

    _clock = field_validator("start", "end", mode="before")(_parse_clock)


@dataclass(frozen=True)
class ComponentSlot:
    """One component of a session with aware UTC start/end."""

    component: str
    starts_at: datetime
    ends_at: datetime
    room: LocalizedText


class Session(_Model):
    code: Code = Field(pattern=_CODE_PATTERN)
    exam_date: date
    time_zone: str
    levels: tuple[Code, ...] = Field(min_length=1)
    capacity: int = Field(gt=0)
    components: tuple[SessionComponent, ...] = Field(min_length=1)
    timeline: TimelineOverrides | None = None

    _zone = field_validator("time_zone")(_check_time_zone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def local_to_utc(self, day: date, clock: time) -> datetime:
        """A local wall-clock moment of this session's zone, as an aware UTC datetime."""
        return datetime.combine(day, clock, tzinfo=self.zone).astimezone(dt.UTC)

    def slots(self) -> list[ComponentSlot]:
        return [
            ComponentSlot(
                component=c.component,
                starts_at=self.local_to_utc(c.date or self.exam_date, c.start),
                ends_at=self.local_to_utc(c.date or self.exam_date, c.end),
                room=c.room,
            )
            for c in self.components
        ]

    @property
    def starts_at(self) -> datetime:
        """Start of the first component (UTC)."""
        return min(slot.starts_at for slot in self.slots())

    @property
    def ends_at(self) -> datetime:
        return max(slot.ends_at for slot in self.slots())


@dataclass(frozen=True)
class SessionTimeline:
    """The moments of one sitting as aware UTC datetimes (see the YAML for the rules)."""

    session: str
    registration_opens_at: datetime
    registration_closes_at: datetime
    eligibility_review_done_at: datetime
    payment_due_at: datetime
    payment_deadline_at: datetime  # payment_due_at + payment_grace_hours
    cancellation_cutoff_at: datetime
    tickets_from_at: datetime
    exam_starts_at: datetime
    results_at: datetime
    recheck_until_at: datetime
    certificates_at: datetime
    waitlist_offer_hours: int

    def anchor(self, name: str) -> datetime:
        """The moment a reminder ``anchor`` refers to."""
        attribute = {"exam_start": "exam_starts_at", "recheck_until": "recheck_until_at"}.get(
            name, f"{name}_at"
        )
        return getattr(self, attribute)


@dataclass(frozen=True)
class ReminderTime:
    kind: str
    offset: str
    at: datetime  # aware UTC

    @property
    def key(self) -> str:
        """Stable identifier of this reminder within a session, e.g. ``exam:-2h``."""
        return f"{self.kind}:{self.offset}"


# --- the catalogue ----------------------------------------------------------------------


class Catalog(_Model):
    version: str = Field(min_length=1)
    site: Site
    contact: Contact | None = None  # the exam centre's phone, e-mail and office hours
    evaluation_organisation: Organisation
    occupation: Occupation
    levels: tuple[Level, ...] = Field(min_length=1)
    directions: tuple[Direction, ...] = Field(min_length=1)
    components: tuple[Component, ...] = Field(min_length=1)
    retention_years: int = Field(ge=0)
    education_levels: tuple[EducationLevel, ...] = Field(min_length=1)
    titles: tuple[Title, ...]
    related_majors: dict[str, tuple[Major, ...]]
    eligibility: Eligibility
    timeline: Timeline = Timeline()
    reminders: tuple[Reminder, ...] = ()
    fees: Fees
    payment: Payment
    certificates: Certificates
    staff_digest: StaffDigest = StaffDigest()
    sessions: tuple[Session, ...] = ()

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # An unquoted `version: 2026.11` is a float in YAML; keep what staff wrote.
        return (
            str(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else value
        )

    # -- identity

    def content_hash(self) -> str:
        """sha256 of a canonical JSON dump: equal content ⇔ equal hash,
        whatever the YAML layout."""
        payload = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    # -- look-ups (KeyError on an unknown code: callers pass codes they got from here)

    def level(self, code: str) -> Level:
        return _by_code(self.levels, code, "level")

    def levels_by_rank(self) -> list[Level]:
        return sorted(self.levels, key=lambda level: level.rank)

    def next_level(self, code: str) -> Level | None:
        """The level ranked just above ``code``; None for the top level."""
        higher = [lvl for lvl in self.levels_by_rank() if lvl.rank > self.level(code).rank]
        return higher[0] if higher else None

    def previous_level(self, code: str) -> Level | None:
        lower = [lvl for lvl in self.levels_by_rank() if lvl.rank < self.level(code).rank]
        return lower[-1] if lower else None

    def direction(self, code: str) -> Direction:
        return _by_code(self.directions, code, "direction")

    def component(self, code: str) -> Component:
        return _by_code(self.components, code, "component")

    def education_level(self, code: str) -> EducationLevel:
        return _by_code(self.education_levels, code, "education level")

    def title(self, code: str) -> Title:
        return _by_code(self.titles, code, "title")

    def route(self, code: str) -> Route:
        return _by_code(self.eligibility.routes, code, "route")

    def routes_for(self, level_code: str) -> list[Route]:
        """Routes of a level, in catalogue order (the order the engine tries them)."""
        return [route for route in self.eligibility.routes if route.level == level_code]

    def session(self, code: str) -> Session:
        return _by_code(self.sessions, code, "session")

    def fee(self, level_code: str) -> LevelFee:
        return self.fees.levels[level_code]

    def sessions_for(self, level_code: str) -> list[Session]:
        """Sessions offering a level, by exam date."""
        return sorted(
            (s for s in self.sessions if level_code in s.levels), key=lambda s: s.exam_date
        )

    # -- time

    def session_timeline(self, session_code: str) -> SessionTimeline:
        session = self.session(session_code)
        t = self.timeline.with_overrides(session.timeline)
        exam = session.exam_date

        def opening(days: int) -> datetime:
            return session.local_to_utc(exam + timedelta(days=days), t.opening_time)

        def deadline(days: int) -> datetime:
            return session.local_to_utc(exam + timedelta(days=days), t.deadline_time)

        payment_due_at = deadline(t.payment_due)
        return SessionTimeline(
            session=session.code,
            registration_opens_at=opening(t.registration_opens),
            registration_closes_at=deadline(t.registration_closes),
            eligibility_review_done_at=deadline(t.eligibility_review_done),
            payment_due_at=payment_due_at,
            payment_deadline_at=payment_due_at + timedelta(hours=t.payment_grace_hours),
            cancellation_cutoff_at=deadline(-t.cancellation_cutoff_days),
            tickets_from_at=opening(t.tickets_from),
            exam_starts_at=session.starts_at,
            results_at=opening(t.results),
            recheck_until_at=deadline(t.results + t.recheck_window_days),
            certificates_at=opening(t.certificates),
            waitlist_offer_hours=t.waitlist_offer_hours,
        )

    def reminder_times(self, session_code: str) -> list[ReminderTime]:
        """Every reminder of a session with its UTC moment, in time order."""
        timeline = self.session_timeline(session_code)
        times = [
            ReminderTime(
                kind=r.kind, offset=offset, at=timeline.anchor(r.anchor) + parse_offset(offset)
            )
            for r in self.reminders
            for offset in r.offsets
        ]
        return sorted(times, key=lambda rt: rt.at)

    def sessions_open_for_registration(self, now: datetime) -> list[Session]:
        """Sessions whose registration window contains ``now`` (aware), by exam date."""
        open_now = []
        for session in sorted(self.sessions, key=lambda s: s.exam_date):
            timeline = self.session_timeline(session.code)
            if timeline.registration_opens_at <= now < timeline.registration_closes_at:
                open_now.append(session)
        return open_now


def _by_code(items: Iterable[Any], code: str, what: str) -> Any:
    for item in items:
        if item.code == code:
            return item
    raise KeyError(f"unknown {what} {code!r}")


# --- loading ----------------------------------------------------------------------------


def load_catalog(path: str | Path) -> Catalog:
    """Read, parse and check the catalogue file; raises ``CatalogError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_catalog(text)


def parse_catalog(source: str | Mapping[str, Any]) -> Catalog:
    """Build a checked ``Catalog`` from YAML text or an already-parsed mapping."""
    data = _load_yaml(source) if isinstance(source, str) else source
    if not isinstance(data, Mapping):
        raise CatalogError("the catalogue must be a mapping of sections (version, levels, ...)")
    try:
        catalog = Catalog.model_validate(dict(data))
    except ValidationError as exc:
        raise CatalogError(_problems_from_validation(exc)) from None
    problems = _cross_check(catalog)
    if problems:
        raise CatalogError(problems)
    return catalog


def _load_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        reason = getattr(exc, "problem", None) or str(exc)
        raise CatalogError([Problem(where, f"invalid YAML: {reason}")]) from None


def _format_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "<catalog>"


# pydantic phrases its messages for API clients; staff read "must be …".
_MESSAGE_REWRITES = (
    ("Value error, ", ""),
    ("Input should be ", "must be "),
    ("Field required", "is required"),
    ("Extra inputs are not permitted", "unknown field (check the spelling)"),
    ("String should ", "must "),
    ("List should ", "must "),
    ("Tuple should ", "must "),
)


def _humanise(message: str) -> str:
    for old, new in _MESSAGE_REWRITES:
        if message.startswith(old):
            return new + message[len(old) :]
    return message


def _problems_from_validation(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        # pydantic adds the tried union member / "function-after" step to the location;
        # staff only care about the field.
        loc = [
            p
            for p in error["loc"]
            if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
        ]
        problems.append(Problem(_format_path(loc), _humanise(error["msg"])))
    return problems


# --- cross-field checks -----------------------------------------------------------------


def _duplicates(codes: Iterable[str]) -> set[str]:
    return {code for code, count in Counter(codes).items() if count > 1}


def _check_unique(
    problems: list[Problem], section: str, items: Iterable[Any], attr: str = "code"
) -> None:
    items = list(items)
    dups = _duplicates(getattr(item, attr) for item in items)
    for index, item in enumerate(items):
        if getattr(item, attr) in dups:
            problems.append(
                Problem(f"{section}[{index}].{attr}", f"duplicate {attr} {getattr(item, attr)!r}")
            )


def _cross_check(catalog: Catalog) -> list[Problem]:
    problems: list[Problem] = []
    _check_unique(problems, "levels", catalog.levels)
    _check_unique(problems, "levels", catalog.levels, "rank")
    _check_unique(problems, "directions", catalog.directions)
    _check_unique(problems, "components", catalog.components)
    _check_unique(problems, "education_levels", catalog.education_levels)
    _check_unique(problems, "titles", catalog.titles)
    _check_unique(problems, "eligibility.routes", catalog.eligibility.routes)
    _check_unique(problems, "reminders", catalog.reminders, "kind")
    _check_unique(problems, "sessions", catalog.sessions)
    for name, majors in catalog.related_majors.items():
        _check_unique(problems, f"related_majors.{name}", majors)
    for index, component in enumerate(catalog.components):
        if component.pass_mark > component.max_score:
            problems.append(Problem(f"components[{index}].pass_mark", "must not exceed max_score"))
    for index, route in enumerate(catalog.eligibility.routes):
        problems.extend(_check_route(catalog, f"eligibility.routes[{index}]", route))
    problems.extend(_check_timeline(catalog.timeline, "timeline"))
    problems.extend(_check_fees(catalog))
    for index, session in enumerate(catalog.sessions):
        problems.extend(_check_session(catalog, f"sessions[{index}]", session))
    return problems


def _check_route(catalog: Catalog, path: str, route: Route) -> list[Problem]:
    problems = []
    level_codes = {level.code for level in catalog.levels}
    education_codes = {e.code for e in catalog.education_levels}
    title_codes = {t.code for t in catalog.titles}
    c = route.conditions
    cpath = f"{path}.conditions"
    if route.level not in level_codes:
        problems.append(Problem(f"{path}.level", f"unknown level {route.level!r}"))
    if c.title_at_least is not None and c.title_at_least not in title_codes:
        problems.append(Problem(f"{cpath}.title_at_least", f"unknown title {c.title_at_least!r}"))
    for i, code in enumerate(c.education_in or ()):
        if code not in education_codes:
            problems.append(
                Problem(f"{cpath}.education_in[{i}]", f"unknown education level {code!r}")
            )
    if c.education_at_least is not None and c.education_at_least not in education_codes:
        problems.append(
            Problem(
                f"{cpath}.education_at_least", f"unknown education level {c.education_at_least!r}"
            )
        )
    if c.related_major is not None and c.related_major not in catalog.related_majors:
        problems.append(
            Problem(f"{cpath}.related_major", f"unknown related_majors list {c.related_major!r}")
        )
    if c.prior_level is not None and c.prior_level not in level_codes:
        problems.append(Problem(f"{cpath}.prior_level", f"unknown level {c.prior_level!r}"))
    if c.years_since_title is not None and c.title_at_least is None:
        problems.append(Problem(f"{cpath}.years_since_title", "needs title_at_least"))
    if c.years_since_prior_level is not None and c.prior_level is None:
        problems.append(Problem(f"{cpath}.years_since_prior_level", "needs prior_level"))
    if c.final_year_allowed and c.education_in is None and c.education_at_least is None:
        problems.append(
            Problem(f"{cpath}.final_year_allowed", "needs education_in or education_at_least")
        )
    if c.model_dump(exclude_defaults=True) == {}:
        problems.append(Problem(cpath, "a route needs at least one condition"))
    return problems


def _check_timeline(t: Timeline, path: str) -> list[Problem]:
    problems = []
    if not t.registration_opens < t.registration_closes:
        problems.append(
            Problem(f"{path}.registration_opens", "must be before registration_closes")
        )
    if not t.registration_closes < 0:
        problems.append(
            Problem(f"{path}.registration_closes", "must be before the exam day (negative)")
        )
    if not t.registration_closes <= t.eligibility_review_done < 0:
        problems.append(
            Problem(
                f"{path}.eligibility_review_done",
                "must be between registration_closes and the exam day",
            )
        )
    if not t.registration_opens <= t.payment_due < 0:
        problems.append(
            Problem(
                f"{path}.payment_due", "must be after registration opens and before the exam day"
            )
        )
    elif t.payment_due * 24 + t.payment_grace_hours >= 0:
        problems.append(
            Problem(f"{path}.payment_grace_hours", "pushes the payment deadline past the exam day")
        )
    if not t.tickets_from <= 0:
        problems.append(Problem(f"{path}.tickets_from", "must not be after the exam day"))
    if not t.results > 0:
        problems.append(Problem(f"{path}.results", "must be after the exam day (positive)"))
    if not t.certificates >= t.results:
        problems.append(Problem(f"{path}.certificates", "must not be before results"))
    for name in ("recheck_window_days", "payment_grace_hours", "cancellation_cutoff_days"):
        if getattr(t, name) < 0:
            problems.append(Problem(f"{path}.{name}", "must be greater than or equal to 0"))
    if t.waitlist_offer_hours <= 0:
        problems.append(Problem(f"{path}.waitlist_offer_hours", "must be greater than 0"))
    return problems


def _check_fees(catalog: Catalog) -> list[Problem]:
    problems = []
    for index, method in enumerate(catalog.payment.methods):
        if method not in PAYMENT_METHODS:
            problems.append(
                Problem(
                    f"payment.methods[{index}]",
                    f"unknown method {method!r} (one of {', '.join(PAYMENT_METHODS)})",
                )
            )
    if "bank_transfer" in catalog.payment.methods and catalog.payment.bank_account is None:
        problems.append(Problem("payment.bank_account", "required when bank_transfer is enabled"))
    if "stars" in catalog.payment.methods:
        for code, fee in catalog.fees.levels.items():
            if fee.stars is None:
                problems.append(
                    Problem(f"fees.levels.{code}.stars", "required when stars is enabled")
                )
            if fee.component is not None and fee.component.stars is None:
                problems.append(
                    Problem(
                        f"fees.levels.{code}.component.stars", "required when stars is enabled"
                    )
                )
        if catalog.fees.remark is not None and catalog.fees.remark.stars is None:
            problems.append(Problem("fees.remark.stars", "required when stars is enabled"))
    certificates = catalog.certificates
    if certificates.number_format is not None and catalog.levels:
        try:
            sample = certificates.assign_number(
                session="2027-01", level=catalog.levels[0].code, year=2027, seq=1
            )
        except (KeyError, ValueError, IndexError) as exc:
            problems.append(Problem("certificates.number_format", f"cannot be filled ({exc})"))
        else:
            if not certificates.number_is_valid(sample):
                problems.append(
                    Problem(
                        "certificates.number_format",
                        f"gives {sample!r}, which does not match number_pattern",
                    )
                )
    level_codes = [level.code for level in catalog.levels]
    for code in catalog.fees.levels:
        if code not in level_codes:
            problems.append(Problem(f"fees.levels.{code}", f"unknown level {code!r}"))
    for code in level_codes:
        if code not in catalog.fees.levels:
            problems.append(
                Problem(f"fees.levels.{code}", "missing: every level needs a fee entry")
            )
    return problems


def _check_session(catalog: Catalog, path: str, session: Session) -> list[Problem]:
    problems = []
    level_codes = {level.code for level in catalog.levels}
    component_codes = {component.code for component in catalog.components}
    for i, code in enumerate(session.levels):
        if code not in level_codes:
            problems.append(Problem(f"{path}.levels[{i}]", f"unknown level {code!r}"))
    for code in _duplicates(session.levels):
        problems.append(Problem(f"{path}.levels", f"level {code!r} listed twice"))
    seen: set[str] = set()
    previous_end: datetime | None = None
    for i, part in enumerate(session.components):
        cpath = f"{path}.components[{i}]"
        if part.component not in component_codes:
            problems.append(Problem(f"{cpath}.component", f"unknown component {part.component!r}"))
        if part.component in seen:
            problems.append(
                Problem(f"{cpath}.component", f"component {part.component!r} listed twice")
            )
        seen.add(part.component)
        day = part.date or session.exam_date
        start, end = datetime.combine(day, part.start), datetime.combine(day, part.end)
        if not start < end:
            problems.append(Problem(f"{cpath}.end", "must be after start"))
        if previous_end is not None and start < previous_end:
            problems.append(
                Problem(f"{cpath}.start", "must not be before the end of the previous component")
            )
        previous_end = end
        if part.date is not None and part.date < session.exam_date:
            problems.append(Problem(f"{cpath}.date", "must not be before the session's exam_date"))
    if session.timeline is not None:
        merged = catalog.timeline.with_overrides(session.timeline)
        problems.extend(_check_timeline(merged, f"{path}.timeline"))
    return problems
