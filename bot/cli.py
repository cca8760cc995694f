"""Implementations of the `examdesk` sub-commands other than `run` and `db`."""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.domain.catalog import CatalogError, load_catalog
from bot.i18n import I18n, Translator

if TYPE_CHECKING:
    from bot.services.results import ImportPreview


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


# --- results import (docs/results.md) ---------------------------------------------------


def results_import(
    settings: Settings, path: str, session_code: str, *, yes: bool, language: str | None
) -> int:
    """`results import FILE --session CODE`: preview a results file, then save it when
    confirmed (`--yes`, or a yes at the prompt). Without a terminal and without `--yes`
    it only previews."""
    language = language or settings.default_language
    tr = I18n(language, zone=settings.timezone).translator(language)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        message = tr.gettext("Cannot read {path}: {error}", path=path, error=exc.strerror)
        print(f"examdesk: {message}", file=sys.stderr)
        return 1
    preview = asyncio.run(_results_preview(settings, tr, session_code, Path(path).name, data))
    if preview is None:
        return 1
    if preview.accepted == 0:
        asyncio.run(_results_decide(settings, tr, preview.import_id, confirm=False))
        print(tr.gettext("Nothing to save: every row was refused."))
        return 1
    if not yes and not sys.stdin.isatty():
        asyncio.run(_results_decide(settings, tr, preview.import_id, confirm=False))
        print(tr.gettext("Preview only: nothing was saved. Run again with --yes to save."))
        return 0
    if not yes:
        answer = input(tr.gettext("Save these results? [y/N] ")).strip().lower()
        if answer not in ("y", "yes", "是"):
            asyncio.run(_results_decide(settings, tr, preview.import_id, confirm=False))
            print(tr.gettext("Nothing was saved."))
            return 0
    return asyncio.run(_results_decide(settings, tr, preview.import_id, confirm=True))


async def _results_preview(
    settings: Settings, tr: Translator, session_code: str, file_name: str, data: bytes
) -> ImportPreview | None:
    from bot.services import build_services
    from bot.services.errors import ServiceError
    from handlers import results_staff as words
    from storage.db import Database

    database = Database(settings.database_url)
    try:
        services = build_services(database, secret_key=settings.secret_key.get_secret_value())
        preview = await services.results.preview(session_code, file_name, data, staff_id=None)
        catalog = await services.catalog.current()
    except ServiceError as exc:
        print(f"examdesk: {_results_problem(tr, exc, session_code)}", file=sys.stderr)
        return None
    finally:
        await database.dispose()
    names = {c.code: c.name.get(tr.language) for c in catalog.components}
    print(
        tr.ngettext(
            "{file}: {count} row for session {session}",
            "{file}: {count} rows for session {session}",
            preview.rows,
            file=file_name,
            session=session_code,
        )
    )
    print(
        tr.gettext(
            "Passed {passed}, failed {failed}, absent {absent}, refused {refused}.",
            passed=preview.passed,
            failed=preview.failed,
            absent=preview.absent,
            refused=len(preview.refused),
        )
    )
    if preview.replaced or preview.removed:
        print(
            tr.gettext(
                "Earlier unreleased results: {replaced} replaced, {removed} removed.",
                replaced=preview.replaced,
                removed=preview.removed,
            )
        )
    for row in preview.refused:
        print(
            tr.gettext(
                "line {line}: {reason}", line=row.line, reason=words.refusal(tr, row, names)
            )
        )
    if preview.warnings:  # the same texts as handlers/results_staff.py's preview
        print(
            tr.ngettext(
                "⚠️ {count} row disagrees with the check-in at the door (saved all the same):",
                "⚠️ {count} rows disagree with the check-in at the door (saved all the same):",
                len(preview.warnings),
            )
        )
    for warning in preview.warnings:
        print(
            tr.gettext(
                "line {line}: {reason}",
                line=warning.line,
                reason=words.warning(tr, warning, names),
            )
        )
    return preview


async def _results_decide(
    settings: Settings, tr: Translator, import_id: int, *, confirm: bool
) -> int:
    from bot.services import build_services
    from bot.services.errors import ServiceError
    from handlers import results_staff as words
    from storage.db import Database

    database = Database(settings.database_url)
    try:
        services = build_services(database, secret_key=settings.secret_key.get_secret_value())
        if not confirm:
            await services.results.cancel(import_id, staff_id=None)
            return 0
        saved = await services.results.confirm(import_id, staff_id=None)
    except ServiceError as exc:
        print(f"examdesk: {_results_problem(tr, exc, None)}", file=sys.stderr)
        return 1
    finally:
        await database.dispose()
    print(words.saved_text(tr, saved))
    return 0


def _results_problem(tr: Translator, exc: Exception, session_code: str | None) -> str:
    """The same texts as the staff chat's (`handlers.results_staff.EXPLAIN`), but for an
    unknown session, which the CLI names."""
    from bot.services.errors import NotFound
    from handlers import results_staff as words

    if isinstance(exc, NotFound):
        return tr.gettext("There is no exam session {session}.", session=session_code)
    for kind, explain in words.EXPLAIN.items():
        if isinstance(exc, kind):
            return explain(tr, exc)
    raise exc


# --- certificates (docs/certificates.md) -------------------------------------------------


def certificates(
    settings: Settings,
    action: str,
    *,
    path: str | None = None,
    session_code: str | None = None,
    issued: str | None = None,
    number: str | None = None,
    reason: str | None = None,
    yes: bool = False,
    language: str | None = None,
) -> int:
    """`certificates import FILE` / `assign --session CODE --issued DATE`: the preview, and
    with `--yes` the certificates recorded (each holder told once); `revoke NUMBER --reason`.
    The report uses the chat's wording (`handlers.certificates`)."""
    language = language or settings.default_language
    tr = I18n(language, zone=settings.timezone).translator(language)
    data = b""
    if action == "import":
        assert path is not None
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            message = tr.gettext("Cannot read {path}: {error}", path=path, error=exc.strerror)
            print(f"examdesk: {message}", file=sys.stderr)
            return 1
    day = None
    if action == "assign":
        try:
            day = date.fromisoformat(issued or "")
        except ValueError:
            message = tr.gettext("The issue date must be YYYY-MM-DD.")
            print(f"examdesk: {message}", file=sys.stderr)
            return 1
    return asyncio.run(
        _certificates(
            settings,
            tr,
            action,
            name=Path(path).name if path else "",
            data=data,
            session_code=session_code or "",
            day=day,
            number=number or "",
            reason=reason or "",
            yes=yes,
        )
    )


async def _certificates(
    settings: Settings,
    tr: Translator,
    action: str,
    *,
    name: str,
    data: bytes,
    session_code: str,
    day: date | None,
    number: str,
    reason: str,
    yes: bool,
) -> int:
    from bot.services import build_services
    from bot.services.certificates import AlreadyRevoked
    from bot.services.errors import NotFound, ResultsFileInvalid, ServiceError
    from handlers import certificates as words
    from storage.db import Database

    username = await _bot_username(settings)
    database = Database(settings.database_url)
    try:
        services = build_services(
            database,
            secret_key=settings.secret_key.get_secret_value(),
            public_url=settings.public_url,
            bot_username=lambda: username,
        ).certificates
        if action == "revoke":
            revoked = await services.revoke(number, reason, staff_id=None)
            print(
                tr.gettext(
                    "Certificate {number} revoked; the holder is told.", number=revoked.number
                )
            )
            return 0
        if action == "import":
            preview = await services.preview_import(name, data, staff_id=None)
        else:
            assert day is not None
            preview = await services.preview_assign(session_code, day, staff_id=None)
        print(words.preview_text(tr, preview))
        if not yes or preview.new == 0:
            await services.cancel(preview.batch_id, staff_id=None)
            if preview.new == 0:
                print(tr.gettext("Nothing to record."))
            else:
                print(tr.gettext("Preview only: nothing was saved. Run again with --yes to save."))
            return 0
        confirmed = await services.confirm(preview.batch_id, staff_id=None)
        print(words.confirmed_text(tr, confirmed))
        return 0
    except ServiceError as exc:
        if isinstance(exc, ResultsFileInvalid):
            problem = words.file_problem(tr, exc)
        elif isinstance(exc, AlreadyRevoked):
            problem = words.revoked_twice(tr, exc)
        elif isinstance(exc, NotFound) and action == "revoke":
            problem = tr.gettext("No certificate has the number {number}.", number=number)
        else:
            problem = next(
                (w(tr, exc) for kind, w in words.EXPLAIN.items() if isinstance(exc, kind)), None
            )
            if problem is None:
                raise
        print(f"examdesk: {problem}", file=sys.stderr)
        return 1
    finally:
        await database.dispose()


async def _bot_username(settings: Settings) -> str | None:
    """The bot's username for the `verify_<code>` deep link in notices; not needed when the
    public verification page is set, None when Telegram cannot be asked."""
    if settings.public_url or settings.bot_token is None:
        return None
    from telegram import Bot
    from telegram.error import TelegramError

    try:
        async with Bot(
            settings.bot_token.get_secret_value(), base_url=f"{settings.bot_api_url}/bot"
        ) as bot:
            return bot.username
    except TelegramError:
        return None
