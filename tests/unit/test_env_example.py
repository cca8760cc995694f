"""`.env.example` documents every setting and points only to files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A project path in a comment or a value: docs/…, catalog/…, README.md and the like.
PATH = re.compile(r"\b(?:docs|catalog|bench|scripts)/[\w./-]*\w|\b[\w-]+\.md\b")


def test_env_example_mentions_only_files_that_exist() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    mentioned = sorted(set(PATH.findall(text)))
    missing = [p for p in mentioned if not (ROOT / p).exists()]
    assert (missing, len(mentioned) > 0) == ([], True)
