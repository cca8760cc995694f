"""Unit tests of bot.domain.idcard: GB 11643-1999 resident ID numbers and passports."""

from datetime import date

import pytest

from bot.domain.idcard import (
    Gender,
    IdCardInfo,
    InvalidIdNumber,
    InvalidPassportNumber,
    is_valid_id_number,
    mask_id_number,
    normalise_passport_number,
    parse_id_number,
)

TODAY = date(2026, 11, 26)


def test_parse_id_number_standard_example_is_valid_female():
    actual = parse_id_number("11010519491231002X", today=TODAY)

    assert actual == IdCardInfo(
        number="11010519491231002X",
        birth_date=date(1949, 12, 31),
        gender=Gender.FEMALE,
        region_code="110105",
    )


def test_parse_id_number_odd_sequence_is_male():
    actual = parse_id_number("110105199001010010", today=TODAY)

    assert actual.gender == Gender.MALE


def test_parse_id_number_lower_case_x_is_normalised():
    actual = parse_id_number("11010519491231002x", today=TODAY)

    assert actual.number == "11010519491231002X"


def test_parse_id_number_spaces_are_ignored():
    actual = parse_id_number(" 110105 19491231 002X ", today=TODAY)

    assert actual.number == "11010519491231002X"


def test_parse_id_number_leap_day_birth_is_valid():
    actual = parse_id_number("110105200002290013", today=TODAY)

    assert actual.birth_date == date(2000, 2, 29)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("110105194912310021", "checksum"),
        ("110105491231002", "legacy_15"),
        ("11010519491231002", "length"),
        ("11010519491231002X1", "length"),
        ("", "length"),
        ("1101051949123100XX", "characters"),
        ("A1010519491231002X", "characters"),
        ("110105194902300020", "birth_date"),
        ("110105194913010020", "birth_date"),
        ("110105185001010020", "birth_date"),
        ("110105203001010028", "future_birth_date"),
    ],
)
def test_parse_id_number_invalid_raises_reason(number, reason):
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(number, today=TODAY)

    assert caught.value.reason == reason


def test_parse_id_number_birth_today_is_valid():
    actual = parse_id_number("110105203001010028", today=date(2030, 1, 1))

    assert actual.birth_date == date(2030, 1, 1)


def test_is_valid_id_number_bad_checksum_is_false():
    assert is_valid_id_number("110105194912310021", today=TODAY) is False


def test_mask_id_number_resident_id_keeps_four_each_side():
    assert mask_id_number("371002199001011235") == "3710**********1235"


def test_mask_id_number_short_passport_keeps_two_each_side():
    assert mask_id_number("E12345678") == "E1*****78"


def test_mask_id_number_very_short_value_is_fully_masked():
    assert mask_id_number("AB12") == "****"


def test_normalise_passport_number_strips_spaces_and_upper_cases():
    assert normalise_passport_number(" e1234 5678 ") == "E12345678"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("AB12", "length"),
        ("A" * 21, "length"),
        ("AB-12345", "characters"),
        ("护照123456", "characters"),
    ],
)
def test_normalise_passport_number_invalid_raises_reason(number, reason):
    with pytest.raises(InvalidPassportNumber) as caught:
        normalise_passport_number(number)

    assert caught.value.reason == reason
