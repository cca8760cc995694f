"""Certificate files (docs/certificates.md): the numbers the evaluation organisation sent, as
CSV or XLSX, read into rows.

Entry point: `read_certificates_file(file_name, data) -> list[CertificateLine]`; raises
`ResultsFileInvalid` (too_large, encoding, unreadable, header with `missing`:
ticket_or_reference, number, issue_date; empty, too_many_rows). The file is read by the
results import's reader (`bot.services.results_file.read_table`): UTF-8 with or without
BOM or GB18030 CSV, or XLSX; the header is the first of the top rows naming a ticket or
reference column. No database: `bot.services.certificates` checks the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.errors import ResultsFileInvalid
from bot.services.results_file import (
    HEADER_SEARCH_ROWS,
    MAX_ROWS,
    REFERENCE_HEADERS,
    TICKET_HEADERS,
    cell,
    header_key,
    read_table,
)

# Header names, compared after `header_key` (NFKC, lower case, no spaces, `-` or `_`); the
# ticket and reference columns are named as in a results file.
NUMBER_HEADERS = frozenset(
    {"certificatenumber", "certificateno", "certificate", "number", "证书编号", "证书号"}
)
DATE_HEADERS = frozenset(
    {"issuedate", "issuedon", "issued", "dateofissue", "发证日期", "签发日期", "颁证日期"}
)


@dataclass(frozen=True, slots=True)
class CertificateLine:
    """One data row, cells as text (NFKC-normalised, trimmed; "" when empty)."""

    line: int
    ticket: str
    reference: str
    number: str
    issued: str


def read_certificates_file(file_name: str, data: bytes) -> list[CertificateLine]:
    """The file's data rows; raises `ResultsFileInvalid` for a file that is not such a table."""
    table = read_table(file_name, data)
    header: tuple[int, dict[str, int]] | None = None
    for number, cells in table[:HEADER_SEARCH_ROWS]:
        keys = [header_key(text) for text in cells]
        if not any(keys):
            continue
        found = _header_indexes(keys)
        if "ticket" in found or "reference" in found:
            header = (number, found)
            break
        header = header or (number, found)  # a title line, or a header lacking the column
    if header is None:
        raise ResultsFileInvalid("empty")
    header_line, columns = header
    missing = [
        name
        for name, present in (
            ("ticket_or_reference", "ticket" in columns or "reference" in columns),
            ("number", "number" in columns),
            ("issue_date", "date" in columns),
        )
        if not present
    ]
    if missing:
        raise ResultsFileInvalid("header", missing=missing)
    lines = [
        CertificateLine(
            line=line,
            ticket=cell(cells, columns.get("ticket")),
            reference=cell(cells, columns.get("reference")),
            number=cell(cells, columns["number"]),
            issued=cell(cells, columns["date"]),
        )
        for line, cells in table
        if line > header_line and any(text.strip() for text in cells)
    ]
    if not lines:
        raise ResultsFileInvalid("empty")
    if len(lines) > MAX_ROWS:
        raise ResultsFileInvalid("too_many_rows", limit=MAX_ROWS)
    return lines


def _header_indexes(keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, key in enumerate(keys):
        for name, names in (
            ("ticket", TICKET_HEADERS),
            ("reference", REFERENCE_HEADERS),
            ("number", NUMBER_HEADERS),
            ("date", DATE_HEADERS),
        ):
            if key in names:
                found.setdefault(name, index)
    return found
