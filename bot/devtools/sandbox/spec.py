"""Bot API sandbox: the vendored official method list and the per-call spec check.

Entry points: `load_spec()`, `check_call(method, params)`, and `Spec.decode()` which the
server uses to turn wire values (form strings, multipart parts, JSON) into typed values
while collecting violations.

Wire rules (as PTB 22.8 and Telegram use them): in form / multipart / query bodies every
value is a string; strings travel raw, everything else is JSON-encoded (`true`, `123`,
`{"inline_keyboard": ...}`). JSON bodies carry typed values, but objects may still arrive
as JSON-encoded strings. Method names are case-insensitive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).with_name("botapi-10.1.json")

_INT_RE = re.compile(r"^-?\d+$")
_FLOAT_RE = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_PRIMITIVES = {"Integer", "Float", "Boolean", "String", "InputFile"}


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part as the server received it."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """JSON-safe description (used when calls are shown over the control API)."""
        return {
            "upload": self.name,
            "file_name": self.filename,
            "mime_type": self.content_type,
            "size": len(self.data),
        }


@dataclass(frozen=True)
class Violation:
    """One way a call departs from the spec; `fatal` ones are answered 400."""

    kind: str  # unknown_method | missing | type | unknown_param
    param: str | None
    message: str

    @property
    def fatal(self) -> bool:
        return self.kind != "unknown_param"

    def __str__(self) -> str:
        return self.message


class _Invalid(Exception):
    """Raised by the converters when a value does not fit a type."""


@dataclass(frozen=True)
class Method:
    """One Bot API method: its canonical name, return types and parameters."""

    name: str
    returns: tuple[str, ...]
    fields: dict[str, dict[str, Any]]

    @property
    def required(self) -> list[str]:
        return [n for n, f in self.fields.items() if f.get("required")]


class Spec:
    """The vendored Bot API description with case-insensitive method lookup."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.version: str = raw.get("version", "")
        self.types: dict[str, Any] = raw.get("types", {})
        self.methods: dict[str, Method] = {}
        for name, m in raw.get("methods", {}).items():
            fields = {f["name"]: f for f in m.get("fields", [])}
            self.methods[name.lower()] = Method(name, tuple(m.get("returns", [])), fields)

    def method(self, name: str) -> Method | None:
        """The method called `name` (any case), or None."""
        return self.methods.get(name.lower())

    def canonical(self, name: str) -> str:
        """The official spelling of `name`, or `name` unchanged when unknown."""
        m = self.method(name)
        return m.name if m else name

    def check(self, method: str, params: dict[str, Any]) -> list[Violation]:
        """Violations of `params` (wire or typed values) for `method`."""
        return self.decode(method, params)[1]

    def decode(
        self, method: str, params: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Violation]]:
        """Convert wire values to typed values by the spec; return them with the violations."""
        m = self.method(method)
        if m is None:
            return dict(params), [Violation("unknown_method", None, f"unknown method {method!r}")]
        out: dict[str, Any] = {}
        violations: list[Violation] = []
        for name, value in params.items():
            spec_field = m.fields.get(name)
            if spec_field is None:
                violations.append(
                    Violation(
                        "unknown_param", name, f"{m.name}: parameter {name!r} is not in the spec"
                    )
                )
                out[name] = value
                continue
            try:
                out[name] = _convert(value, spec_field["types"])
            except _Invalid as exc:
                violations.append(Violation("type", name, f"{m.name}: parameter {name!r} {exc}"))
                out[name] = value
        for name in m.required:
            if name not in params:
                violations.append(
                    Violation("missing", name, f"{m.name}: required parameter {name!r} is missing")
                )
        return out, violations


def _convert(value: Any, types: list[str]) -> Any:
    """Convert `value` to the first of `types` it fits, else raise _Invalid."""
    # Integer before String matters for chat_id ("Integer or String"): "123" is an id.
    order = sorted(types, key=lambda t: 1 if t == "String" else 0)
    for t in order:
        try:
            return _convert_one(value, t)
        except _Invalid:
            continue
    shown = value.summary() if isinstance(value, UploadedFile) else repr(value)[:60]
    raise _Invalid(f"expected {' or '.join(types)}, got {shown}")


def _convert_one(value: Any, t: str) -> Any:
    if isinstance(value, UploadedFile):
        if t == "InputFile":
            return value
        raise _Invalid
    if t == "InputFile":
        # A file may also be referenced by file_id, URL or attach://<part>.
        if isinstance(value, str):
            return value
        raise _Invalid
    if t == "Integer":
        if isinstance(value, bool):
            raise _Invalid
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value)
        raise _Invalid
    if t == "Float":
        if isinstance(value, bool):
            raise _Invalid
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            return float(value)
        raise _Invalid
    if t == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise _Invalid
    if t == "String":
        if isinstance(value, str):
            return value
        # Telegram accepts numbers where strings are expected (ids in JSON bodies).
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Invalid
    if t.startswith("Array of "):
        inner = t[len("Array of ") :]
        seq = _json_if_str(value)
        if not isinstance(seq, list):
            raise _Invalid
        if inner in _PRIMITIVES - {"InputFile"}:
            return [_convert_one(v, inner) for v in seq]
        if not inner.startswith("Array of") and not all(isinstance(v, dict) for v in seq):
            raise _Invalid
        return seq
    # Any other name is an object type.
    obj = _json_if_str(value)
    if not isinstance(obj, dict):
        raise _Invalid
    return obj


def _json_if_str(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _Invalid from exc
    return value


@lru_cache(maxsize=4)
def load_spec(path: str | Path = SPEC_PATH) -> Spec:
    """Load (once) and return the vendored spec."""
    with open(path, encoding="utf-8") as fh:
        return Spec(json.load(fh))


def check_call(method: str, params: dict[str, Any]) -> list[str]:
    """Spec violations of one call: unknown method, missing/unknown parameter, wrong type."""
    return [str(v) for v in load_spec().check(method, params)]
