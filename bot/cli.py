"""Implementations of the `examdesk` sub-commands other than `run` and `db`."""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from pathlib import Path

from bot.config import Settings
from bot.domain.catalog import CatalogError, load_catalog


def run_sandbox(listen: str) -> int:
    """`sandbox --listen HOST:PORT`: the Bot API sandbox alone, until Ctrl-C / SIGTERM."""
    from bot.devtools.chat import serve_sandbox

    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        print(
            f"examdesk: --listen must be HOST:PORT, e.g. 127.0.0.1:8081 (got {listen!r})",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(serve_sandbox(host.strip("[]"), int(port)))
    except OSError as exc:
        print(f"examdesk: cannot listen on {listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def run_chat(settings: Settings, *, staff: bool, script: bool) -> int:
    """`chat`: the bot against the in-process sandbox, in the terminal (see docs/chat.md).

    Without a terminal on stdin (a pipe, a file) it runs as `--script`, so `examdesk run`
    without a token works the same way in scripts.
    """
    import logging

    from bot.devtools.chat import run_chat as chat

    script = script or not sys.stdin.isatty()
    root = logging.getLogger()
    if root.level > logging.DEBUG:  # keep INFO lines out of the conversation unless -v
        root.setLevel(logging.WARNING)
    try:
        return asyncio.run(chat(settings, staff=staff, script=script))
    except OSError as exc:
        print(f"examdesk chat: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        logging.getLogger("examdesk").debug("chat failed", exc_info=True)
        print(f"examdesk chat: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1


def catalog(settings: Settings, action: str, path: str) -> int:
    """`catalog check FILE` validates; `catalog load FILE` validates and loads."""
    try:
        document = load_catalog(Path(path))
    except CatalogError as exc:
        print(f"examdesk: {path} was not loaded:\n{exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"examdesk: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    if action == "check":
        print(f"{path}: catalogue {document.version} is valid ({len(document.sessions)} sessions)")
        return 0
    return asyncio.run(_load_catalog(settings, document, path))


async def _load_catalog(settings: Settings, document, path: str) -> int:  # type: ignore[no-untyped-def]
    from bot.services import build_services
    from storage.db import Database

    database = Database(settings.database_url)
    try:
        result = await build_services(database).catalog.load(document, actor="cli")
    except CatalogError as exc:
        print(
            f"examdesk: {path} was not loaded (the database is unchanged):\n{exc}", file=sys.stderr
        )
        return 1
    finally:
        await database.dispose()
    if not result.changed:
        print(f"catalogue {result.version} is already loaded; nothing changed")
    else:
        print(
            f"loaded catalogue {result.version}: sessions added {result.sessions_added or '-'}, "
            f"updated {result.sessions_updated or '-'}, kept {result.sessions_kept or '-'}"
        )
    return 0


def eligibility_check(settings: Settings, path: str, output: str | None) -> int:
    """Bulk check a CSV of candidates against the catalogue file (see docs/eligibility-csv.md)."""
    from bot.domain.eligibility_csv import CsvFormatError, check_csv

    try:
        document = load_catalog(settings.catalog)
    except CatalogError as exc:
        print(f"examdesk: the catalogue {settings.catalog} is invalid:\n{exc}", file=sys.stderr)
        return 1
    try:
        with open(path, encoding="utf-8-sig", newline="") as source:
            out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
            try:
                report = check_csv(document, source, out, today=date.today())
            finally:
                if output:
                    out.close()
    except OSError as exc:
        print(f"examdesk: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    except CsvFormatError as exc:
        print(f"examdesk: {path}: {exc}", file=sys.stderr)
        return 1
    for error in report.errors:
        print(f"{path}:{error.line}: {error.message}", file=sys.stderr)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts().items())
    print(f"checked {len(report.rows)} rows: {counts}", file=sys.stderr)
    return 0


def i18n(action: str, path: str | None = None) -> int:
    """`i18n update` extracts and merges; `i18n apply FILE.json` adds Chinese translations
    (msgid → text, or a list for plural forms) and merges; `i18n check` lists what is left."""
    import json

    from bot.devtools.i18n_tools import extract, load_po, translate, untranslated, update

    if action == "apply":
        if not path:
            print(
                "examdesk: i18n apply needs a JSON file of {msgid: translation}", file=sys.stderr
            )
            return 2
        update()
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
        done = translate(
            "zh_Hans", {k: tuple(v) if isinstance(v, list) else v for k, v in entries.items()}
        )
        print(f"applied {done} of {len(entries)} translations")
        report = update()
    elif action == "update":
        report = update()
    else:
        template = extract()
        report = {lang: untranslated(template, load_po(lang)) for lang in ("zh_Hans", "en")}
    for language, missing in report.items():
        print(f"{language}: {len(missing)} untranslated")
        for msgid in missing:
            print(f"  {msgid!r}")
    return 1 if action == "check" and any(report.values()) else 0
