"""Raw Telegram updates as the inbox may store them: parse, clean, check.

Entry points:

* ``parse_update(body) -> dict``: the webhook body as JSON, surviving what the standard
  parser cannot take (nesting past the recursion limit, integer literals past Python's
  digit limit, ``NaN``) by raising ``UnstorableUpdate``;
* ``clean_update(payload) -> dict``: what can be repaired without losing the message is
  repaired (U+0000 removed: PostgreSQL's JSONB refuses it; lone surrogates replaced by
  U+FFFD: UTF-8 cannot encode them), so the candidate still gets an answer;
* ``check_update(payload) -> int``: the update id, if the update can be stored (a JSON
  object whose ``update_id`` is an integer in the BigInteger column's range);
* ``guess_update_id(body)``: the id of an update that could not be parsed, for staff.

Pure functions, no I/O. ``UnstorableUpdate.reason`` is a short machine word kept with the
set-aside copy.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: update_id is stored in a signed 64-bit column; Telegram's ids are positive.
MAX_UPDATE_ID = 2**63 - 1
#: Telegram's updates nest a few levels (a reply inside a message inside an update); far
#: deeper is not an update, and would overflow recursive encoders further on.
MAX_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")
_LEADING_ID = re.compile(rb'\A\s*\{\s*"update_id"\s*:\s*([0-9]{1,19})(?![0-9])')


class UnstorableUpdate(Exception):
    """An update that cannot be stored as it is; `reason` says why."""

    def __init__(self, reason: str, update_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.update_id = update_id


def _refuse_constant(name: str) -> Any:
    raise UnstorableUpdate("not_a_finite_number")


def parse_update(body: bytes) -> Any:
    """The body as JSON (any JSON value: `check_update` says whether it is an update)."""
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise UnstorableUpdate("too_deep", guess_update_id(body)) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnstorableUpdate("not_json", guess_update_id(body)) from None
    except ValueError:  # int("1" * 5000): Python's limit on integer digits
        raise UnstorableUpdate("number_too_long", guess_update_id(body)) from None
    except UnstorableUpdate as exc:
        raise UnstorableUpdate(exc.reason, guess_update_id(body)) from None


def guess_update_id(body: bytes) -> int | None:
    """The update_id of a body that could not be parsed, when it comes first (as Telegram
    sends it) and fits the column; None otherwise."""
    match = _LEADING_ID.match(body[:200])
    if match is None or int(match.group(1)) > MAX_UPDATE_ID:
        return None
    return int(match.group(1))


def clean_text(text: str) -> str:
    """The text without U+0000, lone surrogates replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def clean_update(payload: Any) -> Any:
    """A copy of the payload with every string (keys too) cleaned by `clean_text`.

    Raises UnstorableUpdate for nesting deeper than MAX_DEPTH and for non-finite numbers
    (1e400 parses as infinity, which JSONB cannot hold)."""
    return _clean(payload, 0)


def _clean(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise UnstorableUpdate("too_deep")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {
            clean_text(key) if isinstance(key, str) else key: _clean(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_clean(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise UnstorableUpdate("not_a_finite_number")
    return value


def check_update(payload: Any) -> int:
    """The update id of a storable update; UnstorableUpdate otherwise."""
    if not isinstance(payload, dict):
        raise UnstorableUpdate("not_an_object")
    update_id = payload.get("update_id")
    if update_id is None:
        raise UnstorableUpdate("update_id_missing")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise UnstorableUpdate("update_id_not_an_integer")
    if not 0 <= update_id <= MAX_UPDATE_ID:
        raise UnstorableUpdate("update_id_out_of_range")
    return update_id
