"""Write the sample results files of docs/results.md: one session, CSV and XLSX.

Usage: .venv/bin/python scripts/results_sample.py

`docs/examples/results-sample.csv` has English headers; `results-sample.xlsx` has the
same rows under Chinese headers, with a title line above the header as exports often
have, and numbers stored as numbers. Both read the same (tests/unit/test_results_file.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
ENGLISH = ["ticket_number", "reference", "name", "id_last4", "theory", "practical"]
CHINESE = ["准考证号", "报名编号", "姓名", "身份证后四位", "理论知识", "专业能力"]
ROWS: list[list[object]] = [
    ["2027-01-J-0001", "", "张伟", "002X", 85.5, 72],
    ["2027-01-J-0002", "", "李娜", "1235", 58, 66.5],
    ["", "EDKQ3M7XTA", "王芳", "0417", "缺考", "缺考"],
    ["2027-01-J-0004", "", "刘洋", "3348", 91, "违纪"],
    ["2027-01-J-0005", "", "陈静", "7720", "", 64],  # booked only the practical (retake)
]


def main() -> None:
    with (EXAMPLES / "results-sample.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ENGLISH)
        writer.writerows(ROWS)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "成绩"
    sheet.append(["2027-01 考试成绩（智能制造工程技术人员）"])
    sheet.append(CHINESE)
    for row in ROWS:
        sheet.append(row)
    workbook.save(EXAMPLES / "results-sample.xlsx")


if __name__ == "__main__":
    main()
