"""Unit tests of bot.domain.eligibility_csv: bulk checks, per-row errors, the documented sample."""

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.eligibility_csv import OUTPUT_COLUMNS, CsvFormatError, CsvRowError, check_csv

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 26)
HEADER = (
    "name,level,education,major,graduation_date,final_year,title,title_date,prior_level,"
    "prior_level_date,work_start,exam_date\n"
)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT / "catalog" / "exam-catalog.yaml")


def _run(catalog, text: str):
    out = io.StringIO()
    report = check_csv(catalog, io.StringIO(text), out, today=TODAY)
    return report, list(csv.DictReader(io.StringIO(out.getvalue())))


def _verdicts(rows):
    return [
        (row["line"], row["name"], row["verdict"], row["matched_route"], row["suggested_level"])
        for row in rows
    ]


def test_check_csv_eligible_row_reports_route_and_level(catalog):
    report, rows = _run(
        catalog, HEADER + "张伟,junior,bachelor,机械工程,2026-06-30,no,,,,,,2027-01-09\n"
    )

    assert (_verdicts(rows), report.errors) == ([("2", "张伟", "eligible", "J2", "junior")], [])


def test_check_csv_output_header_is_documented_columns(catalog):
    out = io.StringIO()
    check_csv(catalog, io.StringIO(HEADER), out, today=TODAY)

    assert out.getvalue() == ",".join(OUTPUT_COLUMNS) + "\n"


def test_check_csv_bad_row_is_reported_and_rest_still_checked(catalog):
    text = (
        HEADER
        + "甲,junior,bachelor,自动化,2026-06-30,no,,,,,,2027-01-09\n"
        + "乙,junior,bachelor,自动化,2026-02-30,no,,,,,,2027-01-09\n"
        + "丙,expert,bachelor,自动化,2026-06-30,no,,,,,,2027-01-09\n"
        + "丁,junior,associate,数控技术,2027-06-30,yes,,,,,,2027-01-09\n"
    )

    report, rows = _run(catalog, text)

    assert (_verdicts(rows), report.errors) == (
        [
            ("2", "甲", "eligible", "J2", "junior"),
            ("3", "乙", "error", "", ""),
            ("4", "丙", "error", "", ""),
            ("5", "丁", "not_eligible", "", ""),
        ],
        [
            CsvRowError(3, "graduation_date: '2026-02-30' is not a date (use YYYY-MM-DD)"),
            CsvRowError(
                4, "level: unknown 'expert' (expected one of junior, intermediate, senior)"
            ),
        ],
    )


def test_check_csv_not_eligible_reasons_name_missing_conditions(catalog):
    _, rows = _run(
        catalog, HEADER + "丁,junior,associate,数控技术,2027-06-30,yes,,,,,,2027-01-09\n"
    )

    assert rows[0]["reasons"] == (
        "J1: title (need technician, have none); "
        "J2: education (need bachelor/second_bachelor/master/doctor, have associate); "
        "J3: graduation (need 2027-01-09, have 2027-06-30, met on 2027-06-30), "
        "work_years (need 1, have 0, met on 2028-06-30); "
        "J4: education (need technical_school, have associate); "
        "J3 holds from 2028-06-30; "
        "proof of 128 training hours required"
    )


def test_check_csv_master_without_junior_suggests_junior(catalog):
    _, rows = _run(
        catalog, HEADER + "刘洋,intermediate,master,机械工程,2024-06-30,no,,,,,,2027-01-09\n"
    )

    assert (
        rows[0]["verdict"],
        rows[0]["suggested_level"],
        "suggest junior via J2" in rows[0]["reasons"],
    ) == (
        "not_eligible",
        "junior",
        True,
    )


def test_check_csv_blank_exam_date_uses_next_session_for_level(catalog):
    # Senior is first offered on 2027-03-13; by then the title is 3 years old.
    report, rows = _run(catalog, HEADER + "赵,senior,,,,,engineer,2024-03-13,,,,\n")

    assert (_verdicts(rows), report.errors) == ([("2", "赵", "eligible", "S1", "senior")], [])


def test_check_csv_several_problems_in_one_row_are_all_listed(catalog):
    report, _ = _run(
        catalog,
        HEADER
        + "吴,intermediate,bachelor,机械工程,2019-06-30,maybe,,,junior,,2030-01-01,2027-01-09\n",
    )

    assert report.errors == [
        CsvRowError(
            2,
            "work_start: 2030-01-01 is in the future; final_year: 'maybe' is not "
            "yes/no/true/false/1/0; prior_level_date: required when prior_level is given",
        )
    ]


def test_check_csv_names_and_case_insensitive_codes_are_accepted(catalog):
    text = (
        "Name,Level,Education,Major,Title,Title_Date,Exam_Date\n"
        "王,初级,本科（学士）,Automation,,,2027-01-09\n"
        "李,JUNIOR,other,,工程师,2020-01-01,2027-01-09\n"
    )

    _, rows = _run(catalog, text)

    assert _verdicts(rows) == [
        ("2", "王", "eligible", "J2", "junior"),
        ("3", "李", "eligible", "J1", "senior"),
    ]


def test_check_csv_quoted_multiline_cell_keeps_start_line(catalog):
    text = HEADER + (
        '"Zhang\nWei",junior,,,,,technician,2020-01-01,,,,2027-01-09\n'
        "李,expert,,,,,,,,,,2027-01-09\n"
    )

    report, rows = _run(catalog, text)

    assert ([row["line"] for row in rows], report.errors[0].line) == (["2", "4"], 4)


def test_check_csv_blank_lines_are_skipped(catalog):
    _, rows = _run(
        catalog, HEADER + "\n,,,,,,,,,,,\n张,junior,,,,,technician,2020-01-01,,,,2027-01-09\n"
    )

    assert _verdicts(rows) == [("4", "张", "eligible", "J1", "junior")]


def test_check_csv_too_many_cells_is_a_row_error(catalog):
    report, _ = _run(catalog, "name,level\n张,junior,extra\n")

    assert report.errors == [CsvRowError(2, "has 3 cells but the header has 2 columns")]


def test_check_csv_bom_in_header_is_ignored(catalog):
    _, rows = _run(catalog, "\ufeffname,level,title,exam_date\n张,junior,technician,2027-01-09\n")

    assert _verdicts(rows) == [("2", "张", "eligible", "J1", "junior")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty: a header row is required"),
        (
            "name,levle\n",
            "line 1: unknown column(s) levle; expected " + HEADER.strip().replace(",", ", "),
        ),
        ("name,education\n", "line 1: missing required column(s) level"),
        ("name,level,level\n", "line 1: duplicate column(s) level"),
    ],
)
def test_check_csv_bad_header_raises_format_error(catalog, text, message):
    with pytest.raises(CsvFormatError) as caught:
        check_csv(catalog, io.StringIO(text), io.StringIO(), today=TODAY)

    assert str(caught.value) == message


def test_check_csv_documented_sample_runs(catalog):
    text = (ROOT / "docs" / "examples" / "eligibility-sample.csv").read_text(encoding="utf-8")

    report, rows = _run(catalog, text)

    assert (report.counts(), [e.line for e in report.errors], len(rows)) == (
        {"eligible": 4, "not_eligible": 2, "manual_review": 2, "error": 1},
        [10],
        9,
    )
