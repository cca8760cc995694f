"""CandidateService on real databases: touch, language choice, leaving a flow."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.services import build_services
from bot.services.errors import UnsupportedLanguage
from storage.db import Database
from storage.models import Candidate, FlowState
from storage.uow import UnitOfWork


async def test_touch_creates_candidate_once_when_updates_race(database: Database) -> None:
    services = build_services(database)
    views = await asyncio.gather(
        *(
            services.candidates.touch(
                42, chat_id=42, first_name="Li", username=None, telegram_language="zh-hans"
            )
            for _ in range(10)
        )
    )
    assert {view.id for view in views} == {views[0].id}
    async with UnitOfWork(database.sessions) as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Candidate)) == 1


async def test_set_language_persists_and_is_audited(database: Database) -> None:
    services = build_services(database)
    await services.candidates.touch(
        7, chat_id=7, first_name="Ann", username="ann", telegram_language="en"
    )
    await services.candidates.set_language(7, "zh_Hans")
    view = await services.candidates.touch(
        7, chat_id=7, first_name="Ann", username="ann", telegram_language="en"
    )
    assert view.language == "zh_Hans"
    async with UnitOfWork(database.sessions) as uow:
        entries = [
            (e.action, e.from_state, e.to_state)
            for e in await uow.audit.list_for("candidate", str(view.id))
        ]
    assert entries == [("set_language", None, "zh_Hans")]


async def test_set_language_refuses_unknown_language(database: Database) -> None:
    services = build_services(database)
    await services.candidates.touch(
        7, chat_id=7, first_name="Ann", username=None, telegram_language="en"
    )
    with pytest.raises(UnsupportedLanguage):
        await services.candidates.set_language(7, "fr")


async def test_leave_flow_keeps_answers(database: Database) -> None:
    services = build_services(database)
    view = await services.candidates.touch(
        9, chat_id=9, first_name="Wang", username=None, telegram_language=None
    )
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(
            FlowState(
                candidate_id=view.id,
                flow="registration",
                step="email",
                answers={"registration": {"phone": "+8613800000000"}},
            )
        )
        await uow.commit()
    assert await services.candidates.leave_flow(9) == "registration"
    assert await services.candidates.leave_flow(9) is None
    async with UnitOfWork(database.sessions) as uow:
        state = await uow.flows.get(view.id)
        assert (state.flow, state.step, state.answers) == (
            None,
            None,
            {"registration": {"phone": "+8613800000000"}},
        )


async def test_mark_unreachable_holds_until_the_user_unblocks_or_writes(
    database: Database,
) -> None:
    services = build_services(database)
    candidates = services.candidates

    async def touch(reached: bool = True) -> None:
        await candidates.touch(
            9, chat_id=9, first_name="Li", username=None, telegram_language="en", reached=reached
        )

    async def unreachable() -> bool:
        async with UnitOfWork(database.sessions) as uow:
            row = await uow.candidates.get_by_telegram_id(9)
            return row is not None and row.unreachable_at is not None

    await touch()
    steps = [await candidates.mark_unreachable(9), await unreachable()]
    await touch(reached=False)  # the block itself arrives as an update from the user
    steps.append(await unreachable())
    steps += [await candidates.mark_reachable(9), await unreachable()]
    await candidates.mark_unreachable(9)
    await touch()  # writing to the bot again
    steps.append(await unreachable())
    assert steps == [True, True, True, True, False, False]
    assert await candidates.mark_unreachable(404) is False  # a stranger: nothing to mark
