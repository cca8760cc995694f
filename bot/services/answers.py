"""Parsing of typed answers shared by the conversational flows (dates, choices, free text).

Pure helpers: each returns the parsed value or raises `InvalidAnswer(step, reason)`, whose
reason code the handlers turn into a translated hint.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date

from bot.services.errors import InvalidAnswer

_DATE_PATTERNS = (
    re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})[日号]?$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
    re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月?$"),
)
EARLIEST_YEAR = 1940


def parse_date(
    step: str, text: str | None, *, today: date, past_only: bool, max_future_years: int = 0
) -> date:
    """A calendar date from `2024-06-30`, `2024/6/30`, `2024年6月30日` or a month (`2024-06`,
    taken as the month's last day). `past_only` refuses dates after today."""
    if text is None:
        raise InvalidAnswer(step, "date_expected")
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    for pattern in _DATE_PATTERNS:
        match = pattern.match(cleaned)
        if not match:
            continue
        year, month = int(match["y"]), int(match["m"])
        day_text = match.groupdict().get("d")
        try:
            day = int(day_text) if day_text else calendar.monthrange(year, month)[1]
            value = date(year, month, day)
        except ValueError:
            raise InvalidAnswer(step, "date_impossible") from None
        if value.year < EARLIEST_YEAR:
            raise InvalidAnswer(step, "date_too_old")
        if past_only and value > today:
            raise InvalidAnswer(step, "date_in_future")
        if not past_only and value.year > today.year + max_future_years:
            raise InvalidAnswer(step, "date_too_far")
        return value
    raise InvalidAnswer(step, "date_format")


def parse_choice(step: str, value: str | None, options: tuple[str, ...] | list[str]) -> str:
    if value is None or value not in options:
        raise InvalidAnswer(step, "not_an_option")
    return value


def parse_text(step: str, text: str | None, *, max_length: int, min_length: int = 1) -> str:
    if text is None:
        raise InvalidAnswer(step, "text_expected")
    value = " ".join(unicodedata.normalize("NFKC", text).split())
    if len(value) < min_length:
        raise InvalidAnswer(step, "text_expected")
    if len(value) > max_length:
        raise InvalidAnswer(step, "too_long", limit=max_length)
    return value
