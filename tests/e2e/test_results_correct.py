"""`/results_correct` end to end: a results member corrects a released score; the candidate
is told in their language (English and Chinese) and `/results` shows the new score; the
audit keeps actor, old, new and reason; before release the reply says nobody sees it yet;
staff without the results role are refused.

Session 2027-01 of the shipped catalogue: results released at 2027-02-06 01:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.domain.roles import Role
from handlers.staff_roles import refresh_staff
from storage.db import Database
from storage.models import AuditEntry
from storage.uow import UnitOfWork
from tests.e2e.conftest import STAFF_ID, Harness, exchange
from tests.e2e.test_reminders import paid_registration, run_job
from tests.e2e.test_results import _with_id

RELEASE_AT = datetime(2027, 2, 6, 1, 0, tzinfo=UTC)
MARKER = 7101  # holds the results role
DOORKEEPER = 7102  # holds only the check-in role


async def _released(bot: Harness, rows: dict[int, tuple[str, str]]) -> dict[int, str]:
    """Paid candidates (Telegram id → theory, practical), imported and released; their
    registration references."""
    assert bot.runtime is not None
    references = {}
    for telegram_id in rows:
        await paid_registration(bot.database_url, telegram_id)
        references[telegram_id] = await _with_id(bot.database_url, telegram_id)
    data = "reference,id_last4,theory,practical\n" + "".join(
        f"{references[t]},002X,{theory},{practical}\n" for t, (theory, practical) in rows.items()
    )
    results = bot.runtime.services.results
    preview = await results.preview("2027-01", "r.csv", data.encode(), STAFF_ID)
    await results.confirm(preview.import_id, STAFF_ID)
    bot.clock.now = RELEASE_AT
    await run_job(bot, "release_results")
    return references


async def _corrections(url: str) -> list[tuple[str, str | None, dict]]:
    database = Database(url)
    try:
        async with UnitOfWork(database.sessions) as uow:
            rows = await uow.session.scalars(
                select(AuditEntry).where(AuditEntry.action == "corrected").order_by(AuditEntry.id)
            )
            return [(r.actor, r.reason, r.details) for r in rows]
    finally:
        await database.dispose()


async def _staff(bot: Harness) -> None:
    assert bot.runtime is not None
    await bot.runtime.services.staff.grant(STAFF_ID, MARKER, Role.RESULTS, "Zhou")
    await bot.runtime.services.staff.grant(STAFF_ID, DOORKEEPER, Role.CHECKIN, "Wang")
    await refresh_staff(bot.runtime.application)


async def test_results_correct_after_release_tells_the_candidate(any_bot: Harness) -> None:
    bot = any_bot
    ann = bot.sandbox.user(621, first_name="Ann", language_code="en")
    li = bot.sandbox.user(622, first_name="Li", language_code="zh-hans")
    await exchange(bot, ann, ann.send_command("/start"))
    await exchange(bot, li, li.send_command("/start"))
    references = await _released(bot, {621: ("50", "70"), 622: ("80", "75")})
    await ann.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)
    await li.wait_for_message(lambda m: "📊" in m.get("text", ""), timeout=10)
    await _staff(bot)
    marker = bot.sandbox.user(MARKER, first_name="Zhou", language_code="en")
    bot.clock.now = RELEASE_AT + timedelta(days=2)

    raised = await exchange(
        bot,
        marker,
        marker.send_command("/results_correct", f"{references[621]} theory 62 sheet 2 missed"),
    )
    lowered = await exchange(
        bot,
        marker,
        marker.send_command("/results_correct", f"{references[622]} practical 违纪 video review"),
    )
    ann_told = await ann.wait_for_message(lambda m: "✏️" in m.get("text", ""), timeout=10)
    li_told = await li.wait_for_message(lambda m: "✏️" in m.get("text", ""), timeout=10)
    ann_results = await exchange(bot, ann, ann.send_command("/results"))

    assert [m["text"] for m in raised] == [
        f"✏️ Theory of {references[621]}: 50.0 → 62.0, after release. Recorded with your "
        "reason.\nThe level is now passed.\nThe candidate is told."
    ]
    assert [m["text"] for m in lowered] == [
        f"✏️ Practical skills of {references[622]}: 75.0 → disqualified, after release. "
        "Recorded with your reason.\nThe level is no longer passed. If a certificate was "
        "issued for it, revoke it with /certificate_revoke.\nThe candidate is told."
    ]
    assert ann_told["text"].splitlines() == [
        "✏️ The exam centre corrected your result for Theory, session 2027-01: "
        "50.0 → 62.0 (passed).",
        "✅ You have now passed Junior (初级); see /results.",
    ]
    assert li_told["text"].splitlines() == [
        "✏️ 考试中心更正了您 2027-01 场次专业能力的成绩：75.0 → 违纪（不合格）。",
        "按此成绩，初级不再通过：需补考的科目请见 /results。",
    ]
    # The pass dates from the release: the corrected result was released then.
    assert ann_results[-1]["text"].splitlines() == [
        "✅ Junior (初级): passed on Sat 6 Feb 2027.",
        "• Sat 9 Jan 2027, Theory: 62.0 (passed)",
        "• Sat 9 Jan 2027, Practical skills: 70.0 (passed)",
    ]
    assert [
        (actor, reason, d["from"], d["to"])
        for actor, reason, d in await _corrections(bot.database_url)
    ] == [
        (
            f"tg:{MARKER}",
            "sheet 2 missed",
            {"mark": "scored", "score_tenths": 500},
            {"mark": "scored", "score_tenths": 620},
        ),
        (
            f"tg:{MARKER}",
            "video review",
            {"mark": "scored", "score_tenths": 750},
            {"mark": "disqualified", "score_tenths": None},
        ),
    ]


async def test_results_correct_before_release_and_refusals_in_chinese(bot: Harness) -> None:
    ann = bot.sandbox.user(631, first_name="Ann", language_code="en")
    await exchange(bot, ann, ann.send_command("/start"))
    await paid_registration(bot.database_url, 631)
    reference = await _with_id(bot.database_url, 631)
    assert bot.runtime is not None
    results = bot.runtime.services.results
    data = f"reference,id_last4,theory,practical\n{reference},002X,50,70\n".encode()
    await results.confirm(
        (await results.preview("2027-01", "r.csv", data, STAFF_ID)).import_id, STAFF_ID
    )
    await _staff(bot)
    admin = bot.sandbox.user(STAFF_ID, first_name="Staff", language_code="zh-hans")
    doorkeeper = bot.sandbox.user(DOORKEEPER, first_name="Wang", language_code="zh-hans")

    before = await exchange(
        bot, admin, admin.send_command("/results_correct", f"{reference} 理论知识 65 复查")
    )
    usage = await exchange(bot, admin, admin.send_command("/results_correct", reference))
    bad = await exchange(
        bot, admin, admin.send_command("/results_correct", f"{reference} theory 六十 原因")
    )
    refused = await exchange(
        bot, doorkeeper, doorkeeper.send_command("/results_correct", f"{reference} theory 65 x")
    )
    told = [m for m in ann.messages() if "✏️" in m.get("text", "")]

    assert [m["text"] for m in before] == [
        f"✏️ {reference} 的理论知识：50.0 → 65.0（成绩尚未发布：考生将在发布时看到）。"
        "已连同原因记录在案。"
    ]
    assert usage[0]["text"].startswith("用法：/results_correct <准考证号或报名编号>")
    assert [m["text"] for m in bad] == [
        "这不是有效的成绩。请输入 0 到 100 之间、最多一位小数的分数，"
        "或 absent（缺考）、disqualified（违纪）。"
    ]
    # The refusal's wording is the roles' (handlers/staff_roles.py): it points to /staff.
    assert ["/staff" in m["text"] for m in refused] == [True]
    assert told == []  # nothing is told before release
    assert [d["to"] for _, _, d in await _corrections(bot.database_url)] == [
        {"mark": "scored", "score_tenths": 650}
    ]
