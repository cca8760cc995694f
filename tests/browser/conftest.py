"""Browser tests: Playwright for Python drives the system Chromium (/usr/bin/chromium,
headless, a phone-sized viewport) against the real running examdesk web server.

Needs `apt-get install chromium` and `pip install playwright` (the Python package only:
never `playwright install`, which downloads a browser build). Without them these tests are
skipped with that advice, except under CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sandbox import Sandbox
from tests.e2e.conftest import Harness, harness_for, sandbox, sqlite_url
from tests.e2e.test_verify import certify

__all__ = ["sandbox"]  # the e2e sandbox fixture, shared

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PHONE = {"width": 390, "height": 844}


def _missing() -> str | None:
    missing = []
    if not CHROMIUM.exists():
        missing.append("apt-get install chromium")
    if importlib.util.find_spec("playwright") is None:
        missing.append("pip install playwright")
    if not missing:
        return None
    return f"browser tests need: {' and '.join(missing)} (not `playwright install`)"


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    why = _missing()
    if why is None:
        return
    if IN_CI:
        pytest.fail(why + " — CI=true requires them", pytrace=False)
    pytest.skip(why)


@pytest.fixture
async def site(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Harness]:
    """examdesk running (its web server on a free port) with the test certificates."""
    async for harness in harness_for(sandbox, sqlite_url(tmp_path), webhook=False, setup=certify):
        yield harness


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def phone(chromium: Any):  # type: ignore[no-untyped-def]
    """`await phone("en-GB")`: a new phone-sized page whose browser speaks that language."""
    contexts: list[Any] = []

    async def open_page(locale: str = "en-GB") -> Any:
        context = await chromium.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, locale=locale
        )
        contexts.append(context)
        return await context.new_page()

    return open_page
