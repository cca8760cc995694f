"""Staff roles (issue 14): who may do what at the exam centre's desk.

* ``Role``: admin (everything, and grants roles), reviewer (eligibility reviews and
  payment receipts), finance (payments, bank statements, refunds), results (results
  import and release, re-marks, certificates), checkin (the door on exam day).
* ``allows(held, needed)``: an admin may do everything; anyone else needs the role.

The first admins come from ``EXAMDESK_ADMIN_IDS`` (they are always admins); admins grant
and revoke the other roles in the bot (``/staff``), audited.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

__all__ = ["Role", "allows"]


class Role(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    FINANCE = "finance"
    RESULTS = "results"
    CHECKIN = "checkin"


def allows(held: Collection[Role | str], needed: Role) -> bool:
    return Role.ADMIN in held or needed in held
