"""Bot API sandbox: the emulated Bot API methods.

Each method is `fn(sandbox, bot, params)` (sync or async) registered under its
lower-cased name; `params` are already decoded by the spec. Methods return the `result`
object or raise `ApiError` with Telegram's wording. Methods of the spec that are not
listed here answer True when the spec says they return a Boolean (the call is still
recorded and checked), and 400 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .formatting import ParseError, parse, strip_text, utf16_len
from .media import image_size
from .spec import UploadedFile
from .state import ApiError, BotState, ChatState, Webhook, bad_request

if TYPE_CHECKING:
    from .server import Sandbox

Params = dict[str, Any]
METHODS: dict[str, Callable[..., Any]] = {}

QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
INLINE_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "web_app",
    "copy_text",
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class Described(NamedTuple):
    """A result that Telegram answers with an extra `description` (setWebhook & co)."""

    result: Any
    description: str


def api(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a method implementation under its (case-insensitive) Bot API name."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        METHODS[name.lower()] = fn
        return fn

    return register


# --- helpers ---------------------------------------------------------------------------


def _formatted(text: str, p: Params, mode_key: str, entities_key: str) -> tuple[str, list[Any]]:
    """Apply parse_mode / explicit entities and Telegram's whitespace trimming."""
    try:
        plain, entities = parse(text, p.get(mode_key))
    except ParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    if entities_key in p:
        entities = list(p[entities_key])
    return strip_text(plain, entities)


def _check_markup(
    sb: Sandbox, chat: ChatState, markup: dict[str, Any] | None, inline_only: bool = False
) -> dict[str, Any] | None:
    """Validate reply_markup; return what goes on the Message (inline keyboards only)."""
    if markup is None:
        return None
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'can\'t parse inline keyboard button: field "inline_keyboard" must be an '
                "Array of Arrays"
            )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
                if not any(k in button for k in INLINE_ACTIONS):
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
                if "callback_data" in button:
                    size = len(str(button["callback_data"]).encode())
                    if not 1 <= size <= 64:
                        raise bad_request("BUTTON_DATA_INVALID")
                if "url" in button and not str(button["url"]).strip():
                    raise bad_request("BUTTON_URL_INVALID")
        return {"inline_keyboard": rows} if any(rows) else None
    if inline_only:
        raise bad_request("can't parse inline keyboard markup JSON object")
    if "keyboard" in markup:
        if not isinstance(markup["keyboard"], list):
            raise bad_request("can't parse reply keyboard markup JSON object")
        chat.reply_keyboard = markup
    elif markup.get("remove_keyboard"):
        chat.reply_keyboard = None
    elif "force_reply" not in markup:
        raise bad_request("can't parse reply keyboard markup JSON object")
    return None


def _reply_to(chat: ChatState, p: Params) -> dict[str, Any] | None:
    """The message a reply_parameters / reply_to_message_id points at (copy, one level)."""
    rp = p.get("reply_parameters")
    mid = rp.get("message_id") if isinstance(rp, dict) else p.get("reply_to_message_id")
    if mid is None:
        return None
    msg = chat.messages.get(int(mid))
    if msg is None:
        if isinstance(rp, dict) and rp.get("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")
    return {k: v for k, v in msg.items() if k != "reply_to_message"}


def _common(sb: Sandbox, chat: ChatState, p: Params, content: dict[str, Any]) -> dict[str, Any]:
    """Fill reply_to_message, reply_markup and flags shared by the send* methods."""
    markup = _check_markup(sb, chat, p.get("reply_markup"))
    reply = _reply_to(chat, p)
    if reply:
        content["reply_to_message"] = reply
    if p.get("protect_content"):
        content["has_protected_content"] = True
    if markup:
        content["reply_markup"] = markup
    return content


def _caption(p: Params, content: dict[str, Any]) -> None:
    if "caption" not in p:
        return
    caption, entities = _formatted(p["caption"], p, "parse_mode", "caption_entities")
    if len(caption) > 1024:
        raise bad_request("message caption is too long")
    if caption:
        content["caption"] = caption
    if entities:
        content["caption_entities"] = entities


def _edit_target(sb: Sandbox, p: Params) -> tuple[ChatState, dict[str, Any]]:
    if "inline_message_id" in p:
        raise bad_request("MESSAGE_ID_INVALID")
    if "chat_id" not in p:
        raise bad_request("chat_id is empty")
    if "message_id" not in p:
        raise bad_request("message identifier is not specified")
    chat = sb.resolve_chat(p["chat_id"])
    msg = chat.messages.get(p["message_id"])
    if msg is None:
        raise bad_request("message to edit not found")
    if p["message_id"] not in chat.bot_message_ids:
        raise bad_request("message can't be edited")
    return chat, msg


# --- updates and webhook ---------------------------------------------------------------


@api("getMe")
def get_me(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    return bot.user


@api("logOut")
@api("close")
def log_out(sb: Sandbox, bot: BotState, p: Params) -> bool:
    return True


@api("getUpdates")
async def get_updates(sb: Sandbox, bot: BotState, p: Params) -> list[dict[str, Any]]:
    if bot.webhook is not None:
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    offset = p.get("offset", 0)
    if offset > 0:
        sb.confirm_updates(bot, offset)
    elif offset < 0:
        while len(bot.updates) > -offset:
            bot.updates.popleft()
    if "allowed_updates" in p:
        sb.set_allowed_updates(bot, p["allowed_updates"])
    limit = min(100, max(1, p.get("limit", 100)))
    timeout = max(0, p.get("timeout", 0))
    # Telegram answers an older long poll with 409 when a newer one arrives.
    bot.poll_generation += 1
    generation = bot.poll_generation
    bot.update_pulse.fire()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if bot.updates:
            return [bot.updates[i] for i in range(min(limit, len(bot.updates)))]
        if generation != bot.poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        remaining = deadline - loop.time()
        if remaining <= 0 or sb.closing:
            return []
        await bot.update_pulse.wait(remaining)


@api("setWebhook")
def set_webhook(sb: Sandbox, bot: BotState, p: Params) -> Described:
    url = p.get("url", "")
    if not url:
        return delete_webhook(sb, bot, p)
    if not re.match(r"^https?://", url):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.get("secret_token")
    if secret is not None and not _SECRET_RE.match(secret):
        raise bad_request("bad webhook: secret token contains unallowed characters")
    if p.get("drop_pending_updates"):
        bot.updates.clear()
    if "allowed_updates" in p:
        sb.set_allowed_updates(bot, p["allowed_updates"])
    old = bot.webhook
    if old is not None and old.url == url and old.secret_token == secret:
        return Described(True, "Webhook is already set")
    if old is not None and old.task is not None:
        old.task.cancel()
    bot.webhook = Webhook(
        url=url,
        secret_token=secret,
        max_connections=p.get("max_connections", 40),
        ip_address=p.get("ip_address"),
    )
    sb.start_webhook_delivery(bot)
    return Described(True, "Webhook was set")


@api("deleteWebhook")
def delete_webhook(sb: Sandbox, bot: BotState, p: Params) -> Described:
    if p.get("drop_pending_updates"):
        bot.updates.clear()
    if bot.webhook is None:
        return Described(True, "Webhook is already deleted")
    if bot.webhook.task is not None:
        bot.webhook.task.cancel()
    bot.webhook = None
    return Described(True, "Webhook was deleted")


@api("getWebhookInfo")
def get_webhook_info(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    hook = bot.webhook
    info: dict[str, Any] = {
        "url": hook.url if hook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.updates),
    }
    if hook:
        info["max_connections"] = hook.max_connections
        if hook.ip_address:
            info["ip_address"] = hook.ip_address
        if hook.last_error_date:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        if bot.allowed_updates_explicit:
            info["allowed_updates"] = sorted(bot.allowed_updates)
    return info


# --- messages --------------------------------------------------------------------------


@api("sendMessage")
def send_message(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat = sb.target_chat(p["chat_id"])
    text, entities = _formatted(p["text"], p, "parse_mode", "entities")
    if not text:
        raise bad_request("message text is empty")
    if utf16_len(text) > 4096:
        raise bad_request("message is too long")
    content: dict[str, Any] = {"text": text}
    if entities:
        content["entities"] = entities
    if "link_preview_options" in p:
        content["link_preview_options"] = p["link_preview_options"]
    return sb.store_bot_message(bot, chat, _common(sb, chat, p, content))


def _point(p: Params) -> dict[str, float] | None:
    """The Location of a sendLocation / sendVenue call; None when off the globe (WGS-84)."""
    latitude, longitude = p["latitude"], p["longitude"]
    if not (abs(latitude) <= 90 and abs(longitude) <= 180):  # NaN fails too
        return None
    return {"latitude": latitude, "longitude": longitude}


@api("sendLocation")
def send_location(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat = sb.target_chat(p["chat_id"])
    location = _point(p)
    if location is None:
        raise bad_request("wrong location specified")
    if "horizontal_accuracy" in p and not 0 <= p["horizontal_accuracy"] <= 1500:
        raise bad_request("wrong location specified")
    return sb.store_bot_message(bot, chat, _common(sb, chat, p, {"location": location}))


@api("sendVenue")
def send_venue(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat = sb.target_chat(p["chat_id"])
    location = _point(p)
    if location is None:
        raise bad_request("wrong venue location specified")
    venue: dict[str, Any] = {"location": location, "title": p["title"], "address": p["address"]}
    for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
        if key in p:
            venue[key] = p[key]
    # Telegram sets `location` beside `venue` on the Message, for older clients.
    content = {"venue": venue, "location": location}
    return sb.store_bot_message(bot, chat, _common(sb, chat, p, content))


@api("editMessageText")
def edit_message_text(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat, msg = _edit_target(sb, p)
    if "text" not in msg:
        raise bad_request("there is no text in the message to edit")
    text, entities = _formatted(p.get("text", ""), p, "parse_mode", "entities")
    if not text:
        raise bad_request("message text is empty")
    if utf16_len(text) > 4096:
        raise bad_request("MESSAGE_TOO_LONG")
    # Editing without reply_markup removes the inline keyboard, as on Telegram.
    markup = _check_markup(sb, chat, p.get("reply_markup"), inline_only=True)
    new = {"text": text, "entities": entities or None, "reply_markup": markup}
    return sb.edit_bot_message(chat, msg, new)


@api("editMessageCaption")
def edit_message_caption(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat, msg = _edit_target(sb, p)
    if "text" in msg:
        raise bad_request("there is no caption in the message to edit")
    content: dict[str, Any] = {}
    _caption({**p, "caption": p.get("caption", "")}, content)
    markup = _check_markup(sb, chat, p.get("reply_markup"), inline_only=True)
    new = {
        "caption": content.get("caption"),
        "caption_entities": content.get("caption_entities"),
        "reply_markup": markup,
    }
    return sb.edit_bot_message(chat, msg, new)


@api("editMessageReplyMarkup")
def edit_message_reply_markup(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat, msg = _edit_target(sb, p)
    markup = _check_markup(sb, chat, p.get("reply_markup"), inline_only=True)
    return sb.edit_bot_message(chat, msg, {"reply_markup": markup})


@api("deleteMessage")
def delete_message(sb: Sandbox, bot: BotState, p: Params) -> bool:
    chat = sb.resolve_chat(p["chat_id"])
    if not sb.delete_message(chat, p["message_id"]):
        raise bad_request("message to delete not found")
    return True


@api("deleteMessages")
def delete_messages(sb: Sandbox, bot: BotState, p: Params) -> bool:
    chat = sb.resolve_chat(p["chat_id"])
    for mid in p["message_ids"]:
        sb.delete_message(chat, mid)
    return True


@api("sendChatAction")
def send_chat_action(sb: Sandbox, bot: BotState, p: Params) -> bool:
    chat = sb.target_chat(p["chat_id"])
    if p["action"] not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.last_action = p["action"]
    return True


@api("getChat")
def get_chat(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat = sb.resolve_chat(p["chat_id"])
    return {
        **chat.chat,
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


@api("answerCallbackQuery")
def answer_callback_query(sb: Sandbox, bot: BotState, p: Params) -> bool:
    query = bot.callback_queries.get(p["callback_query_id"])
    if query is None or query["answer"] is not None:
        raise bad_request(QUERY_TOO_OLD)
    if len(p.get("text", "")) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query["answer"] = {k: p[k] for k in ("text", "show_alert", "url", "cache_time") if k in p}
    sb.activity()
    return True


# --- files -----------------------------------------------------------------------------


def _input_file(
    sb: Sandbox, value: Any, attachments: dict[str, UploadedFile], kind: str
) -> tuple[Any, UploadedFile | None]:
    """Resolve an InputFile-or-String: (existing stored file, None) or (None, upload)."""
    if isinstance(value, UploadedFile):
        return None, value
    if value.startswith("attach://"):
        part = attachments.get(value[len("attach://") :])
        if part is None:
            raise bad_request(f"{kind} not found: wrong attach:// reference")
        return None, part
    if value.startswith(("http://", "https://")):
        # The real server downloads the URL; the sandbox records an empty placeholder.
        name = value.rsplit("/", 1)[-1] or "file"
        return None, UploadedFile(kind, name, None, b"")
    stored = sb.files.get(value)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    return stored, None


@api("sendPhoto")
def send_photo(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat = sb.target_chat(p["chat_id"])
    stored, upload = _input_file(sb, p["photo"], p.get("__attachments__", {}), "photo")
    if stored is not None:
        sizes = sb.photo_sets.get(stored.file_id)
        if sizes is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
    else:
        assert upload is not None
        dims = image_size(upload.data) if upload.data else (320, 320)
        if dims is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        sizes = sb.store_photo(upload.data, *dims)
    content: dict[str, Any] = {"photo": sizes}
    _caption(p, content)
    return sb.store_bot_message(bot, chat, _common(sb, chat, p, content))


@api("sendDocument")
def send_document(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat = sb.target_chat(p["chat_id"])
    stored, upload = _input_file(sb, p["document"], p.get("__attachments__", {}), "document")
    if stored is None:
        assert upload is not None
        stored = sb.store_file(upload.data, "document", upload.content_type, upload.filename)
    document = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if stored.file_name:
        document["file_name"] = stored.file_name
    if stored.mime_type:
        document["mime_type"] = stored.mime_type
    document["file_size"] = len(stored.data)
    content: dict[str, Any] = {"document": document}
    _caption(p, content)
    return sb.store_bot_message(bot, chat, _common(sb, chat, p, content))


@api("getFile")
def get_file(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    stored = sb.files.get(p["file_id"])
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > 20 * 1024 * 1024:
        raise bad_request("file is too big")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "file_path": stored.file_path,
    }


# --- commands and menu -----------------------------------------------------------------


def scope_key(scope: dict[str, Any] | None) -> str:
    """Canonical key of a BotCommandScope (chat ids as ints)."""
    scope = dict(scope or {"type": "default"})
    if "chat_id" in scope and re.match(r"^-?\d+$", str(scope["chat_id"])):
        scope["chat_id"] = int(scope["chat_id"])
    return json.dumps(scope, sort_keys=True)


@api("setMyCommands")
def set_my_commands(sb: Sandbox, bot: BotState, p: Params) -> bool:
    commands = p["commands"]
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    for c in commands:
        if not _COMMAND_RE.match(str(c.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(c.get("description", "")).strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    key = (scope_key(p.get("scope")), p.get("language_code", ""))
    if commands:
        bot.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
    else:
        bot.commands.pop(key, None)
    return True


@api("getMyCommands")
def get_my_commands(sb: Sandbox, bot: BotState, p: Params) -> list[dict[str, str]]:
    return bot.commands.get((scope_key(p.get("scope")), p.get("language_code", "")), [])


@api("deleteMyCommands")
def delete_my_commands(sb: Sandbox, bot: BotState, p: Params) -> bool:
    bot.commands.pop((scope_key(p.get("scope")), p.get("language_code", "")), None)
    return True


@api("setChatMenuButton")
def set_chat_menu_button(sb: Sandbox, bot: BotState, p: Params) -> bool:
    chat_id = p.get("chat_id")
    if chat_id is not None:
        sb.resolve_chat(chat_id)
    button = p.get("menu_button") or {"type": "default"}
    if button.get("type") not in ("commands", "web_app", "default"):
        raise bad_request("can't parse menu button: unsupported type")
    bot.menu_buttons[chat_id] = button
    return True


@api("getChatMenuButton")
def get_chat_menu_button(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    button = bot.menu_buttons.get(p.get("chat_id"))
    if button is None or button.get("type") == "default":
        button = bot.menu_buttons.get(None)
    if button is None or button.get("type") == "default":
        return {"type": "commands"}
    return button


# --- payments --------------------------------------------------------------------------


@api("sendInvoice")
def send_invoice(sb: Sandbox, bot: BotState, p: Params) -> dict[str, Any]:
    chat = sb.target_chat(p["chat_id"])
    currency = p["currency"]
    if not re.match(r"^[A-Z]{3}$", currency):
        raise bad_request("CURRENCY_INVALID")
    if currency != "XTR" and not p.get("provider_token"):
        raise bad_request("PAYMENT_PROVIDER_INVALID")
    prices = p["prices"]
    if not prices or any(not isinstance(x.get("amount"), int) for x in prices):
        raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
    if not 1 <= len(p["payload"].encode()) <= 128:
        raise bad_request("INVOICE_PAYLOAD_INVALID")
    if not p["title"] or not p["description"]:
        raise bad_request("INVOICE_TITLE_EMPTY" if not p["title"] else "INVOICE_DESCRIPTION_EMPTY")
    total = sum(x["amount"] for x in prices)
    invoice = {
        "title": p["title"],
        "description": p["description"],
        "start_parameter": p.get("start_parameter", ""),
        "currency": currency,
        "total_amount": total,
    }
    msg = sb.store_bot_message(bot, chat, _common(sb, chat, p, {"invoice": invoice}))
    sb.invoices[(chat.id, msg["message_id"])] = {
        **invoice,
        "payload": p["payload"],
        "prices": prices,
        "provider_token": p.get("provider_token"),
        "params": dict(p),
    }
    return msg


@api("answerPreCheckoutQuery")
def answer_pre_checkout_query(sb: Sandbox, bot: BotState, p: Params) -> bool:
    future = bot.pre_checkouts.pop(p["pre_checkout_query_id"], None)
    if future is None or future.done():
        raise bad_request(QUERY_TOO_OLD)
    if not p["ok"] and not p.get("error_message"):
        raise bad_request("ERROR_MESSAGE_EMPTY")
    future.set_result((bool(p["ok"]), p.get("error_message")))
    return True


@api("refundStarPayment")
def refund_star_payment(sb: Sandbox, bot: BotState, p: Params) -> bool:
    """Give a Stars payment back, once, to the user who paid it, as Telegram does: the
    errors are Telegram's (an empty, unknown or other bot's charge, another user, a charge
    refunded before). Telegram's `refunded_payment` service message is not emulated."""
    charge_id = p["telegram_payment_charge_id"]
    if not charge_id:
        raise bad_request("CHARGE_ID_EMPTY")
    charge = sb.star_charges.get(charge_id)
    if charge is None or charge["token"] != bot.token:
        raise bad_request("CHARGE_NOT_FOUND")
    if charge["user_id"] != p["user_id"]:
        raise bad_request("USER_ID_INVALID")
    if charge["refunded"]:
        raise bad_request("CHARGE_ALREADY_REFUNDED")
    charge["refunded"] = True
    return True


def now() -> int:
    """Unix time as Telegram stamps `date`."""
    return int(time.time())
