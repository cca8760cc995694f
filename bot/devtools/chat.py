"""Terminal front end: `examdesk chat` plays the Telegram app against the real bot.

Entry points: `run_chat(settings, staff=..., script=...)` and `serve_sandbox(host, port)`
(both async; `bot.cli` wraps them). The bot runs for real — database, handlers, polling
through `Runtime` — with its Bot API URL pointed at the in-process sandbox; this module
sends what you type as a candidate or a staff member and prints what the bot answers
(new messages and edits, keyboards as numbered buttons). See docs/chat.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import re
import signal
import struct
import sys
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from bot.config import Settings
from bot.devtools.sandbox import PaymentDeclined, Sandbox, SandboxError, SandboxUser

log = logging.getLogger(__name__)

CANDIDATE_ID = 10001
STAFF_ID = 90001
STAFF_CHAT_ID = -1009001
STAFF_CHAT_TITLE = "Exam staff"
DEFAULT_PHONES = {CANDIDATE_ID: "+8613800138000", STAFF_ID: "+8613900139000"}
PHOTO_SIZE = (413, 579)  # a 35×49 mm ID photo at 300 dpi, what the exam centre asks for
SETTLE_TIMEOUT = 15.0  # seconds an action may keep the bot busy before we stop waiting
QUIET = 0.15  # seconds without Bot API activity that count as "done reacting"
WATCH_INTERVAL = 0.3  # interactive mode: how often to look for messages nobody asked for
# A script's end: how long to wait for outbox messages already due (or due by then), so a
# notice queued by the last action (paced behind the reply to the same chat) is printed.
OUTBOX_WAIT = 10.0
RECENT = 10  # messages `:messages` lists by default
PRESS_AT = re.compile(r"(\d+)@(\d+)")  # `3@12`: button 3 of message 12
PROMPT = "> "
# Minor units per currency (Telegram's currencies.json); anything else has 2 decimals.
_CURRENCY_EXPONENT = {"XTR": 0, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0}
_MEDIA_KINDS = (
    "video",
    "animation",
    "audio",
    "voice",
    "video_note",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
)

HELP = """\
Type text or /commands to send them to the bot. Actions start with a colon:
  :1, :press N        press inline button N of the latest message with buttons
  :3@12, :press 3@12  press button 3 of message 12 (numbers: :messages)
  :press LABEL        press a button by its label (inline, or a reply-keyboard button)
  :messages [N]       list your last N messages from the bot (default {recent}), numbered
  :save [M] PATH      save the document (or photo) of message M, or the latest, to PATH
  :contact [PHONE]    share your own contact (default {phone})
  :photo [PATH]       send a photo (no PATH: a generated 413x579 ID photo)
  :doc PATH           send a file as a document
  :sticker            send a sticker
  :pay                pay the latest invoice
  :as staff|candidate switch identity (staff is an admin: id {staff_id})
  :staffchat          show the staff group's messages
  :group TEXT         (staff) write TEXT in the staff group
  ::TEXT              send TEXT starting with a colon
  :help               this list
  :quit               leave (Ctrl-D too)"""


class ChatError(Exception):
    """An action that cannot be done (no such button, no invoice, bad file...): one line."""


class Quit(Exception):
    """`:quit` was typed."""


# --- rendering -----------------------------------------------------------------------------


def format_amount(total_amount: int, currency: str) -> str:
    """`32000, "CNY"` → `320.00 CNY` (amounts are in the currency's minor units)."""
    exponent = _CURRENCY_EXPONENT.get(currency, 2)
    if exponent == 0:
        return f"{total_amount} {currency}"
    return f"{total_amount / 10**exponent:.{exponent}f} {currency}"


def _content_lines(msg: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "text" in msg:
        lines.extend(msg["text"].split("\n"))
    elif "photo" in msg:
        largest = max(msg["photo"], key=lambda s: s["width"] * s["height"])
        lines.append(f"[photo {largest['width']}x{largest['height']}]")
    elif "document" in msg:
        document = msg["document"]
        lines.append(
            f"[document {document.get('file_name') or document.get('mime_type') or 'file'}]"
        )
    elif "invoice" in msg:
        invoice = msg["invoice"]
        amount = format_amount(invoice["total_amount"], invoice["currency"])
        lines.append(f"[invoice: {invoice['title']}, {amount}]")
        lines.extend(invoice.get("description", "").split("\n"))
    elif "sticker" in msg:
        lines.append(f"[sticker {msg['sticker'].get('emoji', '')}]".replace(" ]", "]"))
    else:
        kind = next((k for k in _MEDIA_KINDS if k in msg), "message")
        lines.append(f"[{kind}]")
    if msg.get("caption"):
        lines.extend(msg["caption"].split("\n"))
    return lines


def inline_buttons(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline buttons of a message, rows flattened (numbering order)."""
    return [b for row in msg.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def render_message(
    msg: dict[str, Any], where: str | None = None, edited: bool = False
) -> list[str]:
    """A bot message as terminal lines: text or media, then numbered inline buttons."""
    head = "bot" + (f" @ {where}" if where else "") + (" (edited)" if edited else "") + ":"
    body = _content_lines(msg)
    lines = [f"{head} {body[0]}".rstrip()] + [f"  {line}".rstrip() for line in body[1:]]
    number = 0
    for row in msg.get("reply_markup", {}).get("inline_keyboard", []):
        cells = []
        for button in row:
            number += 1
            cell = f"[{number}] {button['text']}"
            if "url" in button:
                cell += f" <{button['url']}>"
            cells.append(cell)
        lines.append("  " + "  ".join(cells))
    return lines


def _reply_button_label(button: dict[str, Any] | str) -> str:
    if isinstance(button, str):
        return f"[{button}]"
    text = button.get("text", "")
    if button.get("request_contact"):
        return f"[{text}] (shares your contact: :contact)"
    if button.get("request_location"):
        return f"[{text}] (shares a location: not supported here)"
    return f"[{text}]"


def render_reply_keyboard(markup: dict[str, Any] | None, where: str | None = None) -> list[str]:
    """The reply keyboard shown under the input field (or its removal)."""
    head = "keyboard" + (f" @ {where}" if where else "") + ":"
    if markup is None:
        return [f"{head} (removed)"]
    lines = [head]
    for row in markup.get("keyboard", []):
        lines.append("  " + "  ".join(_reply_button_label(b) for b in row))
    return lines


def make_png(width: int = PHOTO_SIZE[0], height: int = PHOTO_SIZE[1]) -> bytes:
    """A plain PNG (light blue, like an ID photo background) built with zlib only."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes((0xCF, 0xE3, 0xF5)) * width  # filter byte 0, then RGB pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 9))
        + chunk(b"IEND", b"")
    )


# --- what has been shown -------------------------------------------------------------------


class View:
    """Per chat: the bot events already printed, and the reply keyboard last shown."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._cursor: dict[int, int] = {}  # chat id -> sandbox event seq last printed
        self._noticed: dict[int, int] = {}  # chat id -> event seq last mentioned as pending
        self._shown: set[tuple[int, int]] = set()
        self._keyboards: dict[int, dict[str, Any] | None] = {}

    def _new_ids(self, chat_id: int, after: int) -> tuple[list[int], int]:
        events = self.sandbox.chat_state(chat_id).bot_events_after(after)
        last = events[-1][0] if events else after
        return list(dict.fromkeys(mid for _, mid in events)), last

    def flush(self, chat_id: int, where: str | None = None) -> list[str]:
        """Lines for the bot messages sent or edited in `chat_id` since the last flush."""
        state = self.sandbox.chat_state(chat_id)
        ids, self._cursor[chat_id] = self._new_ids(chat_id, self._cursor.get(chat_id, 0))
        self._noticed[chat_id] = self._cursor[chat_id]
        lines: list[str] = []
        for mid in ids:
            msg = state.messages.get(mid)
            if msg is None or mid not in state.bot_message_ids:
                continue  # sent and deleted before we looked
            lines.extend(render_message(msg, where, edited=(chat_id, mid) in self._shown))
            self._shown.add((chat_id, mid))
        keyboard = state.reply_keyboard
        if keyboard != self._keyboards.get(chat_id):
            self._keyboards[chat_id] = keyboard
            lines.extend(render_reply_keyboard(keyboard, where))
        return lines

    def history(self, chat_id: int, where: str | None = None) -> list[str]:
        """Every current bot message of a chat; marks them shown."""
        lines: list[str] = []
        for msg in self.sandbox.chat_messages(chat_id):
            lines.extend(render_message(msg, where))
            self._shown.add((chat_id, msg["message_id"]))
        self._cursor[chat_id] = self._noticed[chat_id] = self.sandbox.mark()
        return lines

    def unnoticed(self, chat_id: int) -> int:
        """How many messages arrived in a chat not shown now, since last mentioned."""
        after = max(self._cursor.get(chat_id, 0), self._noticed.get(chat_id, 0))
        ids, self._noticed[chat_id] = self._new_ids(chat_id, after)
        return len(ids)


# --- identities and actions ----------------------------------------------------------------


@dataclass
class Identity:
    """Who is typing: the sandbox user and the chats whose bot messages they see."""

    role: str  # "candidate" | "staff"
    user: SandboxUser
    chats: tuple[int, ...]  # the private chat first

    @property
    def label(self) -> str:
        return f"{self.user.user['first_name']} ({self.role}, id {self.user.id})"


def candidate_language(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Telegram's language_code for the simulated users: from $LANG, zh → zh-hans, else en."""
    return "zh-hans" if environ.get("LANG", "").lower().startswith("zh") else "en"


def _chat_name(chat_id: int) -> str | None:
    return "staff group" if chat_id == STAFF_CHAT_ID else None


@dataclass
class ChatSession:
    """The terminal's side of the conversation: parses actions, waits, prints."""

    sandbox: Sandbox
    runtime: Any  # bot.app.Runtime (imported lazily: it pulls in PTB and the handlers)
    identities: dict[str, Identity]
    current: Identity
    write: Callable[[str], None]
    busy: bool = False
    view: View = field(init=False)

    def __post_init__(self) -> None:
        self.view = View(self.sandbox)
        self._actions: dict[str, Callable[[str], Awaitable[bool]]] = {
            "press": self._press,
            "messages": self._messages,
            "save": self._save,
            "contact": self._contact,
            "photo": self._photo,
            "doc": self._doc,
            "document": self._doc,
            "sticker": self._sticker,
            "pay": self._pay,
            "as": self._as,
            "staffchat": self._staffchat,
            "group": self._group,
            "help": self._help,
            "quit": self._quit,
            "q": self._quit,
            "exit": self._quit,
        }

    def emit(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    # --- waiting and showing ---------------------------------------------------------

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait until the bot has finished reacting; False if it is still busy at `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        dispatcher = self.runtime.dispatcher
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                # The sandbox sees pending updates and API calls; the dispatcher sees a
                # handler working between calls (a slow database step).
                await self.sandbox.wait_idle(timeout=remaining, quiet=QUIET)
            except TimeoutError:
                return False
            if dispatcher.in_flight:
                await dispatcher.drain(max(deadline - loop.time(), 0.01))
                continue
            if self.sandbox.is_idle(QUIET):
                return True

    def show_new(self) -> list[str]:
        """Lines for what arrived: the current identity's chats in full, others as a note."""
        lines: list[str] = []
        for chat_id in self.current.chats:
            lines.extend(self.view.flush(chat_id, _chat_name(chat_id)))
        for identity in self.identities.values():
            if identity is self.current:
                continue
            count = self.view.unnoticed(identity.user.id)
            if count:
                lines.append(f"({count} new message(s) for {identity.label}: :as {identity.role})")
        if STAFF_CHAT_ID not in self.current.chats:
            count = self.view.unnoticed(STAFF_CHAT_ID)
            if count:
                lines.append(f"({count} new message(s) in the staff group: :staffchat)")
        return lines

    # --- actions ---------------------------------------------------------------------

    async def perform(self, line: str) -> None:
        """Do one action, wait for the bot, print what it did. ChatError / Quit propagate."""
        self.busy = True
        try:
            acted = await self._dispatch(line.strip())
            if acted and not await self.settle():
                self.write(
                    f"(the bot is still busy after {SETTLE_TIMEOUT:.0f}s; "
                    "later messages appear when they arrive)"
                )
            self.emit(self.show_new())
        finally:
            self.busy = False

    async def _dispatch(self, line: str) -> bool:
        user = self.current.user
        if line.startswith("::"):
            await user.send_text(line[1:])
            return True
        if line.startswith(":"):
            name, _, arg = line[1:].strip().partition(" ")
            if (name.isdigit() or PRESS_AT.fullmatch(name)) and not arg:
                return await self._press(name)
            action = self._actions.get(name.lower())
            if action is None:
                raise ChatError(f"unknown action :{name} (:help lists them)")
            return await action(arg.strip())
        await self._send(line, None)
        return True

    async def _send(self, text: str, chat: int | None) -> dict[str, Any]:
        user = self.current.user
        if text.startswith("/") and len(text) > 1 and not text[1].isspace():
            command, _, payload = text.partition(" ")
            return await user.send_command(command, payload.strip() or None, chat=chat)
        return await user.send_text(text, chat=chat)

    def _latest_keyboard(self) -> tuple[int, dict[str, Any]] | None:
        """(chat id, message) of the most recent bot message with inline
        buttons the identity sees."""
        best: tuple[int, int, dict[str, Any]] | None = None
        for chat_id in self.current.chats:
            state = self.sandbox.chat_state(chat_id)
            msg = state.last_bot_message_with_keyboard()
            if msg is None:
                continue
            mid = msg["message_id"]
            seq = next(
                (
                    s
                    for s, m in zip(
                        reversed(state.bot_event_seqs),
                        reversed(state.bot_event_ids),
                        strict=True,
                    )
                    if m == mid
                ),
                0,
            )
            if best is None or seq > best[0]:
                best = (seq, chat_id, msg)
        return None if best is None else (best[1], best[2])

    # --- numbered messages: `:messages`, `:3@12`, `:save 12 PATH` ---------------------

    def _numbered(self) -> list[tuple[int, int, int]]:
        """(number, chat id, message id) of every bot message of this session, numbered in
        the order they were sent across all its chats: a number names one message for
        every identity, and stays the same when later messages arrive or this one is
        edited."""
        chats = dict.fromkeys(c for i in self.identities.values() for c in i.chats)
        first_sent: list[tuple[int, int, int]] = []
        for chat_id in chats:
            try:
                state = self.sandbox.chat_state(chat_id)
            except SandboxError:
                continue
            seen: set[int] = set()
            for seq, mid in zip(state.bot_event_seqs, state.bot_event_ids, strict=True):
                if mid not in seen:
                    seen.add(mid)
                    first_sent.append((seq, chat_id, mid))
        first_sent.sort()
        return [(n, chat_id, mid) for n, (_, chat_id, mid) in enumerate(first_sent, 1)]

    def _visible(self) -> list[tuple[int, int, dict[str, Any]]]:
        """(number, chat id, message) of the bot messages the current identity sees."""
        found = []
        for number, chat_id, mid in self._numbered():
            if chat_id not in self.current.chats:
                continue
            msg = self.sandbox.chat_state(chat_id).messages.get(mid)
            if msg is not None:  # not deleted
                found.append((number, chat_id, msg))
        return found

    def _message(self, number: int) -> tuple[int, dict[str, Any]]:
        """(chat id, message) of message `number` in the current identity's chats."""
        for n, chat_id, msg in self._visible():
            if n == number:
                return chat_id, msg
        raise ChatError(f"no message {number} in your chats (:messages lists them)")

    async def _messages(self, arg: str) -> bool:
        if arg and not arg.isdigit():
            raise ChatError("how many? :messages [N]")
        count = int(arg) if arg else RECENT
        visible = self._visible()[-count:] if count else []
        lines = []
        for number, chat_id, msg in visible:
            where = _chat_name(chat_id)
            head = "bot" + (f" @ {where}" if where else "") + ":"
            first = _content_lines(msg)[0]
            if len(first) > 60:
                first = first[:59] + "…"
            buttons = len(inline_buttons(msg))
            extra = f"  ({buttons} button{'s' if buttons != 1 else ''})" if buttons else ""
            lines.append(f"#{number} {head} {first}{extra}".rstrip())
        self.emit(lines or ["(no messages from the bot yet)"])
        return False

    async def _save(self, arg: str) -> bool:
        number, _, path = arg.partition(" ")
        if not number.isdigit() or not path.strip():
            number, path = "", arg
        if not path.strip():
            raise ChatError("save to where? :save [MESSAGE] PATH")
        if number:
            _, msg = self._message(int(number))
            if _file_of(msg) is None:
                raise ChatError(f"message {number} has no document or photo")
        else:
            files = [m for _, _, m in self._visible() if _file_of(m) is not None]
            if not files:
                raise ChatError("no document or photo from the bot to save")
            msg = files[-1]
        file_id, name = _file_of(msg)  # type: ignore[misc]
        stored = self.sandbox.files.get(file_id)
        if stored is None:
            raise ChatError(f"the sandbox does not have file {file_id}")
        name = stored.file_name or name
        target = _write_file(path.strip(), name, stored.data)
        self.write(f"(saved {name}, {len(stored.data)} bytes, to {target})")
        return False

    async def _press(self, arg: str) -> bool:
        if not arg:
            raise ChatError("press what? :press N, :press N@MESSAGE or :press LABEL")
        at = PRESS_AT.fullmatch(arg)
        if at:
            found: tuple[int, dict[str, Any]] | None = self._message(int(at[2]))
            arg = at[1]
            where = f"message {at[2]}"
        else:
            found = self._latest_keyboard()
            where = "the latest message"
        buttons = inline_buttons(found[1]) if found else []
        if at and not buttons:
            raise ChatError(f"message {at[2]} has no buttons")
        if arg.isdigit():
            if not buttons:
                raise ChatError("no message with buttons to press")
            number = int(arg)
            if not 1 <= number <= len(buttons):
                raise ChatError(f"no button {number}: {where} has buttons 1-{len(buttons)}")
            button = buttons[number - 1]
        else:
            button = next((b for b in buttons if b["text"] == arg), None)
            if button is None:
                button = next(
                    (b for b in buttons if b["text"].casefold().strip() == arg.casefold()), None
                )
            if button is None:
                return await self._press_reply_button(arg, [b["text"] for b in buttons])
        assert found is not None
        chat_id, msg = found
        if "callback_data" not in button:
            if "url" in button:
                self.write(f"(opens {button['url']})")
                return False
            raise ChatError(
                f"button {button['text']!r} does nothing here (it is {sorted(button)})"
            )
        if arg.isdigit():  # say which, so a transcript reads without counting buttons
            self.write(f"(pressed {button['text']})")
        try:
            update = await self.current.user.press(
                button["callback_data"], message_id=msg["message_id"], chat=chat_id
            )
        except SandboxError as exc:
            raise ChatError(str(exc)) from None
        if not await self.settle():
            return False
        answer = self.current.user.callback_answer(update)
        if answer is None:
            self.write("(the bot did not answer the button press)")
        elif answer.get("text"):
            self.write(
                f"bot ({'alert' if answer.get('show_alert') else 'notice'}): {answer['text']}"
            )
        elif answer.get("url"):
            self.write(f"(opens {answer['url']})")
        return False  # already settled

    async def _press_reply_button(self, label: str, inline: list[str]) -> bool:
        keyboard = self.current.user.reply_keyboard() or []
        for row in keyboard:
            for button in row:
                text = button if isinstance(button, str) else button.get("text", "")
                if text.casefold() != label.casefold():
                    continue
                if isinstance(button, dict) and button.get("request_contact"):
                    return await self._contact("")
                if isinstance(button, dict) and any(k.startswith("request_") for k in button):
                    raise ChatError(
                        f"button {text!r} asks for something this terminal cannot share"
                    )
                await self.current.user.send_text(text)
                return True
        shown = inline + [
            b if isinstance(b, str) else b.get("text", "") for row in keyboard for b in row
        ]
        raise ChatError(
            f"no button {label!r}" + (f"; buttons: {', '.join(shown)}" if shown else "")
        )

    async def _contact(self, arg: str) -> bool:
        phone = arg or DEFAULT_PHONES.get(self.current.user.id, "+8613800138000")
        await self.current.user.share_contact(phone)
        return True

    async def _photo(self, arg: str) -> bool:
        data = _read_file(arg) if arg else make_png()
        try:
            await self.current.user.send_photo(data)
        except SandboxError as exc:
            raise ChatError(f"{arg}: {exc}") from None
        return True

    async def _doc(self, arg: str) -> bool:
        if not arg:
            raise ChatError("which file? :doc PATH")
        data = _read_file(arg)
        mime = mimetypes.guess_type(arg)[0] or "application/octet-stream"
        await self.current.user.send_document(data, Path(arg).name, mime)
        return True

    async def _sticker(self, _arg: str) -> bool:
        await self.current.user.send_sticker()
        return True

    async def _pay(self, _arg: str) -> bool:
        user = self.current.user
        invoice = next((m for m in reversed(user.messages()) if "invoice" in m), None)
        if invoice is None:
            raise ChatError("no invoice to pay")
        try:
            await user.pay(invoice["message_id"], timeout=SETTLE_TIMEOUT)
        except PaymentDeclined as exc:
            self.write(f"(payment declined: {exc})")
        except SandboxError as exc:
            raise ChatError(str(exc)) from None
        return True

    async def _as(self, arg: str) -> bool:
        identity = self.identities.get(arg.lower())
        if identity is None:
            raise ChatError(f"who? :as {' | :as '.join(self.identities)}")
        self.current = identity
        self.write(f"(you are now {identity.label})")
        return False

    async def _staffchat(self, _arg: str) -> bool:
        lines = self.view.history(STAFF_CHAT_ID, _chat_name(STAFF_CHAT_ID))
        self.emit(lines or ["(no messages in the staff group yet)"])
        return False

    async def _group(self, arg: str) -> bool:
        if STAFF_CHAT_ID not in self.current.chats:
            raise ChatError("only staff write in the staff group (:as staff first)")
        if not arg:
            raise ChatError("say what? :group TEXT")
        await self._send(arg, STAFF_CHAT_ID)
        return True

    async def _help(self, _arg: str) -> bool:
        text = HELP.format(phone=DEFAULT_PHONES[CANDIDATE_ID], staff_id=STAFF_ID, recent=RECENT)
        self.emit(text.split("\n"))
        return False

    async def _quit(self, _arg: str) -> bool:
        raise Quit()

    # --- the two modes ---------------------------------------------------------------

    async def run_script(self, source: TextIO) -> int:
        """Actions line by line, a transcript on stdout; stop at the first failing line."""
        for number, raw in enumerate(source, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            self.write(f"> {line}")
            try:
                await self.perform(line)
            except Quit:
                break
            except ChatError as exc:
                print(f"examdesk chat: line {number}: {exc}", file=sys.stderr, flush=True)
                return 1
        await self.finish()
        return 0

    async def finish(self, wait: float = OUTBOX_WAIT) -> None:
        """Before a script exits: let the outbox send what is due (a notice the last action
        queued waits behind the reply to the same chat), then print what arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (left := deadline - loop.time()) > 0:
            await self.settle(left)
            # Rows planned for later than we wait (tomorrow's reminders) are not waited for.
            if not await self._outbox_due(datetime.now(UTC) + timedelta(seconds=left)):
                break
            await asyncio.sleep(0.1)
        self.emit(self.show_new())

    async def _outbox_due(self, until: datetime) -> int:
        """Outbox rows still to send (claimed by the sender or not) that are due by `until`."""
        from sqlalchemy import func, select

        from bot.domain.lifecycle import OutboxStatus
        from storage.models import OutboxMessage

        query = select(func.count()).where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= until
        )
        async with self.runtime.database.engine.connect() as conn:
            return int((await conn.execute(query)).scalar() or 0)

    async def run_interactive(self) -> int:
        """A prompt; messages nobody asked for (reminders, staff actions) show up too."""
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
        self.emit(
            [
                f"examdesk chat: you are {self.current.label}.",
                "Type /start to begin, :help for the actions, :quit or Ctrl-D to leave.",
            ]
        )
        watcher = asyncio.create_task(self._watch(), name="chat:watch")
        try:
            while True:
                line = await _ask(PROMPT)
                if line is None:
                    self.write("")
                    return 0
                if not line.strip():
                    continue
                try:
                    await self.perform(line)
                except Quit:
                    return 0
                except ChatError as exc:
                    self.write(f"! {exc}")
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if self.busy or self.runtime.dispatcher.in_flight or not self.sandbox.is_idle(QUIET):
                continue
            lines = self.show_new()
            if lines:
                self.emit(["", *lines])
                sys.stdout.write(PROMPT)
                sys.stdout.flush()


async def _ask(prompt: str) -> str | None:
    """input() in a daemon thread, so the bot keeps running and Ctrl-C never waits on it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def settle(value: str | None) -> None:
        if not future.done():
            future.set_result(value)

    def read() -> None:
        try:
            value: str | None = input(prompt)
        except (EOFError, KeyboardInterrupt):
            value = None
        except Exception:
            value = None
        with contextlib.suppress(RuntimeError):  # the loop is gone: we are exiting
            loop.call_soon_threadsafe(settle, value)

    threading.Thread(target=read, name="chat:input", daemon=True).start()
    return await future


def _file_of(msg: dict[str, Any]) -> tuple[str, str] | None:
    """(file_id, a file name) of a message's document or largest photo."""
    if "document" in msg:
        document = msg["document"]
        return document["file_id"], document.get("file_name") or "document"
    if "photo" in msg:
        largest = max(msg["photo"], key=lambda s: s["width"] * s["height"])
        return largest["file_id"], "photo.jpg"
    return None


def _write_file(path: str, name: str, data: bytes) -> Path:
    """Write `data` to `path`, or to `path/name` when `path` is a folder."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / name
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise ChatError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def _read_file(path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ChatError(f"cannot read {path}: {exc.strerror or exc}") from None


# --- wiring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """What `prepare_database` found: a note for the user and the first free update_id."""

    note: str | None
    catalog_missing: bool
    next_update_id: int


async def prepare_database(settings: Settings) -> Prepared:
    """Migrate the configured database; load the catalogue file if none is loaded yet."""
    from sqlalchemy import func, select

    from bot.domain.catalog import CatalogError, load_catalog
    from bot.services import build_services
    from bot.services.errors import CatalogMissing
    from storage import migrate
    from storage.db import Database
    from storage.models import InboxUpdate

    database = Database(settings.database_url)
    try:
        await migrate.upgrade(database.engine)
        # The inbox ignores an update_id it has seen (a redelivery), and every sandbox
        # starts counting at 1: continue after the last one stored by an earlier run.
        async with database.engine.connect() as conn:
            last = (await conn.execute(select(func.max(InboxUpdate.update_id)))).scalar() or 0
        catalog = build_services(database).catalog
        try:
            await catalog.current()
            return Prepared(None, False, last + 1)
        except CatalogMissing:
            pass
        try:
            result = await catalog.load(load_catalog(settings.catalog), actor="chat")
        except (CatalogError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            note = f"no exam catalogue is loaded: {settings.catalog}: {first}"
            return Prepared(note, True, last + 1)
        return Prepared(
            f"loaded exam catalogue {result.version} from {settings.catalog}", False, last + 1
        )
    finally:
        await database.dispose()


def chat_settings(settings: Settings, sandbox: Sandbox, token: str) -> Settings:
    """The given settings, pointed at the sandbox: polling, an ephemeral port, staff as admin."""
    return settings.model_copy(
        update={
            "bot_token": SecretStr(token),
            "bot_api_url": sandbox.url,
            "webhook_url": None,
            "webhook_secret": None,
            "listen": "127.0.0.1:0",
            "admin_ids": frozenset(settings.admin_ids) | {STAFF_ID},
            "staff_chat_id": STAFF_CHAT_ID,
        }
    )


async def run_chat(
    settings: Settings,
    *,
    staff: bool,
    script: bool,
    source: TextIO | None = None,
    write: Callable[[str], None] | None = None,
) -> int:
    """`examdesk chat`: sandbox + the real bot in this process, driven from the terminal."""
    from bot.app import Runtime

    write = write or (lambda line: print(line, flush=True))
    sandbox = Sandbox(quiet=QUIET)
    await sandbox.start(port=0)
    runtime = None
    try:
        token = sandbox.add_bot(username="examdesk_bot", first_name="examdesk")
        language = candidate_language()
        candidate = sandbox.user(CANDIDATE_ID, first_name="考生", language_code=language)
        staff_user = sandbox.user(STAFF_ID, first_name="Staff", language_code=language)
        sandbox.group(STAFF_CHAT_ID, STAFF_CHAT_TITLE)
        identities = {
            "candidate": Identity("candidate", candidate, (CANDIDATE_ID,)),
            "staff": Identity("staff", staff_user, (STAFF_ID, STAFF_CHAT_ID)),
        }
        prepared = await prepare_database(settings)
        sandbox.bot(token).next_update_id = prepared.next_update_id
        if prepared.catalog_missing:
            print(f"examdesk chat: {prepared.note}", file=sys.stderr, flush=True)
        elif prepared.note and not script:
            write(f"({prepared.note})")
        runtime = Runtime(chat_settings(settings, sandbox, token))
        await runtime.start()
        session = ChatSession(
            sandbox, runtime, identities, identities["staff" if staff else "candidate"], write
        )
        # Updates left unprocessed by an earlier run are recovered at start: show their answers.
        await session.settle()
        session.emit(session.show_new())
        if script:
            return await session.run_script(source or sys.stdin)
        return await session.run_interactive()
    finally:
        if runtime is not None:
            try:
                await runtime.stop()
            except Exception:
                log.debug("stopping the runtime failed", exc_info=True)
        await sandbox.stop()


async def serve_sandbox(host: str, port: int, write: Callable[[str], None] | None = None) -> int:
    """`examdesk sandbox`: the Bot API sandbox alone, until SIGINT / SIGTERM."""
    write = write or (lambda line: print(line, flush=True))
    sandbox = Sandbox()
    await sandbox.start(host, port)
    try:
        token = sandbox.add_bot(username="examdesk_bot", first_name="examdesk")
        write(f"Bot API sandbox listening on {sandbox.url}")
        write(f"  bot token     {token}")
        write(f"  Bot API       {sandbox.url}/bot<token>/<method>")
        write(f"  control API   {sandbox.url}/_sandbox/  (docs/sandbox.md)")
        write("Run the bot against it:")
        write(f"  EXAMDESK_BOT_API_URL={sandbox.url} EXAMDESK_BOT_TOKEN={token} examdesk run")
        write("Ctrl-C stops it.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return 0
    finally:
        await sandbox.stop()
