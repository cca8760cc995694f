"""Web routes (aiohttp): the Telegram webhook and the health check.

Entry point: `create_web_app(...)`. The webhook checks Telegram's secret-token header in
constant time, writes the raw update to the inbox and only then answers 200; a redelivered
`update_id` is acknowledged without being processed again.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.services.inbox import InboxService
from storage.db import Database

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Submitter(Protocol):
    def submit(self, payload: dict) -> None: ...


@dataclass(frozen=True)
class WebDeps:
    database: Database
    inbox: InboxService
    dispatcher: Submitter
    webhook_path: str | None  # None: polling mode, no webhook route
    webhook_secret: str | None
    mode: str


DEPS = web.AppKey("deps", WebDeps)


async def telegram_webhook(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    given = request.headers.get(SECRET_HEADER, "")
    if not deps.webhook_secret or not hmac.compare_digest(given.encode(), deps.webhook_secret.encode()):
        log.warning("webhook call with a wrong or missing secret token from %s", request.remote)
        return web.Response(status=403, text="forbidden")
    try:
        payload = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return web.Response(status=400, text="body is not JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
        return web.Response(status=400, text="not a Telegram update")
    if await deps.inbox.store(payload):
        deps.dispatcher.submit(payload)
    else:
        log.info("update %s was delivered again; ignored", payload["update_id"])
    return web.Response(status=200)


async def healthz(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    database_ok = await deps.database.ping()
    body: dict[str, object] = {"status": "ok" if database_ok else "unavailable", "database": database_ok, "mode": deps.mode}
    if database_ok:
        backlog = await deps.inbox.backlog()
        body |= {"inbox_pending": backlog.inbox_pending, "outbox_pending": backlog.outbox_pending}
    return web.json_response(body, status=200 if database_ok else 503)


def create_web_app(deps: WebDeps) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[DEPS] = deps
    app.router.add_get("/healthz", healthz)
    if deps.webhook_path:
        app.router.add_post(deps.webhook_path, telegram_webhook)
    return app
