"""Vault: encryption round trip, keyed lookup hash, signed references."""

from __future__ import annotations

import pytest

from bot.crypto import Vault

KEY = "x" * 40


def test_encrypt_round_trips_and_hides_the_value() -> None:
    vault = Vault(KEY)
    token = vault.encrypt("11010519491231002X")
    assert (b"11010519491231002X" in token, vault.decrypt(token)) == (False, "11010519491231002X")


def test_decrypt_with_another_key_fails_clearly() -> None:
    token = Vault(KEY).encrypt("secret")
    with pytest.raises(ValueError, match="wrong EXAMDESK_SECRET_KEY"):
        Vault("y" * 40).decrypt(token)


def test_lookup_hash_is_stable_normalised_and_keyed() -> None:
    vault = Vault(KEY)
    assert vault.lookup_hash("11010519491231002x") == vault.lookup_hash(" 11010519491231002X")
    assert vault.lookup_hash("11010519491231002X") != Vault("y" * 40).lookup_hash(
        "11010519491231002X"
    )


def test_verify_accepts_signed_and_refuses_tampered_reference() -> None:
    vault = Vault(KEY)
    signed = vault.sign("T2027-01-0042")
    assert (
        vault.verify(signed),
        vault.verify(signed.replace("0042", "0043")),
        vault.verify("nodot"),
    ) == (
        "T2027-01-0042",
        None,
        None,
    )
