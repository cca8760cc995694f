"""Bot API sandbox: the JSON control API under `/_sandbox/`, a thin layer over `Sandbox`.

Routes (all JSON):
  GET  /_sandbox/calls?method=&since=        recorded Bot API calls
  GET  /_sandbox/violations                  calls that broke the spec
  GET  /_sandbox/chats/{chat_id}/messages    bot messages (?all=1: everyone's)
  POST /_sandbox/users/{user_id}/send        act as a user (see `_ACTIONS`)
  POST /_sandbox/groups                      {chat_id, title, type?}
  POST /_sandbox/faults                      inject_fault(...) keyword arguments
  DELETE /_sandbox/faults                    clear faults
  POST /_sandbox/rate_limits                 RateLimits fields, or null to turn off
  POST /_sandbox/idle                        {timeout?, quiet?} -> wait_idle
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .ratelimit import RateLimits
from .state import SandboxError

if TYPE_CHECKING:
    from .server import Sandbox

_USER_FIELDS = ("first_name", "last_name", "username", "language_code")


def _sandbox(request: web.Request) -> Sandbox:
    from .server import SANDBOX_KEY

    return request.app[SANDBOX_KEY]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def _calls(request: web.Request) -> web.Response:
    sb = _sandbox(request)
    since = int(request.query.get("since", 0))
    method = request.query.get("method")
    calls = sb.calls_of(method) if method else sb.calls[since:]
    start = 0 if method else since
    return web.json_response(
        {"ok": True, "calls": [c.to_json(start + i) for i, c in enumerate(calls)]}
    )


async def _violations(request: web.Request) -> web.Response:
    return web.json_response(
        {"ok": True, "calls": [c.to_json() for c in _sandbox(request).violations]}
    )


async def _messages(request: web.Request) -> web.Response:
    sb = _sandbox(request)
    try:
        chat_id = int(request.match_info["chat_id"])
        messages = sb.chat_messages(
            chat_id, include_user=request.query.get("all") in ("1", "true")
        )
    except (ValueError, SandboxError) as exc:
        return _error(404, str(exc))
    return web.json_response({"ok": True, "messages": messages})


async def _send(request: web.Request) -> web.Response:
    """Act as a user: exactly one action key per request."""
    sb = _sandbox(request)
    body: dict[str, Any] = await request.json()
    user = sb.user(
        int(request.match_info["user_id"]), **{k: body[k] for k in _USER_FIELDS if k in body}
    )
    chat = body.get("chat_id")
    try:
        if "text" in body:
            update = await user.send_text(body["text"], chat=chat)
        elif "command" in body:
            update = await user.send_command(body["command"], body.get("payload"), chat=chat)
        elif "press" in body:
            update = await user.press(body["press"], body.get("message_id"), chat=chat)
        elif "press_data" in body:
            update = await user.press_data(body["message_id"], body["press_data"], chat=chat)
        elif "contact" in body:
            update = await user.share_contact(body["contact"], own=body.get("own", True))
        elif "photo_base64" in body:
            update = await user.send_photo(
                base64.b64decode(body["photo_base64"]),
                body.get("width"),
                body.get("height"),
                body.get("caption"),
                chat=chat,
            )
        elif "document_base64" in body:
            update = await user.send_document(
                base64.b64decode(body["document_base64"]),
                body.get("file_name", "file.bin"),
                body.get("mime_type", "application/octet-stream"),
                body.get("caption"),
                chat=chat,
            )
        elif "sticker" in body:
            update = await user.send_sticker(chat=chat)
        elif "pay" in body:
            update = await user.pay(int(body["pay"]), body.get("total_amount"))
        elif "block" in body:
            update = user.block_bot() if body["block"] else user.unblock_bot()
        else:
            return _error(
                400,
                "no action: use text, command, press, press_data, contact, "
                "photo_base64, document_base64, sticker, pay or block",
            )
    except SandboxError as exc:
        return _error(409, str(exc))
    return web.json_response({"ok": True, "update": update})


async def _group(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        group = _sandbox(request).group(
            int(body["chat_id"]), body["title"], body.get("type", "supergroup")
        )
    except SandboxError as exc:
        return _error(400, str(exc))
    return web.json_response({"ok": True, "chat": group.chat})


async def _add_fault(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        fault = _sandbox(request).inject_fault(**body)
    except (TypeError, ValueError) as exc:
        return _error(400, str(exc))
    return web.json_response({"ok": True, "fault": vars(fault)})


async def _clear_faults(request: web.Request) -> web.Response:
    _sandbox(request).clear_faults()
    return web.json_response({"ok": True})


async def _rate_limits(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        limits = RateLimits(**body) if body is not None else None
    except TypeError as exc:
        return _error(400, str(exc))
    _sandbox(request).set_rate_limits(limits)
    return web.json_response({"ok": True, "rate_limits": limits.to_json() if limits else None})


async def _idle(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    try:
        await _sandbox(request).wait_idle(body.get("timeout", 5.0), body.get("quiet"))
    except TimeoutError as exc:
        return _error(408, str(exc))
    return web.json_response({"ok": True})


def add_control_routes(app: web.Application) -> None:
    """Mount the control API on `app`."""
    app.router.add_get("/_sandbox/calls", _calls)
    app.router.add_get("/_sandbox/violations", _violations)
    app.router.add_get("/_sandbox/chats/{chat_id}/messages", _messages)
    app.router.add_post("/_sandbox/users/{user_id}/send", _send)
    app.router.add_post("/_sandbox/groups", _group)
    app.router.add_post("/_sandbox/faults", _add_fault)
    app.router.add_delete("/_sandbox/faults", _clear_faults)
    app.router.add_post("/_sandbox/rate_limits", _rate_limits)
    app.router.add_post("/_sandbox/idle", _idle)
