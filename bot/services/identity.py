"""Identity: who a candidate is (name, ID document and number) and when it is frozen.

Entry points: `parse_name`, `store_id_number` (the form's checks, shared by the
registration form and staff corrections), `frozen_by` (the registration that freezes a
candidate's identity: one in `IDENTITY_FROZEN`, paid or its payment under review) and
`IDENTITY`, the registration form's steps that identity is made of.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from bot.crypto import Vault
from bot.domain.idcard import (
    InvalidIdNumber,
    InvalidPassportNumber,
    mask_id_number,
    normalise_passport_number,
    parse_id_number,
)
from bot.domain.lifecycle import IDENTITY_FROZEN
from bot.services.answers import parse_text
from bot.services.errors import InvalidAnswer
from storage.models import Candidate
from storage.uow import UnitOfWork

MAX_NAME = 50
_NAME_RE = re.compile(r"^[^\W\d_]+(?:[ ·.'\-][^\W\d_]+)*\.?$")
#: The registration form's steps that say who the candidate is (a resident ID number
#: gives gender and birth date; a passport holder answers them).
IDENTITY = frozenset({"full_name", "id_type", "id_number", "gender", "birth_date"})


async def frozen_by(uow: UnitOfWork, candidate_id: int) -> int | None:
    """The candidate's registration that freezes their identity, if any."""
    for registration in await uow.registrations.list_for_candidate(candidate_id):
        if registration.state in IDENTITY_FROZEN:
            return registration.id
    return None


async def store_id_number(
    uow: UnitOfWork, vault: Vault, candidate: Candidate, text: str | None, today: date
) -> None:
    """Check the number for the candidate's document type and store it: encrypted, its
    keyed hash (one account per number) and a masked copy; a resident ID also gives the
    gender and birth date. Raises InvalidAnswer("id_number", …)."""
    if text is None:
        raise InvalidAnswer("id_number", "text_expected")
    try:
        if candidate.id_doc_type == "passport":
            number = normalise_passport_number(text)
        else:
            info = parse_id_number(text, today=today)
            number = info.number
    except InvalidIdNumber as exc:
        raise InvalidAnswer("id_number", f"id_{exc.reason}") from None
    except InvalidPassportNumber as exc:
        raise InvalidAnswer("id_number", f"passport_{exc.reason}") from None
    digest = vault.lookup_hash(f"{candidate.id_doc_type}:{number}")
    owner = await uow.candidates.get_by_id_hash(digest)
    if owner is not None and owner.id != candidate.id:
        raise InvalidAnswer("id_number", "id_in_use")
    encrypted, masked = vault.encrypt(number), mask_id_number(number)
    if not await uow.candidates.set_id_number(
        candidate, encrypted=encrypted, digest=digest, masked=masked
    ):
        # Another account saved the same number at the same moment (the unique hash).
        raise InvalidAnswer("id_number", "id_in_use")
    if candidate.id_doc_type != "passport":
        candidate.gender, candidate.birth_date = info.gender.value, info.birth_date


def parse_name(text: str | None) -> str:
    """A name as on an ID document: letters, with single spaces, ·, ., ' or - between."""
    value = parse_text("full_name", text, max_length=MAX_NAME)
    if not _NAME_RE.match(unicodedata.normalize("NFKC", value)):
        raise InvalidAnswer("full_name", "name_characters")
    return value
