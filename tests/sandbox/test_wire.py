"""Wire format, spec enforcement, faults, rate limits and the /_sandbox/ control API."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from bot.devtools.sandbox import RateLimits, Sandbox, SandboxUser
from bot.devtools.sandbox.ratelimit import RateLimiter


def api(sandbox: Sandbox, token: str, method: str) -> str:
    return f"{sandbox.base_url}{token}/{method}"


async def test_post_form_body_is_decoded_by_spec(
    sandbox: Sandbox, token: str, li: SandboxUser, http: aiohttp.ClientSession
):
    form = {
        "chat_id": str(li.id),
        "text": "42",
        "disable_notification": "true",
        "reply_markup": json.dumps({"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}),
    }
    async with http.post(api(sandbox, token, "sendMessage"), data=form) as resp:
        body = await resp.json()
    assert (resp.status, body["ok"], body["result"]["text"]) == (200, True, "42")
    assert sandbox.calls[-1].params["disable_notification"] is True


async def test_post_json_body_is_accepted(
    sandbox: Sandbox, token: str, li: SandboxUser, http: aiohttp.ClientSession
):
    async with http.post(
        api(sandbox, token, "sendMessage"), json={"chat_id": li.id, "text": "json"}
    ) as resp:
        body = await resp.json()
    assert (resp.status, body["result"]["chat"]["id"]) == (200, li.id)


async def test_get_query_string_is_accepted(
    sandbox: Sandbox, token: str, li: SandboxUser, http: aiohttp.ClientSession
):
    async with http.get(
        api(sandbox, token, "sendmessage"), params={"chat_id": li.id, "text": "q"}
    ) as resp:
        body = await resp.json()
    assert (resp.status, body["result"]["text"], sandbox.calls[-1].method) == (
        200,
        "q",
        "sendMessage",
    )


async def test_post_multipart_upload_is_stored(
    sandbox: Sandbox, token: str, li: SandboxUser, http: aiohttp.ClientSession
):
    form = aiohttp.FormData()
    form.add_field("chat_id", str(li.id))
    form.add_field("document", b"hello", filename="hello.txt", content_type="text/plain")
    async with http.post(api(sandbox, token, "sendDocument"), data=form) as resp:
        body = await resp.json()
    assert (body["result"]["document"]["file_name"], body["result"]["document"]["mime_type"]) == (
        "hello.txt",
        "text/plain",
    )


async def test_call_unknown_method_is_400_method_not_found(
    sandbox: Sandbox, token: str, http: aiohttp.ClientSession
):
    async with http.post(api(sandbox, token, "sendTelepathy")) as resp:
        body = await resp.json()
    assert (resp.status, body) == (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: method not found"},
    )
    assert sandbox.violations[-1].violations == ["unknown method 'sendTelepathy'"]


async def test_call_missing_required_parameter_is_400(
    sandbox: Sandbox, token: str, http: aiohttp.ClientSession
):
    async with http.post(api(sandbox, token, "sendMessage"), data={"chat_id": "1"}) as resp:
        body = await resp.json()
    assert (resp.status, body["description"]) == (400, "Bad Request: message text is empty")
    assert sandbox.violations[-1].method == "sendMessage"


async def test_call_extra_parameter_is_recorded_but_answered(
    bot: Bot, sandbox: Sandbox, li: SandboxUser
):
    await bot.send_message(li.id, "hi", api_kwargs={"colour": "red"})
    assert (sandbox.calls[-1].status, sandbox.violations[-1].violations) == (
        200,
        ["sendMessage: parameter 'colour' is not in the spec"],
    )


async def test_call_unknown_token_is_401(sandbox: Sandbox, http: aiohttp.ClientSession):
    async with http.post(api(sandbox, "1:nope", "getMe")) as resp:
        assert (resp.status, (await resp.json())["description"]) == (401, "Unauthorized")


async def test_inject_fault_429_raises_retry_after(bot: Bot, sandbox: Sandbox, li: SandboxUser):
    sandbox.inject_fault("sendMessage", times=1, kind="429", retry_after=7)
    with pytest.raises(RetryAfter, match="Retry in 7 seconds"):
        await bot.send_message(li.id, "x")
    await bot.send_message(li.id, "y")
    assert sandbox.calls_of("sendMessage")[0].fault == "429"
    assert [m["text"] for m in li.messages()] == ["y"]


async def test_inject_fault_kinds_map_to_telegram_errors(
    bot: Bot, sandbox: Sandbox, li: SandboxUser
):
    sandbox.inject_fault("sendMessage", kind="403")
    sandbox.inject_fault("sendMessage", kind="502")
    sandbox.inject_fault("sendMessage", kind="chat_not_found", chat_id=li.id)
    with pytest.raises(Forbidden):
        await bot.send_message(li.id, "x")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(li.id, "x")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(li.id, "x")
    assert [c.status for c in sandbox.calls_of("sendMessage")] == [403, 502, 400]


async def test_inject_fault_timeout_holds_past_client_timeout(
    sandbox: Sandbox, token: str, li: SandboxUser
):
    sandbox.inject_fault("sendMessage", kind="timeout", delay=2)
    async with Bot(
        token, base_url=sandbox.base_url, request=HTTPXRequest(read_timeout=0.2)
    ) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(li.id, "x")
    assert li.messages() == []


async def test_rate_limit_private_chat_refuses_burst_with_retry_after(
    bot: Bot, sandbox: Sandbox, li: SandboxUser
):
    sandbox.set_rate_limits(RateLimits())
    await bot.send_message(li.id, "first")
    with pytest.raises(RetryAfter, match="Retry in 1 seconds"):
        await bot.send_message(li.id, "second")
    assert sandbox.calls[-1].error == "Too Many Requests: retry after 1"


async def test_rate_limits_are_off_by_default(bot: Bot, li: SandboxUser):
    for i in range(5):
        await bot.send_message(li.id, str(i))
    assert len(li.messages()) == 5


def test_rate_limiter_sender_pacing_at_limit_is_never_refused():
    now = [0.0]
    limiter = RateLimiter(RateLimits(per_bot_per_second=30), clock=lambda: now[0])
    refused = []
    for i in range(300):
        now[0] = i / 30
        refused.append(limiter.acquire("t", i, "private", paid=False))
    assert refused == [None] * 300


def test_rate_limiter_group_allows_twenty_per_minute():
    now = [0.0]
    limiter = RateLimiter(RateLimits(), clock=lambda: now[0])
    results = [limiter.acquire("t", -100, "supergroup", paid=False) for _ in range(21)]
    assert (results[:20], results[20]) == ([None] * 20, 3)


def test_rate_limiter_paid_broadcast_uses_paid_bucket():
    now = [0.0]
    limiter = RateLimiter(RateLimits(), clock=lambda: now[0])
    free = [limiter.acquire("t", i, "private", paid=False) for i in range(31)]
    paid = [limiter.acquire("t", 1000 + i, "private", paid=True) for i in range(100)]
    assert (free[-1], set(paid)) == (1, {None})


async def test_control_api_drives_user_and_reads_messages(
    bot: Bot, sandbox: Sandbox, http: aiohttp.ClientSession
):
    async with http.post(
        f"{sandbox.url}/_sandbox/users/2001/send", json={"command": "/start", "first_name": "Wang"}
    ) as resp:
        sent = await resp.json()
    update = (await bot.get_updates())[0]
    await bot.send_message(2001, "Welcome")
    async with http.get(f"{sandbox.url}/_sandbox/chats/2001/messages") as resp:
        messages = (await resp.json())["messages"]
    async with http.get(f"{sandbox.url}/_sandbox/calls", params={"method": "sendMessage"}) as resp:
        calls = (await resp.json())["calls"]
    assert (sent["update"]["update_id"], update.message.from_user.first_name) == (
        update.update_id,
        "Wang",
    )
    assert ([m["text"] for m in messages], [c["params"]["text"] for c in calls]) == (
        ["Welcome"],
        ["Welcome"],
    )


async def test_control_api_sets_faults_and_rate_limits(
    bot: Bot, sandbox: Sandbox, li: SandboxUser, http: aiohttp.ClientSession
):
    async with http.post(
        f"{sandbox.url}/_sandbox/faults", json={"method": "sendMessage", "kind": "500"}
    ) as resp:
        assert resp.status == 200
    async with http.post(
        f"{sandbox.url}/_sandbox/rate_limits", json={"per_private_chat_per_second": 5}
    ) as resp:
        assert (await resp.json())["rate_limits"]["per_private_chat_per_second"] == 5
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(li.id, "x")
    async with http.get(f"{sandbox.url}/_sandbox/violations") as resp:
        assert (await resp.json())["calls"] == []
    assert sandbox.rate_limits == RateLimits(per_private_chat_per_second=5)


async def test_many_messages_keep_per_chat_index(bot: Bot, sandbox: Sandbox):
    users = [sandbox.user(5000 + i) for i in range(20)]
    await asyncio.gather(*(bot.send_message(u.id, f"n{j}") for u in users for j in range(10)))
    assert {len(u.messages()) for u in users} == {10}
    assert len(sandbox.calls_of("sendMessage")) == 200
