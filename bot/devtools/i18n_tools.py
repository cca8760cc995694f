"""Developer workflow for the catalogues: extract → update → translate → (compiled at start-up).

`examdesk i18n update` extracts every message id from `bot/` and `handlers/` into
`locales/messages.pot`, merges it into each language's `messages.po` (new ids appear
untranslated, vanished ids become obsolete), and fills the English catalogue's empty
entries with the English source text. Chinese entries are then translated by hand.
`examdesk i18n check` lists what is untranslated; the test suite runs the same check.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from bot.config import PROJECT_ROOT, SUPPORTED_LANGUAGES
from bot.i18n import DOMAIN, LOCALES_DIR

KEYWORDS = {**DEFAULT_KEYWORDS, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract(root: Path = PROJECT_ROOT) -> Catalog:
    """Every message id used in the code, as a template catalogue."""
    with (LOCALES_DIR / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    template = Catalog(project="examdesk", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root), method_map, options_map, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_po(language: str) -> Catalog:
    path = po_path(language)
    if not path.exists():
        return Catalog(locale=language, project="examdesk", charset="utf-8")
    with path.open("rb") as fh:
        return read_po(fh, locale=language)


def untranslated(template: Catalog, catalog: Catalog) -> list[str]:
    """Message ids of the template that the catalogue lacks, leaves empty or marks fuzzy."""
    missing = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, message.context)
        strings = found.string if found is not None else None
        forms = strings if isinstance(strings, tuple | list) else (strings,)
        if (
            found is None
            or found.fuzzy
            or not all(forms)
            or len(forms) < (catalog.num_plurals if message.pluralizable else 1)
        ):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def translate(language: str, translations: dict[str, str | tuple[str, ...]]) -> int:
    """Fill in translations by message id (used when adding strings); returns how many."""
    catalog = load_po(language)
    done = 0
    for message in catalog:
        key = message.id if isinstance(message.id, str) else message.id[0]
        if message.id and key in translations:
            message.string = translations[key]
            message.flags.discard("fuzzy")
            done += 1
    with po_path(language).open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False, include_previous=False)
    return done


def update(root: Path = PROJECT_ROOT) -> dict[str, list[str]]:
    """Write the template, merge it into every catalogue; return what is left to translate."""
    template = extract(root)
    with (LOCALES_DIR / f"{DOMAIN}.pot").open("wb") as fh:
        write_po(fh, template, width=100, omit_header=False)
    report = {}
    for language in SUPPORTED_LANGUAGES:
        catalog = load_po(language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False  # the header; a fuzzy header would hide the plural rules
        if language == "en":
            for message in catalog:
                if not message.id:
                    continue
                if isinstance(message.id, tuple | list):
                    if not all(message.string or ()):
                        message.string = tuple(message.id)
                elif not message.string:
                    message.string = message.id
        path = po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, include_previous=False)
        report[language] = untranslated(template, catalog)
    return report
