"""Unit tests of bot.domain.catalog: the shipped catalogue, field-path error
messages, hashing, time helpers."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot.domain.catalog import CatalogError, load_catalog, parse_catalog

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalog" / "exam-catalog.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CATALOG_PATH)


def _errors_for(raw: dict, mutate) -> list[str]:
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    return str(caught.value).splitlines()


# --- the shipped file -------------------------------------------------------------------


def test_load_catalog_shipped_file_loads(catalog):
    actual = (
        catalog.version,
        [lvl.code for lvl in catalog.levels],
        [s.code for s in catalog.sessions],
    )

    assert actual == (
        "2026.11.2",
        ["junior", "intermediate", "senior"],
        ["2027-01", "2027-03", "2027-06"],
    )


def test_load_catalog_shipped_file_has_every_route(catalog):
    actual = [route.code for route in catalog.eligibility.routes]

    assert actual == ["J1", "J2", "J3", "J4", "M1", "M2", "M3", "M4", "M5", "S1", "S2", "S3", "S4"]


def test_load_catalog_shipped_fees_are_unconfirmed_placeholders(catalog):
    actual = {code: (int(fee.amount), fee.confirmed) for code, fee in catalog.fees.levels.items()}

    assert actual == {
        "junior": (800, False),
        "intermediate": (1200, False),
        "senior": (1600, False),
    }


def test_next_level_junior_is_intermediate(catalog):
    assert catalog.next_level("junior").code == "intermediate"


def test_next_level_top_level_is_none(catalog):
    assert catalog.next_level("senior") is None


def test_load_catalog_missing_file_raises_catalog_error(tmp_path):
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "nope.yaml")

    assert str(caught.value).startswith("<catalog>: cannot read")


# --- content hash -----------------------------------------------------------------------


def test_content_hash_same_file_twice_is_equal(catalog):
    assert load_catalog(CATALOG_PATH).content_hash() == catalog.content_hash()


def test_content_hash_reformatted_yaml_is_equal(raw, catalog):
    reformatted = yaml.safe_dump(raw, allow_unicode=True, sort_keys=True, default_flow_style=False)

    assert parse_catalog(reformatted).content_hash() == catalog.content_hash()


def test_content_hash_changed_capacity_differs(raw, catalog):
    data = copy.deepcopy(raw)
    data["sessions"][0]["capacity"] = 61

    assert parse_catalog(data).content_hash() != catalog.content_hash()


def test_parse_catalog_json_document_round_trip_keeps_hash(catalog):
    # The database stores model_dump(mode="json") and rebuilds the catalogue from it.
    document = json.loads(json.dumps(catalog.model_dump(mode="json")))

    assert parse_catalog(document).content_hash() == catalog.content_hash()


# --- field errors name the path ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["sessions"][1].update(capacity=0),
            "sessions[1].capacity: must be greater than 0",
        ),
        (
            lambda d: d["sessions"][0].update(time_zone="Asia/Shangai"),
            "sessions[0].time_zone: unknown time zone 'Asia/Shangai' (use an IANA name such as "
            "Asia/Shanghai)",
        ),
        (
            lambda d: d["site"].update(time_zone="CST+8"),
            "site.time_zone: unknown time zone 'CST+8' (use an IANA name such as Asia/Shanghai)",
        ),
        (
            lambda d: d["certificates"].update(number_pattern="([A-Z"),
            "certificates.number_pattern: not a valid regular expression (unterminated character "
            "set at position 1)",
        ),
        (
            lambda d: d["certificates"].update(number_format="RC-{level}"),
            "certificates.number_format: must contain {session} and {seq} (numbers must be "
            "unique)",
        ),
        (
            lambda d: d["certificates"].update(number_format="RC {session}-{seq}"),
            "certificates.number_format: gives 'RC 202701-1', which does not match number_pattern",
        ),
        (
            lambda d: d["fees"]["levels"]["junior"]["component"].pop("stars"),
            "fees.levels.junior.component.stars: required when stars is enabled",
        ),
        (
            lambda d: d["fees"]["levels"]["junior"].update(amount=-1),
            "fees.levels.junior.amount: must be greater than or equal to 0",
        ),
        (
            lambda d: d["sessions"][0].update(capcity=60),
            "sessions[0].capcity: unknown field (check the spelling)",
        ),
        (
            lambda d: d.pop("version"),
            "version: is required",
        ),
        (
            lambda d: d["sessions"][0]["components"][1].update(start=810),
            'sessions[0].components[1].start: write clock times in quotes, e.g. "13:30"',
        ),
        (
            lambda d: d["reminders"][0].update(offsets=["-3x"]),
            "reminders[0].offsets: invalid offset '-3x' (expected e.g. -3d, -48h, 0h, -30m)",
        ),
        (
            lambda d: d["levels"][2].update(training_hours_required=0),
            "levels[2].training_hours_required: must be greater than 0",
        ),
    ],
)
def test_parse_catalog_bad_field_names_path(raw, mutate, expected):
    assert _errors_for(raw, mutate) == [expected]


# --- cross-field errors -----------------------------------------------------------------


def _set_session_component(index: int, part: int, **values):
    return lambda d: d["sessions"][index]["components"][part].update(values)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["levels"].append({**d["levels"][0], "rank": 4}),
            ["levels[0].code: duplicate code 'junior'", "levels[3].code: duplicate code 'junior'"],
        ),
        (
            lambda d: d["levels"][2].update(rank=2),
            ["levels[1].rank: duplicate rank 2", "levels[2].rank: duplicate rank 2"],
        ),
        (
            lambda d: d["directions"][1].update(code="equipment_development"),
            [
                "directions[0].code: duplicate code 'equipment_development'",
                "directions[1].code: duplicate code 'equipment_development'",
            ],
        ),
        (
            lambda d: d["eligibility"]["routes"][1].update(code="J1"),
            [
                "eligibility.routes[0].code: duplicate code 'J1'",
                "eligibility.routes[1].code: duplicate code 'J1'",
            ],
        ),
        (
            lambda d: d["eligibility"]["routes"][0].update(level="expert"),
            ["eligibility.routes[0].level: unknown level 'expert'"],
        ),
        (
            lambda d: d["eligibility"]["routes"][2]["conditions"].update(
                education_in=["associate", "diploma"]
            ),
            [
                "eligibility.routes[2].conditions.education_in[1]: unknown education "
                "level 'diploma'"
            ],
        ),
        (
            lambda d: d["eligibility"]["routes"][0]["conditions"].update(title_at_least="chief"),
            ["eligibility.routes[0].conditions.title_at_least: unknown title 'chief'"],
        ),
        (
            lambda d: d["eligibility"]["routes"][1]["conditions"].update(related_major="masters"),
            [
                "eligibility.routes[1].conditions.related_major: unknown related_majors "
                "list 'masters'"
            ],
        ),
        (
            lambda d: d["eligibility"]["routes"][5]["conditions"].update(prior_level="expert"),
            ["eligibility.routes[5].conditions.prior_level: unknown level 'expert'"],
        ),
        (
            _set_session_component(0, 0, start="11:00"),
            ["sessions[0].components[0].end: must be after start"],
        ),
        (
            _set_session_component(0, 1, start="10:00"),
            [
                "sessions[0].components[1].start: must not be before the end of the "
                "previous component"
            ],
        ),
        (
            _set_session_component(1, 1, component="oral"),
            ["sessions[1].components[1].component: unknown component 'oral'"],
        ),
        (
            lambda d: d["sessions"][2].update(levels=["master", "junior"]),
            ["sessions[2].levels[0]: unknown level 'master'"],
        ),
        (
            lambda d: d["sessions"][2].update(code="2027-01"),
            [
                "sessions[0].code: duplicate code '2027-01'",
                "sessions[2].code: duplicate code '2027-01'",
            ],
        ),
        (
            lambda d: d["timeline"].update(registration_opens=-10),
            [
                "timeline.registration_opens: must be before registration_closes",
                "timeline.payment_due: must be after registration opens and before the exam day",
            ],
        ),
        (
            lambda d: d["timeline"].update(payment_due=1),
            ["timeline.payment_due: must be after registration opens and before the exam day"],
        ),
        (
            lambda d: d["timeline"].update(payment_due=-1, payment_grace_hours=30),
            ["timeline.payment_grace_hours: pushes the payment deadline past the exam day"],
        ),
        (
            lambda d: d["timeline"].update(results=-2),
            ["timeline.results: must be after the exam day (positive)"],
        ),
        (
            lambda d: d["sessions"][0].update(timeline={"registration_closes": -50}),
            ["sessions[0].timeline.registration_opens: must be before registration_closes"],
        ),
        (
            lambda d: d["fees"]["levels"].pop("senior"),
            ["fees.levels.senior: missing: every level needs a fee entry"],
        ),
        (
            lambda d: d["components"][0].update(pass_mark=101),
            ["components[0].pass_mark: must not exceed max_score"],
        ),
    ],
)
def test_parse_catalog_bad_reference_names_path(raw, mutate, expected):
    assert _errors_for(raw, mutate) == expected


def test_parse_catalog_several_problems_one_line_each(raw):
    def mutate(d):
        d["sessions"][0].update(capacity=-5)
        d["sessions"][2].update(time_zone="Mars/Olympus")

    assert _errors_for(raw, mutate) == [
        "sessions[0].capacity: must be greater than 0",
        "sessions[2].time_zone: unknown time zone 'Mars/Olympus' (use an IANA name such as "
        "Asia/Shanghai)",
    ]


def test_parse_catalog_invalid_yaml_names_line():
    with pytest.raises(CatalogError) as caught:
        parse_catalog("version: '1'\nlevels: [junior\n")

    assert str(caught.value).startswith("line 3, column 1: invalid YAML")


def test_parse_catalog_not_a_mapping_raises():
    with pytest.raises(CatalogError) as caught:
        parse_catalog("- just\n- a list\n")

    assert (
        str(caught.value)
        == "<catalog>: the catalogue must be a mapping of sections (version, levels, ...)"
    )


# --- time helpers -----------------------------------------------------------------------


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_session_timeline_january_session_in_utc(catalog):
    t = catalog.session_timeline("2027-01")

    actual = (
        t.registration_opens_at,
        t.registration_closes_at,
        t.payment_due_at,
        t.exam_starts_at,
        t.results_at,
    )

    # Asia/Shanghai is UTC+8: 09:00 local = 01:00 UTC, 18:00 local = 10:00 UTC.
    assert actual == (
        _utc(2026, 11, 25, 1),
        _utc(2026, 12, 19, 10),
        _utc(2026, 12, 26, 10),
        _utc(2027, 1, 9, 1),
        _utc(2027, 2, 6, 1),
    )


def test_session_timeline_override_replaces_default(raw):
    data = copy.deepcopy(raw)
    data["sessions"][0]["timeline"] = {"registration_closes": -28}

    actual = parse_catalog(data).session_timeline("2027-01").registration_closes_at

    assert actual == _utc(2026, 12, 12, 10)


def test_slots_practical_component_in_utc(catalog):
    slot = catalog.session("2027-01").slots()[1]

    assert (slot.component, slot.starts_at, slot.ends_at) == (
        "practical",
        _utc(2027, 1, 9, 5, 30),
        _utc(2027, 1, 9, 7, 30),
    )


def test_reminder_times_january_session(catalog):
    actual = [(r.key, r.at) for r in catalog.reminder_times("2027-01")]

    assert actual == [
        ("registration_closing:-3d", _utc(2026, 12, 16, 10)),
        ("registration_closing:-1d", _utc(2026, 12, 18, 10)),
        ("payment_due:-48h", _utc(2026, 12, 24, 10)),
        ("payment_due:-24h", _utc(2026, 12, 25, 10)),
        ("exam:-7d", _utc(2027, 1, 2, 1)),
        ("exam:-1d", _utc(2027, 1, 8, 1)),
        ("exam:-2h", _utc(2027, 1, 8, 23)),
        ("results_released:0h", _utc(2027, 2, 6, 1)),
    ]


def test_sessions_open_for_registration_today_is_january_only(catalog):
    actual = [s.code for s in catalog.sessions_open_for_registration(_utc(2026, 11, 26, 12))]

    assert actual == ["2027-01"]


def test_assigned_certificate_number_follows_the_format_and_the_pattern(catalog):
    number = catalog.certificates.assign_number(
        session="2027-03", level="intermediate", year=2027, seq=7
    )

    assert (number, catalog.certificates.number_is_valid(number)) == (
        "RC202703-INTERMEDIATE-0007",
        True,
    )


def test_retake_of_one_component_pays_the_component_fee(catalog):
    fee = catalog.fee("junior")

    assert (fee.for_components(1, 2).amount, fee.for_components(2, 2).amount) == (400, 800)


def test_number_is_valid_permissive_pattern(catalog):
    assert (
        catalog.certificates.number_is_valid("S2027-0001"),
        catalog.certificates.number_is_valid("x"),
    ) == (True, False)
