"""Verification in the chat, end to end over the sandbox: `/verify` with a valid certificate,
a wrong name (the neutral answer), a revoked one, the `verify_<code>` deep link, the usage
without arguments, in English and in Chinese, and the per-user limit after 10 failures."""

from __future__ import annotations

import aiohttp

from storage.db import Database
from tests.e2e.conftest import Harness, exchange
from tests.services.test_verification import (
    CODE,
    NUMBER,
    REVOKED_AT,
    REVOKED_CODE,
    REVOKED_NUMBER,
    add_certificate,
)

NATIONAL = "http://zscx.osta.org.cn/"


async def certify(url: str) -> None:
    """张三丰's valid certificate and Li Lei's revoked one (shipped catalogue's names)."""
    database = Database(url)
    try:
        await add_certificate(
            database,
            telegram_id=501,
            full_name="张三丰",
            number=NUMBER,
            verify_code=CODE,
            direction="production_control",
        )
        await add_certificate(
            database,
            telegram_id=502,
            full_name="Li Lei",
            number=REVOKED_NUMBER,
            verify_code=REVOKED_CODE,
            revoked_at=REVOKED_AT,
        )
    finally:
        await database.dispose()


async def _texts(bot: Harness, user, command: str, payload: str | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["text"] for m in await exchange(bot, user, user.send_command(command, payload))]


async def test_verify_valid_wrong_name_and_revoked_in_english(bot: Harness) -> None:
    await certify(bot.database_url)
    ann = bot.sandbox.user(701, first_name="Ann", language_code="en")

    valid = await _texts(bot, ann, "/verify", f"{NUMBER.lower()} 张 三丰")
    wrong = await _texts(bot, ann, "/verify", f"{NUMBER} 张三")
    unknown = await _texts(bot, ann, "/verify", "RC202701-JUNIOR-9999 张三丰")
    revoked = await _texts(bot, ann, "/verify", f"{REVOKED_NUMBER} LI LEI")

    assert valid == [
        "✅ Certificate found\n"
        "Holder: 张*丰\n"
        f"Certificate number: {NUMBER}\n"
        "Level: Junior (初级)\n"
        "Direction: Smart production management and control\n"
        "Issued on: Sat 20 Mar 2027\n"
        "Status: Valid"
    ]
    neutral = (
        "No matching certificate.\n\n"
        "This bot answers only for certificates issued through this exam centre. Check the "
        "number and the name as printed, or look the certificate up in the national database "
        f"(人力资源和社会保障部 技能人才评价证书全国联网查询): {NATIONAL}"
    )
    assert (wrong, unknown) == ([neutral], [neutral])
    assert revoked == [
        "⛔ Certificate revoked\n"
        "Holder: L* L**\n"
        f"Certificate number: {REVOKED_NUMBER}\n"
        "Level: Junior (初级)\n"
        "Issued on: Sat 20 Mar 2027\n"
        "Status: Revoked on Fri 2 Apr 2027"
    ]
    assert "misconduct" not in revoked[0]


async def test_verify_valid_wrong_name_and_revoked_in_chinese(bot: Harness) -> None:
    await certify(bot.database_url)
    li = bot.sandbox.user(702, first_name="Li", language_code="zh-hans")

    valid = await _texts(bot, li, "/verify", f"{NUMBER} 张三丰")
    wrong = await _texts(bot, li, "/verify", f"{NUMBER} 李四")
    revoked = await _texts(bot, li, "/verify", f"{REVOKED_NUMBER} Li Lei")

    assert valid == [
        "✅ 查到证书\n"
        "持证人：张*丰\n"
        f"证书编号：{NUMBER}\n"
        "等级：初级\n"
        "方向：智能生产管控\n"
        "发证日期：2027年3月20日（周六）\n"
        "状态：有效"
    ]
    assert wrong == [
        "未查到相符的证书。\n\n"
        "本机器人只能查询经本考点颁发的证书。请核对证书编号和姓名，或到全国联网查询平台查询"
        f"（人力资源和社会保障部 技能人才评价证书全国联网查询）：{NATIONAL}"
    ]
    assert revoked[0].splitlines()[0] == "⛔ 证书已撤销"
    assert revoked[0].splitlines()[-1] == "状态：已于2027年4月2日（周五）撤销"


async def test_deep_link_answers_by_code_in_each_language(bot: Harness) -> None:
    await certify(bot.database_url)
    ann = bot.sandbox.user(703, first_name="Ann", language_code="en")
    li = bot.sandbox.user(704, first_name="Li", language_code="zh-hans")

    ann_valid = await _texts(bot, ann, "/start", f"verify_{CODE}")
    li_revoked = await _texts(bot, li, "/start", f"verify_{REVOKED_CODE}")
    forged = await _texts(bot, ann, "/start", "verify_<b>nope</b>")
    plain_start = await _texts(bot, ann, "/start")

    assert ann_valid[0].splitlines()[:2] == ["✅ Certificate found", "Holder: 张*丰"]
    assert len(ann_valid) == 1  # the deep link is not also greeted with the menu
    assert li_revoked[0].splitlines()[-1] == "状态：已于2027年4月2日（周五）撤销"
    assert forged[0].startswith("No matching certificate.")
    assert plain_start[0].startswith("Welcome, Ann!")


async def test_verify_without_arguments_explains_usage_in_each_language(bot: Harness) -> None:
    ann = bot.sandbox.user(705, first_name="Ann", language_code="en")
    li = bot.sandbox.user(706, first_name="Li", language_code="zh-hans")

    ann_usage = await _texts(bot, ann, "/verify")
    li_usage = await _texts(bot, li, "/verify", NUMBER)  # a number without a name

    assert ann_usage[0].splitlines()[:2] == [
        "To check a certificate, send its number and the holder's full name:",
        "/verify NUMBER FULL NAME",
    ]
    assert li_usage[0].splitlines()[:2] == [
        "查询证书，请发送证书编号和持证人姓名：",
        "/verify 证书编号 姓名",
    ]


async def test_verify_refused_after_ten_failures_per_user(bot: Harness) -> None:
    await certify(bot.database_url)
    ann = bot.sandbox.user(707, first_name="Ann", language_code="en")
    li = bot.sandbox.user(708, first_name="Li", language_code="zh-hans")
    for attempt in range(10):
        await _texts(bot, ann, "/verify", f"{NUMBER} wrong{attempt}")

    refused = await _texts(bot, ann, "/verify", f"{NUMBER} 张三丰")
    other_user = await _texts(bot, li, "/verify", f"{NUMBER} 张三丰")

    # The harness clock: 2026-11-26 12:00 UTC = 20:00 China time; the window is 15 minutes.
    assert refused == ["Too many attempts. Try again after 20:15 (China time)."]
    assert other_user[0].startswith("✅ 查到证书")


async def _get(bot: Harness, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(bot.web_url + path, headers=headers) as r:
        return r.status, await r.text(), dict(r.headers)


async def test_page_get_query_answers_and_bad_input_never_fails(bot: Harness) -> None:
    await certify(bot.database_url)

    found = await _get(
        bot, f"/certificates/verify?number={NUMBER}&name=%E5%BC%A0%E4%B8%89%E4%B8%B0"
    )
    half = await _get(bot, f"/certificates/verify?number={NUMBER}&lang=en")
    echoed = await _get(bot, "/certificates/verify?number=%3Cscript%3E&name=%22%3E%3Cb%3E&lang=en")
    odd = [
        await _get(bot, f"/certificates/verify?number={q}&name=x")
        for q in ("%FF%FE", "RC%00X", "%ED%A0%80", "a" * 4000)
    ]

    assert (found[0], "张*丰" in found[1], "有效" in found[1]) == (200, True, True)
    assert found[2]["Cache-Control"] == "no-store"
    assert found[2]["Content-Security-Policy"].startswith("default-src 'none'")
    assert (
        half[0],
        "Enter both the certificate number and the holder&#39;s name." in half[1],
    ) == (
        200,
        True,
    )
    assert echoed[0] == 200
    assert "<script>" not in echoed[1] and "&lt;script&gt;" in echoed[1]
    assert '"><b>' not in echoed[1]
    assert [status for status, _, _ in odd] == [200] * 4
    assert all("未查到相符的证书。" in text for _, text, _ in odd)
