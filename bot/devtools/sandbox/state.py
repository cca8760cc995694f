"""Bot API sandbox: the in-memory records (bots, chats, files, calls, faults) and errors.

Nothing here does I/O; `server.Sandbox` owns instances of these and mutates them.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any


class SandboxError(Exception):
    """Misuse of the sandbox's Python API (no bot, no such button, ...)."""


class PaymentDeclined(SandboxError):
    """The bot answered a pre-checkout query with ok=False."""

    def __init__(self, error_message: str | None) -> None:
        super().__init__(error_message or "payment declined")
        self.error_message = error_message


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        """The JSON object Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> ApiError:
    """400 with Telegram's `Bad Request: ` prefix."""
    return ApiError(400, f"Bad Request: {reason}")


def too_many_requests(retry_after: int) -> ApiError:
    """429 exactly as Telegram words it."""
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


BLOCKED = ApiError(403, "Forbidden: bot was blocked by the user")


@dataclass
class RecordedCall:
    """One Bot API request as the sandbox saw and answered it."""

    method: str
    params: dict[str, Any]
    status: int
    error: str | None
    violations: list[str]
    at: float
    result: Any = None
    token: str | None = None
    fault: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def to_json(self, index: int | None = None) -> dict[str, Any]:
        """JSON-safe form for the control API (uploads summarised)."""
        from .spec import UploadedFile

        params = {
            k: (v.summary() if isinstance(v, UploadedFile) else v) for k, v in self.params.items()
        }
        out = {
            "method": self.method,
            "params": params,
            "status": self.status,
            "error": self.error,
            "violations": self.violations,
            "at": self.at,
            "result": self.result,
            "fault": self.fault,
        }
        if index is not None:
            out["index"] = index
        return out


FAULT_KINDS = ("429", "403", "500", "502", "timeout", "chat_not_found")


@dataclass
class Fault:
    """An injected failure for the next `times` calls of `method` (any case; '*' = all)."""

    method: str
    times: int = 1
    kind: str = "429"
    retry_after: int = 3
    chat_id: int | str | None = None
    delay: float = 30.0

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.method != "*" and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or str(params.get("chat_id")) == str(self.chat_id)

    def error(self) -> ApiError:
        """The error this fault answers with (not used for `timeout`)."""
        if self.kind == "429":
            return too_many_requests(self.retry_after)
        if self.kind == "403":
            return BLOCKED
        if self.kind == "500":
            return ApiError(500, "Internal Server Error")
        if self.kind == "502":
            return ApiError(502, "Bad Gateway")
        if self.kind == "chat_not_found":
            return bad_request("chat not found")
        # A held request that is finally answered: what a proxy gives up with.
        return ApiError(504, "Gateway Timeout")


class Pulse:
    """A broadcast wake-up: `fire()` wakes every current `wait()`er (a lock-free Condition)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        # Waiters keep the old (set) event; new waiters get a fresh one.
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None) -> bool:
        """Wait for the next fire(); False when `timeout` passed first."""
        event = self._event
        if timeout is None:
            await event.wait()
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False


@dataclass
class StoredFile:
    """A file the sandbox holds: bytes plus the Bot API metadata."""

    file_id: str
    file_unique_id: str
    data: bytes = field(repr=False)
    mime_type: str | None
    file_name: str | None
    file_path: str


@dataclass
class Webhook:
    """The webhook configuration set by setWebhook, plus delivery error state."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    task: asyncio.Task[None] | None = None


DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)  # Telegram's default: everything except chat_member and message reactions.


@dataclass
class BotState:
    """One bot: its User object, update queue, webhook, commands and open queries."""

    token: str
    user: dict[str, Any]
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    next_update_id: int = 1
    allowed_updates: frozenset[str] = DEFAULT_ALLOWED
    allowed_updates_explicit: bool = False
    webhook: Webhook | None = None
    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    menu_buttons: dict[int | None, dict[str, Any]] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    callback_queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    pre_checkouts: dict[str, asyncio.Future[tuple[bool, str | None]]] = field(default_factory=dict)
    poll_generation: int = 0
    update_pulse: Pulse = field(default_factory=Pulse)

    @property
    def id(self) -> int:
        return self.user["id"]


@dataclass
class ChatState:
    """A chat: its Chat object and messages indexed by id (insertion = send order)."""

    chat: dict[str, Any]
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    bot_message_ids: dict[int, None] = field(default_factory=dict)  # ordered set
    # Every bot send/edit as (seq, message_id); seq is the sandbox-wide event counter,
    # so waiters can bisect for "events after mark N" without scanning the chat.
    bot_event_seqs: list[int] = field(default_factory=list)
    bot_event_ids: list[int] = field(default_factory=list)
    reply_keyboard: dict[str, Any] | None = None
    last_action: str | None = None
    blocked: bool = False  # the private chat's user blocked the bot
    last_user_seq: int = 0  # event seq of the latest user action in this chat

    @property
    def id(self) -> int:
        return self.chat["id"]

    def take_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid

    def add_bot_event(self, seq: int, message_id: int) -> None:
        self.bot_event_seqs.append(seq)
        self.bot_event_ids.append(message_id)

    def bot_events_after(self, seq: int) -> list[tuple[int, int]]:
        """(seq, message_id) of bot sends and edits after event `seq`, oldest first."""
        i = bisect.bisect_right(self.bot_event_seqs, seq)
        return list(zip(self.bot_event_seqs[i:], self.bot_event_ids[i:], strict=True))

    def bot_messages(self) -> list[dict[str, Any]]:
        return [self.messages[i] for i in self.bot_message_ids]

    def last_bot_message_with_keyboard(self) -> dict[str, Any] | None:
        for mid in reversed(self.bot_message_ids):
            msg = self.messages[mid]
            if "inline_keyboard" in msg.get("reply_markup", {}):
                return msg
        return None
