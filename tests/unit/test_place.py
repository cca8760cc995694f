"""Contact and place without the bot: the catalogue's site location and contact (checked,
with field paths), the venue template in both languages, the /help contact block, and the
sandbox's sendVenue / sendLocation answering as Telegram does."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import yaml
from telegram import Bot
from telegram.error import BadRequest

from bot.devtools.sandbox import Sandbox
from bot.domain.catalog import CatalogError, load_catalog, parse_catalog
from bot.i18n import I18n
from bot.runtime.notifications import Venue
from handlers.common import contact_text
from handlers.reminders import render_venue
from tests.sandbox_fixtures import bot, sandbox, token  # noqa: F401 (fixtures)

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalog" / "exam-catalog.yaml"
I18N = I18n("zh_Hans")
ZH, EN = I18N.translator("zh_Hans"), I18N.translator("en")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


def _errors_for(raw: dict, mutate: Callable[[dict], object]) -> list[str]:
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    return str(caught.value).splitlines()


# --- the catalogue ------------------------------------------------------------------------


def test_shipped_catalogue_has_the_campus_location_and_a_contact() -> None:
    catalog = load_catalog(CATALOG_PATH)

    actual = (
        catalog.site.location.latitude,
        catalog.site.location.longitude,
        catalog.contact.phone is not None,
        catalog.contact.email is not None,
        catalog.contact.hours is not None,
    )
    assert actual == (37.165, 122.425, True, True, True)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["site"]["location"].update(latitude=95),
            "site.location.latitude: must be less than or equal to 90",
        ),
        (
            lambda d: d["site"]["location"].update(longitude=-180.5),
            "site.location.longitude: must be greater than or equal to -180",
        ),
        (  # latitude and longitude swapped: 122.425 is no latitude
            lambda d: d["site"]["location"].update(latitude=122.425, longitude=37.165),
            "site.location.latitude: must be less than or equal to 90",
        ),
        (
            lambda d: d["site"]["location"].update(latitude="37°09′N"),
            "site.location.latitude: must be a valid number, unable to parse string as a number",
        ),
        (
            lambda d: d["site"]["location"].pop("longitude"),
            "site.location.longitude: is required",
        ),
        (
            lambda d: d["contact"].update(phone=6311234567),
            'contact.phone: write it in quotes: digits, spaces, + - ( ), e.g. "+86 631 1234 5678"',
        ),
        (
            lambda d: d["contact"].update(email="exam-centre at hust"),
            "contact.email: not an e-mail address (name@example.edu.cn)",
        ),
        (
            lambda d: d.update(contact={"hours": d["contact"]["hours"]}),
            "contact: give a phone or an email (or both)",
        ),
        (
            lambda d: d["contact"].update(fax="0631"),
            "contact.fax: unknown field (check the spelling)",
        ),
    ],
)
def test_parse_catalog_bad_place_or_contact_names_the_field(
    raw: dict, mutate: Callable[[dict], object], expected: str
) -> None:
    assert _errors_for(raw, mutate) == [expected]


def test_parse_catalog_without_location_or_contact_has_no_venue(raw: dict) -> None:
    data = copy.deepcopy(raw)
    del data["site"]["location"], data["contact"]

    catalog = parse_catalog(data)

    assert (catalog.site.venue(), catalog.contact) == (None, None)


def test_site_venue_carries_both_languages_and_the_point(raw: dict) -> None:
    venue = parse_catalog(raw).site.venue()

    assert venue == {
        "latitude": 37.165,
        "longitude": 122.425,
        "title": {
            "zh_Hans": "哈尔滨理工大学 荣成校区",
            "en": "Harbin University of Science and Technology (HUST), Rongcheng campus",
        },
        "address": {
            "zh_Hans": "山东省威海市荣成市学府路2006号 哈尔滨理工大学荣成校区",
            "en": "2006 Xuefu Road, Rongcheng, Weihai, Shandong, China — HUST Rongcheng campus",
        },
    }


# --- rendering ----------------------------------------------------------------------------


def test_render_venue_names_the_site_in_the_readers_language(raw: dict) -> None:
    params = parse_catalog(raw).site.venue()

    zh, en = render_venue(params, ZH), render_venue(params, EN)

    assert (zh.venue, en.venue.title, en.venue.address, en.text) == (
        Venue(
            37.165,
            122.425,
            "哈尔滨理工大学 荣成校区",
            "山东省威海市荣成市学府路2006号 哈尔滨理工大学荣成校区",
        ),
        "Harbin University of Science and Technology (HUST), Rongcheng campus",
        "2006 Xuefu Road, Rongcheng, Weihai, Shandong, China — HUST Rongcheng campus",
        "",
    )


def test_contact_text_without_contact_still_gives_the_site(raw: dict) -> None:
    data = copy.deepcopy(raw)
    del data["contact"]

    text = contact_text(EN, parse_catalog(data))

    assert text.splitlines() == [
        "📞 How to reach the exam centre",
        "📍 Exam site: Harbin University of Science and Technology (HUST), Rongcheng campus",
        "Address: 2006 Xuefu Road, Rongcheng, Weihai, Shandong, China — HUST Rongcheng campus",
    ]


# --- the sandbox answers as Telegram --------------------------------------------------------


async def test_send_venue_is_stored_with_venue_and_location(
    bot: Bot,  # noqa: F811
    sandbox: Sandbox,  # noqa: F811
) -> None:
    li = sandbox.user(1001, language_code="zh-hans")

    sent = await bot.send_venue(li.id, 37.165, 122.425, "荣成校区", "学府路2006号")

    message = li.messages()[-1]
    call = sandbox.calls_of("sendVenue")[-1]
    assert (message["message_id"], message["venue"], message["location"], call.violations) == (
        sent.message_id,
        {
            "location": {"latitude": 37.165, "longitude": 122.425},
            "title": "荣成校区",
            "address": "学府路2006号",
        },
        {"latitude": 37.165, "longitude": 122.425},
        [],
    )
    assert (sent.venue.title, sent.location.latitude) == ("荣成校区", 37.165)


@pytest.mark.parametrize(
    ("latitude", "longitude"), [(90.5, 10.0), (-91.0, 10.0), (10.0, 180.01), (10.0, -200.0)]
)
async def test_send_venue_off_the_globe_is_refused_as_telegram_does(
    bot: Bot,  # noqa: F811
    sandbox: Sandbox,  # noqa: F811
    latitude: float,
    longitude: float,
) -> None:
    li = sandbox.user(1001, language_code="zh-hans")

    with pytest.raises(BadRequest) as caught:
        await bot.send_venue(li.id, latitude, longitude, "Site", "Road 1")

    assert (caught.value.message, li.messages()) == ("Wrong venue location specified", [])


async def test_send_venue_without_title_is_refused_by_the_spec(
    sandbox: Sandbox,  # noqa: F811
    token: str,  # noqa: F811
) -> None:
    li = sandbox.user(1001, language_code="zh-hans")
    params = {"chat_id": li.id, "latitude": 1.5, "longitude": 2.5, "address": "Road 1"}

    url = f"{sandbox.base_url}{token}/sendVenue"
    async with aiohttp.ClientSession() as http, http.post(url, json=params) as resp:
        answer = (resp.status, (await resp.json())["ok"])

    [call] = sandbox.calls_of("sendVenue")
    assert (answer, call.violations, li.messages()) == (
        (400, False),
        ["sendVenue: required parameter 'title' is missing"],
        [],
    )


async def test_send_location_in_range_is_stored_and_out_of_range_refused(
    bot: Bot,  # noqa: F811
    sandbox: Sandbox,  # noqa: F811
) -> None:
    li = sandbox.user(1001, language_code="zh-hans")

    await bot.send_location(li.id, 37.165, 122.425)
    with pytest.raises(BadRequest) as caught:
        await bot.send_location(li.id, 37.165, 222.0)

    assert (li.messages()[-1]["location"], caught.value.message) == (
        {"latitude": 37.165, "longitude": 122.425},
        "Wrong location specified",
    )
