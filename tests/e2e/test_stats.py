"""The day's figures end to end: `/stats` from staff in English and in Chinese gets the text
and the chart as a photo (a PNG), so does a member with only the check-in role, and a
candidate gets no figures; the daily digest reaches the staff chat once for a day, at the
catalogue's time (08:00 in Shanghai), however often the tick runs and across a restart.

The harness clock starts at 2026-11-26 12:00 UTC (20:00 in Shanghai); the shipped
catalogue's session 2027-01 (exam Sat 9 Jan 2027) is ahead.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bot.domain.roles import Role
from tests.e2e.conftest import STAFF_CHAT_ID, STAFF_ID, STAFF_ID_2, Harness, exchange
from tests.e2e.test_reminders import paid_registration, run_job

PNG = b"\x89PNG\r\n\x1a\n"


def _photo_bytes(bot: Harness, message: dict[str, Any]) -> bytes:
    return bot.sandbox.files[message["photo"][-1]["file_id"]].data


async def _stats(bot: Harness, user: Any) -> tuple[list[str], dict[str, Any]]:
    """The figures' lines and the chart message `/stats` gets."""
    got = await exchange(bot, user, user.send_command("/stats"))
    # (a notice from the outbox, such as "you were granted a role", may arrive meanwhile)
    text, chart = [m for m in got if m.get("text", "").startswith("📊") or "photo" in m]
    assert "photo" in chart
    assert _photo_bytes(bot, chart)[:8] == PNG
    return text["text"].splitlines(), chart


async def test_stats_shows_figures_and_chart_in_both_languages(bot: Harness) -> None:
    candidate = bot.sandbox.user(611, first_name="Ann", language_code="en")
    await exchange(bot, candidate, candidate.send_command("/start"))
    await paid_registration(bot.database_url, 611)
    staff_en = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="en")
    staff_zh = bot.sandbox.user(STAFF_ID_2, first_name="职员", language_code="zh-hans")

    lines_en, chart_en = await _stats(bot, staff_en)
    lines_zh, chart_zh = await _stats(bot, staff_zh)

    assert lines_en[0] == "📊 Figures at Thu 26 Nov 2026, 20:00 (China time)"
    session = lines_en.index("🗓 2027-01 · exam Sat 9 Jan 2027")
    assert lines_en[session + 2 : session + 6] == [
        "Waitlist: 0",
        "Unpaid: 0 · deadline Sun 27 Dec 2026, 06:00 (China time)",
        "Receipts waiting: 0 · refunds open: 0",
        "Check-in: 0 of 1 present",
    ]
    assert lines_en[-1] == "Last 30 days: 0 registrations, 0 payments received"
    assert chart_en["caption"] == "📈 The day's figures, Thu 26 Nov 2026"
    assert lines_zh[0] == "📊 数据概览（2026年11月26日（周四）20:00（北京时间））"
    session = lines_zh.index("🗓 2027-01 · 考试日期 2027年1月9日（周六）")
    assert lines_zh[session + 5] == "签到：已到场 0 / 1"
    assert chart_zh["caption"] == "📈 当日数据，2026年11月26日（周四）"


async def test_stats_for_any_role_and_not_for_candidates(bot: Harness) -> None:
    door = bot.sandbox.user(4242, first_name="Door", language_code="en")
    candidate = bot.sandbox.user(611, first_name="Ann", language_code="en")
    await exchange(bot, door, door.send_command("/start"))
    assert bot.runtime is not None
    await bot.runtime.services.staff.grant(STAFF_ID, 4242, Role.CHECKIN, "Door")
    await run_job(bot, "refresh_staff_filter")

    lines, _chart = await _stats(bot, door)
    refused = await exchange(bot, candidate, candidate.send_command("/stats"))

    assert lines[0] == "📊 Figures at Thu 26 Nov 2026, 20:00 (China time)"
    assert refused and not any("📊" in m.get("text", "") or "photo" in m for m in refused)


def _digest_messages(bot: Harness) -> list[dict[str, Any]]:
    return [
        m
        for m in bot.sandbox.chat_messages(STAFF_CHAT_ID)
        if m.get("text", "").startswith("📊 数据概览") or "photo" in m
    ]


async def _drained(bot: Harness) -> None:
    assert bot.runtime is not None
    await asyncio.wait_for(bot.runtime.outbox_sender.wait_drained(), 15)
    await bot.sandbox.wait_idle(timeout=15, quiet=0.2)


async def test_digest_reaches_staff_chat_once_a_day(any_bot: Harness) -> None:
    bot = any_bot
    await paid_registration(bot.database_url, 611)
    bot.clock.now = datetime(2026, 11, 26, 23, 59, tzinfo=UTC)  # 07:59 on the 27th there
    await run_job(bot, "staff_digest")
    await _drained(bot)
    assert _digest_messages(bot) == []

    bot.clock.now = datetime(2026, 11, 27, 0, 30, tzinfo=UTC)  # 08:30 there
    await run_job(bot, "staff_digest")
    await run_job(bot, "staff_digest")  # a second tick queues nothing more
    chart = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, lambda m: "photo" in m, 15)
    await _drained(bot)
    await bot.restart()
    await run_job(bot, "staff_digest")  # nor does a tick after a restart
    await _drained(bot)

    text, photo = _digest_messages(bot)
    assert text["text"].splitlines()[0] == "📊 数据概览（2026年11月27日（周五）08:30（北京时间））"
    assert "签到：已到场 0 / 1" in text["text"].splitlines()
    assert photo == chart
    assert photo["caption"] == "📈 当日数据，2026年11月27日（周五）"
    assert _photo_bytes(bot, photo)[:8] == PNG

    bot.clock.now = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # the next day
    mark = bot.sandbox.mark()
    await run_job(bot, "staff_digest")
    await bot.sandbox.wait_for_message(STAFF_CHAT_ID, lambda m: "photo" in m, 15, after=mark)
    await _drained(bot)
    assert len(_digest_messages(bot)) == 4
