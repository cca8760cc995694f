"""The layers of docs/architecture.md hold: import-linter's contracts (pyproject.toml) and
the import graph figures of scripts/import_graph.py (no circle, no upward arrow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_graph_has_no_circle_and_no_upward_arrow() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/import_graph.py", "--verbose"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = dict(
        line.split(": ", 1)
        for line in result.stdout.splitlines()
        if not line.startswith(("circle:", "up:"))
    )
    got = (
        figures["modules in import circles (developer tools left out)"],
        figures["upward arrows"],
    )
    assert got == ("0", "0"), result.stdout
