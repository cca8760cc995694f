"""Staff roles (issue 14; `bot/domain/roles.py`): who is staff and what each may do.

Entry points (`StaffService`):

* `roles_of(telegram_id)`: the member's roles, read from the database each time (a
  revocation counts at once, on every instance); EXAMDESK_ADMIN_IDS are always admins;
* `directory()`: every staff member's roles at once, for the in-process staff filter that
  routes staff messages (`handlers.staff_roles`), refreshed by a tick;
* `grant(admin_id, telegram_id, role, name)` / `revoke(admin_id, telegram_id, role)`:
  admins only (`NotAllowed` otherwise), audited (entity `staff`, the role as the action's
  subject); granting twice or revoking what is not held changes nothing and says so;
* `members()`: the list `/staff` shows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from bot.domain.roles import Role, allows
from bot.services.errors import ServiceError
from bot.services.notify import audit
from storage.models import StaffRole
from storage.uow import UowFactory

ENTITY = "staff"  # the audit log's entity


class NotAllowed(ServiceError):
    """The staff member lacks the role `needed`."""

    def __init__(self, needed: Role) -> None:
        super().__init__(f"needs the {needed} role")
        self.needed = needed


class EnvironmentAdmin(ServiceError):
    """EXAMDESK_ADMIN_IDS are admins by configuration; the bot cannot take that away."""


@dataclass(frozen=True, slots=True)
class StaffMember:
    telegram_id: int
    name: str
    roles: frozenset[Role]
    configured: bool  # an EXAMDESK_ADMIN_IDS admin


class StaffService:
    def __init__(
        self, uow: UowFactory, clock: Callable[[], datetime], admin_ids: Collection[int]
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.admin_ids = frozenset(admin_ids)

    async def roles_of(self, telegram_id: int) -> frozenset[Role]:
        async with self._uow() as uow:
            held = {Role(r) for r in await uow.staff.roles_of(telegram_id) if r in Role}
        if telegram_id in self.admin_ids:
            held.add(Role.ADMIN)
        return frozenset(held)

    async def require(self, telegram_id: int, needed: Role) -> frozenset[Role]:
        """The member's roles; raises NotAllowed without `needed`."""
        held = await self.roles_of(telegram_id)
        if not allows(held, needed):
            raise NotAllowed(needed)
        return held

    async def directory(self) -> dict[int, frozenset[Role]]:
        async with self._uow() as uow:
            stored = await uow.staff.all_roles()
        found = {
            telegram_id: frozenset(Role(r) for r in roles if r in Role)
            for telegram_id, roles in stored.items()
        }
        for telegram_id in self.admin_ids:
            found[telegram_id] = found.get(telegram_id, frozenset()) | {Role.ADMIN}
        return found

    async def members(self) -> list[StaffMember]:
        async with self._uow() as uow:
            rows = await uow.staff.members()
        names: dict[int, str] = {}
        roles: dict[int, set[Role]] = {i: {Role.ADMIN} for i in self.admin_ids}
        for row in rows:
            if row.role in Role:
                roles.setdefault(row.telegram_id, set()).add(Role(row.role))
                names[row.telegram_id] = row.name or names.get(row.telegram_id, "")
        return [
            StaffMember(i, names.get(i, ""), frozenset(r), i in self.admin_ids)
            for i, r in sorted(roles.items())
        ]

    async def grant(self, admin_id: int, telegram_id: int, role: Role, name: str = "") -> bool:
        """True when the role is new. Raises NotAllowed (not an admin)."""
        await self.require(admin_id, Role.ADMIN)
        now = self._clock()
        async with self._uow() as uow:
            row = StaffRole(
                telegram_id=telegram_id,
                role=role.value,
                name=name[:128],
                granted_by=f"tg:{admin_id}",
                granted_at=now,
            )
            added = await uow.staff.grant(row)
            if added:
                audit(
                    uow,
                    f"tg:{admin_id}",
                    ENTITY,
                    telegram_id,
                    "role_granted",
                    now,
                    to_state=role.value,
                )
            await uow.commit()
        return added

    async def revoke(self, admin_id: int, telegram_id: int, role: Role) -> bool:
        """True when the role was held. Raises NotAllowed, EnvironmentAdmin (the admin role
        of an EXAMDESK_ADMIN_IDS member)."""
        await self.require(admin_id, Role.ADMIN)
        if role is Role.ADMIN and telegram_id in self.admin_ids:
            raise EnvironmentAdmin()
        now = self._clock()
        async with self._uow() as uow:
            removed = await uow.staff.revoke(telegram_id, role.value)
            if removed:
                audit(
                    uow,
                    f"tg:{admin_id}",
                    ENTITY,
                    telegram_id,
                    "role_revoked",
                    now,
                    from_state=role.value,
                )
            await uow.commit()
        return removed
