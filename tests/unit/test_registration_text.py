"""What the registration flow writes: the summary in the reader's language (the major from
the catalogue, the session as its exam date and time), the "Change session" answer."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.config import PROJECT_ROOT
from bot.domain.catalog import load_catalog
from bot.i18n import I18n
from bot.services.registration import ComponentView, SessionOption
from bot.services.registration_form import Summary
from handlers.registration import move_choices_text, summary_text

I18N = I18n("zh_Hans")
CATALOG = load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml")
THEORY_STARTS = datetime(2027, 1, 9, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def _session(code: str, exam_date: date, opens_at: datetime, availability: str) -> SessionOption:
    return SessionOption(
        code=code,
        exam_date=exam_date,
        timezone="Asia/Shanghai",
        levels=("junior",),
        capacity=60,
        seats_left=60,
        registration_opens_at=opens_at,
        registration_closes_at=datetime(2027, 1, 1, tzinfo=UTC),
        availability=availability,  # type: ignore[arg-type]
        components=(
            ComponentView("theory", THEORY_STARTS, THEORY_STARTS, {"en": "A301"}),
            ComponentView("practical", datetime(2027, 1, 9, 5, 30, tzinfo=UTC), THEORY_STARTS, {}),
        ),
    )


JANUARY = _session("2027-01", date(2027, 1, 9), datetime(2026, 11, 25, 1, tzinfo=UTC), "open")
MARCH = _session(
    "2027-03", date(2027, 3, 13), datetime(2027, 1, 27, 1, tzinfo=UTC), "not_yet_open"
)


def _summary(**values: object) -> Summary:
    fields = dict.fromkeys(Summary.__dataclass_fields__)
    fields |= {"level": "junior", "has_photo": True, "session": "2027-01"}
    return Summary(**(fields | values))  # type: ignore[arg-type]


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_summary_in_english_shows_the_catalogue_major_in_english() -> None:
    en = I18N.translator("en")
    summary = _summary(education="bachelor", major="自动化", major_code="automation", school="HIT")

    line = _line(summary_text(en, CATALOG, summary), "Education:")

    assert line == "Education: Bachelor's degree, Automation, HIT (graduation —)"


def test_summary_shows_a_major_typed_by_the_candidate_as_typed() -> None:
    en = I18N.translator("en")
    summary = _summary(education="bachelor", major="Basket Weaving", school="HIT")

    line = _line(summary_text(en, CATALOG, summary), "Education:")

    assert line == "Education: Bachelor's degree, Basket Weaving, HIT (graduation —)"


def test_summary_shows_the_session_as_its_exam_date_and_time_in_each_language() -> None:
    en, zh = I18N.translator("en"), I18N.translator("zh_Hans")
    summary = _summary(session_option=JANUARY)

    lines = (
        _line(summary_text(en, CATALOG, summary), "Session:"),
        _line(summary_text(zh, CATALOG, summary), "场次："),
    )

    assert lines == (
        f"Session: {en.datetime(THEORY_STARTS, 'Asia/Shanghai')}",
        f"场次：{zh.datetime(THEORY_STARTS, 'Asia/Shanghai')}",
    )


def test_move_choices_without_a_free_session_name_later_sessions_and_their_opening() -> None:
    en = I18N.translator("en")

    text = move_choices_text(en, [], [MARCH])

    opens = en.datetime(MARCH.registration_opens_at, "Asia/Shanghai")
    assert text == (
        "No other session of this level is open for registration right now. Later sessions: "
        f"{en.date(MARCH.exam_date)} (registration opens {opens}). "
        "Come back to 📅 Change session once registration opens."
    )
