"""Staff roles (issue 14; `bot/domain/roles.py`): who is staff and what each may do.

Entry points (`StaffService`):

* `roles_of(telegram_id)`: the member's roles, read from the database each time (a
  revocation counts at once, on every instance); EXAMDESK_ADMIN_IDS are always admins;
* `require(telegram_id, role, *alternatives)`: the roles, or `NotAllowed` naming what is
  needed (an admin passes every check);
* `directory()`: every staff member's roles at once, for the in-process staff filter that
  routes staff messages (`handlers.staff_roles`), refreshed by a tick and after a change;
* `grant(admin_id, telegram_id, role, name)` / `revoke(admin_id, telegram_id, role)`:
  admins only (`NotAllowed` otherwise), audited (entity `staff`, the member's Telegram id,
  the role as to/from state); granting twice or revoking what is not held changes nothing
  and says so (False). A grant tells the member in the bot (`Template.STAFF_ROLE_GRANTED`,
  through the outbox, if they have a chat); the admin role of an EXAMDESK_ADMIN_IDS member
  cannot be revoked (`EnvironmentAdmin`);
* `members()` / `member(telegram_id)`: what `/staff` shows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.roles import Role, allows_any, parse_role
from bot.services.errors import ServiceError
from bot.services.notify import Template, audit, notify_candidate
from storage.models import StaffRole
from storage.uow import UowFactory

ENTITY = "staff"  # the audit log's entity


class NotAllowed(ServiceError):
    """The staff member holds none of the roles `roles` (`needed` is the first)."""

    def __init__(self, needed: Role, *alternatives: Role) -> None:
        self.roles = (needed, *alternatives)
        self.needed = needed
        super().__init__("needs the " + " or ".join(self.roles) + " role")


class EnvironmentAdmin(ServiceError):
    """EXAMDESK_ADMIN_IDS are admins by configuration; the bot cannot take that away."""


@dataclass(frozen=True, slots=True)
class StaffMember:
    telegram_id: int
    name: str  # the name they gave Telegram (as the bot last saw it), or the one at grant
    roles: frozenset[Role]
    configured: bool  # an EXAMDESK_ADMIN_IDS admin


def _roles(stored: Iterable[str]) -> set[Role]:
    return {role for role in map(parse_role, stored) if role is not None}


class StaffService:
    def __init__(
        self, uow: UowFactory, clock: Callable[[], datetime], admin_ids: Collection[int]
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.admin_ids = frozenset(admin_ids)

    async def roles_of(self, telegram_id: int) -> frozenset[Role]:
        async with self._uow() as uow:
            held = _roles(await uow.staff.roles_of(telegram_id))
        if telegram_id in self.admin_ids:
            held.add(Role.ADMIN)
        return frozenset(held)

    async def require(
        self, telegram_id: int, needed: Role, *alternatives: Role
    ) -> frozenset[Role]:
        """The member's roles; raises NotAllowed without `needed` (or an alternative)."""
        held = await self.roles_of(telegram_id)
        if not allows_any(held, (needed, *alternatives)):
            raise NotAllowed(needed, *alternatives)
        return held

    async def directory(self) -> dict[int, frozenset[Role]]:
        """Every staff member (EXAMDESK_ADMIN_IDS and everyone with a role) → roles."""
        async with self._uow() as uow:
            stored = await uow.staff.all_roles()
        found = {telegram_id: frozenset(_roles(roles)) for telegram_id, roles in stored.items()}
        for telegram_id in self.admin_ids:
            found[telegram_id] = found.get(telegram_id, frozenset()) | {Role.ADMIN}
        return {telegram_id: roles for telegram_id, roles in found.items() if roles}

    async def members(self) -> list[StaffMember]:
        """Everyone with a role, EXAMDESK_ADMIN_IDS first, then by Telegram id."""
        async with self._uow() as uow:
            rows = await uow.staff.members()
            roles: dict[int, set[Role]] = {i: {Role.ADMIN} for i in self.admin_ids}
            granted_names: dict[int, str] = {}
            for row in rows:
                role = parse_role(row.role)
                if role is not None:
                    roles.setdefault(row.telegram_id, set()).add(role)
                    granted_names[row.telegram_id] = row.name or granted_names.get(
                        row.telegram_id, ""
                    )
            names = await uow.staff.names(list(roles))
        return sorted(
            (
                StaffMember(
                    i, names.get(i) or granted_names.get(i, ""), frozenset(r), i in self.admin_ids
                )
                for i, r in roles.items()
            ),
            key=lambda m: (not m.configured, m.telegram_id),
        )

    async def member(self, telegram_id: int) -> StaffMember:
        """One person's card (no roles yet is a card too: the admin is about to grant)."""
        async with self._uow() as uow:
            held = _roles(await uow.staff.roles_of(telegram_id))
            names = await uow.staff.names([telegram_id])
        if telegram_id in self.admin_ids:
            held.add(Role.ADMIN)
        return StaffMember(
            telegram_id, names.get(telegram_id, ""), frozenset(held), telegram_id in self.admin_ids
        )

    async def grant(self, admin_id: int, telegram_id: int, role: Role, name: str = "") -> bool:
        """True when the role is new. Raises NotAllowed (not an admin)."""
        await self.require(admin_id, Role.ADMIN)
        now = self._clock()
        async with self._uow() as uow:
            if not name:
                name = (await uow.staff.names([telegram_id])).get(telegram_id, "")
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
                candidate = await uow.candidates.get_by_telegram_id(telegram_id)
                if candidate is not None:
                    await notify_candidate(
                        uow,
                        candidate.id,
                        now,
                        key=f"staff_role:{telegram_id}:{role.value}:{now.isoformat()}",
                        template=Template.STAFF_ROLE_GRANTED,
                        params={"role": role.value},
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
