"""The reminder aggregate: reminder rows of the outbox (kind "reminder"), planned for a
whole session with one INSERT … SELECT and dropped set-wise when they no longer apply,
and the exam-day rules acknowledgements of PAID registrations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.lifecycle import ACTIVE, OutboxStatus, RegistrationState
from storage.models import Candidate, OutboxMessage, Registration, UTCDateTime
from storage.repositories._sql import _insert, _is_postgresql


class ReminderRepository:
    """Reminder rows of the outbox (kind "reminder"), planned and dropped set-wise, plus the
    exam-day rules acknowledgements.

    Keys are `<prefix><registration or candidate id><suffix>`, the suffix naming the session,
    the reminder and its moment (see `bot.services.reminders`); building them in SQL lets one
    INSERT … SELECT plan a reminder for every registration of a session, and one UPDATE per
    session drop the pending rows that no longer apply.
    """

    KIND = "reminder"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- planning ----------------------------------------------------------------------

    def _payload(self, base: dict[str, Any], per_row: dict[str, Any]) -> Any:
        """The JSON payload: `base` with `params.<name>` set from each per-row column."""
        document = json.dumps(base, ensure_ascii=False, separators=(",", ":"))
        if _is_postgresql(self.session):
            expr: Any = cast(literal(document, String), JSONB)
            for name, column in per_row.items():
                path = literal_column(f"ARRAY['params', '{name}']")
                expr = func.jsonb_set(expr, path, func.to_jsonb(column))
            return expr
        pairs: list[Any] = []
        for name, column in per_row.items():
            pairs += [literal(f"$.params.{name}"), column]
        return func.json_set(literal(document), *pairs) if pairs else literal(document)

    async def _insert_from(self, rows: Any) -> int:
        columns = [
            "idempotency_key",
            "chat_id",
            "candidate_id",
            "kind",
            "payload",
            "status",
            "not_before",
            "expires_at",
            "attempts",
            "registration_id",
            "session_id",
            "created_at",
        ]
        stmt = (
            _insert(self.session, OutboxMessage)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    @staticmethod
    def _common(
        session_id: int, not_before: datetime, expires_at: datetime, now: datetime
    ) -> tuple[list[Any], list[Any]]:
        """The constant columns: (status … attempts) and (session_id, created_at)."""
        middle = [
            literal(OutboxStatus.PENDING.value),
            literal(not_before, UTCDateTime()),
            literal(expires_at, UTCDateTime()),
            literal(0),
        ]
        return middle, [literal(session_id), literal(now, UTCDateTime())]

    async def plan_for_registrations(
        self,
        *,
        prefix: str,
        suffix: str,
        session_id: int,
        states: Sequence[str],
        payload: dict[str, Any],
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        """One row per registration of the session in `states` whose candidate has a chat and
        is not known unreachable; existing keys are left alone. Returns the rows created."""
        key = literal(prefix) + cast(Registration.id, String) + literal(suffix)
        known = aliased(OutboxMessage)
        middle, tail = self._common(session_id, not_before, expires_at, now)
        rows = (
            select(
                key,
                Candidate.chat_id,
                Candidate.id,
                literal(self.KIND),
                self._payload(
                    payload,
                    {
                        "registration_id": Registration.id,
                        "level_code": Registration.level_code,
                        "reference": Registration.reference,
                        # The components it booked (a retake books fewer): a JSON array.
                        "booked": Registration.components
                        if _is_postgresql(self.session)
                        else func.json(Registration.components),
                    },
                ),
                *middle,
                Registration.id,
                *tail,
            )
            .select_from(Registration)
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .where(
                Registration.session_id == session_id,
                Registration.state.in_(list(states)),
                Candidate.chat_id.is_not(None),
                Candidate.unreachable_at.is_(None),
                ~exists(select(known.id).where(known.idempotency_key == key)),
            )
        )
        return await self._insert_from(rows)

    def wants_to_register(
        self, session_id: int, levels: Sequence[str], allowed: Sequence[str]
    ) -> Any:
        """The candidate may register for a level the session offers (eligibility settled as
        allowed) and holds no active registration for it, nor any at this session."""
        active = aliased(Registration)

        def holders(*conditions: Any) -> Any:
            # Uncorrelated: computed once per statement, not once per candidate.
            return select(active.candidate_id).where(active.state.in_(ACTIVE), *conditions)

        per_level = [
            and_(
                Candidate.profile[("verdicts", level, "status")].as_string().in_(list(allowed)),
                Candidate.id.not_in(holders(active.level_code == level)),
            )
            for level in levels
        ]
        return and_(
            or_(*per_level) if per_level else false(),
            Candidate.id.not_in(holders(active.session_id == session_id)),
        )

    async def plan_for_candidates(
        self,
        *,
        prefix: str,
        suffix: str,
        session_id: int,
        levels: Sequence[str],
        allowed: Sequence[str],
        payload: dict[str, Any],
        not_before: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> int:
        """One row per candidate who `wants_to_register` at the session (registration_closing)."""
        key = literal(prefix) + cast(Candidate.id, String) + literal(suffix)
        known = aliased(OutboxMessage)
        middle, tail = self._common(session_id, not_before, expires_at, now)
        rows = (
            select(
                key,
                Candidate.chat_id,
                Candidate.id,
                literal(self.KIND),
                self._payload(payload, {}),
                *middle,
                literal(None),
                *tail,
            )
            .select_from(Candidate)
            .where(
                self.wants_to_register(session_id, levels, allowed),
                Candidate.chat_id.is_not(None),
                Candidate.unreachable_at.is_(None),
                ~exists(select(known.id).where(known.idempotency_key == key)),
            )
        )
        return await self._insert_from(rows)

    # --- dropping what no longer applies --------------------------------------------------

    def _pending(self, session_id: int, now: datetime) -> Any:
        """Pending reminder rows of a session that no live worker holds (a
        held row is being sent)."""
        return and_(
            OutboxMessage.kind == self.KIND,
            OutboxMessage.session_id == session_id,
            OutboxMessage.status == OutboxStatus.PENDING,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
        )

    async def _cancel(self, where: Any, reason: str) -> int:
        stmt = (
            update(OutboxMessage)
            .where(where)
            .values(status=OutboxStatus.CANCELLED, last_error=reason, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount or 0)

    async def drop_off_schedule(
        self,
        session_id: int,
        *,
        registration_prefix: str,
        registration_suffixes: Sequence[str],
        candidate_prefix: str,
        candidate_suffixes: Sequence[str],
        now: datetime,
        reason: str,
    ) -> int:
        """Cancel pending rows whose key matches none of the session's current reminder moments
        (the session moved, a reminder left the catalogue, the session was cancelled)."""
        o = OutboxMessage
        by_registration = [
            o.idempotency_key
            == literal(registration_prefix) + cast(o.registration_id, String) + literal(s)
            for s in registration_suffixes
        ]
        by_candidate = [
            o.idempotency_key
            == literal(candidate_prefix) + cast(o.candidate_id, String) + literal(s)
            for s in candidate_suffixes
        ]
        on_schedule = or_(
            and_(
                o.registration_id.is_not(None),
                or_(*by_registration) if by_registration else false(),
            ),
            and_(o.registration_id.is_(None), or_(*by_candidate) if by_candidate else false()),
        )
        return await self._cancel(and_(self._pending(session_id, now), ~on_schedule), reason)

    async def drop_unconcerned_registrations(
        self,
        session_id: int,
        *,
        prefix: str,
        slots: Sequence[tuple[str, Sequence[str]]],
        now: datetime,
        reason: str,
    ) -> int:
        """Cancel pending rows whose registration left the session or the states its reminder
        concerns (`slots`: (key suffix, states) per reminder moment)."""
        o = OutboxMessage
        r = aliased(Registration)
        matches = [
            and_(
                o.idempotency_key == literal(prefix) + cast(r.id, String) + literal(suffix),
                r.state.in_(list(states)),
            )
            for suffix, states in slots
        ]
        concerned = exists(
            select(r.id).where(
                r.id == o.registration_id,
                r.session_id == session_id,
                or_(*matches) if matches else false(),
            )
        )
        return await self._cancel(
            and_(self._pending(session_id, now), o.registration_id.is_not(None), ~concerned),
            reason,
        )

    async def drop_unconcerned_candidates(
        self,
        session_id: int,
        *,
        levels: Sequence[str],
        allowed: Sequence[str],
        now: datetime,
        reason: str,
    ) -> int:
        """Cancel pending registration_closing rows of candidates who registered meanwhile (or
        whose eligibility changed)."""
        o = OutboxMessage
        still = exists(
            select(Candidate.id).where(
                Candidate.id == o.candidate_id, self.wants_to_register(session_id, levels, allowed)
            )
        )
        return await self._cancel(
            and_(self._pending(session_id, now), o.registration_id.is_(None), ~still), reason
        )

    async def fingerprint(self) -> tuple[Any, ...]:
        """A cheap summary of what reminders depend on: it changes when a registration is
        added, changes state (version) or session, or a candidate row changes."""
        regs = (
            select(
                Registration.state,
                func.count(),
                func.coalesce(func.sum(Registration.version), 0),
                func.max(Registration.id),
                func.coalesce(func.sum(Registration.session_id), 0),
            )
            .group_by(Registration.state)
            .order_by(Registration.state)
        )
        candidates = select(
            func.count(),
            func.max(Candidate.updated_at),
            func.count(Candidate.unreachable_at),
            func.count(Candidate.chat_id),
        )
        return (
            tuple(tuple(row) for row in (await self.session.execute(regs)).all()),
            tuple((await self.session.execute(candidates)).one()),
        )

    # --- exam-day rules --------------------------------------------------------------------

    async def acknowledge_rules(self, registration_id: int, at: datetime) -> bool:
        """Record "I have read the rules" once; False when it was recorded before."""
        stmt = (
            update(Registration)
            .where(
                Registration.id == registration_id, Registration.rules_acknowledged_at.is_(None)
            )
            .values(rules_acknowledged_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)

    def _unacknowledged(self, session_id: int) -> Any:
        return and_(
            Registration.session_id == session_id,
            Registration.state == RegistrationState.PAID,
            Registration.rules_acknowledged_at.is_(None),
        )

    async def count_unacknowledged(self, session_id: int) -> int:
        stmt = (
            select(func.count()).select_from(Registration).where(self._unacknowledged(session_id))
        )
        return int(await self.session.scalar(stmt) or 0)

    async def list_unacknowledged(
        self, session_id: int, offset: int, limit: int
    ) -> list[tuple[str, int, str]]:
        """(name, Telegram id, level code) of PAID registrations without the acknowledgement."""
        stmt = (
            select(
                func.coalesce(Candidate.full_name, Candidate.first_name),
                Candidate.telegram_id,
                Registration.level_code,
            )
            .join(Candidate, Candidate.id == Registration.candidate_id)
            .where(self._unacknowledged(session_id))
            .order_by(Registration.id)
            .offset(offset)
            .limit(limit)
        )
        return [
            (str(n or ""), int(t), str(lv))
            for n, t, lv in (await self.session.execute(stmt)).all()
        ]
