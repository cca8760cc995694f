"""Fixtures: the sandbox in-process, a PTB Bot on it over HTTP, an outbox and its senders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from telegram import Bot

from bot.devtools.sandbox import Sandbox
from bot.i18n import I18n, Translator
from bot.runtime.delivery import Limits, OutboxSender, SenderConfig
from bot.runtime.notifications import Rendered, Templates
from bot.services.outbox import OutboxService, OutgoingMessage
from storage.db import Database
from storage.models import utcnow
from storage.uow import UnitOfWork

#: Fast and roomy: tests check behaviour, not pace (that is bench/'s job).
FAST = SenderConfig(
    limits=Limits(per_second=1000, per_private_chat_per_second=100, per_group_per_minute=6000),
    max_in_flight=8,
    backoff_base=0.02,
    backoff_max=0.1,
    poll_interval=0.2,
    max_attempts=3,
    send_timeout=5.0,
)

SenderFactory = Callable[..., Awaitable[OutboxSender]]


def _menu(params: dict[str, Any], tr: Translator) -> Rendered:
    return Rendered(text=tr.gettext("Main menu"))


#: The templates the sender renders: one test template with a translated text.
TEMPLATES = Templates({"test.delivery.menu": _menu})


from tests.sandbox_fixtures import bot, sandbox, token  # noqa: E402 - shared fixtures


@pytest.fixture(scope="session")
def i18n() -> I18n:
    return I18n("zh_Hans")


def outbox_for(database: Database, clock: Callable[[], datetime] = utcnow) -> OutboxService:
    return OutboxService(lambda: UnitOfWork(database.sessions), clock)


@pytest.fixture
def outbox(database: Database) -> OutboxService:
    return outbox_for(database)


@pytest.fixture
async def make_sender(bot: Bot, database: Database, i18n: I18n) -> AsyncIterator[SenderFactory]:
    """Build and start senders (`FAST` with overrides); all are stopped at the end."""
    senders: list[OutboxSender] = []

    async def make(
        clock: Callable[[], datetime] = utcnow, start: bool = True, **overrides: Any
    ) -> OutboxSender:
        sender = OutboxSender(
            bot,
            outbox_for(database, clock),
            i18n,
            TEMPLATES,
            replace(FAST, **overrides),
            clock=clock,
        )
        senders.append(sender)
        if start:
            await sender.start()
        return sender

    yield make
    for sender in senders:
        await sender.stop()


def texts(chat_ids: Iterable[int], prefix: str = "msg", **fields: Any) -> list[OutgoingMessage]:
    """One literal message per chat, keyed `<prefix>:<chat id>`."""
    return [
        OutgoingMessage(f"{prefix}:{chat_id}", chat_id, {"text": f"{prefix} {chat_id}"}, **fields)
        for chat_id in chat_ids
    ]


def sends_per_chat(sandbox: Sandbox, method: str = "sendMessage") -> dict[int, int]:
    """Successful sends per chat id, from the sandbox's recorded calls."""
    counts: dict[int, int] = {}
    for call in sandbox.calls_of(method):
        if call.ok:
            chat_id = int(call.params["chat_id"])
            counts[chat_id] = counts.get(chat_id, 0) + 1
    return counts


def statuses(sandbox: Sandbox, chat_id: int, method: str = "sendMessage") -> list[int]:
    return [c.status for c in sandbox.calls_of(method) if int(c.params["chat_id"]) == chat_id]
