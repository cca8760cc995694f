"""Unit tests of bot.domain.scoring: scores, pass marks, carry-over and level passes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.scoring import (
    ComponentState,
    ComponentStatus,
    InvalidScore,
    Mark,
    Outcome,
    ScoringRules,
    SittingResult,
    from_tenths,
    parse_score,
    to_tenths,
)

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalog" / "exam-catalog.yaml"
RULES = ScoringRules(
    pass_marks={"theory": Decimal(60), "practical": Decimal(60)},
    max_scores={"theory": 100, "practical": 100},
    retention_years=1,
)
JAN = date(2027, 1, 9)  # a sitting; its results are out on 6 February
JAN_OUT = datetime(2027, 2, 6, 1, 0, tzinfo=UTC)


def scored(component: str, score: str, sat_on: date = JAN, released_at=JAN_OUT):
    return SittingResult(component, Mark.SCORED, Decimal(score), sat_on, released_at)


def marked(component: str, mark: Mark, sat_on: date = JAN, released_at=JAN_OUT):
    return SittingResult(component, mark, None, sat_on, released_at)


# --- scores ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("72.5", Decimal("72.5")), (" 60 ", Decimal("60.0")), ("0", Decimal("0.0")),
     ("100", Decimal("100.0")), ("85.", Decimal("85.0")), ("59.90", Decimal("59.9"))],
)  # fmt: skip
def test_parse_score_valid_text_gives_one_decimal(text: str, expected: Decimal) -> None:
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("abc", "not_a_number"), ("", "not_a_number"), ("1e2", "not_a_number"),
     ("NaN", "not_a_number"), ("100.5", "out_of_range"), ("-1", "out_of_range"),
     ("101", "out_of_range"), ("72.25", "too_many_decimals")],
)  # fmt: skip
def test_parse_score_bad_text_raises_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidScore) as caught:
        parse_score(text)

    assert caught.value.reason == reason


def test_parse_score_other_max_score_is_the_bound() -> None:
    assert (parse_score("150", max_score=150), _reason(lambda: parse_score("151", 150))) == (
        Decimal("150.0"),
        "out_of_range",
    )


def _reason(call) -> str:  # type: ignore[no-untyped-def]
    try:
        call()
    except InvalidScore as exc:
        return exc.reason
    return "no error"


def test_tenths_round_trip_is_exact() -> None:
    assert (to_tenths(Decimal("72.5")), from_tenths(725), to_tenths(Decimal("100"))) == (
        725,
        Decimal("72.5"),
        1000,
    )


# --- one component ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (scored("theory", "60"), Outcome.PASSED),
        (scored("theory", "59.9"), Outcome.FAILED),
        (marked("theory", Mark.ABSENT), Outcome.ABSENT),
        (marked("theory", Mark.DISQUALIFIED), Outcome.DISQUALIFIED),
    ],
)
def test_outcome_against_pass_mark(result: SittingResult, expected: Outcome) -> None:
    assert RULES.outcome(result) == expected


def test_outcome_uses_the_catalogue_pass_mark() -> None:
    rules = ScoringRules.from_catalog(load_catalog(CATALOG_PATH))
    stricter = ScoringRules({**rules.pass_marks, "theory": Decimal(70)}, rules.max_scores, 1)

    actual = (rules.components, rules.retention_years, stricter.outcome(scored("theory", "65")))

    assert actual == (("theory", "practical"), 1, Outcome.FAILED)


def test_carries_over_until_pass_is_the_anniversary_of_the_sitting() -> None:
    actual = [
        RULES.carries_over_until(scored("theory", "75")),
        RULES.carries_over_until(scored("theory", "75", sat_on=date(2028, 2, 29))),
        RULES.carries_over_until(scored("theory", "40")),
        RULES.carries_over_until(marked("theory", Mark.DISQUALIFIED)),
    ]

    assert actual == [date(2028, 1, 9), date(2029, 3, 1), None, None]


# --- a level ----------------------------------------------------------------------------


def test_standing_both_passed_at_one_sitting_passes_on_release() -> None:
    standing = RULES.standing([scored("theory", "80"), scored("practical", "60")], JAN)

    assert (standing.passed, standing.passed_at, standing.to_retake) == (True, JAN_OUT, ())


def test_standing_one_passed_carries_over_with_its_expiry() -> None:
    theory, practical = scored("theory", "80"), scored("practical", "55")

    standing = RULES.standing([theory, practical], date(2027, 3, 1))

    assert standing.components == (
        ComponentState("theory", ComponentStatus.PASSED, theory, date(2028, 1, 9)),
        ComponentState("practical", ComponentStatus.FAILED, practical),
    )
    assert (standing.passed, standing.to_retake) == (False, ("practical",))


def test_standing_retake_within_carry_over_passes_on_the_later_release() -> None:
    retake_out = datetime(2027, 7, 10, 1, 0, tzinfo=UTC)
    results = [
        scored("theory", "80"),
        scored("practical", "55"),
        scored("practical", "71.5", sat_on=date(2027, 6, 12), released_at=retake_out),
    ]

    standing = RULES.standing(results, date(2027, 8, 1))

    assert (standing.passed, standing.passed_at) == (True, retake_out)
    assert [c.result for c in standing.components] == [results[0], results[2]]


def test_standing_retake_on_the_anniversary_still_counts() -> None:
    late_out = datetime(2028, 2, 6, 1, 0, tzinfo=UTC)
    results = [
        scored("theory", "80"),
        scored("practical", "61", sat_on=date(2028, 1, 9), released_at=late_out),
    ]

    assert RULES.standing(results, date(2028, 3, 1)).passed_at == late_out


def test_standing_retake_after_carry_over_expired_does_not_pass() -> None:
    theory = scored("theory", "80")
    late = scored("practical", "90", sat_on=date(2028, 1, 10), released_at=JAN_OUT)

    standing = RULES.standing([theory, late], date(2028, 3, 1))

    assert standing.passed is False
    assert standing.components == (
        ComponentState("theory", ComponentStatus.EXPIRED, theory, date(2028, 1, 9)),
        ComponentState("practical", ComponentStatus.PASSED, late, date(2029, 1, 10)),
    )


def test_standing_absent_and_disqualified_are_not_passes() -> None:
    absent, cheat = marked("theory", Mark.ABSENT), marked("practical", Mark.DISQUALIFIED)

    standing = RULES.standing([absent, cheat], JAN)

    assert [(c.status, c.carries_over_until) for c in standing.components] == [
        (ComponentStatus.ABSENT, None),
        (ComponentStatus.DISQUALIFIED, None),
    ]


def test_standing_unreleased_results_do_not_count() -> None:
    results = [scored("theory", "80", released_at=None), scored("practical", "80")]

    standing = RULES.standing(results, JAN)

    assert (standing.passed, [c.status for c in standing.components]) == (
        False,
        [ComponentStatus.NOT_TAKEN, ComponentStatus.PASSED],
    )


def test_standing_several_passes_takes_the_earliest_level_pass() -> None:
    second_out = datetime(2027, 7, 10, 1, 0, tzinfo=UTC)
    results = [
        scored("theory", "61"),
        scored("practical", "70"),
        scored("theory", "95", sat_on=date(2027, 6, 12), released_at=second_out),
    ]

    assert RULES.standing(results, date(2027, 8, 1)).passed_at == JAN_OUT
