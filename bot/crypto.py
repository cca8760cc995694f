"""Personal-data protection and signed references, keyed by EXAMDESK_SECRET_KEY.

Entry point: `Vault(secret_key)`: `encrypt` / `decrypt` (Fernet: AES-128-CBC + HMAC),
`lookup_hash` (HMAC-SHA256, to find the same ID number again without storing it in clear),
and `sign` / `verify` for short references such as ticket QR codes. Each purpose gets its
own key derived with HKDF, so one key can never be used for another purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"examdesk/v1", info=purpose).derive(
        secret
    )


class Vault:
    def __init__(self, secret_key: str) -> None:
        secret = secret_key.encode()
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"encrypt-personal-data")))
        self._lookup = _derive(secret, b"lookup-hash")
        self._signing = _derive(secret, b"sign-references")

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: wrong EXAMDESK_SECRET_KEY or damaged data") from exc

    def lookup_hash(self, value: str) -> str:
        """A stable keyed hash of a normalised value (hex), for uniqueness checks."""
        return hmac.new(self._lookup, value.strip().upper().encode(), hashlib.sha256).hexdigest()

    def sign(self, reference: str) -> str:
        """`reference.signature` with a short URL-safe HMAC signature."""
        mac = hmac.new(self._signing, reference.encode(), hashlib.sha256).digest()[:12]
        return f"{reference}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def verify(self, signed: str) -> str | None:
        """The reference if the signature is right, else None (constant-time compare)."""
        reference, _, _ = signed.rpartition(".")
        if not reference:
            return None
        return reference if hmac.compare_digest(self.sign(reference), signed) else None
