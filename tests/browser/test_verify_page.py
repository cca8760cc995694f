"""The certificate verification page in a real browser at a phone's size (390×844): the form
answers a valid certificate, a revoked one and a wrong name (the neutral answer), the QR
link answers by code, the language follows the browser and switches by link, and after 10
failed look-ups the page answers 429 without looking up. Nothing loads from elsewhere and
nothing is wider than the screen."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import PHONE
from tests.e2e.conftest import Harness
from tests.services.test_verification import CODE, NUMBER, REVOKED_CODE, REVOKED_NUMBER

NATIONAL = "http://zscx.osta.org.cn/"


async def submit(page: Any, number: str, name: str) -> int:
    """Fill the form, press the button, the answer's HTTP status."""
    await page.fill("#number", number)
    await page.fill("#name", name)
    async with page.expect_response(lambda r: r.request.method == "POST") as answered:
        await page.click("button[type=submit]")
    response = await answered.value
    await page.wait_for_load_state()
    return response.status


async def answer(page: Any) -> dict[str, str]:
    """The answer's fields by class name (holder, number, level, …)."""
    return await page.eval_on_selector_all(
        "#answer dd", "els => Object.fromEntries(els.map(e => [e.className, e.innerText]))"
    )


async def fits_the_screen(page: Any) -> bool:
    width = await page.evaluate("document.documentElement.scrollWidth")
    return width <= PHONE["width"]


async def test_form_answers_valid_certificate_on_a_phone(site: Harness, phone: Any) -> None:
    page = await phone("en-GB")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(site.web_url + "/certificates/verify")

    status = await submit(page, NUMBER.lower(), "张 三丰")

    assert status == 200
    assert await answer(page) == {
        "holder": "张*丰",
        "number": NUMBER,
        "level": "Junior (初级)",
        "direction": "Smart production management and control",
        "issued": "Sat 20 Mar 2027",
        "status": "Valid",
    }
    assert "张三丰" not in await page.content()  # only the masked name is shown
    assert await fits_the_screen(page)
    assert await page.get_attribute("meta[name=viewport]", "content") == (
        "width=device-width, initial-scale=1"
    )
    assert all(url.startswith(site.web_url) for url in requested), requested
    assert page.url == site.web_url + "/certificates/verify"  # POST: no name in the address


async def test_form_answers_revoked_with_date_only(site: Harness, phone: Any) -> None:
    page = await phone("en-GB")
    await page.goto(site.web_url + "/certificates/verify")

    await submit(page, REVOKED_NUMBER, "li lei")

    shown = await answer(page)
    assert (shown["holder"], shown["status"]) == ("L* L**", "Revoked on Fri 2 Apr 2027")
    assert "misconduct" not in await page.content()


async def test_form_wrong_name_gets_neutral_answer_and_keeps_input(
    site: Harness, phone: Any
) -> None:
    page = await phone("en-GB")
    await page.goto(site.web_url + "/certificates/verify")

    wrong_name = await submit(page, NUMBER, "张三")
    wrong_text = await page.inner_text("#answer")
    kept = (await page.input_value("#number"), await page.input_value("#name"))
    unknown_number = await submit(page, "RC202701-JUNIOR-9999", "张三丰")
    unknown_text = await page.inner_text("#answer")

    assert (wrong_name, unknown_number) == (200, 200)
    assert wrong_text == unknown_text
    assert wrong_text.startswith("No matching certificate.")
    assert "only for certificates issued through this exam centre" in wrong_text
    assert await page.get_attribute("#answer a", "href") == NATIONAL
    assert kept == (NUMBER, "张三")
    assert await fits_the_screen(page)


async def test_qr_link_answers_by_code_and_unknown_code_is_neutral(
    site: Harness, phone: Any
) -> None:
    page = await phone("zh-CN")

    valid = await page.goto(f"{site.web_url}/certificates/verify/{CODE}")
    valid_shown = await answer(page)
    revoked = await page.goto(f"{site.web_url}/certificates/verify/{REVOKED_CODE}")
    revoked_status = (await answer(page))["status"]
    unknown = await page.goto(f"{site.web_url}/certificates/verify/AAAAAAAAAAAA")
    unknown_heading = await page.inner_text("#answer h2")
    hostile = await page.goto(f"{site.web_url}/certificates/verify/%3Cscript%3Ex")

    assert (valid.status, valid_shown["holder"], valid_shown["status"]) == (200, "张*丰", "有效")
    assert valid_shown["level"] == "初级"
    assert (revoked.status, revoked_status) == (200, "已于2027年4月2日（周五）撤销")
    assert (unknown.status, unknown_heading) == (404, "未查到相符的证书。")
    assert hostile.status == 404
    assert await fits_the_screen(page)


async def test_language_follows_browser_and_switch_keeps_it(site: Harness, phone: Any) -> None:
    page = await phone("zh-CN")
    await page.goto(site.web_url + "/certificates/verify")
    chinese = (await page.get_attribute("html", "lang"), await page.inner_text("h1"))

    await page.click("nav.switch a[hreflang=en]")
    english = (await page.get_attribute("html", "lang"), await page.inner_text("h1"))
    switched_url = page.url
    await submit(page, NUMBER, "张三丰")
    answered_in = await page.get_attribute("html", "lang")
    level = (await answer(page))["level"]
    await page.goto(f"{site.web_url}/certificates/verify/{CODE}?lang=en")
    qr_switch = await page.get_attribute("nav.switch a[hreflang=zh-Hans]", "href")

    assert chinese == ("zh-Hans", "证书查询验证")
    assert english == ("en", "Certificate verification")
    assert switched_url == site.web_url + "/certificates/verify?lang=en"
    assert (answered_in, level) == ("en", "Junior (初级)")
    assert qr_switch == f"/certificates/verify/{CODE}?lang=zh_Hans"


async def test_too_many_failures_get_429_without_look_up(site: Harness, phone: Any) -> None:
    page = await phone("en-GB")
    await page.goto(site.web_url + "/certificates/verify")
    statuses = [await submit(page, NUMBER, f"wrong {i}") for i in range(10)]

    refused = await submit(page, NUMBER, "张三丰")  # right, but refused: no look-up
    refused_text = await page.inner_text("#answer")
    by_code = await page.goto(f"{site.web_url}/certificates/verify/{CODE}")

    assert statuses == [200] * 10
    assert refused == 429
    # The harness clock: 2026-11-26 12:00 UTC = 20:00 China time; the window is 15 minutes.
    assert refused_text == "Too many attempts. Try again after 20:15 (China time)."
    assert by_code.status == 429
    assert await fits_the_screen(page)
