"""Results files (docs/results.md): one session's results as CSV or XLSX, read into rows.

Entry points: `read_results_file(file_name, data, catalog) -> ResultsFile` (raises
`ResultsFileInvalid` with a reason code for a file that is not such a table at all) and
`parse_mark(text, max_score)` for one score cell. No database: `bot.services.results`
checks the rows against it. `read_table`, `header_key` and `cell` are the reader every
staff import shares (the certificate import uses them too).

XLSX is read with openpyxl (first sheet, cached values of formulas); CSV with the csv
module, UTF-8 with or without BOM, else GB18030 as Chinese Excel saves it. The header is
the first of the top rows that names a ticket or reference column, so a title line
above it is fine. Header names are English or Chinese; component columns are named by
the catalogue (code, English or Chinese name). Line numbers are the spreadsheet's row
numbers (the header is usually line 1).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import load_workbook

from bot.domain.catalog import Catalog
from bot.domain.scoring import Mark, parse_score, to_tenths
from bot.services.errors import ResultsFileInvalid

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5000
#: Rows searched for the header line: exports often carry a title line or two above it.
HEADER_SEARCH_ROWS = 10

# Header names, compared after `header_key` (NFKC, lower case, no spaces, dashes or underscores).
TICKET_HEADERS = frozenset({"ticket", "ticketnumber", "ticketno", "准考证号", "准考证"})
REFERENCE_HEADERS = frozenset({"reference", "registrationreference", "ref", "报名编号", "报名号"})
ID_HEADERS = frozenset(
    {"idlast4", "last4", "身份证后四位", "身份证后4位", "证件号后四位", "证件号码后四位"}
)
# Words staff write in a score cell instead of a score (compared in lower case).
ABSENT_WORDS = frozenset({"缺考", "absent"})
DISQUALIFIED_WORDS = frozenset({"违纪", "disqualified"})


@dataclass(frozen=True, slots=True)
class FileRow:
    """One data row, cells as text (NFKC-normalised, trimmed; "" when empty)."""

    line: int
    ticket: str
    reference: str
    id_last4: str
    marks: dict[str, str]  # component code → the cell, for every component column


@dataclass(frozen=True, slots=True)
class ResultsFile:
    components: tuple[str, ...]  # component columns found, in catalogue order
    rows: tuple[FileRow, ...]  # non-empty data rows


def parse_mark(text: str, max_score: int) -> tuple[Mark, int | None]:
    """A score cell as (mark, score in tenths); raises `InvalidScore` for a bad score."""
    word = text.strip().lower()
    if word in ABSENT_WORDS:
        return Mark.ABSENT, None
    if word in DISQUALIFIED_WORDS:
        return Mark.DISQUALIFIED, None
    return Mark.SCORED, to_tenths(parse_score(text, max_score))


def read_results_file(file_name: str, data: bytes, catalog: Catalog) -> ResultsFile:
    """Read the file; XLSX by its content (a zip) or its name, CSV otherwise."""
    table = read_table(file_name, data)
    header_line, columns = _find_columns(table, catalog)
    rows = tuple(
        FileRow(
            line=line,
            ticket=cell(cells, columns.get("ticket")),
            reference=cell(cells, columns.get("reference")),
            id_last4=cell(cells, columns["id_last4"]),
            marks={code: cell(cells, columns[code]) for code in _components(columns, catalog)},
        )
        for line, cells in table
        if line > header_line and any(text.strip() for text in cells)
    )
    if not rows:
        raise ResultsFileInvalid("empty")
    if len(rows) > MAX_ROWS:
        raise ResultsFileInvalid("too_many_rows", limit=MAX_ROWS)
    return ResultsFile(_components(columns, catalog), rows)


# --- reading ----------------------------------------------------------------------------


def read_table(file_name: str, data: bytes) -> list[tuple[int, list[str]]]:
    """Every row of a CSV or XLSX file as (line number, cells as text), for any import
    (results, certificates): XLSX by its content (a zip) or its name, CSV otherwise. Raises
    `ResultsFileInvalid` (too_large, encoding, unreadable, too_many_rows)."""
    if len(data) > MAX_BYTES:
        raise ResultsFileInvalid("too_large", limit=MAX_BYTES)
    xlsx = data.startswith(b"PK\x03\x04") or file_name.lower().endswith((".xlsx", ".xlsm"))
    return list(_limited(_xlsx_rows(data) if xlsx else _csv_rows(data)))


def _limited(rows: Iterable[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    # Stop while streaming: a small compressed workbook can unpack to millions of rows.
    for count, row in enumerate(rows):
        if count > MAX_ROWS + HEADER_SEARCH_ROWS:
            raise ResultsFileInvalid("too_many_rows", limit=MAX_ROWS)
        yield row


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ResultsFileInvalid("encoding")
    try:
        yield from enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
    except csv.Error:
        raise ResultsFileInvalid("unreadable") from None


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        # A damaged or foreign file fails inside openpyxl with zipfile, XML, KeyError or
        # ValueError errors alike: to staff they all mean "not a readable workbook".
        raise ResultsFileInvalid("unreadable") from None
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [_cell_text(value) for value in values]
    except ResultsFileInvalid:
        raise
    except Exception:
        raise ResultsFileInvalid("unreadable") from None
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)  # a float as its shortest exact form: 72.5, never 72.50000001


def cell(cells: list[str], index: int | None) -> str:
    """The cell at `index` (NFKC-normalised, trimmed), "" when absent."""
    if index is None or index >= len(cells):
        return ""
    return unicodedata.normalize("NFKC", cells[index]).strip()


# --- the header -------------------------------------------------------------------------


def header_key(text: str) -> str:
    """A header name as compared: NFKC, lower case, no spaces, dashes or underscores."""
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    return "".join(ch for ch in folded if ch not in " _-")


def _components(columns: dict[str, int], catalog: Catalog) -> tuple[str, ...]:
    return tuple(c.code for c in catalog.components if c.code in columns)


def _find_columns(
    table: list[tuple[int, list[str]]], catalog: Catalog
) -> tuple[int, dict[str, int]]:
    """The header's line number and its columns: "ticket", "reference", "id_last4" and
    component codes → column index."""
    names = {
        header_key(alias): c.code
        for c in catalog.components
        for alias in (c.code, c.name.en, c.name.zh_Hans)
    }
    header: tuple[int, dict[str, int]] | None = None
    for number, cells in table[:HEADER_SEARCH_ROWS]:
        keys = [header_key(text) for text in cells]
        if not any(keys):
            continue
        found = _header_indexes(keys, names)
        if "ticket" in found or "reference" in found:
            header = (number, found)
            break
        # No identifying column yet: a title line, or a header lacking it (reported below).
        header = header or (number, found)
    if header is None:
        raise ResultsFileInvalid("empty")
    number, found = header
    missing = []
    if "ticket" not in found and "reference" not in found:
        missing.append("ticket_or_reference")
    if "id_last4" not in found:
        missing.append("id_last4")
    if not _components(found, catalog):
        missing.append("component")
    if missing:
        raise ResultsFileInvalid("header", missing=missing)
    return number, found


def _header_indexes(keys: list[str], component_names: dict[str, str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in TICKET_HEADERS:
            found.setdefault("ticket", index)
        elif key in REFERENCE_HEADERS:
            found.setdefault("reference", index)
        elif key in ID_HEADERS:
            found.setdefault("id_last4", index)
        elif key in component_names:
            found.setdefault(component_names[key], index)
    return found
