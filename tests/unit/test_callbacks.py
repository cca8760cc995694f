"""Callback data: malformed, forged or oversized parts parse to None; good data to typed parts."""

from __future__ import annotations

import pytest
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, ContextTypes

import handlers
from bot.config import Settings
from handlers.callbacks import ID, MAX_ID, WORD, Button, one_of, optional, parse, parse_id
from handlers.context import BotData, ExamContext


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


# --- buttons: one declaration routes and parses every press ---------------------------------


def callback_handlers() -> list[CallbackQueryHandler]:
    """The button handlers of the real bot, in PTB's order (group 0 first)."""
    settings = Settings(
        bot_token="123456789:" + "A" * 35,
        secret_key="unit-test-secret-key-" + "x" * 32,
        admin_ids=frozenset({90001}),
        staff_chat_id=-1009001,
        _env_file=None,
    )
    application = (
        ApplicationBuilder()
        .token(settings.bot_token.get_secret_value())
        .updater(None)
        .context_types(ContextTypes(context=ExamContext, bot_data=BotData))
        .build()
    )
    application.bot_data.settings = settings
    handlers.setup(application)
    return [
        h
        for group in sorted(application.handlers)
        for h in application.handlers[group]
        if isinstance(h, CallbackQueryHandler)
    ]


def button_of(handler: CallbackQueryHandler) -> Button | None:
    return getattr(handler.pattern, "__self__", None)


def test_every_button_handler_routes_with_its_button_and_only_the_catch_all_has_none() -> None:
    found = callback_handlers()
    without = [h.callback.__name__ for h in found if not isinstance(button_of(h), Button)]
    assert without == ["on_unknown_button"]
    assert found[-1].callback.__name__ == "on_unknown_button"


def test_every_button_reaches_its_own_handler_even_with_an_oversized_or_forged_id() -> None:
    # The first handler whose pattern takes the data is the one PTB runs: a button that
    # shares a prefix with another must not be taken by it, well-formed or forged.
    found = callback_handlers()
    misrouted = []
    for handler in found:
        button = button_of(handler)
        if button is None:
            continue
        ids = {i for i, part in enumerate(button.parts) if part.convert("1") == 1}
        variants = [button.example()] + [
            button.example({i: value})
            for i in ids
            for value in (str(2**31), str(2**63), "9" * 30, "-1", "0", "x")
        ]
        for data in variants:
            first = next(h for h in found if h.pattern is None or h.pattern(data))
            if first is not handler:
                misrouted.append((data, handler.callback.__name__, first.callback.__name__))
    assert misrouted == []


def test_forged_id_is_routed_to_the_button_but_does_not_parse() -> None:
    cancel = Button("reg:cancel", ID)
    forged = [f"reg:cancel:{v}" for v in (2**31, 2**63, "9" * 30, -1, 0, "x", "")]
    assert ([cancel.matches(d) for d in forged], [cancel.parse(d) for d in forged]) == (
        [True] * len(forged),
        [None] * len(forged),
    )


@pytest.mark.parametrize(
    "data",
    ["reg:cancel", "reg:cancel:1:2", "reg:cancelx:1", "reg:c:1", "pay:1", None, 5],
)
def test_button_does_not_match_data_of_another_shape(data: object) -> None:
    assert Button("reg:cancel", ID).matches(data) is False


def test_button_leading_words_tell_apart_buttons_with_one_prefix() -> None:
    pay = Button("pay", ID)
    decision = Button("pay", one_of("ok", "no"), ID, optional(one_of("unreadable", "other")))
    data = ["pay:7", "pay:ok:7", "pay:no:7:unreadable", "pay:no:7:forged", "pay:inv:7:stars"]
    assert ([pay.matches(d) for d in data], [decision.matches(d) for d in data]) == (
        [True, False, False, False, False],
        [False, True, True, True, False],
    )
    assert (decision.parse("pay:no:7:unreadable"), decision.parse("pay:no:7:forged")) == (
        ("no", 7, "unreadable"),
        None,
    )


def test_button_without_parts_is_its_prefix_alone() -> None:
    menu = Button("menu:help")
    data = ["menu:help", "menu:help:", "menu:help:1", "menu:helpx"]
    assert ([menu.matches(d) for d in data], [menu.parse(d) for d in data]) == (
        [True, False, False, False],
        [(), None, None, None],
    )
