"""Private helpers shared by the repository modules: the dialect checks, the
insert-or-ignore statement for SQLite and PostgreSQL, the savepoint that turns a unique
constraint hit into a result, and the filter that keeps rows of a paused or cancelled
broadcast out of the outbox claims.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lifecycle import BROADCAST_HELD
from storage.models import Broadcast, OutboxMessage


def _is_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _insert(session: AsyncSession, model: type) -> Any:
    """A dialect-specific INSERT that supports ON CONFLICT."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


def _is_unique_violation(exc: IntegrityError, *markers: str) -> bool:
    """True when the unique index a marker names refused the write. PostgreSQL's message
    names the index (`uq_registrations_active_level`), SQLite's the table and columns
    (`UNIQUE constraint failed: registrations.candidate_id, …`): give a marker for each."""
    text = str(exc.orig).lower()
    return any(marker in text for marker in markers)


def _not_held() -> Any:
    """Rows of a paused or cancelled broadcast are not claimed: one
    broadcast row holds them all."""
    held = select(Broadcast.id).where(Broadcast.status.in_(BROADCAST_HELD))
    return or_(OutboxMessage.broadcast_id.is_(None), OutboxMessage.broadcast_id.not_in(held))
