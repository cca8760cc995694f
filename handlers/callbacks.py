"""Callback data: the one parser every flow reads button presses with, and the staff gate.

Callback data is a short per-flow prefix and parts separated by colons (`reg:cancel:42`,
`pay:no:7:amount_wrong`). Nothing in it is trusted: anyone can send any callback data.

Each flow declares its buttons once, as `Button(prefix, *parts)`, and that one object both
routes and reads a press:

    CANCEL = Button("reg:cancel", ID)
    application.add_handler(CallbackQueryHandler(on_cancel_ask, pattern=CANCEL.matches))
    rid = CANCEL.parse_one(query.data)  # None: answer handlers.render.stale_button

`matches` (the handler's pattern) takes every press whose prefix, leading fixed words
(`one_of`) and number of parts fit, without judging the values; `parse` then returns the
typed parts, or None for anything malformed — a non-numeric, negative, zero or oversized
id, an unknown word — so a forged or oversized id gets the stale-button answer from the
flow's own handler, never an error. Data that fits no button's shape reaches the
catch-all (`handlers.common.on_unknown_button`). Well-formed parts are still only hints:
the service re-checks ownership and state against the database. No handler uses a regex
of its own (`tests/unit/test_callbacks.py` checks every registered pattern).

`StaffCallbackQueryHandler` matches presses by staff only (`bot_data.staff`: the
EXAMDESK_ADMIN_IDS and everyone with a role, kept current by `handlers.staff_roles`), so a
forged or forwarded staff button pressed by anyone else falls through to the catch-all
("this button is no longer valid") and the service is never called. Which role a button
needs is its handler's `@requires(...)` (`handlers.staff_roles`). `add_staff_chat_input`
is the same gate for what staff type (or send) in the staff chat after a button.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

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
    # One word of a fixed set (`one_of`): leading ones tell apart buttons that share a
    # prefix (`pay:ok:<id>`, `pay:<id>`), so routing checks them; other values only `parse`.
    fixed: bool = False
    example: str = "x"  # a value it accepts (tests build well-formed data with it)


def number(low: int, high: int) -> Part:
    """Decimal digits only (no sign, spaces or underscores) within low..high."""

    def convert(text: str) -> int | None:
        if not _DIGITS.fullmatch(text):
            return None
        value = int(text)
        return value if low <= value <= high else None

    return Part(convert, example=str(low))


def _word(text: str) -> str | None:
    return text if len(text) <= MAX_WORD and _WORD.fullmatch(text) else None


def one_of(*words: str) -> Part:
    """One of a fixed set of words (an action, a method)."""
    allowed = frozenset(words)
    return Part(lambda text: text if text in allowed else None, fixed=True, example=words[0])


def optional(part: Part) -> Part:
    """A trailing part that may be left out: then its value is None."""
    return Part(part.convert, optional=True, fixed=part.fixed, example=part.example)


ID = number(1, MAX_ID)  # a row id
WORD = Part(_word)  # a code: level, session, step, option, reason (letters, digits, _ and -)


def parse(data: str | None, prefix: str, *parts: Part) -> tuple[Any, ...] | None:
    """`<prefix>:<part>:…` → the typed parts, or None if anything does not fit."""
    if not parts:  # a button without parts (`menu:help`) is its prefix alone
        return () if data == prefix else None
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


class Button:
    """One kind of button: the prefix of its callback data and the typed parts after it."""

    def __init__(self, prefix: str, *parts: Part) -> None:
        self.prefix = prefix
        self.parts = parts
        self._required = sum(1 for p in parts if not p.optional)

    def __repr__(self) -> str:
        return f"Button({self.prefix!r}, {len(self.parts)} parts)"

    def matches(self, data: object) -> bool:
        """The handler's pattern: the prefix, the number of parts and the fixed words fit.

        Ids and codes are not judged here, so malformed ones still reach the handler,
        whose `parse` refuses them and which answers with the stale-button answer.
        """
        if not isinstance(data, str):
            return False
        if not self.parts:
            return data == self.prefix
        if not data.startswith(self.prefix + ":"):
            return False
        pieces = data[len(self.prefix) + 1 :].split(":")
        if not self._required <= len(pieces) <= len(self.parts):
            return False
        for part, piece in zip(self.parts, pieces, strict=False):
            if not part.fixed:
                return True  # only the leading fixed words route; the rest is parse's
            if part.convert(piece) is None:
                return False
        return True

    def parse(self, data: str | None) -> tuple[Any, ...] | None:
        """The typed parts, or None if anything does not fit."""
        return parse(data, self.prefix, *self.parts)

    def example(self, replace: Mapping[int, str] | None = None) -> str:
        """Well-formed data for this button, or with the parts at `replace`'s positions
        replaced (tests forge data with it)."""
        pieces = [(replace or {}).get(i, part.example) for i, part in enumerate(self.parts)]
        return ":".join([self.prefix, *pieces])

    def parse_one(self, data: str | None) -> Any:
        """The value of a one-part button (`tk:get:<id>` → the id), or None."""
        parsed = self.parse(data)
        return parsed[0] if parsed else None


class StaffCallbackQueryHandler(CallbackQueryHandler):  # type: ignore[type-arg]
    """A CallbackQueryHandler that does not match presses by anyone but staff.

    `staff` is the live staff filter, `application.bot_data.staff`: its ids change while
    the bot runs (a frozen id list would miss a member granted a role later).
    """

    def __init__(self, callback: Any, button: Button, staff: filters.User) -> None:
        if not isinstance(staff, filters.User):
            raise TypeError("pass the live staff filter: application.bot_data.staff")
        super().__init__(callback, pattern=button.matches)
        self.staff = staff

    def check_update(self, update: object) -> Any:
        if not isinstance(update, Update) or update.effective_user is None:
            return None
        if update.effective_user.id not in self.staff.user_ids:
            return None
        return super().check_update(update)


def add_staff_chat_input(
    application: Application, callback: Any, *, group: int, media: bool = False
) -> None:
    """Messages from staff in the staff chat that are not commands (text; with `media`,
    photos and documents too) go to `callback`, in its own handler `group` so it runs
    beside the other flows' staff-chat handlers; the callback acts only while the sender
    owes it an answer. Nothing without a staff chat."""
    chat_id = application.bot_data.settings.staff_chat_id
    if chat_id is None:
        return
    kinds = filters.TEXT | filters.PHOTO | filters.Document.ALL if media else filters.TEXT
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE
            & filters.Chat(chat_id=chat_id)
            & application.bot_data.staff
            & ~filters.COMMAND
            & kinds,
            callback,
        ),
        group=group,
    )
