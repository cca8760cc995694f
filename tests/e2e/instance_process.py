"""One examdesk instance in its own process, in webhook mode, for the crash-recovery test.

    python tests/e2e/instance_process.py --db URL --api http://127.0.0.1:PORT --token T \
        --port P --secret-key K --webhook-secret S [--hang-on help]

Prints `owner <id>` once started (the instance's owner id on the inbox rows) and runs until
SIGTERM or SIGKILL. `--hang-on help` adds a handler that never returns for /help: the
update is stored and taken, and stays unfinished until the process is killed. The hook
lives only here, never in the running bot.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from telegram.ext import CommandHandler

from bot import logs
from bot.app import Runtime
from bot.config import Settings


async def _hang(update, context) -> None:  # type: ignore[no-untyped-def]
    print(f"hanging on update {update.update_id}", flush=True)
    await asyncio.Event().wait()


async def main(args: argparse.Namespace) -> None:
    logs.configure()
    settings = Settings(
        bot_token=args.token,
        bot_api_url=args.api,
        database_url=args.db,
        listen=f"127.0.0.1:{args.port}",
        secret_key=args.secret_key,
        webhook_url=f"http://127.0.0.1:{args.port}/telegram/webhook",
        webhook_secret=args.webhook_secret,
        default_language="en",
        _env_file=None,  # type: ignore[call-arg]
    )
    runtime = Runtime(settings)
    if args.hang_on:
        runtime.application.add_handler(CommandHandler(args.hang_on, _hang), group=-3)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await runtime.start()
    print(f"owner {runtime.services.instance.owner}", flush=True)
    try:
        await stop.wait()
    finally:
        await runtime.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for option in ("--db", "--api", "--token", "--secret-key", "--webhook-secret"):
        parser.add_argument(option, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hang-on")
    asyncio.run(main(parser.parse_args()))
