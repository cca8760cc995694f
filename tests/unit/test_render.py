"""Level names come from the catalogue: the reader's name, the official one beside it."""

from __future__ import annotations

import handlers
from bot.config import PROJECT_ROOT
from bot.domain.catalog import load_catalog
from bot.i18n import I18n
from handlers.render import LevelNames, level_label

I18N = I18n("zh_Hans")
LEVELS = LevelNames.of(load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml"))


def test_level_label_from_the_catalogue_in_each_language() -> None:
    en, zh = I18N.translator("en"), I18N.translator("zh_Hans")
    labels = (
        level_label(en, "junior", LEVELS["junior"]),
        level_label(zh, "senior", LEVELS["senior"]),
    )
    assert labels == ("Junior (初级)", "高级")


def test_level_label_without_catalogue_names_is_the_code() -> None:
    assert level_label(I18N.translator("en"), "junior", None) == "junior"


def test_templates_hand_renderers_the_catalogue_level_names() -> None:
    params = {
        "registration_id": 5,
        "session_code": "2027-01",
        "level_code": "intermediate",
        "offer_expires_at": "2027-01-02T01:00:00+00:00",
    }
    rendered = handlers.templates(LEVELS).render(
        {"template": "waitlist_offer", "params": params}, I18N.translator("en")
    )
    expected = "🎉 A seat is free for you in session 2027-01 (Intermediate (中级))."
    assert rendered.text.startswith(expected)
