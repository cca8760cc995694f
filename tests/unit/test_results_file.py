"""Unit tests of bot.services.results_file: the documented sample files and score cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT
from bot.domain.catalog import load_catalog
from bot.domain.scoring import Mark
from bot.services.results_file import FileRow, parse_mark, read_results_file

EXAMPLES = PROJECT_ROOT / "docs" / "examples"
CATALOG = load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml")


def _read(name: str) -> list[FileRow]:
    path = EXAMPLES / name
    return list(read_results_file(path.name, Path(path).read_bytes(), CATALOG).rows)


def test_read_results_file_sample_csv_gives_each_row() -> None:
    rows = _read("results-sample.csv")

    assert [(r.line, r.ticket or r.reference, r.id_last4, r.marks) for r in rows] == [
        (2, "2027-01-J-0001", "002X", {"theory": "85.5", "practical": "72"}),
        (3, "2027-01-J-0002", "1235", {"theory": "58", "practical": "66.5"}),
        (4, "EDKQ3M7XTA", "0417", {"theory": "缺考", "practical": "缺考"}),
        (5, "2027-01-J-0004", "3348", {"theory": "91", "practical": "违纪"}),
        (6, "2027-01-J-0005", "7720", {"theory": "", "practical": "64"}),
    ]


def test_read_results_file_sample_xlsx_reads_like_the_csv_one_line_lower() -> None:
    csv_rows, xlsx_rows = _read("results-sample.csv"), _read("results-sample.xlsx")

    assert [(r.line - 1, r.ticket, r.reference, r.id_last4, r.marks) for r in xlsx_rows] == [
        (r.line, r.ticket, r.reference, r.id_last4, r.marks) for r in csv_rows
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("72.5", (Mark.SCORED, 725)), ("缺考", (Mark.ABSENT, None)),
     ("Absent", (Mark.ABSENT, None)), ("违纪", (Mark.DISQUALIFIED, None)),
     ("DISQUALIFIED", (Mark.DISQUALIFIED, None))],
)  # fmt: skip
def test_parse_mark_score_or_word(text: str, expected: tuple[Mark, int | None]) -> None:
    assert parse_mark(text, 100) == expected
