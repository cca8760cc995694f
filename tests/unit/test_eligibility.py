"""Unit tests of bot.domain.eligibility: every route of every level, pass and fail, and edge cases.

Exam day E is 2027-01-09 (the January session) unless a test says otherwise.
"""

from datetime import date
from pathlib import Path

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.eligibility import (
    Missing,
    Profile,
    ProfileError,
    Requirement,
    RouteResult,
    Status,
    Suggestion,
    add_months,
    add_years,
    evaluate,
    full_years,
    major_matches,
    required_questions,
    suggest_level,
)

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalog" / "exam-catalog.yaml"
E = date(2027, 1, 9)
GRADUATED = date(2020, 6, 30)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CATALOG_PATH)


def _summary(verdict):
    return verdict.status, verdict.matched_route


# --- date arithmetic --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 1, 9), date(2027, 1, 9), 1),  # the anniversary itself counts
        (date(2026, 1, 10), date(2027, 1, 9), 0),
        (date(2024, 2, 29), date(2025, 2, 28), 0),  # leap day: the year completes on 1 March
        (date(2024, 2, 29), date(2025, 3, 1), 1),
        (date(2024, 2, 29), date(2028, 2, 29), 4),
        (date(2028, 1, 1), date(2027, 1, 9), 0),  # start after end
    ],
)
def test_full_years_counts_completed_years(start, end, expected):
    assert full_years(start, end) == expected


def test_add_years_leap_day_moves_to_march_first():
    assert add_years(date(2024, 2, 29), 1) == date(2025, 3, 1)


def test_add_months_clamps_to_month_end():
    assert (add_months(date(2027, 1, 31), 1), add_months(date(2027, 1, 9), 12)) == (
        date(2027, 2, 28),
        date(2028, 1, 9),
    )


# --- 初级 junior ---------------------------------------------------------------------------


def test_evaluate_j1_technician_title_is_eligible(catalog):
    profile = Profile(title="technician", title_date=date(2020, 1, 1))

    assert _summary(evaluate(catalog, "junior", profile, E)) == (Status.ELIGIBLE, "J1")


def test_evaluate_j1_without_title_reports_title_missing(catalog):
    verdict = evaluate(catalog, "junior", Profile(), E)

    assert verdict.route("J1") == RouteResult(
        "J1",
        ok=False,
        manual_review=False,
        missing=[Missing("title", need="technician", have=None)],
    )


def test_evaluate_j2_related_bachelor_graduate_is_eligible(catalog):
    profile = Profile(education="bachelor", major="机械工程", graduation_date=GRADUATED)

    assert _summary(evaluate(catalog, "junior", profile, E)) == (Status.ELIGIBLE, "J2")


def test_evaluate_j2_associate_reports_education_missing(catalog):
    profile = Profile(education="associate", major="数控技术", graduation_date=GRADUATED)

    actual = evaluate(catalog, "junior", profile, E).route("J2").missing

    assert actual == [
        Missing(
            "education", need=("bachelor", "second_bachelor", "master", "doctor"), have="associate"
        )
    ]


def test_evaluate_j2_no_major_given_reports_major_missing(catalog):
    profile = Profile(education="bachelor", graduation_date=GRADUATED)

    verdict = evaluate(catalog, "junior", profile, E)

    assert (verdict.status, verdict.route("J2").missing) == (
        Status.NOT_ELIGIBLE,
        [Missing("related_major", need="degree", have=None)],
    )


def test_evaluate_j3_related_associate_with_work_year_is_eligible(catalog):
    profile = Profile(
        education="associate",
        major="数控技术",
        graduation_date=GRADUATED,
        work_start=date(2020, 7, 1),
    )

    assert _summary(evaluate(catalog, "junior", profile, E)) == (Status.ELIGIBLE, "J3")


def test_evaluate_j3_short_work_reports_date_it_will_hold(catalog):
    profile = Profile(
        education="associate",
        major="工业机器人技术",
        graduation_date=date(2026, 6, 30),
        work_start=date(2026, 3, 1),
    )

    verdict = evaluate(catalog, "junior", profile, E)

    assert (verdict.status, verdict.route("J3"), verdict.suggestions) == (
        Status.NOT_ELIGIBLE,
        RouteResult(
            "J3",
            ok=False,
            manual_review=False,
            missing=[Missing("work_years", need=1, have=0, met_on=date(2027, 3, 1))],
            eligible_from=date(2027, 3, 1),
        ),
        [
            Suggestion(
                "eligible_from", level="junior", route="J3", on=date(2027, 3, 1), session="2027-03"
            )
        ],
    )


def test_evaluate_j4_technical_school_goes_to_manual_review(catalog):
    profile = Profile(education="technical_school", major="数控加工", graduation_date=GRADUATED)

    verdict = evaluate(catalog, "junior", profile, E)

    assert (verdict.status, verdict.matched_route, verdict.route("J4")) == (
        Status.MANUAL_REVIEW,
        None,
        RouteResult("J4", ok=False, manual_review=True, missing=[]),
    )


def test_evaluate_j4_other_education_reports_education_missing(catalog):
    profile = Profile(education="bachelor", major="机械工程", graduation_date=GRADUATED)

    actual = evaluate(catalog, "junior", profile, E).route("J4")

    assert actual == RouteResult(
        "J4",
        ok=False,
        manual_review=False,
        missing=[Missing("education", need=("technical_school",), have="bachelor")],
    )


# --- 中级 intermediate ---------------------------------------------------------------------


def test_evaluate_m1_assistant_engineer_on_exact_anniversary_is_eligible(catalog):
    profile = Profile(title="assistant_engineer", title_date=date(2025, 1, 9))

    assert _summary(evaluate(catalog, "intermediate", profile, E)) == (Status.ELIGIBLE, "M1")


def test_evaluate_m1_one_day_short_reports_years_since_title(catalog):
    profile = Profile(title="assistant_engineer", title_date=date(2025, 1, 10))

    actual = evaluate(catalog, "intermediate", profile, E).route("M1").missing

    assert actual == [Missing("years_since_title", need=2, have=1, met_on=date(2027, 1, 10))]


def test_evaluate_m1_technician_only_reports_title(catalog):
    profile = Profile(title="technician", title_date=date(2015, 1, 1))

    actual = evaluate(catalog, "intermediate", profile, E).route("M1").missing

    assert actual == [Missing("title", need="assistant_engineer", have="technician")]


def test_evaluate_m2_bachelor_with_junior_three_years_is_eligible(catalog):
    profile = Profile(
        education="bachelor",
        major="历史学",
        graduation_date=GRADUATED,
        prior_levels={"junior": date(2024, 1, 9)},
    )

    assert _summary(evaluate(catalog, "intermediate", profile, E)) == (Status.ELIGIBLE, "M2")


def test_evaluate_m2_junior_too_recent_reports_years_since_prior_level(catalog):
    profile = Profile(
        education="associate", graduation_date=GRADUATED, prior_levels={"junior": date(2024, 6, 1)}
    )

    verdict = evaluate(catalog, "intermediate", profile, E)

    assert (verdict.route("M2").missing, verdict.suggestions[-1]) == (
        [Missing("years_since_prior_level", need=3, have=2, met_on=date(2027, 6, 1))],
        Suggestion(
            "eligible_from",
            level="intermediate",
            route="M2",
            on=date(2027, 6, 1),
            session="2027-06",
        ),
    )


def test_evaluate_m3_master_with_junior_one_year_is_eligible(catalog):
    profile = Profile(
        education="master", graduation_date=GRADUATED, prior_levels={"junior": date(2026, 1, 9)}
    )

    assert _summary(evaluate(catalog, "intermediate", profile, E)) == (Status.ELIGIBLE, "M3")


def test_evaluate_m3_second_bachelor_with_junior_is_eligible(catalog):
    profile = Profile(
        education="second_bachelor",
        graduation_date=GRADUATED,
        prior_levels={"junior": date(2025, 12, 1)},
    )

    assert _summary(evaluate(catalog, "intermediate", profile, E)) == (Status.ELIGIBLE, "M3")


def test_evaluate_m3_master_without_junior_suggests_junior_via_j2(catalog):
    profile = Profile(education="master", major="机械工程", graduation_date=GRADUATED)

    verdict = evaluate(catalog, "intermediate", profile, E)

    assert (verdict.status, verdict.route("M3").missing, verdict.suggestions) == (
        Status.NOT_ELIGIBLE,
        [Missing("prior_level", need="junior", have=None)],
        [Suggestion("apply_level", level="junior", route="J2")],
    )


def test_evaluate_m4_doctor_related_major_is_eligible(catalog):
    profile = Profile(education="doctor", major="控制科学与工程", graduation_date=GRADUATED)

    assert _summary(evaluate(catalog, "intermediate", profile, E)) == (Status.ELIGIBLE, "M4")


def test_evaluate_m4_doctor_off_list_major_goes_to_manual_review(catalog):
    profile = Profile(education="doctor", major="材料科学与工程", graduation_date=GRADUATED)

    verdict = evaluate(catalog, "intermediate", profile, E)

    assert (verdict.status, verdict.route("M4")) == (
        Status.MANUAL_REVIEW,
        RouteResult(
            "M4",
            ok=False,
            manual_review=True,
            missing=[
                Missing("related_major", need="degree", have="材料科学与工程", reviewable=True)
            ],
        ),
    )


def test_evaluate_m5_technical_school_goes_to_manual_review(catalog):
    profile = Profile(education="technical_school", graduation_date=GRADUATED)

    verdict = evaluate(catalog, "intermediate", profile, E)

    assert (verdict.status, verdict.route("M5").manual_review) == (Status.MANUAL_REVIEW, True)


# --- 高级 senior -----------------------------------------------------------------------------


def test_evaluate_s1_engineer_three_years_is_eligible(catalog):
    profile = Profile(title="engineer", title_date=date(2024, 1, 9))

    assert _summary(evaluate(catalog, "senior", profile, E)) == (Status.ELIGIBLE, "S1")


def test_evaluate_s1_engineer_too_recent_reports_years_since_title(catalog):
    profile = Profile(title="engineer", title_date=date(2025, 1, 1))

    verdict = evaluate(catalog, "senior", profile, E)

    assert (verdict.status, verdict.route("S1").missing) == (
        Status.NOT_ELIGIBLE,
        [Missing("years_since_title", need=3, have=2, met_on=date(2028, 1, 1))],
    )


def test_evaluate_s2_master_with_intermediate_four_years_is_eligible(catalog):
    profile = Profile(
        education="master",
        graduation_date=GRADUATED,
        prior_levels={"intermediate": date(2023, 1, 1)},
    )

    assert _summary(evaluate(catalog, "senior", profile, E)) == (Status.ELIGIBLE, "S2")


def test_evaluate_s2_associate_with_intermediate_reports_education(catalog):
    profile = Profile(
        education="associate",
        graduation_date=GRADUATED,
        prior_levels={"intermediate": date(2020, 1, 1)},
    )

    actual = evaluate(catalog, "senior", profile, E).route("S2").missing

    assert actual == [
        Missing("education", need=("bachelor", "second_bachelor", "master"), have="associate")
    ]


def test_evaluate_s3_doctor_with_intermediate_one_year_is_eligible(catalog):
    profile = Profile(
        education="doctor",
        graduation_date=GRADUATED,
        prior_levels={"intermediate": date(2026, 1, 1)},
    )

    assert _summary(evaluate(catalog, "senior", profile, E)) == (Status.ELIGIBLE, "S3")


def test_evaluate_s3_doctor_without_intermediate_reports_prior_level(catalog):
    profile = Profile(
        education="doctor", graduation_date=GRADUATED, prior_levels={"junior": date(2024, 1, 1)}
    )

    actual = evaluate(catalog, "senior", profile, E).route("S3").missing

    assert actual == [Missing("prior_level", need="intermediate", have=("junior",))]


def test_evaluate_s4_technical_school_goes_to_manual_review(catalog):
    profile = Profile(education="technical_school", graduation_date=GRADUATED)

    verdict = evaluate(catalog, "senior", profile, E)

    assert (verdict.status, verdict.route("S4").manual_review) == (Status.MANUAL_REVIEW, True)


def test_evaluate_senior_requires_160_training_hours(catalog):
    verdict = evaluate(catalog, "senior", Profile(), E)

    assert verdict.requirements == [Requirement("training_hours", 160)]


def test_evaluate_every_level_lists_every_route(catalog):
    actual = {
        level: [r.route for r in evaluate(catalog, level, Profile(), E).routes]
        for level in ("junior", "intermediate", "senior")
    }

    assert actual == {
        "junior": ["J1", "J2", "J3", "J4"],
        "intermediate": ["M1", "M2", "M3", "M4", "M5"],
        "senior": ["S1", "S2", "S3", "S4"],
    }


# --- students and graduation ------------------------------------------------------------


def test_evaluate_final_year_bachelor_is_eligible_via_j2(catalog):
    profile = Profile(
        education="bachelor", major="自动化", graduation_date=date(2027, 6, 30), final_year=True
    )

    assert _summary(evaluate(catalog, "junior", profile, E)) == (Status.ELIGIBLE, "J2")


def test_evaluate_bachelor_graduating_after_window_reports_graduation_window(catalog):
    profile = Profile(education="bachelor", major="自动化", graduation_date=date(2028, 6, 30))

    actual = evaluate(catalog, "junior", profile, E).route("J2").missing

    assert actual == [
        Missing("graduation_window", need=12, have=date(2028, 6, 30), met_on=date(2027, 6, 30))
    ]


def test_evaluate_final_year_flag_without_date_asks_for_graduation_date(catalog):
    profile = Profile(education="bachelor", major="自动化", final_year=True)

    actual = evaluate(catalog, "junior", profile, E).route("J2").missing

    assert actual == [Missing("graduation_window", need=12, have=None)]


def test_evaluate_final_year_associate_is_not_eligible_and_told_about_work_year(catalog):
    profile = Profile(
        education="associate", major="数控技术", graduation_date=date(2027, 6, 30), final_year=True
    )

    verdict = evaluate(catalog, "junior", profile, E)

    assert (verdict.status, verdict.route("J3").missing, verdict.suggestions) == (
        Status.NOT_ELIGIBLE,
        [
            Missing("graduation", need=E, have=date(2027, 6, 30), met_on=date(2027, 6, 30)),
            Missing("work_years", need=1, have=0, met_on=date(2028, 6, 30)),
        ],
        [
            Suggestion(
                "eligible_from", level="junior", route="J3", on=date(2028, 6, 30), session=None
            )
        ],
    )


def test_evaluate_final_year_master_does_not_count_for_m3(catalog):
    profile = Profile(
        education="master",
        graduation_date=date(2027, 6, 30),
        prior_levels={"junior": date(2025, 1, 1)},
    )

    actual = evaluate(catalog, "intermediate", profile, E).route("M3").missing

    assert actual == [
        Missing("graduation", need=E, have=date(2027, 6, 30), met_on=date(2027, 6, 30))
    ]


# --- majors -----------------------------------------------------------------------------


def test_evaluate_off_list_major_goes_to_manual_review(catalog):
    profile = Profile(education="bachelor", major="汉语言文学", graduation_date=GRADUATED)

    verdict = evaluate(catalog, "junior", profile, E)

    assert (verdict.status, verdict.matched_route, verdict.route("J2").manual_review) == (
        Status.MANUAL_REVIEW,
        None,
        True,
    )


@pytest.mark.parametrize(
    "major",
    [
        "机械工程",
        " 机械 工程 ",
        "机械工程专业",
        "MECHANICAL ENGINEERING",
        "ｍｅｃｈａｎｉｃａｌ　ｅｎｇｉｎｅｅｒｉｎｇ",
        "mechanical-engineering",
    ],
)
def test_major_matches_normalised_spelling(catalog, major):
    assert major_matches(catalog, "degree", major) is True


def test_major_matches_associate_major_not_on_degree_list(catalog):
    assert major_matches(catalog, "degree", "数控技术") is False


def test_major_matches_picked_code(catalog):
    assert major_matches(catalog, "associate", None, "cnc_technology") is True


# --- titles -----------------------------------------------------------------------------


def test_evaluate_title_obtained_after_exam_date_does_not_count(catalog):
    profile = Profile(title="technician", title_date=date(2027, 2, 1))

    verdict = evaluate(catalog, "junior", profile, E)

    assert (verdict.status, verdict.route("J1").missing) == (
        Status.NOT_ELIGIBLE,
        [Missing("title", need="technician", have="technician", met_on=date(2027, 2, 1))],
    )


def test_evaluate_higher_title_satisfies_lower_title_requirement(catalog):
    profile = Profile(title="engineer", title_date=date(2026, 6, 1))

    assert _summary(evaluate(catalog, "junior", profile, E)) == (Status.ELIGIBLE, "J1")


def test_evaluate_higher_title_held_long_enough_satisfies_m1(catalog):
    profile = Profile(title="senior_engineer", title_date=date(2020, 1, 1))

    assert _summary(evaluate(catalog, "intermediate", profile, E)) == (Status.ELIGIBLE, "M1")


def test_evaluate_higher_title_held_too_briefly_goes_to_manual_review(catalog):
    profile = Profile(title="engineer", title_date=date(2026, 6, 1))

    verdict = evaluate(catalog, "intermediate", profile, E)

    assert (verdict.status, verdict.route("M1")) == (
        Status.MANUAL_REVIEW,
        RouteResult(
            "M1",
            ok=False,
            manual_review=True,
            missing=[
                Missing(
                    "years_since_title", need=2, have=0, met_on=date(2028, 6, 1), reviewable=True
                )
            ],
            eligible_from=date(2028, 6, 1),
        ),
    )


def test_evaluate_title_without_date_reports_unknown_years(catalog):
    profile = Profile(title="assistant_engineer")

    actual = evaluate(catalog, "intermediate", profile, E).route("M1").missing

    assert actual == [Missing("years_since_title", need=2, have=None)]


# --- dates: anniversaries, leap days, prior levels --------------------------------------


def test_evaluate_work_start_on_leap_day_completes_year_on_march_first(catalog):
    profile = Profile(
        education="associate",
        major="数控技术",
        graduation_date=date(2023, 6, 30),
        work_start=date(2024, 2, 29),
    )

    actual = (
        evaluate(catalog, "junior", profile, date(2025, 2, 28)).status,
        evaluate(catalog, "junior", profile, date(2025, 3, 1)).status,
    )

    assert actual == (Status.NOT_ELIGIBLE, Status.ELIGIBLE)


def test_evaluate_exact_anniversary_of_work_start_counts(catalog):
    profile = Profile(
        education="associate",
        major="数控技术",
        graduation_date=date(2025, 6, 30),
        work_start=date(2026, 1, 9),
    )

    assert _summary(evaluate(catalog, "junior", profile, E)) == (Status.ELIGIBLE, "J3")


def test_evaluate_prior_level_after_exam_date_does_not_count(catalog):
    profile = Profile(
        education="master", graduation_date=GRADUATED, prior_levels={"junior": date(2027, 2, 1)}
    )

    actual = evaluate(catalog, "intermediate", profile, E).route("M3").missing

    assert actual == [
        Missing("prior_level", need="junior", have="junior", met_on=date(2027, 2, 1)),
        Missing("years_since_prior_level", need=1, have=0, met_on=date(2028, 2, 1)),
    ]


def test_evaluate_passing_junior_unlocks_intermediate(catalog):
    without = Profile(education="master", major="机械工程", graduation_date=GRADUATED)
    with_junior = Profile(
        education="master",
        major="机械工程",
        graduation_date=GRADUATED,
        prior_levels={"junior": date(2025, 6, 1)},
    )

    actual = (
        evaluate(catalog, "intermediate", without, E).status,
        evaluate(catalog, "intermediate", with_junior, E).status,
    )

    assert actual == (Status.NOT_ELIGIBLE, Status.ELIGIBLE)


# --- suggest_level / required_questions / errors ----------------------------------------


def test_suggest_level_doctor_related_major_is_intermediate(catalog):
    profile = Profile(education="doctor", major="人工智能", graduation_date=GRADUATED)

    assert suggest_level(catalog, profile, E) == "intermediate"


def test_suggest_level_engineer_long_held_is_senior(catalog):
    profile = Profile(title="engineer", title_date=date(2018, 1, 1))

    assert suggest_level(catalog, profile, E) == "senior"


def test_suggest_level_technical_school_is_lowest_manual_review(catalog):
    profile = Profile(education="technical_school", graduation_date=GRADUATED)

    assert suggest_level(catalog, profile, E) == "junior"


def test_suggest_level_nothing_fits_is_none(catalog):
    profile = Profile(education="associate", major="数控技术", graduation_date=GRADUATED)

    assert suggest_level(catalog, profile, E) is None


def test_required_questions_junior(catalog):
    assert required_questions(catalog, "junior") == [
        "education",
        "graduation_date",
        "final_year",
        "major",
        "title",
        "work_start",
    ]


def test_required_questions_senior(catalog):
    assert required_questions(catalog, "senior") == [
        "education",
        "graduation_date",
        "title",
        "title_date",
        "prior_levels",
    ]


def test_required_questions_all_levels(catalog):
    assert required_questions(catalog, None) == [
        "education",
        "graduation_date",
        "final_year",
        "major",
        "title",
        "title_date",
        "prior_levels",
        "work_start",
    ]


@pytest.mark.parametrize(
    ("level", "profile", "field"),
    [
        ("expert", Profile(), "level"),
        ("junior", Profile(education="college"), "education"),
        ("junior", Profile(title="chief"), "title"),
        ("junior", Profile(prior_levels={"expert": date(2020, 1, 1)}), "prior_levels"),
    ],
)
def test_evaluate_unknown_code_raises_profile_error(catalog, level, profile, field):
    with pytest.raises(ProfileError) as caught:
        evaluate(catalog, level, profile, E)

    assert caught.value.field == field


# --- a candidate who already holds a level ----------------------------------------------


def test_suggest_level_holding_intermediate_points_to_senior_not_junior(catalog):
    profile = Profile(
        education="bachelor",
        major="机械工程",
        graduation_date=GRADUATED,
        prior_levels={"intermediate": date(2025, 6, 1)},
    )

    assert suggest_level(catalog, profile, E) == "senior"


def test_evaluate_senior_holding_intermediate_suggests_no_lower_level(catalog):
    profile = Profile(
        education="bachelor",
        major="机械工程",
        graduation_date=GRADUATED,
        prior_levels={"intermediate": date(2025, 6, 1)},
    )

    verdict = evaluate(catalog, "senior", profile, E)

    assert [(s.kind, s.level, s.route, s.on) for s in verdict.suggestions] == [
        ("eligible_from", "senior", "S2", date(2029, 6, 1))
    ]
