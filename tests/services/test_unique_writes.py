"""Unique indexes judged by the repositories on SQLite and PostgreSQL: a refused write
becomes a domain result inside a savepoint, and the caller's transaction carries on (on
PostgreSQL a failed statement would otherwise abort it)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.domain.lifecycle import DuplicateActiveRegistration, RegistrationState
from storage.db import Database
from storage.models import AuditEntry, Candidate, Registration
from storage.uow import UnitOfWork
from tests.factories import NOW, make_candidates, make_session


def _registration(candidate_id: int, session_id: int, reference: str) -> Registration:
    return Registration(
        candidate_id=candidate_id,
        session_id=session_id,
        level_code="junior",
        state=RegistrationState.SUBMITTED,
        reference=reference,
        state_changed_at=NOW,
        created_at=NOW,
    )


async def _count(database: Database, model: type) -> int:
    async with UnitOfWork(database.sessions) as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model)) or 0)


async def test_insert_second_active_registration_raises_and_transaction_goes_on(
    database: Database,
) -> None:
    s1, s2 = await make_session(database, "S1"), await make_session(database, "S2")
    [candidate_id] = await make_candidates(database, [7])

    async with UnitOfWork(database.sessions) as uow:
        await uow.registrations.insert(_registration(candidate_id, s1, "EDAAAAAAAA"))
        with pytest.raises(DuplicateActiveRegistration):
            await uow.registrations.insert(_registration(candidate_id, s2, "EDBBBBBBBB"))
        uow.audit.add(
            AuditEntry(actor="test", entity="registration", entity_id="1", action="x", at=NOW)
        )
        await uow.commit()

    assert (await _count(database, Registration), await _count(database, AuditEntry)) == (1, 1)


async def test_move_onto_session_with_active_registration_raises_and_transaction_goes_on(
    database: Database,
) -> None:
    s1, s2 = await make_session(database, "S1"), await make_session(database, "S2")
    [candidate_id] = await make_candidates(database, [7])
    async with UnitOfWork(database.sessions) as uow:
        junior = _registration(candidate_id, s1, "EDAAAAAAAA")
        other = _registration(candidate_id, s2, "EDBBBBBBBB")
        other.level_code = "intermediate"
        await uow.registrations.insert(junior)
        await uow.registrations.insert(other)
        await uow.commit()

    async with UnitOfWork(database.sessions) as uow:
        with pytest.raises(DuplicateActiveRegistration):
            await uow.registrations.move(junior.id, [RegistrationState.SUBMITTED], to_session=s2)
        moved_back = await uow.registrations.move(
            junior.id, [RegistrationState.PAID], to_session=s1
        )
        await uow.commit()

    async with UnitOfWork(database.sessions) as uow:
        sessions = {r.id: r.session_id for r in await uow.session.scalars(select(Registration))}
    assert (moved_back, sessions) == (False, {junior.id: s1, other.id: s2})


async def test_set_id_number_held_by_another_candidate_returns_false_and_keeps_row(
    database: Database,
) -> None:
    first, second = await make_candidates(database, [7, 8])
    async with UnitOfWork(database.sessions) as uow:
        holder = await uow.candidates.get(first)
        assert await uow.candidates.set_id_number(
            holder, encrypted=b"x", digest="h1", masked="1**1"
        )
        await uow.commit()

    async with UnitOfWork(database.sessions) as uow:
        other = await uow.candidates.get(second)
        other.first_name = "Renamed"
        taken = await uow.candidates.set_id_number(
            other, encrypted=b"y", digest="h1", masked="2**2"
        )
        await uow.commit()

    async with UnitOfWork(database.sessions) as uow:
        rows = (
            await uow.session.execute(
                select(
                    Candidate.telegram_id, Candidate.first_name, Candidate.id_number_hash
                ).order_by(Candidate.id)
            )
        ).all()
    assert (taken, [tuple(r) for r in rows]) == (False, [(7, "C7", "h1"), (8, "Renamed", None)])
