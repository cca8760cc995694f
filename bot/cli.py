"""Implementations of the `examdesk` sub-commands other than `run` and `db`."""

from __future__ import annotations

from bot.config import Settings


def run_sandbox(listen: str) -> int:
    raise NotImplementedError("sandbox command: in progress")


def run_chat(settings: Settings, *, staff: bool, script: bool) -> int:
    raise NotImplementedError("chat command: in progress")


def catalog(settings: Settings, action: str, path: str) -> int:
    raise NotImplementedError("catalog command: in progress")


def eligibility_check(settings: Settings, path: str, output: str | None) -> int:
    raise NotImplementedError("eligibility command: in progress")
