"""Staff roles (issue 14): who may do what at the exam centre's desk.

* ``Role``: admin (everything, and grants roles), reviewer (eligibility reviews and
  payment receipts), finance (payments, bank statements, refunds), results (results
  import and release, re-marks, certificates), checkin (the door on exam day).
* ``allows(held, needed)``: an admin may do everything; anyone else needs the role.
* ``allows_any(held, needed)``: one of several roles will do (``/history``: finance or
  reviewer).
* ``parse_role(text)``: a stored or typed role name → the ``Role``, or None (an unknown
  name, say one a later version dropped, is ignored rather than an error).

The first admins come from ``EXAMDESK_ADMIN_IDS`` (they are always admins); admins grant
and revoke the other roles in the bot (``/staff``), audited.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from enum import StrEnum

__all__ = ["Role", "allows", "allows_any", "parse_role"]


class Role(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    FINANCE = "finance"
    RESULTS = "results"
    CHECKIN = "checkin"


_BY_VALUE = {role.value: role for role in Role}


def parse_role(text: str) -> Role | None:
    # `text in Role` raises TypeError for a plain str on Python 3.11: look the value up.
    return _BY_VALUE.get(text.strip().lower())


def allows(held: Collection[Role | str], needed: Role) -> bool:
    return Role.ADMIN in held or needed in held


def allows_any(held: Collection[Role | str], needed: Iterable[Role]) -> bool:
    return any(allows(held, role) for role in needed)
