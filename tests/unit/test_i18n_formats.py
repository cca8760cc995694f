"""One date, time and list style per language, through the Translator (bot/i18n.py): every
date a reader sees has the same shape, a moment names its zone, lists follow the language."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.i18n import I18n

I18N = I18n("zh_Hans")
EN, ZH = I18N.translator("en"), I18N.translator("zh_Hans")
MOMENT = datetime(2026, 5, 30, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


def test_date_is_one_style_per_language() -> None:
    assert (EN.date(date(2026, 5, 30)), ZH.date(date(2026, 5, 30))) == (
        "Sat 30 May 2026",
        "2026年5月30日（周六）",
    )


def test_date_ignores_an_older_callers_format_name() -> None:
    shown = {EN.date(date(2027, 1, 9), fmt) for fmt in ("short", "medium", "long", "full")}

    assert shown == {"Sat 9 Jan 2027"}


def test_datetime_in_the_session_zone_names_the_zone() -> None:
    assert (EN.datetime(MOMENT, "Asia/Shanghai"), ZH.datetime(MOMENT, "Asia/Shanghai")) == (
        "Sat 30 May 2026, 09:00 (China time)",
        "2026年5月30日（周六）09:00（北京时间）",
    )


def test_datetime_on_another_zone_shows_that_zones_day_and_name() -> None:
    late = datetime(2026, 5, 30, 20, 30, tzinfo=UTC)

    assert (EN.datetime(late, "Asia/Shanghai"), EN.datetime(late, "Europe/Berlin")) == (
        "Sun 31 May 2026, 04:30 (China time)",
        "Sat 30 May 2026, 22:30 (Central European Time)",
    )


def test_datetime_without_a_zone_uses_the_sites() -> None:
    assert ZH.datetime(MOMENT) == "2026年5月30日（周六）09:00（北京时间）"


def test_time_is_24_hour_in_the_zone() -> None:
    assert (EN.time(MOMENT, "Asia/Shanghai"), ZH.time(MOMENT, "Asia/Shanghai")) == (
        "09:00",
        "09:00",
    )


@pytest.mark.parametrize(
    ("items", "english", "chinese"),
    [
        (["a"], "a", "a"),
        (["a", "b"], "a and b", "a和b"),
        (["a", "b", "c"], "a, b, and c", "a、b和c"),
    ],
)
def test_join_uses_the_languages_list_pattern(
    items: list[str], english: str, chinese: str
) -> None:
    assert (EN.join(items), ZH.join(iter(items))) == (english, chinese)


def test_join_of_alternatives_says_or() -> None:
    assert (
        EN.join(["master", "doctor"], alternatives=True),
        ZH.join(["硕士", "博士", "第二学士"], alternatives=True),
    ) == ("master or doctor", "硕士、博士或第二学士")


def test_period_names_the_day_and_the_zone_once() -> None:
    start, end = datetime(2027, 1, 9, 1, 0, tzinfo=UTC), datetime(2027, 1, 9, 2, 30, tzinfo=UTC)

    assert (EN.period(start, end, "Asia/Shanghai"), ZH.period(start, end, "Asia/Shanghai")) == (
        "Sat 9 Jan 2027, 09:00–10:30 (China time)",
        "2027年1月9日（周六）09:00–10:30（北京时间）",
    )
