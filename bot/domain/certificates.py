"""Certificates (证书): states, numbers, holder names and verification codes.

Pure rules shared by the certificate service, the verification page and `/verify`:

* ``CertificateStatus``: valid or revoked (a revoked certificate shows "revoked" with the
  date everywhere, never the reason: DOMAIN.md);
* ``number_key(number)``: the form a number is stored and looked up by (case, width and
  spaces do not matter: a number read off paper is typed in many ways);
* ``name_key(name)``: the same for a holder's name (张三 = 张 三, "Li Lei" = "LI LEI");
* ``mask_name(name)``: what a verification answer shows of the holder (张*丰, L** L**);
* ``new_verify_code()``: the random code in a certificate's QR link and deep link
  (``verify_<code>``): knowing it proves one holds the certificate record, so the link
  answers without the holder's name; it is unguessable (72 bits).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from enum import StrEnum

__all__ = [
    "VERIFY_CODE_PATTERN",
    "CertificateStatus",
    "mask_name",
    "name_key",
    "new_verify_code",
    "number_key",
]

#: What a verification code looks like (deep links allow A–Z a–z 0–9 _ - only).
VERIFY_CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{12}$")


class CertificateStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def number_key(number: str) -> str:
    """Upper case, full-width folded, spaces dropped: ``" rc 2027-01 "`` → ``"RC2027-01"``."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", number)).upper()


def name_key(name: str) -> str:
    """Case, width, spaces and the middle dot of transliterated names do not matter."""
    return re.sub(r"[\s·•.\-]+", "", _fold(name))


def mask_name(name: str) -> str:
    """The first character of each part shown, the rest starred: 张三丰 → 张*丰 (the last
    character of a Chinese name of three or more is kept, as Chinese notices do), 张三 → 张*,
    Li Lei → L* L**."""
    name = unicodedata.normalize("NFKC", name).strip()
    if not name:
        return ""
    if " " not in name and not name.isascii():
        if len(name) <= 2:
            return name[0] + "*" * (len(name) - 1)
        return name[0] + "*" * (len(name) - 2) + name[-1]
    return " ".join(part[0] + "*" * (len(part) - 1) for part in name.split())


def new_verify_code() -> str:
    return secrets.token_urlsafe(9)  # 12 characters of [A-Za-z0-9_-]
