"""A sender in its own process, for the crash and two-worker tests (and by hand).

    python tests/delivery/sender_process.py --db URL --api http://127.0.0.1:PORT --token T \
        [--rate 150] [--max-in-flight 8] [--batch 0] [--lease 2] [--release-leases] \
        [--until-drained]

Without --until-drained it runs until killed. Prints its counters as JSON when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from telegram import Bot

from bot.i18n import I18n
from bot.runtime.delivery import Limits, OutboxSender, SenderConfig
from bot.runtime.notifications import Templates
from bot.services.outbox import OutboxService
from storage.db import Database
from storage.models import utcnow
from storage.uow import UnitOfWork


async def main(args: argparse.Namespace) -> None:
    database = Database(args.db)
    config = SenderConfig(
        limits=Limits(
            per_second=args.rate, per_private_chat_per_second=100, per_group_per_minute=6000
        ),
        max_in_flight=args.max_in_flight,
        batch_size=args.batch,
        lease=timedelta(seconds=args.lease),
        poll_interval=0.2,
        backoff_base=0.05,
        release_leases_on_start=args.release_leases,
    )
    async with Bot(args.token, base_url=f"{args.api}/bot") as bot:
        sender = OutboxSender(
            bot,
            OutboxService(lambda: UnitOfWork(database.sessions), utcnow),
            I18n("zh_Hans"),
            Templates({}),
            config,
        )
        await sender.start()
        try:
            if args.until_drained:
                await sender.wait_drained()
            else:
                await asyncio.Event().wait()
        finally:
            await sender.stop()
            await database.dispose()
    print(json.dumps(asdict(sender.counters)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--rate", type=float, default=150)
    parser.add_argument("--max-in-flight", type=int, default=8)
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--release-leases", action="store_true")
    parser.add_argument("--until-drained", action="store_true")
    asyncio.run(main(parser.parse_args()))
