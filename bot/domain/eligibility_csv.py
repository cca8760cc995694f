"""Bulk eligibility check of a CSV file (a school's list of students, an employer's staff).

Entry point: ``check_csv(catalog, in_text_stream, out_text_stream, *, today) -> CsvReport``.

Reads the input described in ``docs/eligibility-csv.md`` (header row required), runs the
eligibility engine on every row and writes one output row per input row:
``name, line, verdict, matched_route, reasons, suggested_level``. A malformed row (bad
date, unknown code, …) gets verdict ``error`` with its line number — in the output and
in ``CsvReport.errors`` — and the following rows are still checked. Only a broken header
(missing required or unknown columns) stops the run, with ``CsvFormatError``.

Pure apart from the two streams it is handed: the caller opens and closes files.
The ``reasons`` text is for centre staff reading a spreadsheet (compact English with
catalogue codes), not a candidate-facing message.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

from bot.domain.catalog import Catalog
from bot.domain.eligibility import (
    Missing,
    Profile,
    ProfileError,
    Status,
    Verdict,
    evaluate,
    suggest_level,
)

__all__ = [
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "REQUIRED_COLUMNS",
    "CsvFormatError",
    "CsvReport",
    "CsvRowError",
    "CsvRowResult",
    "check_csv",
]

INPUT_COLUMNS = (
    "name",
    "level",
    "education",
    "major",
    "graduation_date",
    "final_year",
    "title",
    "title_date",
    "prior_level",
    "prior_level_date",
    "work_start",
    "exam_date",
)
REQUIRED_COLUMNS = ("name", "level")
OUTPUT_COLUMNS = ("name", "line", "verdict", "matched_route", "reasons", "suggested_level")
VERDICT_ERROR = "error"

_TRUE = {"yes", "y", "true", "1", "是"}
_FALSE = {"no", "n", "false", "0", "否", ""}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (header problems)."""


@dataclass(frozen=True)
class CsvRowResult:
    line: int  # line of the input file where the row starts (the header is line 1)
    name: str
    verdict: str  # eligible | not_eligible | manual_review | error
    matched_route: str
    reasons: str
    suggested_level: str


@dataclass(frozen=True)
class CsvRowError:
    line: int
    message: str


@dataclass(frozen=True)
class CsvReport:
    rows: list[CsvRowResult]
    errors: list[CsvRowError]

    def counts(self) -> dict[str, int]:
        """Number of rows per verdict."""
        return dict(Counter(row.verdict for row in self.rows))


class _RowError(ValueError):
    """Problems of one row; the message lists them all."""


# --- reading ----------------------------------------------------------------------------


def _read_header(reader: Any) -> list[str]:
    try:
        raw = next(reader)
    except StopIteration:
        raise CsvFormatError("the file is empty: a header row is required") from None
    header = [cell.strip().lstrip("\ufeff").strip().lower() for cell in raw]  # Excel writes a BOM
    unknown = [name for name in header if name not in INPUT_COLUMNS]
    if unknown:
        raise CsvFormatError(
            f"line 1: unknown column(s) {', '.join(unknown)}; expected {', '.join(INPUT_COLUMNS)}"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CsvFormatError(f"line 1: missing required column(s) {', '.join(missing)}")
    duplicated = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicated:
        raise CsvFormatError(f"line 1: duplicate column(s) {', '.join(duplicated)}")
    return header


def _rows(reader: Any, header: list[str]) -> Iterable[tuple[int, dict[str, str], str | None]]:
    """(start line, cells by column, shape problem) per non-blank row."""
    previous_end = reader.line_num
    for raw in reader:
        start, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in raw):
            continue
        cells = dict.fromkeys(INPUT_COLUMNS, "")
        cells.update({column: value.strip() for column, value in zip(header, raw, strict=False)})
        # Fewer cells than columns: trailing blanks some tools drop. More: a shifted row.
        problem = (
            f"has {len(raw)} cells but the header has {len(header)} columns"
            if len(raw) > len(header)
            else None
        )
        yield start, cells, problem


def _find_code(items: Iterable[Any], text: str) -> str | None:
    """Catalogue code for a code or a zh/en name, case-insensitively."""
    wanted = text.casefold()
    for item in items:
        if wanted in {item.code.casefold(), item.name.zh_Hans.casefold(), item.name.en.casefold()}:
            return item.code
    return None


class _RowParser:
    """Turns one row's cells into (level, profile, exam date), collecting every problem."""

    def __init__(self, catalog: Catalog, today: date) -> None:
        self.catalog = catalog
        self.today = today
        self.problems: list[str] = []

    def parse(self, cells: dict[str, str]) -> tuple[str, Profile, date]:
        level = self._code(cells, "level", self.catalog.levels, required=True)
        education = self._code(cells, "education", self.catalog.education_levels)
        title = self._code(cells, "title", self.catalog.titles)
        prior_level = self._code(cells, "prior_level", self.catalog.levels)
        graduation_date = self._date(cells, "graduation_date", past_only=False)
        title_date = self._date(cells, "title_date")
        prior_level_date = self._date(cells, "prior_level_date")
        work_start = self._date(cells, "work_start")
        final_year = self._bool(cells, "final_year")
        exam_date = self._date(cells, "exam_date", past_only=False)
        if prior_level and prior_level_date is None and "prior_level_date" not in self._bad:
            self.problems.append("prior_level_date: required when prior_level is given")
        if title_date and not title:
            self.problems.append("title_date: given without a title")
        if level and exam_date is None and "exam_date" not in self._bad:
            exam_date = self._next_exam_date(level)
        if self.problems:
            raise _RowError("; ".join(self.problems))
        profile = Profile(
            education=education,
            major=cells["major"] or None,
            graduation_date=graduation_date,
            final_year=bool(final_year),
            title=title,
            title_date=title_date,
            prior_levels={prior_level: prior_level_date}
            if prior_level and prior_level_date
            else {},
            work_start=work_start,
        )
        return level, profile, exam_date  # type: ignore[return-value]

    @property
    def _bad(self) -> set[str]:
        return {problem.split(":", 1)[0] for problem in self.problems}

    def _code(
        self, cells: dict[str, str], column: str, items: Iterable[Any], *, required: bool = False
    ) -> str | None:
        text = cells[column]
        if not text:
            if required:
                self.problems.append(f"{column}: required")
            return None
        code = _find_code(items, text)
        if code is None:
            known = ", ".join(item.code for item in items)
            self.problems.append(f"{column}: unknown {text!r} (expected one of {known})")
        return code

    def _date(self, cells: dict[str, str], column: str, *, past_only: bool = True) -> date | None:
        text = cells[column]
        if not text:
            return None
        try:
            if not _ISO_DATE.match(text):
                raise ValueError
            value = date.fromisoformat(text)
        except ValueError:
            self.problems.append(f"{column}: {text!r} is not a date (use YYYY-MM-DD)")
            return None
        if past_only and value > self.today:
            self.problems.append(f"{column}: {text} is in the future")
        return value

    def _bool(self, cells: dict[str, str], column: str) -> bool | None:
        text = cells[column].casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.problems.append(f"{column}: {cells[column]!r} is not yes/no/true/false/1/0")
        return None

    def _next_exam_date(self, level: str) -> date | None:
        # No exam date given: the next catalogue session offering the level.
        upcoming = [
            s.exam_date for s in self.catalog.sessions_for(level) if s.exam_date >= self.today
        ]
        if not upcoming:
            self.problems.append(f"exam_date: required (no upcoming session offers {level})")
            return None
        return upcoming[0]


# --- describing a verdict ---------------------------------------------------------------


def _value(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "/".join(str(v) for v in value)
    return str(value)


def _describe_missing(missing: Missing) -> str:
    text = f"{missing.code} (need {_value(missing.need)}, have {_value(missing.have)}"
    if missing.met_on is not None:
        text += f", met on {missing.met_on.isoformat()}"
    if missing.reviewable:
        text += ", manual review"
    return text + ")"


def _reasons(verdict: Verdict) -> str:
    parts = []
    if verdict.status is not Status.ELIGIBLE:
        for result in verdict.routes:
            if result.manual_review and not result.missing:
                parts.append(f"{result.route}: manual review")
            else:
                parts.append(
                    f"{result.route}: " + ", ".join(_describe_missing(m) for m in result.missing)
                )
        for suggestion in verdict.suggestions:
            if suggestion.kind == "apply_level":
                parts.append(f"suggest {suggestion.level} via {suggestion.route}")
            elif suggestion.kind == "eligible_from" and suggestion.on is not None:
                session = f" (session {suggestion.session})" if suggestion.session else ""
                parts.append(f"{suggestion.route} holds from {suggestion.on.isoformat()}{session}")
    for requirement in verdict.requirements:
        parts.append(f"proof of {requirement.need} {requirement.code.replace('_', ' ')} required")
    return "; ".join(parts)


# --- entry point ------------------------------------------------------------------------


def _check_row(catalog: Catalog, line: int, cells: dict[str, str], today: date) -> CsvRowResult:
    level, profile, exam_date = _RowParser(catalog, today).parse(cells)
    verdict = evaluate(catalog, level, profile, exam_date)
    return CsvRowResult(
        line=line,
        name=cells["name"],
        verdict=verdict.status.value,
        matched_route=verdict.matched_route or "",
        reasons=_reasons(verdict),
        suggested_level=suggest_level(catalog, profile, exam_date) or "",
    )


def check_csv(
    catalog: Catalog, in_text_stream: TextIO, out_text_stream: TextIO, *, today: date
) -> CsvReport:
    """Check every row of the input CSV and write the results CSV; see the module docstring."""
    reader = csv.reader(in_text_stream)
    header = _read_header(reader)
    writer = csv.writer(out_text_stream, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    rows: list[CsvRowResult] = []
    errors: list[CsvRowError] = []
    for line, cells, shape_problem in _rows(reader, header):
        try:
            if shape_problem is not None:
                raise _RowError(shape_problem)
            result = _check_row(catalog, line, cells, today)
        except (_RowError, ProfileError) as exc:
            errors.append(CsvRowError(line, str(exc)))
            result = CsvRowResult(line, cells["name"], VERDICT_ERROR, "", str(exc), "")
        rows.append(result)
        writer.writerow(
            [
                result.name,
                result.line,
                result.verdict,
                result.matched_route,
                result.reasons,
                result.suggested_level,
            ]
        )
    return CsvReport(rows=rows, errors=errors)
