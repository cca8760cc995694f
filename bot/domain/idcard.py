"""Identity document numbers: PRC resident ID (GB 11643-1999) and passports.

Entry points:

* ``parse_id_number(value, *, today) -> IdCardInfo`` — validate an 18-character resident
  ID number and derive birth date and gender; raises ``InvalidIdNumber`` with a machine
  ``reason`` (``length``, ``legacy_15``, ``characters``, ``birth_date``,
  ``future_birth_date``, ``checksum``) that the handler turns into a translated message.
* ``normalise_passport_number(value) -> str`` — the light check for foreign candidates;
  raises ``InvalidPassportNumber``.
* ``mask_id_number(value) -> str`` — what may be shown or logged (``3710**********1235``).

Pure functions: no I/O, no clock (``today`` is a parameter so tests and the services
decide what "now" is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = [
    "Gender",
    "IdCardInfo",
    "InvalidIdNumber",
    "InvalidPassportNumber",
    "is_valid_id_number",
    "mask_id_number",
    "normalise_passport_number",
    "parse_id_number",
]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_PASSPORT_SHAPE = re.compile(r"^[A-Z0-9]{5,20}$")
# Nobody alive registers with a birth year before this; a 18xx date is a typo.
_EARLIEST_BIRTH_YEAR = 1900


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True)
class IdCardInfo:
    number: str  # normalised: 18 characters, upper-case X
    birth_date: date
    gender: Gender
    region_code: str  # the 6-digit address code (行政区划代码)


class InvalidIdNumber(ValueError):
    """A resident ID number failed a check; ``reason`` says which one."""

    REASONS = ("length", "legacy_15", "characters", "birth_date", "future_birth_date", "checksum")

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InvalidPassportNumber(ValueError):
    """A passport number is not 5–20 letters/digits; ``reason`` is ``length`` or ``characters``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _compact(value: str) -> str:
    # People paste numbers with spaces ("110105 19491231 002x"); those are not errors.
    return "".join(value.split()).upper()


def check_character(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def parse_id_number(value: str, *, today: date) -> IdCardInfo:
    """Validate a resident ID number; checks run in the order of ``InvalidIdNumber.REASONS``."""
    number = _compact(value)
    if len(number) == 15 and number.isdigit():
        # First-generation cards: no century, no checksum. We need the 18-digit number.
        raise InvalidIdNumber("legacy_15")
    if len(number) != 18:
        raise InvalidIdNumber("length")
    if not _ID_SHAPE.match(number):
        raise InvalidIdNumber("characters")
    birth_date = _birth_date(number[6:14])
    if birth_date > today:
        raise InvalidIdNumber("future_birth_date")
    if check_character(number[:17]) != number[17]:
        raise InvalidIdNumber("checksum")
    gender = Gender.MALE if int(number[16]) % 2 == 1 else Gender.FEMALE
    return IdCardInfo(number=number, birth_date=birth_date, gender=gender, region_code=number[:6])


def _birth_date(yyyymmdd: str) -> date:
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise InvalidIdNumber("birth_date") from None
    if birth.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidIdNumber("birth_date")
    return birth


def is_valid_id_number(value: str, *, today: date) -> bool:
    try:
        parse_id_number(value, today=today)
    except InvalidIdNumber:
        return False
    return True


def normalise_passport_number(value: str) -> str:
    """Upper-cased passport number without spaces, if it is 5–20 letters/digits."""
    number = _compact(value)
    if not 5 <= len(number) <= 20:
        raise InvalidPassportNumber("length")
    if not _PASSPORT_SHAPE.match(number):
        raise InvalidPassportNumber("characters")
    return number


def mask_id_number(value: str) -> str:
    """Keep the first and last 4 characters (2 for short passport numbers); star the rest.

    At least four characters stay hidden whatever the length, so a short number is never
    shown almost whole.
    """
    number = _compact(value)
    if len(number) >= 12:
        keep = 4
    elif len(number) >= 6:
        keep = 2
    else:
        return "*" * len(number)
    return number[:keep] + "*" * (len(number) - 2 * keep) + number[-keep:]
