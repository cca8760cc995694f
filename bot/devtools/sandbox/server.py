"""Bot API sandbox: the `Sandbox` (all state, in memory) and its aiohttp server.

Entry points: `Sandbox` (add_bot, user, group, start/stop, inject_fault, wait_idle,
wait_for_message, ...) and `create_app(sandbox)` for embedding the routes
`/bot{token}/{method}`, `/file/bot{token}/{file_path}` and the `/_sandbox/` control API
in another aiohttp application. The Bot API methods live in `methods.py`, the simulated
users in `users.py`, the control API in `control.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
import time
from collections import defaultdict
from typing import Any

import aiohttp
from aiohttp import web

from . import methods as api_methods
from .media import new_file_id, photo_sizes
from .ratelimit import RateLimiter, RateLimits
from .spec import Spec, UploadedFile, Violation, load_spec
from .state import (
    BLOCKED,
    DEFAULT_ALLOWED,
    FAULT_KINDS,
    ApiError,
    BotState,
    ChatState,
    Fault,
    Pulse,
    RecordedCall,
    SandboxError,
    StoredFile,
    bad_request,
    too_many_requests,
)
from .users import SandboxChat, SandboxUser

log = logging.getLogger(__name__)

SANDBOX_KEY = web.AppKey("sandbox", "Sandbox")
MAX_UPLOAD = 50 * 1024 * 1024  # Telegram's upload limit for bots


def _is_send(method: str) -> bool:
    """Calls that post a message and so count against the flood limits."""
    m = method.lower()
    return (m.startswith("send") and m != "sendchataction") or m in (
        "copymessage",
        "copymessages",
        "forwardmessage",
        "forwardmessages",
    )


class Sandbox:
    """An in-memory Telegram Bot API server for tests and the `examdesk chat` front end."""

    def __init__(
        self,
        *,
        rate_limits: RateLimits | None = None,
        spec: Spec | None = None,
        quiet: float = 0.1,
        webhook_retry: tuple[float, float] = (0.05, 2.0),
        webhook_timeout: float = 10.0,
    ) -> None:
        self.spec = spec or load_spec()
        self.bots: dict[str, BotState] = {}
        self.users: dict[int, SandboxUser] = {}
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.photo_sets: dict[str, list[dict[str, Any]]] = {}  # any size's file_id -> sizes
        self.invoices: dict[tuple[int, int], dict[str, Any]] = {}
        # Stars charges paid through `SandboxUser.pay`, by charge id: who paid, to which bot,
        # how much, and whether `refundStarPayment` gave them back.
        self.star_charges: dict[str, dict[str, Any]] = {}
        self.calls: list[RecordedCall] = []
        self.violations: list[RecordedCall] = []
        self.faults: list[Fault] = []
        self.quiet = quiet
        self.webhook_retry = webhook_retry
        self.webhook_timeout = webhook_timeout
        self._calls_by_method: dict[str, list[RecordedCall]] = defaultdict(list)
        self._limiter = RateLimiter(rate_limits) if rate_limits else None
        self._pulse = Pulse()  # fired on every call, update, ack and bot message
        self._seq = 0  # sandbox-wide event counter (user actions, bot sends/edits)
        self._update_seqs: dict[tuple[str, int], int] = {}
        self._inflight = 0
        self._last_activity = time.monotonic()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._file_counter = 0
        self.host: str | None = None
        self.port: int | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Serve the Bot API over HTTP on host:port (0 = an ephemeral port)."""
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(create_app(self), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host, self.port = self._runner.addresses[0][:2]
        return self

    async def stop(self) -> None:
        """Release waiting requests, stop webhook delivery and the server."""
        await self.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def shutdown(self) -> None:
        """Release long polls and held requests; stop webhook delivery (idempotent)."""
        self._closing.set()
        for bot in self.bots.values():
            bot.update_pulse.fire()
            for fut in bot.pre_checkouts.values():
                fut.cancel()
            if bot.webhook is not None and bot.webhook.task is not None:
                bot.webhook.task.cancel()
                await asyncio.gather(bot.webhook.task, return_exceptions=True)
                bot.webhook.task = None
        self._pulse.fire()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    @property
    def url(self) -> str:
        """Root URL of the running server."""
        if self.port is None:
            raise SandboxError("sandbox is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Value for PTB's `base_url` (the token is appended by PTB)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for PTB's `base_file_url`."""
        return f"{self.url}/file/bot"

    # --- bots, users, chats -------------------------------------------------------------

    def add_bot(
        self,
        token: str | None = None,
        username: str = "examdesk_bot",
        first_name: str | None = None,
    ) -> str:
        """Register a bot and return its token (generated like
        `123456:AA...`, 35 chars after ':')."""
        if token is None:
            bot_id = 1_000_000_000 + secrets.randbelow(8_999_999_999)
            token = f"{bot_id}:AA{secrets.token_urlsafe(33)[:33]}"
        bot_id = (
            int(token.split(":", 1)[0])
            if token.split(":", 1)[0].isdigit()
            else 1_000_000_000 + len(self.bots)
        )
        user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name
            or username.removesuffix("_bot").removesuffix("bot").title()
            or "Bot",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.bots[token] = BotState(token=token, user=user)
        return token

    def bot(self, token: str | None = None) -> BotState:
        """The bot with `token`, or the first one added."""
        if token is not None:
            return self.bots[token]
        if not self.bots:
            raise SandboxError("no bot: call sandbox.add_bot() first")
        return next(iter(self.bots.values()))

    @property
    def token(self) -> str:
        """Token of the first bot added."""
        return self.bot().token

    def user(
        self,
        user_id: int,
        first_name: str = "Li",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        *,
        bot: str | None = None,
    ) -> SandboxUser:
        """The simulated user `user_id` (created with a private chat on first use)."""
        existing = self.users.get(user_id)
        if existing is not None:
            return existing
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat: dict[str, Any] = {"id": user_id, "type": "private", "first_name": first_name}
        if last_name:
            user["last_name"] = chat["last_name"] = last_name
        if username:
            user["username"] = chat["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.chats[user_id] = ChatState(chat=chat)
        self.users[user_id] = SandboxUser(self, user, bot)
        return self.users[user_id]

    def group(
        self, chat_id: int, title: str, type: str = "supergroup", username: str | None = None
    ) -> SandboxChat:
        """A group or supergroup chat (negative id), created on first use."""
        if chat_id >= 0:
            raise SandboxError("group chat ids are negative (supergroups: -100...)")
        if chat_id not in self.chats:
            chat: dict[str, Any] = {"id": chat_id, "type": type, "title": title}
            if username:
                chat["username"] = username
            self.chats[chat_id] = ChatState(chat=chat)
        return SandboxChat(self, self.chats[chat_id])

    def chat_state(self, chat_id: int) -> ChatState:
        """Internal state of chat `chat_id` (SandboxError when unknown)."""
        try:
            return self.chats[int(chat_id)]
        except (KeyError, ValueError):
            raise SandboxError(f"no chat {chat_id}") from None

    def resolve_chat(self, chat_id: int | str) -> ChatState:
        """The chat a Bot API `chat_id` names (id or @username), else 400 chat not found."""
        if isinstance(chat_id, int):
            chat = self.chats.get(chat_id)
        else:
            name = chat_id.lstrip("@").lower()
            chat = next(
                (
                    c
                    for c in self.chats.values()
                    if c.chat.get("username", "").lower() == name and c.chat["type"] != "private"
                ),
                None,
            )
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def target_chat(self, chat_id: int | str) -> ChatState:
        """A chat the bot may post to (403 when its user blocked the bot)."""
        chat = self.resolve_chat(chat_id)
        if chat.blocked:
            raise BLOCKED
        return chat

    # --- messages ------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def mark(self) -> int:
        """The current event counter; pass as `after=` to wait for later bot messages."""
        return self._seq

    def store_bot_message(
        self, bot: BotState, chat: ChatState, content: dict[str, Any]
    ) -> dict[str, Any]:
        """Create a message from the bot in `chat`; return it as the API returns it."""
        mid = chat.take_message_id()
        msg = {
            "message_id": mid,
            "from": bot.user,
            "chat": chat.chat,
            "date": api_methods.now(),
            **content,
        }
        chat.messages[mid] = msg
        chat.bot_message_ids[mid] = None
        chat.add_bot_event(self._next_seq(), mid)
        self.activity()
        return msg

    def store_user_message(
        self, chat: ChatState, user: dict[str, Any], content: dict[str, Any]
    ) -> dict[str, Any]:
        """Create a message from a user in `chat`."""
        mid = chat.take_message_id()
        msg = {
            "message_id": mid,
            "from": user,
            "chat": chat.chat,
            "date": api_methods.now(),
            **content,
        }
        chat.messages[mid] = msg
        return msg

    def edit_bot_message(
        self, chat: ChatState, msg: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply an edit (None values remove keys); 400 when nothing changes."""
        if all(msg.get(k) == v for k, v in new.items()):
            raise bad_request(api_methods.NOT_MODIFIED)
        edited = {k: v for k, v in msg.items() if k not in new}
        edited.update({k: v for k, v in new.items() if v is not None})
        edited["edit_date"] = api_methods.now()
        mid = msg["message_id"]
        chat.messages[mid] = edited
        chat.add_bot_event(self._next_seq(), mid)
        self.activity()
        return edited

    def delete_message(self, chat: ChatState, message_id: int) -> bool:
        """Remove a message; False when it does not exist."""
        if chat.messages.pop(message_id, None) is None:
            return False
        chat.bot_message_ids.pop(message_id, None)
        self.invoices.pop((chat.id, message_id), None)
        self.activity()
        return True

    def chat_messages(self, chat_id: int, include_user: bool = False) -> list[dict[str, Any]]:
        """Current bot messages in a chat (with `include_user`, everyone's), oldest first."""
        chat = self.chat_state(chat_id)
        if include_user:
            return list(chat.messages.values())
        return chat.bot_messages()

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """One message as it is now, or None."""
        return self.chat_state(chat_id).messages.get(message_id)

    def invoice(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """What sendInvoice stored for a message: title, description, payload,
        currency, prices, provider_token."""
        return self.invoices.get((chat_id, message_id))

    def _baseline(self, chat: ChatState, after: int | dict[str, Any] | None, default: int) -> int:
        if after is None:
            return default
        if isinstance(after, dict):
            uid = after.get("update_id")
            for token in self.bots:
                seq = self._update_seqs.get((token, uid))
                if seq is not None:
                    return seq
            raise SandboxError(
                "after= must be an update returned by a user action or sandbox.mark()"
            )
        return int(after)

    async def wait_for_message(
        self,
        chat_id: int,
        predicate: Any = None,
        timeout: float = 5.0,
        after: int | dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Wait for a bot message sent or edited in `chat_id` after `after` that matches.

        `after` is an update returned by a user action, or `sandbox.mark()`; None means
        "since the sandbox started". Raises TimeoutError.
        """
        chat = self.chat_state(chat_id)
        return await self._wait_message(chat, predicate, timeout, self._baseline(chat, after, 0))

    async def _wait_message(
        self, chat: ChatState, predicate: Any, timeout: float, baseline: int
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for seq, mid in chat.bot_events_after(baseline):
                baseline = seq  # events already checked are not checked again
                msg = chat.messages.get(mid)
                if (
                    msg is not None
                    and mid in chat.bot_message_ids
                    and (predicate is None or predicate(msg))
                ):
                    return msg
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = [
                    m.get("text") or m.get("caption") or sorted(m)
                    for m in chat.bot_messages()[-3:]
                ]
                raise TimeoutError(
                    f"no matching bot message in chat {chat.id} within {timeout}s; last: {recent}"
                )
            await self._pulse.wait(remaining)

    # --- files ---------------------------------------------------------------------------

    def store_file(
        self, data: bytes, kind: str, mime_type: str | None, file_name: str | None
    ) -> StoredFile:
        """Keep bytes under a new file_id; returns the record (file_path for downloads)."""
        file_id, unique = new_file_id(kind)
        self._file_counter += 1
        folder = {"photo": "photos", "sticker": "stickers"}.get(kind, "documents")
        ext = ""
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[-1]
        elif kind == "photo":
            ext = ".jpg"
        stored = StoredFile(
            file_id, unique, data, mime_type, file_name, f"{folder}/file_{self._file_counter}{ext}"
        )
        self.files[file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def store_photo(self, data: bytes, width: int, height: int) -> list[dict[str, Any]]:
        """PhotoSize list for an image (every size serves the original bytes)."""
        sizes = []
        area = max(1, width * height)
        for w, h in photo_sizes(width, height):
            stored = self.store_file(data, "photo", "image/jpeg", None)
            size = max(1, round(len(data) * (w * h) / area))
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": size,
                    "width": w,
                    "height": h,
                }
            )
        for s in sizes:
            self.photo_sets[s["file_id"]] = sizes
        return sizes

    # --- updates -------------------------------------------------------------------------

    def enqueue(
        self, bot: BotState, kind: str, payload: dict[str, Any], chat: ChatState | None = None
    ) -> dict[str, Any]:
        """Queue an update for `bot` (dropped, as Telegram does, if not in allowed_updates)."""
        update = {"update_id": bot.next_update_id, kind: payload}
        bot.next_update_id += 1
        seq = self._next_seq()
        self._update_seqs[(bot.token, update["update_id"])] = seq
        if chat is not None:
            chat.last_user_seq = seq
        if kind in bot.allowed_updates:
            bot.updates.append(update)
            bot.update_pulse.fire()
        self.activity()
        return update

    def confirm_updates(self, bot: BotState, offset: int) -> None:
        """Forget updates below `offset` (getUpdates confirmation)."""
        confirmed = False
        while bot.updates and bot.updates[0]["update_id"] < offset:
            bot.updates.popleft()
            confirmed = True
        if confirmed:
            self.activity()

    def set_allowed_updates(self, bot: BotState, allowed: list[str]) -> None:
        """Apply allowed_updates; an empty list restores Telegram's default set."""
        bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        bot.allowed_updates_explicit = bool(allowed)

    def pending_updates(self, token: str | None = None) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by the bot."""
        return list(self.bot(token).updates)

    def start_webhook_delivery(self, bot: BotState) -> None:
        """Start the task POSTing queued updates to the bot's webhook."""
        assert bot.webhook is not None
        bot.webhook.task = asyncio.get_running_loop().create_task(self._deliver(bot, bot.webhook))

    async def _deliver(self, bot: BotState, hook: Any) -> None:
        # One update at a time, oldest first: Telegram keeps per-chat order the same way.
        first_delay, max_delay = self.webhook_retry
        delay = first_delay
        if self._client is None:
            self._client = aiohttp.ClientSession()
        headers = (
            {"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {}
        )
        while bot.webhook is hook and not self.closing:
            if not bot.updates:
                await bot.update_pulse.wait(None)
                continue
            update = bot.updates[0]
            error = None
            try:
                async with self._client.post(
                    hook.url,
                    json=update,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
                ) as resp:
                    await resp.read()
                    if not 200 <= resp.status < 300:
                        error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"Connection failed: {exc.__class__.__name__}"
            if error is None:
                if bot.updates and bot.updates[0] is update:
                    bot.updates.popleft()
                delay = first_delay
                self.activity()
                continue
            hook.last_error_date = api_methods.now()
            hook.last_error_message = error
            log.info("sandbox webhook delivery failed (%s); retrying in %.2fs", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    # --- idleness ------------------------------------------------------------------------

    def activity(self) -> None:
        """Note that something happened and wake every waiter."""
        self._last_activity = time.monotonic()
        self._pulse.fire()

    def is_idle(self, quiet: float | None = None) -> bool:
        """See `wait_idle`."""
        quiet = self.quiet if quiet is None else quiet
        if self._inflight or any(b.updates for b in self.bots.values()):
            return False
        return time.monotonic() - self._last_activity >= quiet

    async def wait_idle(self, timeout: float = 5.0, quiet: float | None = None) -> None:
        """Wait until the bot has finished reacting; TimeoutError after `timeout` seconds.

        Idle means all three at once: (1) every queued update was acknowledged (confirmed
        by a later getUpdates offset, or answered 2xx by the webhook); (2) no Bot API
        request is being handled, except a long-poll getUpdates waiting for updates;
        (3) nothing (call start or end, update, acknowledgement) happened for `quiet`
        seconds (default `Sandbox(quiet=0.1)`). A handler that works longer than `quiet`
        without calling the API is not seen: raise `quiet` for such tests.
        """
        quiet = self.quiet if quiet is None else quiet
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            busy = bool(self._inflight or any(b.updates for b in self.bots.values()))
            remaining = deadline - loop.time()
            if not busy:
                idle_for = time.monotonic() - self._last_activity
                if idle_for >= quiet:
                    return
                wait = quiet - idle_for
            else:
                wait = remaining
            if remaining <= 0:
                pending = {t[:8]: len(b.updates) for t, b in self.bots.items()}
                raise TimeoutError(
                    f"sandbox not idle after {timeout}s: {self._inflight} call(s) in flight, "
                    f"pending updates per bot {pending}"
                )
            await self._pulse.wait(min(wait, remaining))

    # --- faults and limits ---------------------------------------------------------------

    def inject_fault(
        self,
        method: str,
        times: int = 1,
        kind: str = "429",
        retry_after: int = 3,
        chat_id: int | str | None = None,
        delay: float = 30.0,
    ) -> Fault:
        """Make the next `times` calls of `method` ('*' = any) matching
        `chat_id` fail as `kind`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        fault = Fault(method, times, kind, retry_after, chat_id, delay)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self.faults.clear()

    def _take_fault(self, method: str, params: dict[str, Any]) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(method, params):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    @property
    def rate_limits(self) -> RateLimits | None:
        return self._limiter.limits if self._limiter else None

    @rate_limits.setter
    def rate_limits(self, limits: RateLimits | None) -> None:
        self._limiter = RateLimiter(limits) if limits else None

    def set_rate_limits(self, limits: RateLimits | None) -> None:
        """Turn flood limits on (fresh buckets) or off (None)."""
        self.rate_limits = limits

    # --- recorded calls ------------------------------------------------------------------

    def calls_of(self, method: str) -> list[RecordedCall]:
        """Recorded calls of one method (any case), oldest first."""
        return list(self._calls_by_method.get(self.spec.canonical(method), []))

    def commands(
        self,
        scope: dict[str, Any] | None = None,
        language_code: str = "",
        token: str | None = None,
    ) -> list[dict[str, str]]:
        """Commands set for exactly this scope and language."""
        return self.bot(token).commands.get((api_methods.scope_key(scope), language_code), [])

    # --- the Bot API endpoint ------------------------------------------------------------

    async def handle_call(
        self,
        token: str,
        method: str,
        params: dict[str, Any],
        attachments: dict[str, UploadedFile] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Answer one Bot API call: (HTTP status, JSON body). Used by the HTTP route."""
        bot = self.bots.get(token)
        if bot is None:
            call = RecordedCall(method, params, 401, "Unauthorized", [], time.time(), token=token)
            self._record(call)
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        polling = method.lower() == "getupdates"
        if not polling:
            self._inflight += 1
            self.activity()
        try:
            return await self._execute(bot, method, params, attachments or {})
        finally:
            if not polling:
                self._inflight -= 1
                self.activity()

    async def _execute(
        self,
        bot: BotState,
        method: str,
        params: dict[str, Any],
        attachments: dict[str, UploadedFile],
    ) -> tuple[int, dict[str, Any]]:
        spec_method = self.spec.method(method)
        decoded, violations = self.spec.decode(method, params)
        name = spec_method.name if spec_method else method
        call = RecordedCall(
            name, decoded, 0, None, [str(v) for v in violations], time.time(), token=bot.token
        )
        try:
            if spec_method is None:
                raise bad_request("method not found")
            fatal = [v for v in violations if v.fatal]
            if fatal:
                raise _violation_error(name, fatal[0])
            fault = self._take_fault(name, decoded)
            if fault is not None:
                call.fault = fault.kind
                if fault.kind == "timeout":
                    # Hold the request past the client's timeout; stop() releases it.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), fault.delay)
                raise fault.error()
            if self._limiter is not None and _is_send(name):
                self._check_rate(bot, decoded)
            fn = api_methods.METHODS.get(name.lower())
            if fn is None:
                if spec_method.returns != ("Boolean",):
                    raise bad_request(f"{name} is not emulated by the sandbox")
                bot.properties[name] = decoded  # setMyDescription & co: remember, answer True
                result: Any = True
            else:
                result = fn(
                    self,
                    bot,
                    {**decoded, "__attachments__": attachments} if attachments else decoded,
                )
                if inspect.isawaitable(result):
                    result = await result
            body: dict[str, Any] = {"ok": True}
            if isinstance(result, api_methods.Described):
                body["result"], body["description"] = result.result, result.description
                result = result.result
            else:
                body["result"] = result
            call.status, call.result = 200, result
        except ApiError as exc:
            call.status, call.error = exc.status, exc.description
            body = exc.body()
        self._record(call)
        return call.status, body

    def _check_rate(self, bot: BotState, params: dict[str, Any]) -> None:
        assert self._limiter is not None
        chat = None
        if isinstance(params.get("chat_id"), int):
            chat = self.chats.get(params["chat_id"])
        chat_type = chat.chat["type"] if chat else "unknown"
        retry_after = self._limiter.acquire(
            bot.token,
            params.get("chat_id", 0),
            chat_type,
            bool(params.get("allow_paid_broadcast")),
        )
        if retry_after is not None:
            raise too_many_requests(retry_after)

    def _record(self, call: RecordedCall) -> None:
        self.calls.append(call)
        self._calls_by_method[call.method].append(call)
        if call.violations:
            self.violations.append(call)


def _violation_error(method: str, v: Violation) -> ApiError:
    """The 400 Telegram gives for a call that breaks the spec."""
    if v.kind == "missing":
        if v.param == "text":
            return bad_request("message text is empty")
        return bad_request(
            f"{v.param} is empty" if v.param == "chat_id" else f'parameter "{v.param}" is required'
        )
    return bad_request(f"can't parse {v.param}: {v.message.split(': ', 1)[-1]}")


# --- HTTP ------------------------------------------------------------------------------


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters from the query string plus a form, multipart or JSON body."""
    params: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.method == "POST" and request.can_read_body:
        ctype = request.content_type
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = UploadedFile(
                        key, value.filename, value.content_type, value.file.read()
                    )
                else:
                    params[key] = value
        else:
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise bad_request("can't parse JSON body") from None
                if not isinstance(body, dict):
                    raise bad_request("JSON body must be an object")
                params.update(body)
    # A part referenced as attach://name is an attachment, not a parameter of its own.
    texts = " ".join(v for v in params.values() if isinstance(v, str) and "attach://" in v)
    attachments = {}
    for key, part in files.items():
        if f"attach://{key}" in texts:
            attachments[key] = part
        else:
            params[key] = part
    return params, attachments


def _json(status: int, body: Any) -> web.Response:
    return web.json_response(body, status=status)


async def _api_route(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    try:
        params, attachments = await _read_params(request)
    except ApiError as exc:
        return _json(exc.status, exc.body())
    status, body = await sandbox.handle_call(
        request.match_info["token"], request.match_info["method"], params, attachments
    )
    return _json(status, body)


async def _file_route(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    if request.match_info["token"] not in sandbox.bots:
        return _json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    path = request.match_info["file_path"]
    stored = sandbox.files_by_path.get(path)
    if stored is None:
        return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
    return web.Response(
        body=stored.data, content_type=stored.mime_type or "application/octet-stream"
    )


def create_app(sandbox: Sandbox) -> web.Application:
    """An aiohttp application serving the Bot API, file downloads and `/_sandbox/`."""
    from .control import add_control_routes

    app = web.Application(client_max_size=MAX_UPLOAD)
    app[SANDBOX_KEY] = sandbox
    app.router.add_route("*", "/bot{token}/{method}", _api_route)
    app.router.add_get("/file/bot{token}/{file_path:.+}", _file_route)
    add_control_routes(app)

    async def _on_shutdown(app: web.Application) -> None:
        await sandbox.shutdown()

    app.on_shutdown.append(_on_shutdown)
    return app
