"""No update can block the others: what cannot be stored is set aside, everyone else is served.

On SQLite and PostgreSQL (JSONB refuses U+0000), in webhook mode (raw bodies posted as
Telegram would, and the probe's unstorable ones) and in polling mode (through the
sandbox). Also the webhook's secret-token check on a header that is not UTF-8.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.runtime.web import WebDeps, create_web_app
from bot.services.inbox import InboxService
from storage.db import Database
from storage.models import SetAsideUpdate
from storage.uow import UnitOfWork
from tests.e2e.conftest import WEBHOOK_SECRET, Harness, exchange
from tests.factories import Clock

HEADERS = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
HELP_REPLY = "I help you take"


def _help(update_id: int, user_id: int, text: str = '"/help"') -> bytes:
    """A raw `/help` update as Telegram posts it; `text` is the JSON literal of its text."""
    update = {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_795_000_000,
            "text": "TEXT",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            "chat": {"id": user_id, "type": "private", "first_name": "P"},
            "from": {"id": user_id, "is_bot": False, "first_name": "P", "language_code": "en"},
        },
    }
    return json.dumps(update).replace('"TEXT"', text).encode()


async def _post(harness: Harness, bodies: list[bytes]) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            url = harness.web_url + "/telegram/webhook"
            async with http.post(url, data=body, headers=HEADERS) as response:
                statuses.append(response.status)
    assert await harness.runtime.dispatcher.drain(15)
    await harness.sandbox.wait_idle(timeout=15)
    return statuses


def _replies(harness: Harness, chat_id: int) -> list[str]:
    return [m.get("text", "")[: len(HELP_REPLY)] for m in harness.sandbox.chat_messages(chat_id)]


async def _set_aside(url: str) -> list[tuple[str, str, int | None]]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.scalars(select(SetAsideUpdate).order_by(SetAsideUpdate.id))
            return [(row.source, row.reason, row.update_id) for row in rows]
    finally:
        await database.dispose()


async def test_webhook_update_with_nul_or_lone_surrogate_is_cleaned_and_answered(
    any_webhook_bot: Harness,
) -> None:
    any_webhook_bot.sandbox.user(611, language_code="en")
    any_webhook_bot.sandbox.user(612, language_code="en")
    statuses = await _post(
        any_webhook_bot,
        [_help(61_001, 611, '"/help\\u0000"'), _help(61_002, 612, '"/help\\ud800"')],
    )
    assert (statuses, _replies(any_webhook_bot, 611), _replies(any_webhook_bot, 612)) == (
        [200, 200],
        [HELP_REPLY],
        [HELP_REPLY],
    )


async def test_webhook_sets_aside_each_unstorable_update_and_answers_the_next(
    any_webhook_bot: Harness,
) -> None:
    any_webhook_bot.sandbox.user(613, language_code="en")
    probes = [
        b'{"update_id": true, "message": {}}',
        b'{"update_id": 9223372036854775808, "message": {}}',
        b'{"update_id": -1, "message": {}}',
        b'{"update_id": 61010, "message": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"update_id": 61011, "message": {"date": ' + b"9" * 5000 + b"}}",
        b"this is not JSON",
    ]
    statuses = await _post(any_webhook_bot, [*probes, _help(61_012, 613)])
    assert (statuses, _replies(any_webhook_bot, 613)) == ([200] * 7, [HELP_REPLY])
    assert await _set_aside(any_webhook_bot.database_url) == [
        ("webhook", "update_id_not_an_integer", None),
        ("webhook", "update_id_out_of_range", None),
        ("webhook", "update_id_out_of_range", None),
        ("webhook", "too_deep", 61010),
        ("webhook", "number_too_long", 61011),
        ("webhook", "not_json", None),
    ]


async def test_polling_update_with_nul_is_answered_and_the_next_user_too(
    any_bot: Harness,
) -> None:
    first = any_bot.sandbox.user(614, language_code="en")
    second = any_bot.sandbox.user(615, language_code="en")
    with_nul = await exchange(any_bot, first, first.send_text("/help\x00"))
    after = await exchange(any_bot, second, second.send_command("/help"))
    assert [m["text"][: len(HELP_REPLY)] for m in with_nul + after] == [HELP_REPLY, HELP_REPLY]


async def test_webhook_secret_header_that_is_not_utf8_is_refused(webhook_bot: Harness) -> None:
    body = _help(61_020, 616)
    reader, writer = await asyncio.open_connection("127.0.0.1", webhook_bot.port)
    writer.write(
        b"POST /telegram/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"X-Telegram-Bot-Api-Secret-Token: hook-secret\xff\xfe_123\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    status_line = (await reader.read()).split(b"\r\n", 1)[0]
    writer.close()
    assert status_line == b"HTTP/1.1 403 Forbidden"


async def test_webhook_answers_500_when_not_even_the_set_aside_copy_can_be_written() -> None:
    down = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")  # nothing listens
    submitted: list[dict] = []

    class Dispatcher:
        def submit(self, payload: dict) -> None:
            submitted.append(payload)

    deps = WebDeps(
        database=down,
        inbox=InboxService(lambda: UnitOfWork(down.sessions), Clock()),
        dispatcher=Dispatcher(),
        webhook_path="/telegram/webhook",
        webhook_secret=WEBHOOK_SECRET,
        mode="webhook",
    )
    async with TestClient(TestServer(create_web_app(deps))) as client:
        statuses = [
            (await client.post("/telegram/webhook", data=body, headers=HEADERS)).status
            for body in (_help(61_030, 617), b'{"update_id": -1}')
        ]
    await down.dispose()
    assert (statuses, submitted) == ([500, 500], [])
