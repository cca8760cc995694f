"""Notifications: how an outbox row's payload becomes a Telegram message, at send time.

An outbox payload is `{"template": "<name>", "params": {...}}`. Rendering happens when the
row is sent, in the recipient's language of that moment, so a candidate who switched to
English after a reminder was planned still gets it in English. A payload may instead
carry literal `{"text": ...}` (staff broadcasts: the staff member's own words, sent as
written). A `Rendered` is one Telegram message: text, a photo or document with a caption,
or a venue (map pin); a notification followed by a pin is two rows with two keys, so a
crash between the two sends repeats neither.

There is no global registry: each handler module declares `TEMPLATES = {name: renderer}`,
`handlers.templates()` collects them, and the composition root hands the resulting
`Templates` to the sender. A name no module declared is found by a test
(`tests/unit/test_templates.py`) instead of as a failed row at send time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup

from bot.i18n import Translator


@dataclass(frozen=True)
class Venue:
    """A map pin (Telegram `sendVenue`): WGS-84 degrees, the place's name and address."""

    latitude: float
    longitude: float
    title: str
    address: str


@dataclass(frozen=True)
class Rendered:
    text: str
    reply_markup: InlineKeyboardMarkup | None = None
    photo: str | bytes | None = None  # file_id, or the image itself (a chart drawn earlier)
    document: str | None = None  # file_id
    venue: Venue | None = None  # sent as a venue message; `text` is not used


Renderer = Callable[[dict[str, Any], Translator], Rendered]


class UnknownTemplate(KeyError):
    """An outbox row names a template no code declared (a bug, or a rolled-back deploy)."""


class Templates:
    """The renderers of every notification template, by name."""

    def __init__(self, renderers: Mapping[str, Renderer]) -> None:
        self._renderers = dict(renderers)

    def render(self, payload: dict[str, Any], tr: Translator) -> Rendered:
        if "template" not in payload:
            return Rendered(
                text=payload.get("text", ""),
                photo=payload.get("photo"),
                document=payload.get("document"),
            )
        try:
            renderer = self._renderers[payload["template"]]
        except KeyError:
            raise UnknownTemplate(payload["template"]) from None
        return renderer(payload.get("params", {}), tr)

    def names(self) -> frozenset[str]:
        return frozenset(self._renderers)
