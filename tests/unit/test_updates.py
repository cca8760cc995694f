"""Raw updates before the inbox stores them: parse, clean, check (pure), seal, set-aside copy."""

from __future__ import annotations

import pytest

from bot.crypto import Vault
from bot.domain.updates import (
    UnstorableUpdate,
    check_update,
    clean_update,
    guess_update_id,
    parse_update,
)
from bot.services.inbox import SEALED, seal_personal, set_aside_body, unseal_personal


def _reason(call, *args) -> str | None:  # type: ignore[no-untyped-def]
    try:
        call(*args)
    except UnstorableUpdate as exc:
        return exc.reason
    return None


def test_clean_update_removes_nul_and_replaces_lone_surrogates_everywhere() -> None:
    payload = {"update_id": 1, "message": {"te\x00xt": ["a\x00b", "c\ud800d", 3, None, 1.5]}}
    assert clean_update(payload) == {
        "update_id": 1,
        "message": {"text": ["ab", "c\ufffdd", 3, None, 1.5]},
    }


def test_clean_update_refuses_deep_nesting_and_infinity() -> None:
    deep: list = []
    for _ in range(100):
        deep = [deep]
    assert (_reason(clean_update, deep), _reason(clean_update, {"x": float("inf")})) == (
        "too_deep",
        "not_a_finite_number",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 1000 + b"]" * 1000, "too_deep"),
        (b'{"update_id": 1, "x": ' + b"1" * 5000 + b"}", "number_too_long"),
        (b'{"update_id": NaN}', "not_a_finite_number"),
        (b'{"update_id": 1', "not_json"),
        (b'{"text": "\xff"}', "not_json"),
    ],
)
def test_parse_update_turns_what_json_cannot_take_into_a_reason(body: bytes, reason: str) -> None:
    assert _reason(parse_update, body) == reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"update_id": True}, "update_id_not_an_integer"),
        ({"update_id": "5"}, "update_id_not_an_integer"),
        ({"update_id": 2**63}, "update_id_out_of_range"),
        ({"update_id": -1}, "update_id_out_of_range"),
        ({"message": {}}, "update_id_missing"),
        ([1], "not_an_object"),
        ({"update_id": 2**63 - 1}, None),
        ({"update_id": 0}, None),
    ],
)
def test_check_update_accepts_only_ids_the_column_can_hold(payload: object, reason: str) -> None:
    assert _reason(check_update, payload) == reason


def test_guess_update_id_reads_a_leading_id_that_fits() -> None:
    assert (
        guess_update_id(b' { "update_id" : 42, [[['),
        guess_update_id(b'{"update_id": 9223372036854775808}'),
        guess_update_id(b'{"message": {}, "update_id": 7}'),
    ) == (42, None, None)


def test_seal_personal_seals_only_strings_with_id_numbers_and_unseals_losslessly() -> None:
    vault = Vault("k" * 32)
    payload = {"update_id": 1, "message": {"text": "ID 11010519491231002X", "caption": "hi"}}
    sealed = seal_personal(payload, vault)
    assert (
        sorted(sealed["message"]["text"]),
        sealed["message"]["caption"],
        "11010519491231002X" in repr(sealed),
        unseal_personal(sealed, vault),
    ) == ([SEALED], "hi", False, payload)


def test_set_aside_body_masks_id_numbers_and_cuts_at_64_kib() -> None:
    body = set_aside_body('{"text": "11010519491231002X \x00 \ud800"}' + "汉" * 30_000)
    assert (body[:39], len(body.encode()) <= 64 * 1024, len(body.encode()) > 60_000) == (
        '{"text": "1101**********002X \ufffd \ufffd"}汉汉汉汉汉',
        True,
        True,
    )
