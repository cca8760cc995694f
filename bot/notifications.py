"""Notifications: how an outbox row's payload becomes a Telegram message, at send time.

An outbox payload is `{"template": "<name>", "params": {...}}`. Rendering happens when the
row is sent, in the recipient's language of that moment, so a candidate who switched to
English after a reminder was planned still gets it in English. `register` adds a template;
`render(template, params, tr)` returns the text and the optional inline keyboard.
A payload may instead carry literal `{"text": ...}` (staff broadcasts: the staff member's
own words, sent as written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup

from bot.i18n import Translator


@dataclass(frozen=True)
class Rendered:
    text: str
    reply_markup: InlineKeyboardMarkup | None = None
    photo: str | None = None  # file_id
    document: str | None = None  # file_id


Renderer = Callable[[dict[str, Any], Translator], Rendered]
_RENDERERS: dict[str, Renderer] = {}


class UnknownTemplate(KeyError):
    """An outbox row names a template no code registered (a bug, or a rolled-back deploy)."""


def register(name: str) -> Callable[[Renderer], Renderer]:
    def decorator(fn: Renderer) -> Renderer:
        _RENDERERS[name] = fn
        return fn

    return decorator


def render(payload: dict[str, Any], tr: Translator) -> Rendered:
    if "template" not in payload:
        return Rendered(
            text=payload.get("text", ""), photo=payload.get("photo"), document=payload.get("document")
        )
    try:
        renderer = _RENDERERS[payload["template"]]
    except KeyError:
        raise UnknownTemplate(payload["template"]) from None
    return renderer(payload.get("params", {}), tr)


def templates() -> list[str]:
    return sorted(_RENDERERS)
