"""Translations: a translator per update, in Simplified Chinese or English.

Entry points: `I18n(default_language, locales_dir, zone=...)`,
`I18n.negotiate(stored, telegram_code)`
and `I18n.translator(language)`. Catalogues are the `.po` files under
`locales/<lang>/LC_MESSAGES/messages.po`; they are compiled in memory at start-up, so
there is no manual compile step and a running bot never serves stale `.mo` files.

Message ids are English with named placeholders: `tr.gettext("Seats left: {count}", count=3)`;
counts use `tr.ngettext(singular, plural, n, **params)` (the number is also `{count}`).
Dates, times and lists have one style per language: `tr.date(d)`, `tr.datetime(moment, zone)`
and `tr.period(start, end, zone)` (the zone named), `tr.time(moment, zone)` and
`tr.join(items)` (Babel's list patterns).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, get_timezone_name
from babel.lists import format_list
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


@dataclass(frozen=True)
class _Style:
    """How one language writes a day (a Babel pattern) and a moment (date, time, zone)."""

    date: str
    datetime: str


# One style per language, used for every date and time the bot shows.
_STYLES = {
    "en": _Style(date="EEE d MMM y", datetime="{date}, {time} ({zone})"),
    "zh_Hans": _Style(date="y年M月d日（EEE）", datetime="{date}{time}（{zone}）"),
}
# Zone names as readers say them where Babel's generic name is not the usual one.
_ZONE_NAMES = {("zh_Hans", "Asia/Shanghai"): "北京时间", ("en", "Asia/Shanghai"): "China time"}


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
        self._style = _STYLES.get(language, _STYLES["en"])

    def gettext(self, message: str, /, **params: object) -> str:
        text = self._t.gettext(message)
        return text.format(**params) if params else text

    def ngettext(self, singular: str, plural: str, n: int, /, **params: object) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text.format(count=n, **params)

    def date(self, value: dt.date, _legacy_format: str | None = None) -> str:
        """A day in the language's one style: "Sat 30 May 2026", "2026年5月30日（周六）".

        (A Babel format name from older callers is accepted and ignored: every date a
        reader sees has the same shape.)
        """
        return format_date(value, format=self._style.date, locale=self.locale)

    def time(
        self, value: dt.datetime, zone: str | ZoneInfo | None = None, _legacy: str | None = None
    ) -> str:
        """The clock time in `zone` (the site's by default), 24-hour: "09:00"."""
        return format_time(value, format="HH:mm", tzinfo=self._tz(zone), locale=self.locale)

    def datetime(
        self, value: dt.datetime, zone: str | ZoneInfo | None = None, _legacy: str | None = None
    ) -> str:
        """Day, time and the zone named: "Sat 30 May 2026, 09:00 (China time)",
        "2026年5月30日（周六）09:00（北京时间）".

        The zone is always named: the bot does not know where a reader is, and exam times
        are the exam site's (`zone`: the session's, else the site's).
        """
        tz = self._tz(zone)
        return self._style.datetime.format(
            date=self.date(value.astimezone(tz).date()),
            time=self.time(value, tz),
            zone=self.zone_name(tz),
        )

    def period(
        self, start: dt.datetime, end: dt.datetime, zone: str | ZoneInfo | None = None
    ) -> str:
        """From start to end, the zone named once: "Sat 9 Jan 2027, 09:00–10:30 (China time)";
        two full moments when the period spans days."""
        tz = self._tz(zone)
        if start.astimezone(tz).date() != end.astimezone(tz).date():
            return f"{self.datetime(start, tz)} – {self.datetime(end, tz)}"
        return self._style.datetime.format(
            date=self.date(start.astimezone(tz).date()),
            time=f"{self.time(start, tz)}–{self.time(end, tz)}",
            zone=self.zone_name(tz),
        )

    def zone_name(self, zone: str | ZoneInfo | None = None) -> str:
        """What readers of this language call a zone ("China time", "北京时间")."""
        tz = self._tz(zone)
        usual = _ZONE_NAMES.get((self.language, tz.key))
        if usual:
            return usual
        return get_timezone_name(tz, "long", zone_variant="generic", locale=self.locale)

    def join(self, items: Iterable[str], *, alternatives: bool = False) -> str:
        """A list in running text, the language's way: "a, b, and c", "a、b和c"; with
        `alternatives`, any one of them: "a, b, or c", "a、b或c"."""
        return format_list(
            list(items), style="or" if alternatives else "standard", locale=self.locale
        )

    def _tz(self, zone: str | ZoneInfo | None) -> ZoneInfo:
        if isinstance(zone, ZoneInfo):
            return zone
        return ZoneInfo(zone or self.zone)

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
