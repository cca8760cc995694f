"""Private helpers shared by the repository modules: the dialect checks, the
insert-or-ignore statement for SQLite and PostgreSQL, the active registration states and
the filter that keeps rows of a paused or cancelled broadcast out of the outbox claims.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ACTIVE_STATES, Broadcast, BroadcastStatus, OutboxMessage

_ACTIVE = [state.value for state in ACTIVE_STATES]


def _is_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _insert(session: AsyncSession, model: type) -> Any:
    """A dialect-specific INSERT that supports ON CONFLICT."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


def _not_held() -> Any:
    """Rows of a paused or cancelled broadcast are not claimed: one broadcast row holds them all."""
    held = select(Broadcast.id).where(Broadcast.status.in_((BroadcastStatus.PAUSED, BroadcastStatus.CANCELLED)))
    return or_(OutboxMessage.broadcast_id.is_(None), OutboxMessage.broadcast_id.not_in(held))
