"""Staff roles: one `StaffRole` row per staff member and role (EXAMDESK_ADMIN_IDS are
admins without a row); `names` reads the names staff members gave Telegram from
`candidates` (everyone who talked to the bot has a row there)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Candidate, StaffRole
from storage.repositories._sql import _insert


class StaffRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def roles_of(self, telegram_id: int) -> list[str]:
        stmt = select(StaffRole.role).where(StaffRole.telegram_id == telegram_id)
        return list((await self.session.scalars(stmt)).all())

    async def all_roles(self) -> dict[int, set[str]]:
        found: dict[int, set[str]] = defaultdict(set)
        for telegram_id, role in (
            await self.session.execute(select(StaffRole.telegram_id, StaffRole.role))
        ).all():
            found[telegram_id].add(role)
        return dict(found)

    async def members(self) -> Sequence[StaffRole]:
        stmt = select(StaffRole).order_by(StaffRole.telegram_id, StaffRole.role)
        return (await self.session.scalars(stmt)).all()

    async def names(self, telegram_ids: list[int]) -> dict[int, str]:
        """Telegram id → first name (or @username) of those who talked to the bot."""
        if not telegram_ids:
            return {}
        stmt = select(Candidate.telegram_id, Candidate.first_name, Candidate.username).where(
            Candidate.telegram_id.in_(telegram_ids)
        )
        return {
            telegram_id: first_name or (f"@{username}" if username else "")
            for telegram_id, first_name, username in (await self.session.execute(stmt)).all()
        }

    async def grant(self, row: StaffRole) -> bool:
        """True when the role was new (granting twice changes nothing)."""
        stmt = (
            _insert(self.session, StaffRole)
            .values(
                telegram_id=row.telegram_id,
                role=row.role,
                name=row.name,
                granted_by=row.granted_by,
                granted_at=row.granted_at,
            )
            .on_conflict_do_nothing(index_elements=["telegram_id", "role"])
        )
        return bool((await self.session.execute(stmt)).rowcount)

    async def revoke(self, telegram_id: int, role: str) -> bool:
        stmt = delete(StaffRole).where(
            StaffRole.telegram_id == telegram_id, StaffRole.role == role
        )
        return bool((await self.session.execute(stmt)).rowcount)
