"""Translations: every message translated in both catalogues, placeholders intact, negotiation."""

from __future__ import annotations

import string

import pytest

from bot.config import SUPPORTED_LANGUAGES
from bot.devtools.i18n_tools import extract, load_po, untranslated
from bot.i18n import I18n


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_catalogue_translates_every_message_in_the_code(language: str) -> None:
    assert untranslated(extract(), load_po(language)) == []


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_catalogue_keeps_every_placeholder(language: str) -> None:
    wrong = []
    for message in load_po(language):
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set().union(*(_placeholders(i) for i in ids)) - {"count"}
        for text in strings:
            if _placeholders(text) - {"count"} != wanted:
                wrong.append(ids[0])
    assert wrong == []


def test_untranslated_reports_missing_plural_form() -> None:
    from babel.messages.catalog import Catalog

    template = Catalog()
    template.add(("{count} seat left", "{count} seats left"))
    catalog = Catalog(locale="en")
    catalog.add(("{count} seat left", "{count} seats left"), ("{count} seat left", ""))
    assert untranslated(template, catalog) == ["{count} seat left"]


@pytest.mark.parametrize(
    ("stored", "telegram", "expected"),
    [
        (None, "zh-hans", "zh_Hans"),
        (None, "zh-CN", "zh_Hans"),
        (None, "en", "en"),
        (None, "en-GB", "en"),
        (None, "de", "zh_Hans"),
        (None, None, "zh_Hans"),
        ("en", "zh-hans", "en"),
        ("xx", "en", "en"),
    ],
)
def test_negotiate_prefers_stored_then_telegram_then_default(stored, telegram, expected) -> None:
    assert I18n("zh_Hans").negotiate(stored, telegram) == expected


def test_translator_formats_named_placeholders_in_each_language() -> None:
    i18n = I18n("zh_Hans")
    assert (
        i18n.translator("en")
        .gettext(
            "Welcome, {name}! I am the registration desk of the Smart Manufacturing "
            "Engineering Technician exam at Harbin University of Science and Technology "
            "(Rongcheng campus).\n\nChoose what you want to do:",
            name="Ann",
        )
        .startswith("Welcome, Ann!")
    )
    assert i18n.translator("zh_Hans").gettext("Choose your language:") == "请选择语言："
