"""What the staff file imports (results, certificate numbers) share about one row:
`RowRefused`, the refusal of a row with a reason code and its parameters (handlers and the
CLI word it), and `identify`, the registration a row names by ticket number or
registration reference."""

from __future__ import annotations

from typing import Any

from storage.models import Registration
from storage.uow import UnitOfWork


class RowRefused(Exception):
    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


def row_codes(ticket: str, reference: str) -> list[str]:
    """The row's ticket number and reference as given (either may be empty), upper-cased."""
    return [code.upper() for code in (ticket, reference) if code]


async def identify(uow: UnitOfWork, ticket: str, reference: str) -> Registration:
    """The registration the row names, the ticket number tried first. Raises RowRefused
    `no_reference` (neither given) or `unknown_reference`."""
    codes = row_codes(ticket, reference)
    if not codes:
        raise RowRefused("no_reference")
    for code in codes:
        registration = await uow.results.find_registration(code)
        if registration is not None:
            return registration
    raise RowRefused("unknown_reference")
