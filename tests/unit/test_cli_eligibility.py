"""`examdesk eligibility check FILE.csv`: verdicts as CSV, a malformed row reported by line."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from bot.config import PROJECT_ROOT

HEADER = (
    "name,level,education,major,graduation_date,final_year,title,title_date,prior_level,"
    "prior_level_date,work_start,exam_date\n"
)


def test_eligibility_check_command_writes_verdicts_and_reports_bad_rows(tmp_path: Path) -> None:
    source = tmp_path / "class.csv"
    source.write_text(
        HEADER
        + "Wang,junior,bachelor,自动化,2027-06-30,yes,,,,,,2027-01-09\n"
        + "Li,junior,bachelor,自动化,2027-02-30,yes,,,,,,2027-01-09\n"
        + "Zhao,intermediate,master,机械工程,2024-06-30,no,,,,,,2027-01-09\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXAMDESK_")} | {
        "EXAMDESK_SECRET_KEY": "c" * 40
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "eligibility", "check", str(source)],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.returncode == 0
    assert [(r["name"], r["verdict"]) for r in rows] == [
        ("Wang", "eligible"),
        ("Li", "error"),
        ("Zhao", "not_eligible"),
    ]
    assert (rows[0]["matched_route"], rows[2]["suggested_level"]) == ("J2", "junior")
    assert f"{source}:3:" in result.stderr
