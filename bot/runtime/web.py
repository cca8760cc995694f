"""Web routes (aiohttp): the Telegram webhook, the health check and the admission-ticket check.

Entry point: `create_web_app(...)`. The webhook checks Telegram's secret-token header in
constant time, writes the raw update to the inbox (or sets aside one that cannot be
stored) and only then answers 200; a redelivered `update_id` is acknowledged without
being processed again. The certificate verification page has its own module
(`bot.runtime.verify_web`), registered here when its service is given.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.i18n import I18n
from bot.runtime import verify_web
from bot.services.inbox import InboxService
from bot.services.payments_provider import (
    BadSignature,
    MalformedNotice,
    ProviderAdapter,
    ProviderPaymentService,
)
from bot.services.tickets import TicketService
from bot.services.verification import VerificationService
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
    tickets: TicketService | None = None  # None: no /tickets/verify route
    provider_adapter: ProviderAdapter | None = None  # None: payment notices are refused (503)
    provider_payments: ProviderPaymentService | None = None
    # Both or neither: the public certificate verification page (bot/runtime/verify_web.py)
    verification: VerificationService | None = None
    i18n: I18n | None = None


DEPS = web.AppKey("deps", WebDeps)


async def telegram_webhook(request: web.Request) -> web.Response:
    """`POST <webhook path>`: one update from Telegram, stored before it is acknowledged.

    403 without the right secret token (compared as bytes: a header that is not UTF-8 is
    simply wrong). Past that check the request is Telegram's, so the answer is 200 for
    every update that is stored, delivered again, or cannot be stored at all (not JSON,
    an `update_id` that is no integer or out of range, nesting 1,000 deep, a number of
    thousands of digits, text the database refuses): that one is set aside for staff
    with the reason, because Telegram would otherwise deliver it again for ever while
    the updates behind it wait. 500 only when not even the set-aside copy can be written
    (the database is down): then Telegram's redelivery is what we want.
    """
    deps = request.app[DEPS]
    if not _secret_ok(request.headers.get(SECRET_HEADER, ""), deps.webhook_secret):
        log.warning("webhook call with a wrong or missing secret token from %s", request.remote)
        return web.Response(status=403, text="forbidden")
    body = await request.read()
    try:
        received = await deps.inbox.receive(body)
    except Exception:
        log.exception("update neither stored nor set aside; Telegram will deliver it again")
        return web.Response(status=500, text="not stored")
    if received.payload is not None:
        deps.dispatcher.submit(received.payload)
    elif received.status == "again":
        log.info("an update was delivered again; ignored")
    return web.Response(status=200)


def _secret_ok(given: str, expected: str | None) -> bool:
    """Constant-time check of the secret header. aiohttp hands over a header that is not
    UTF-8 with its bytes as surrogates, which the strict codec cannot encode: they pass
    as they are and compare unequal, as any byte outside the secret's ASCII would."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


async def healthz(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    database_ok = await deps.database.ping()
    body: dict[str, object] = {
        "status": "ok" if database_ok else "unavailable",
        "database": database_ok,
        "mode": deps.mode,
    }
    if database_ok:
        backlog = await deps.inbox.backlog()
        body |= {
            "inbox_pending": backlog.inbox_pending,
            "outbox_pending": backlog.outbox_pending,
            "set_aside": backlog.set_aside,
        }
    return web.json_response(body, status=200 if database_ok else 503)


async def verify_ticket(request: web.Request) -> web.Response:
    """`GET /tickets/verify?ref=…`: is this admission ticket genuine? Public, so no personal
    data in clear: the name is masked (张*三) and nothing else about the person is shown."""
    tickets = request.app[DEPS].tickets
    assert tickets is not None
    check = await tickets.verify(request.query.get("ref", ""))
    if check.reason == "replaced":  # an old ticket: name the one that replaced it
        body = {"valid": False, "reason": "replaced", "replaced_by": check.replaced_by}
        return web.json_response(body, status=404)
    if not check.valid:
        return web.json_response({"valid": False}, status=404)
    return web.json_response(
        {
            "valid": True,
            "ticket_number": check.ticket_number,
            "name_masked": check.name_masked,
            "session": check.session_code,
            "level": check.level_code,
        }
    )


async def payment_notice(request: web.Request) -> web.Response:
    """`POST /payments/notify`: an online provider's payment notice (docs/payments.md).

    401 bad or missing signature, 400 malformed (out of range too: an amount past the
    column, `paid_at` in the future), 409 amount/currency mismatch or unknown reference
    (recorded and flagged to staff) or a transaction id replayed with another amount
    (flagged), 200 accepted or a replay of a recorded one.
    """
    deps = request.app[DEPS]
    if deps.provider_adapter is None or deps.provider_payments is None:
        log.warning(
            "payment notice from %s refused: no provider secret is configured", request.remote
        )
        return web.json_response({"error": "not_configured"}, status=503)
    body = await request.read()
    try:
        notice = deps.provider_adapter.parse(body, request.headers)
    except BadSignature:
        log.warning(
            "payment notice with a bad or missing signature from %s refused", request.remote
        )
        return web.json_response({"error": "bad_signature"}, status=401)
    except MalformedNotice as exc:
        log.warning("malformed payment notice from %s refused: %s", request.remote, exc.reason)
        return web.json_response({"error": "malformed", "field": exc.reason}, status=400)
    try:
        result = await deps.provider_payments.record(notice, method=deps.provider_adapter.name)
    except MalformedNotice as exc:  # well-formed, but not a payment that can have happened
        log.warning("payment notice from %s refused: %s", request.remote, exc.reason)
        return web.json_response({"error": "malformed", "field": exc.reason}, status=400)
    log.info(
        "payment notice %s (payment %s): %s%s",
        notice.transaction_id,
        result.payment_id,
        result.status,
        " (replay, nothing changed)" if result.replay else "",
    )
    return web.json_response(
        {"status": result.status, "replay": result.replay}, status=result.http_status
    )


def create_web_app(deps: WebDeps) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[DEPS] = deps
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/payments/notify", payment_notice)
    if deps.tickets is not None:
        app.router.add_get("/tickets/verify", verify_ticket)
    if deps.verification is not None and deps.i18n is not None:
        verify_web.setup(app, deps.verification, deps.i18n)
    if deps.webhook_path:
        app.router.add_post(deps.webhook_path, telegram_webhook)
    return app
