"""Logging set-up, with ID numbers masked in every log record whatever its source.

`install_redaction()` wraps the log record factory so that any message (ours, PTB's debug
dumps of raw updates, a driver's SQL parameters) has resident-ID-like numbers masked
before a handler sees it. `configure(verbose)` sets levels for the `examdesk` command.
"""

from __future__ import annotations

import logging
import re

from bot.domain.idcard import mask_id_number

# 18-character resident IDs (last may be X) and legacy 15-digit ones, not inside longer digit runs.
_ID_LIKE = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9Xx])")
_installed = False


def redact(text: str) -> str:
    return _ID_LIKE.sub(lambda m: mask_id_number(m.group(0)), text)


def install_redaction() -> None:
    """Mask ID numbers in all log records from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):  # type: ignore[no-untyped-def]
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:
            return record
        if _ID_LIKE.search(message):
            record.msg, record.args = redact(message), None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def configure(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL, and those URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    install_redaction()
