"""Bot API sandbox: simulated Telegram users and chats (what tests and `examdesk chat` drive).

A `SandboxUser` acts (send_text, send_command, press, share_contact, send_photo,
send_document, send_sticker, pay, block_bot): each action builds the Update Telegram
would build and queues it for the bot (polling or webhook), returning the update dict.
Reading (messages, last_message, wait_for_message, inline_buttons) sees the bot's
messages as the API returned them, kept current after edits and deletes.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .formatting import detect_entities, utf16_len
from .media import image_size
from .methods import now
from .state import ChatState, PaymentDeclined, SandboxError

if TYPE_CHECKING:
    from .server import Sandbox
    from .state import BotState

Message = dict[str, Any]


def _keyboard_buttons(msg: Message) -> list[dict[str, Any]]:
    rows = msg.get("reply_markup", {}).get("inline_keyboard", [])
    return [b for row in rows for b in row]


class SandboxChat:
    """A handle on one chat (group, supergroup or a private chat)."""

    def __init__(self, sandbox: Sandbox, state: ChatState) -> None:
        self.sandbox = sandbox
        self.state = state

    @property
    def id(self) -> int:
        return self.state.id

    @property
    def chat(self) -> dict[str, Any]:
        """The Chat object."""
        return self.state.chat

    def messages(self) -> list[Message]:
        """The bot's messages in this chat, oldest first."""
        return self.state.bot_messages()

    def last_message(self) -> Message | None:
        """The bot's latest message here, or None."""
        ids = self.state.bot_message_ids
        return self.state.messages[next(reversed(ids))] if ids else None


class SandboxUser:
    """A simulated user talking to one bot (the sandbox's first bot unless `bot` given)."""

    def __init__(self, sandbox: Sandbox, user: dict[str, Any], bot_token: str | None) -> None:
        self.sandbox = sandbox
        self.user = user
        self._bot_token = bot_token

    @property
    def id(self) -> int:
        return self.user["id"]

    @property
    def chat(self) -> SandboxChat:
        """The private chat with the bot."""
        return SandboxChat(self.sandbox, self.sandbox.chats[self.id])

    @property
    def bot(self) -> BotState:
        return self.sandbox.bot(self._bot_token)

    @property
    def blocked(self) -> bool:
        return self.sandbox.chats[self.id].blocked

    def _chat(self, chat: SandboxChat | int | None) -> ChatState:
        if chat is None:
            return self.sandbox.chats[self.id]
        return chat.state if isinstance(chat, SandboxChat) else self.sandbox.chat_state(chat)

    def _send(self, chat: ChatState, content: dict[str, Any]) -> dict[str, Any]:
        """Post a message as this user and queue the `message` update."""
        if chat.id == self.id and chat.blocked:
            # Writing to a blocked bot unblocks it, as in the Telegram apps.
            self.unblock_bot()
        msg = self.sandbox.store_user_message(chat, self.user, content)
        return self.sandbox.enqueue(self.bot, "message", msg, chat)

    # --- actions -------------------------------------------------------------------------

    async def send_text(
        self, text: str, chat: SandboxChat | int | None = None, reply_to: int | None = None
    ) -> dict[str, Any]:
        """Type `text` (entities detected as Telegram does)."""
        state = self._chat(chat)
        content: dict[str, Any] = {"text": text}
        entities = detect_entities(text)
        if entities:
            content["entities"] = entities
        if reply_to is not None:
            replied = state.messages.get(reply_to)
            if replied is None:
                raise SandboxError(f"no message {reply_to} to reply to")
            content["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        return self._send(state, content)

    async def send_command(
        self, command: str, payload: str | None = None, chat: SandboxChat | int | None = None
    ) -> dict[str, Any]:
        """Send `/command [payload]` with the bot_command entity at offset 0."""
        if not command.startswith("/"):
            command = "/" + command
        text = f"{command} {payload}" if payload else command
        content = {
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}],
        }
        return self._send(self._chat(chat), content)

    async def press(
        self, button: str, message_id: int | None = None, chat: SandboxChat | int | None = None
    ) -> dict[str, Any]:
        """Press an inline button (by text or callback_data) of the latest
        keyboard or `message_id`."""
        state = self._chat(chat)
        if message_id is None:
            msg = state.last_bot_message_with_keyboard()
            if msg is None:
                raise SandboxError("no bot message with an inline keyboard in this chat")
        else:
            msg = state.messages.get(message_id)
            if msg is None or message_id not in state.bot_message_ids:
                raise SandboxError(f"no bot message {message_id} in this chat")
        for b in _keyboard_buttons(msg):
            if button in (b.get("text"), b.get("callback_data")):
                if "callback_data" not in b:
                    raise SandboxError(
                        f"button {button!r} has no callback_data (it is {sorted(b)})"
                    )
                return self._callback(state, msg, b["callback_data"])
        shown = [(b.get("text"), b.get("callback_data")) for b in _keyboard_buttons(msg)]
        raise SandboxError(
            f"no button {button!r} on message {msg['message_id']}; buttons: {shown}"
        )

    async def press_data(
        self, message_id: int, data: str, chat: SandboxChat | int | None = None
    ) -> dict[str, Any]:
        """Send a callback_query with arbitrary (possibly forged) data for `message_id`."""
        state = self._chat(chat)
        return self._callback(state, state.messages.get(message_id), data)

    def _callback(self, chat: ChatState, msg: Message | None, data: str) -> dict[str, Any]:
        query: dict[str, Any] = {
            "id": str(secrets.randbits(63)),
            "from": self.user,
            "chat_instance": str((chat.id * 2654435761) % (1 << 63)),
            "data": data,
        }
        if msg is not None:
            query["message"] = dict(msg)
        update = self.sandbox.enqueue(self.bot, "callback_query", query, chat)
        self.bot.callback_queries[query["id"]] = {"update": update, "answer": None}
        return update

    async def share_contact(
        self,
        phone_number: str,
        own: bool = True,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> dict[str, Any]:
        """Share a contact (own=True: this user's, with user_id, as request_contact sends)."""
        contact: dict[str, Any] = {"phone_number": phone_number}
        if own:
            contact["first_name"] = first_name or self.user["first_name"]
            if last_name or self.user.get("last_name"):
                contact["last_name"] = last_name or self.user["last_name"]
            contact["user_id"] = self.id
        else:
            contact["first_name"] = first_name or "Contact"
            if last_name:
                contact["last_name"] = last_name
        return self._send(self._chat(None), {"contact": contact})

    async def send_photo(
        self,
        data: bytes,
        width: int | None = None,
        height: int | None = None,
        caption: str | None = None,
        chat: SandboxChat | int | None = None,
    ) -> dict[str, Any]:
        """Send a photo; size read from the PNG/JPEG/GIF/WebP header when not given."""
        if width is None or height is None:
            dims = image_size(data)
            if dims is None:
                raise SandboxError("cannot read the image size; pass width= and height=")
            width, height = dims
        content: dict[str, Any] = {"photo": self.sandbox.store_photo(data, width, height)}
        if caption:
            content["caption"] = caption
        return self._send(self._chat(chat), content)

    async def send_document(
        self,
        data: bytes,
        file_name: str,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        chat: SandboxChat | int | None = None,
    ) -> dict[str, Any]:
        """Send a file as a document."""
        stored = self.sandbox.store_file(data, "document", mime_type, file_name)
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        content: dict[str, Any] = {"document": document}
        if caption:
            content["caption"] = caption
        return self._send(self._chat(chat), content)

    async def send_sticker(
        self, emoji: str = "👍", chat: SandboxChat | int | None = None
    ) -> dict[str, Any]:
        """Send a (static, 512×512) sticker."""
        stored = self.sandbox.store_file(
            b"RIFF\x00\x00\x00\x00WEBP", "sticker", "image/webp", "sticker.webp"
        )
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": len(stored.data),
        }
        return self._send(self._chat(chat), {"sticker": sticker})

    async def pay(
        self, invoice_message_id: int, total_amount: int | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Pay an invoice: pre_checkout_query, then (if the bot says ok) successful_payment.

        Returns the successful_payment message update; raises PaymentDeclined with the
        bot's error_message, or when the bot does not answer within `timeout` seconds.
        """
        state = self._chat(None)
        invoice = self.sandbox.invoice(state.id, invoice_message_id)
        if invoice is None:
            raise SandboxError(f"message {invoice_message_id} is not an invoice in this chat")
        amount = invoice["total_amount"] if total_amount is None else total_amount
        query_id = str(secrets.randbits(63))
        future: asyncio.Future[tuple[bool, str | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self.bot.pre_checkouts[query_id] = future
        self.sandbox.enqueue(
            self.bot,
            "pre_checkout_query",
            {
                "id": query_id,
                "from": self.user,
                "currency": invoice["currency"],
                "total_amount": amount,
                "invoice_payload": invoice["payload"],
            },
            state,
        )
        try:
            ok, error_message = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.bot.pre_checkouts.pop(query_id, None)
            raise PaymentDeclined(
                f"the bot did not answer the pre-checkout query within {timeout}s"
            ) from None
        if not ok:
            raise PaymentDeclined(error_message)
        payment = {
            "currency": invoice["currency"],
            "total_amount": amount,
            "invoice_payload": invoice["payload"],
            "telegram_payment_charge_id": "tg_" + secrets.token_hex(12),
            "provider_payment_charge_id": "sandbox_" + secrets.token_hex(12),
        }
        if invoice["currency"] == "XTR":  # refundStarPayment finds it here
            self.sandbox.star_charges[payment["telegram_payment_charge_id"]] = {
                "user_id": self.id,
                "token": self.bot.token,
                "total_amount": amount,
                "refunded": False,
            }
        return self._send(state, {"successful_payment": payment})

    def block_bot(self) -> dict[str, Any]:
        """Block the bot: later sends to this user get 403; the bot gets my_chat_member."""
        return self._set_blocked(True)

    def unblock_bot(self) -> dict[str, Any]:
        """Unblock the bot (my_chat_member back to member)."""
        return self._set_blocked(False)

    def _set_blocked(self, blocked: bool) -> dict[str, Any]:
        state = self.sandbox.chats[self.id]
        state.blocked = blocked
        me = {"user": self.bot.user, "status": "member"}
        gone = {"user": self.bot.user, "status": "kicked", "until_date": 0}
        member_update = {
            "chat": state.chat,
            "from": self.user,
            "date": now(),
            "old_chat_member": me if blocked else gone,
            "new_chat_member": gone if blocked else me,
        }
        return self.sandbox.enqueue(self.bot, "my_chat_member", member_update, state)

    # --- reading -------------------------------------------------------------------------

    def messages(self) -> list[Message]:
        """The bot's messages in the private chat (current versions), oldest first."""
        return self.sandbox.chats[self.id].bot_messages()

    def last_message(self) -> Message | None:
        """The bot's latest message in the private chat, or None."""
        return self.chat.last_message()

    async def wait_for_message(
        self,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 5.0,
        after: int | dict[str, Any] | None = None,
        chat: SandboxChat | int | None = None,
    ) -> Message:
        """Wait for a bot message (sent or edited) matching `predicate`.

        Only events after `after` count: an update returned by an action, or
        `sandbox.mark()`; None means after this user's latest action in that chat.
        """
        state = self._chat(chat)
        baseline = self.sandbox._baseline(state, after, state.last_user_seq)
        return await self.sandbox._wait_message(state, predicate, timeout, baseline)

    def inline_buttons(self, message: Message | int | None = None) -> list[tuple[str, str | None]]:
        """(text, callback_data or url) of every inline button, rows flattened.

        Default message: the bot's latest message with an inline keyboard.
        """
        state = self.sandbox.chats[self.id]
        if message is None:
            message = state.last_bot_message_with_keyboard()
        elif isinstance(message, int):
            message = state.messages.get(message)
        if message is None:
            return []
        return [
            (b["text"], b.get("callback_data", b.get("url"))) for b in _keyboard_buttons(message)
        ]

    def reply_keyboard(self) -> list[list[dict[str, Any]]] | None:
        """The custom reply keyboard the bot shows in the private chat, or None."""
        markup = self.sandbox.chats[self.id].reply_keyboard
        return markup["keyboard"] if markup else None

    def callback_answer(self, update: dict[str, Any]) -> dict[str, Any] | None:
        """The bot's answerCallbackQuery for a press (text, show_alert, url), or None yet."""
        query = self.bot.callback_queries.get(update["callback_query"]["id"])
        return query["answer"] if query else None

    async def wait_for_callback_answer(
        self, update: dict[str, Any], timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait until the bot answers the callback query of a press."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (answer := self.callback_answer(update)) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"callback query not answered within {timeout}s")
            await self.sandbox._pulse.wait(remaining)
        return answer

    def visible_commands(self) -> list[dict[str, str]]:
        """The command menu this user sees (Telegram's scope and language fallback order)."""
        lang = self.user.get("language_code", "")
        scopes = [
            {"type": "chat", "chat_id": self.id},
            {"type": "all_private_chats"},
            {"type": "default"},
        ]
        for scope in scopes:
            for code in ([lang, lang.split("-")[0]] if lang else []) + [""]:
                found = self.sandbox.commands(scope, code, self._bot_token)
                if found:
                    return found
        return []
