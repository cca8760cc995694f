"""Set-aside updates (`SetAsideUpdate`): updates that could not be stored or kept failing,
kept for staff with the reason while everyone else is served. The service masks and cuts
the body before it gets here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SetAsideUpdate


class SetAsideRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, source: str, reason: str, update_id: int | None, body: str, at: datetime
    ) -> None:
        self.session.add(
            SetAsideUpdate(
                source=source, reason=reason, update_id=update_id, body=body, received_at=at
            )
        )
        await self.session.flush()

    async def list_recent(self, limit: int = 50) -> list[SetAsideUpdate]:
        stmt = select(SetAsideUpdate).order_by(SetAsideUpdate.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def count(self) -> int:
        return int(
            await self.session.scalar(select(func.count()).select_from(SetAsideUpdate)) or 0
        )
