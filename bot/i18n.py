"""Translations: a translator per update, in Simplified Chinese or English.

Entry points: `I18n(default_language, locales_dir, zone=...)`,
`I18n.negotiate(stored, telegram_code)`
and `I18n.translator(language)`. Catalogues are the `.po` files under
`locales/<lang>/LC_MESSAGES/messages.po`; they are compiled in memory at start-up, so
there is no manual compile step and a running bot never serves stale `.mo` files.

Message ids are English with named placeholders: `tr.gettext("Seats left: {count}", count=3)`;
counts use `tr.ngettext(singular, plural, n, **params)` (the number is also `{count}`).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency

from bot.config import PROJECT_ROOT, SITE_TIMEZONE, SUPPORTED_LANGUAGES

LOCALES_DIR = PROJECT_ROOT / "locales"
DOMAIN = "messages"

# Telegram sends IETF tags (`zh-hans`, `zh-CN`, `en-US`); map them to our catalogues.
# Traditional-script tags are not mapped to zh_Hans: they fall back to the site default.
_TELEGRAM_TAGS = {
    "zh": "zh_Hans",
    "zh-hans": "zh_Hans",
    "zh-cn": "zh_Hans",
    "zh-sg": "zh_Hans",
    "zh-my": "zh_Hans",
    "zh-hans-cn": "zh_Hans",
    "en": "en",
}


def compile_catalog(po_path: Path) -> gettext.GNUTranslations:
    """Compile one `.po` file in memory (fuzzy entries are not used, as with msgfmt)."""
    with po_path.open("rb") as fh:
        catalog = read_po(fh)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Translator:
    """Translates and formats for one language; cheap to pass around.

    `zone` is the site's time zone (the settings'), for times with no session at hand;
    a session's own zone is passed explicitly where the data carries one.
    """

    def __init__(
        self, language: str, translations: gettext.NullTranslations, zone: str = SITE_TIMEZONE
    ) -> None:
        self.language = language
        self.locale = Locale.parse(language)
        self.zone = zone
        self._t = translations

    def gettext(self, message: str, /, **params: object) -> str:
        text = self._t.gettext(message)
        return text.format(**params) if params else text

    def ngettext(self, singular: str, plural: str, n: int, /, **params: object) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text.format(count=n, **params)

    def date(self, value: dt.date, fmt: str = "long") -> str:
        return format_date(value, format=fmt, locale=self.locale)

    def datetime(self, value: dt.datetime, zone: str | ZoneInfo, fmt: str = "medium") -> str:
        tz = ZoneInfo(zone) if isinstance(zone, str) else zone
        return format_datetime(value, format=fmt, tzinfo=tz, locale=self.locale)

    def time(self, value: dt.datetime, zone: str | ZoneInfo, fmt: str = "short") -> str:
        tz = ZoneInfo(zone) if isinstance(zone, str) else zone
        return format_time(value, format=fmt, tzinfo=tz, locale=self.locale)

    def money(self, amount_minor: int, currency: str) -> str:
        return format_currency(amount_minor / 100, currency, locale=self.locale)


class I18n:
    """Loads every catalogue once and picks a language per update."""

    def __init__(
        self, default_language: str, locales_dir: Path = LOCALES_DIR, *, zone: str = SITE_TIMEZONE
    ) -> None:
        if default_language not in SUPPORTED_LANGUAGES:
            raise ValueError(f"unsupported default language {default_language!r}")
        self.default_language = default_language
        self.zone = zone
        self._translators = {
            lang: Translator(
                lang, compile_catalog(locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"), zone
            )
            for lang in SUPPORTED_LANGUAGES
        }

    @property
    def languages(self) -> tuple[str, ...]:
        return SUPPORTED_LANGUAGES

    def negotiate(self, stored: str | None, telegram_code: str | None) -> str:
        """The candidate's choice, else Telegram's language, else the site default."""
        if stored in self._translators:
            return stored  # type: ignore[return-value]
        if telegram_code:
            tag = telegram_code.lower().replace("_", "-")
            if tag in _TELEGRAM_TAGS:
                return _TELEGRAM_TAGS[tag]
            if tag.split("-")[0] == "en":
                return "en"
        return self.default_language

    def translator(self, language: str) -> Translator:
        return self._translators.get(language) or self._translators[self.default_language]


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, per update, with `gettext`."""
    return message
