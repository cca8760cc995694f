"""The `examdesk` command.

examdesk run                      run the bot (polling, or webhook when EXAMDESK_WEBHOOK_URL
                                  is set); without a token it opens `examdesk chat`
examdesk chat [--staff]           try the bot in the terminal against the local sandbox
examdesk db upgrade|downgrade REV|current
examdesk catalog load FILE        validate and load the exam catalogue
examdesk eligibility check FILE   bulk eligibility check of a CSV file
examdesk results import FILE --session CODE [--yes]
                                  preview a session's results file (CSV/XLSX), then save it
examdesk certificates import FILE [--yes] | assign --session CODE --issued DATE [--yes]
                                  | revoke NUMBER --reason TEXT   (docs/certificates.md)
examdesk i18n update|check        extract messages into the catalogues / list untranslated ones
examdesk i18n apply FILE.json     add Chinese translations (msgid -> text) and merge
examdesk sandbox [--listen H:P]   run the Bot API sandbox on its own
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from bot import logs
from bot.config import Settings, SettingsError, load_settings

log = logging.getLogger("examdesk")


async def _run(settings: Settings) -> None:
    from bot.app import Runtime

    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.run_until(stop)


async def _db(settings: Settings, action: str, revision: str | None) -> None:
    from storage import migrate
    from storage.db import Database

    database = Database(settings.database_url)
    try:
        if action == "upgrade":
            await migrate.upgrade(database.engine, revision or "head")
        elif action == "downgrade":
            await migrate.downgrade(database.engine, revision or "-1")
        print(f"database at revision {await migrate.current(database.engine)}")
    finally:
        await database.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="examdesk", description="examdesk exam-centre bot")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot")
    chat = sub.add_parser("chat", help="try the bot in the terminal (local sandbox)")
    chat.add_argument("--staff", action="store_true", help="start as the staff identity")
    chat.add_argument(
        "--script", action="store_true", help="read actions from stdin, print transcript"
    )
    db = sub.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?")
    catalog = sub.add_parser("catalog", help="exam catalogue")
    catalog.add_argument("action", choices=["load", "check"])
    catalog.add_argument("file")
    eligibility = sub.add_parser("eligibility", help="eligibility checks")
    eligibility.add_argument("action", choices=["check"])
    eligibility.add_argument("file")
    eligibility.add_argument("-o", "--output", help="write the CSV here instead of stdout")
    results = sub.add_parser("results", help="exam results")
    results.add_argument("action", choices=["import"])
    results.add_argument("file", help="CSV or XLSX results file (docs/results.md)")
    results.add_argument("--session", required=True, help="exam session code, e.g. 2027-01")
    results.add_argument("--yes", action="store_true", help="save without asking")
    results.add_argument("--lang", choices=["zh_Hans", "en"], help="language of the report")
    certificates = sub.add_parser("certificates", help="certificates (docs/certificates.md)")
    actions = certificates.add_subparsers(dest="action", required=True)
    imported = actions.add_parser("import", help="record numbers from a CSV or XLSX file")
    imported.add_argument("file", help="reference or ticket, certificate number, issue date")
    assign = actions.add_parser("assign", help="number a session's passes by the catalogue")
    assign.add_argument("--session", required=True, help="exam session code, e.g. 2027-01")
    assign.add_argument("--issued", required=True, help="issue date, YYYY-MM-DD")
    for parser_ in (imported, assign):
        parser_.add_argument("--yes", action="store_true", help="record; without: preview")
    revoke = actions.add_parser("revoke", help="revoke a certificate (the holder is told)")
    revoke.add_argument("number")
    revoke.add_argument("--reason", required=True, help="told to the holder, never public")
    for parser_ in (imported, assign, revoke):
        parser_.add_argument("--lang", choices=["zh_Hans", "en"], help="language of the report")
    i18n = sub.add_parser("i18n", help="translation catalogues (developers)")
    i18n.add_argument("action", choices=["update", "check", "apply"])
    i18n.add_argument("file", nargs="?", help="with apply: JSON of msgid -> Chinese translation")
    sandbox = sub.add_parser("sandbox", help="run the Bot API sandbox")
    sandbox.add_argument("--listen", default="127.0.0.1:8081")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.verbose)
    try:
        return _dispatch(args)
    except SettingsError as exc:
        print(f"examdesk: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from bot import cli

    if args.command == "sandbox":
        return cli.run_sandbox(args.listen)
    if args.command == "i18n":
        return cli.i18n(args.action, args.file)
    if args.command == "chat":
        return cli.run_chat(load_settings(), staff=args.staff, script=args.script)
    settings = load_settings()
    if args.command == "run":
        if settings.bot_token is None:
            print(
                "examdesk: no EXAMDESK_BOT_TOKEN set: opening the local sandbox (examdesk chat)."
            )
            return cli.run_chat(settings, staff=False, script=False)
        asyncio.run(_run(settings))
        return 0
    if args.command == "db":
        asyncio.run(_db(settings, args.action, args.revision))
        return 0
    if args.command == "catalog":
        return cli.catalog(settings, args.action, args.file)
    if args.command == "eligibility":
        return cli.eligibility_check(settings, args.file, args.output)
    if args.command == "results":
        return cli.results_import(
            settings, args.file, args.session, yes=args.yes, language=args.lang
        )
    if args.command == "certificates":
        return cli.certificates(
            settings,
            args.action,
            path=getattr(args, "file", None),
            session_code=getattr(args, "session", None),
            issued=getattr(args, "issued", None),
            number=getattr(args, "number", None),
            reason=getattr(args, "reason", None),
            yes=getattr(args, "yes", False),
            language=args.lang,
        )
    return 2


if __name__ == "__main__":
    sys.exit(main())
