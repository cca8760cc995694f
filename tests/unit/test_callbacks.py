"""Callback data: malformed, forged or oversized parts parse to None; good data to typed parts."""

from __future__ import annotations

import pytest

from handlers.callbacks import ID, MAX_ID, WORD, one_of, optional, parse, parse_id


@pytest.mark.parametrize(
    "data",
    [
        "reg:cancel:",  # empty id
        "reg:cancel:abc",  # not a number
        "reg:cancel:-5",  # negative
        "reg:cancel:0",  # no row has id 0
        "reg:cancel:+5",  # a sign
        "reg:cancel: 5",  # a space
        "reg:cancel:5 ",
        "reg:cancel:1_000",  # int() would take it
        "reg:cancel:٣",  # a non-ASCII digit (str.isdigit() would take it)
        "reg:cancel:2147483648",  # one past the Integer column
        "reg:cancel:99999999999999999999999999",  # far past any id
        "reg:cancel:5:6",  # an extra part
        "reg:cancel",  # no part at all
        "reg:cancelx:5",  # another prefix
        "pay:5",
        "",
    ],
)
def test_parse_id_malformed_is_none(data: str) -> None:
    assert parse_id(data, "reg:cancel") is None


def test_parse_id_none_data_is_none() -> None:
    assert parse_id(None, "reg:cancel") is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [("reg:cancel:1", 1), ("reg:cancel:42", 42), (f"reg:cancel:{MAX_ID}", MAX_ID)],
)
def test_parse_id_valid_gives_the_id(data: str, expected: int) -> None:
    assert parse_id(data, "reg:cancel") == expected


def test_parse_typed_parts_valid() -> None:
    assert parse("reg:move_to:7:2027-01", "reg:move_to", ID, WORD) == (7, "2027-01")


def test_parse_one_of_refuses_an_unknown_word() -> None:
    method = one_of("telegram", "stars")
    assert (
        parse("pay:inv:3:stars", "pay:inv", ID, method),
        parse("pay:inv:3:cash", "pay:inv", ID, method),
    ) == (
        (3, "stars"),
        None,
    )


def test_parse_optional_trailing_part_may_be_left_out() -> None:
    parts = (one_of("ok", "no"), ID, optional(WORD))
    assert (parse("pay:no:9", "pay", *parts), parse("pay:no:9:amount_wrong", "pay", *parts)) == (
        ("no", 9, None),
        ("no", 9, "amount_wrong"),
    )


@pytest.mark.parametrize(
    "data",
    [
        "pay:no:9:amount wrong",  # a space in a word
        "pay:no:9:",  # an empty word
        "pay:no:9:a:b",  # too many parts
        "pay:no:-9",
        "pay:no:99999999999",
        "pay:maybe:9",
        "pay:no:9:" + "x" * 65,  # longer than callback data can be
    ],
)
def test_parse_forged_parts_are_none(data: str) -> None:
    assert parse(data, "pay", one_of("ok", "no"), ID, optional(WORD)) is None
