"""Callback data: the one parser every flow reads button presses with, and the staff gate.

Callback data is a short per-flow prefix and parts separated by colons (`reg:cancel:42`,
`pay:no:7:amount_wrong`). Nothing in it is trusted: anyone can send any callback data.
`parse(data, prefix, *parts)` returns the typed parts, or None for anything malformed —
a missing or extra part, a non-numeric, negative, zero or oversized id, an unknown word —
and the caller answers `handlers.render.stale_button`. Well-formed parts are still only
hints: the service re-checks ownership and state against the database.

`StaffCallbackQueryHandler` matches presses by staff (EXAMDESK_ADMIN_IDS) only, so a forged
or forwarded staff button falls through to the catch-all ("this button is no longer
valid") and the service is never called.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler

#: Row ids in buttons are primary keys of Integer columns (storage/models.py): on
#: PostgreSQL a larger number would fail in the query instead of finding nothing.
MAX_ID = 2**31 - 1
MAX_WORD = 64  # Telegram allows 64 bytes of callback data in all

_DIGITS = re.compile(r"[0-9]{1,19}")
_WORD = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Part:
    """One part of callback data: text in, a typed value out, or None when malformed.

    Optional parts (`optional(...)`) come last: the data may end before them.
    """

    convert: Callable[[str], Any]
    optional: bool = False


def number(low: int, high: int) -> Part:
    """Decimal digits only (no sign, spaces or underscores) within low..high."""

    def convert(text: str) -> int | None:
        if not _DIGITS.fullmatch(text):
            return None
        value = int(text)
        return value if low <= value <= high else None

    return Part(convert)


def _word(text: str) -> str | None:
    return text if len(text) <= MAX_WORD and _WORD.fullmatch(text) else None


def one_of(*words: str) -> Part:
    """One of a fixed set of words (an action, a method)."""
    allowed = frozenset(words)
    return Part(lambda text: text if text in allowed else None)


def optional(part: Part) -> Part:
    """A trailing part that may be left out: then its value is None."""
    return Part(part.convert, optional=True)


ID = number(1, MAX_ID)  # a row id
WORD = Part(_word)  # a code: level, session, step, option, reason (letters, digits, _ and -)


def parse(data: str | None, prefix: str, *parts: Part) -> tuple[Any, ...] | None:
    """`<prefix>:<part>:…` → the typed parts, or None if anything does not fit."""
    if data is None or not data.startswith(prefix + ":"):
        return None
    pieces = data[len(prefix) + 1 :].split(":")
    required = sum(1 for p in parts if not p.optional)
    if not required <= len(pieces) <= len(parts):
        return None
    values: list[Any] = []
    for index, part in enumerate(parts):
        if index >= len(pieces):  # an optional part left out
            values.append(None)
            continue
        value = part.convert(pieces[index])
        if value is None:
            return None
        values.append(value)
    return tuple(values)


def parse_id(data: str | None, prefix: str) -> int | None:
    """`<prefix>:<id>` → the id, or None."""
    parsed = parse(data, prefix, ID)
    return parsed[0] if parsed else None


class StaffCallbackQueryHandler(CallbackQueryHandler):  # type: ignore[type-arg]
    """A CallbackQueryHandler that does not match presses by anyone but staff."""

    def __init__(self, callback: Any, pattern: str, staff_ids: Collection[int]) -> None:
        super().__init__(callback, pattern=pattern)
        self.staff_ids = frozenset(staff_ids)

    def check_update(self, update: object) -> Any:
        if not isinstance(update, Update) or update.effective_user is None:
            return None
        if update.effective_user.id not in self.staff_ids:
            return None
        return super().check_update(update)
