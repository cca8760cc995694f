"""Candidates flow: who is talking to the bot, their language and where they are in a flow.

Entry points: `CandidateService.touch` (once per update), `set_language`, `language`,
`leave_flow`, and `mark_unreachable` / `mark_reachable` (the user blocked or unblocked
the bot: the outbox and broadcasts skip an unreachable candidate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.config import SUPPORTED_LANGUAGES
from bot.services.errors import NotFound, UnsupportedLanguage
from bot.services.notify import audit
from storage.models import Candidate, FlowState
from storage.uow import UnitOfWork, UowFactory


async def candidate_and_flow(uow: UnitOfWork, telegram_id: int) -> tuple[Candidate, FlowState]:
    """The candidate behind a Telegram id and their flow state, inside the
    caller's unit of work."""
    # Locked: staff decisions (reviews, overrides) write the same profile JSON.
    candidate = await uow.candidates.get_by_telegram_id(telegram_id, for_update=True)
    if candidate is None:
        raise NotFound("candidate")
    return candidate, await uow.flows.get_or_add(candidate.id)


@dataclass(frozen=True, slots=True)
class CandidateView:
    """What a handler needs to know about the person behind an update."""

    id: int
    telegram_id: int
    language: str | None
    telegram_language: str | None
    flow: str | None
    step: str | None


class CandidateService:
    def __init__(self, uow: UowFactory, clock: Callable[[], datetime]) -> None:
        self._uow = uow
        self._clock = clock

    async def touch(
        self,
        telegram_id: int,
        *,
        chat_id: int | None,
        first_name: str,
        username: str | None,
        telegram_language: str | None,
        reached: bool = True,
    ) -> CandidateView:
        """Create or refresh the candidate row and return their language and flow position.

        `reached=False` for an update that does not show the bot can write to them (the
        user blocking the bot): it leaves their reachability as it is.
        """
        name = first_name[:128]
        async with self._uow() as uow:
            # Runs for every update: read first, insert only for a newcomer (two first
            # updates racing meet the unique index and both read the one row).
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                await uow.candidates.add_if_missing(
                    telegram_id,
                    chat_id=chat_id,
                    first_name=name,
                    username=username,
                    telegram_language=telegram_language,
                )
                candidate = await uow.candidates.get_by_telegram_id(telegram_id)
                assert candidate is not None
            # Assigning an unchanged value writes nothing (SQLAlchemy compares history).
            candidate.first_name, candidate.username, candidate.telegram_language = (
                name,
                username,
                telegram_language,
            )
            if chat_id is not None:
                candidate.chat_id = chat_id
                if reached:  # writing to us again proves they can be reached
                    candidate.unreachable_at = None
            flow = await uow.flows.get(candidate.id)
            await uow.commit()
            return CandidateView(
                id=candidate.id,
                telegram_id=telegram_id,
                language=candidate.language,
                telegram_language=telegram_language,
                flow=flow.flow if flow else None,
                step=flow.step if flow else None,
            )

    async def set_language(self, telegram_id: int, language: str) -> None:
        """Store the candidate's language choice; it outlives restarts."""
        if language not in SUPPORTED_LANGUAGES:
            raise UnsupportedLanguage(language)
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                raise NotFound("candidate")
            old = candidate.language
            candidate.language = language
            audit(
                uow,
                f"tg:{telegram_id}",
                "candidate",
                candidate.id,
                "set_language",
                self._clock(),
                from_state=old,
                to_state=language,
            )
            await uow.commit()

    async def language(self, telegram_id: int) -> str | None:
        """The language the candidate chose, if any (None for a stranger)."""
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            return candidate.language if candidate is not None else None

    async def mark_unreachable(self, telegram_id: int) -> bool:
        """The user blocked the bot (or left Telegram): messages no longer reach them.
        False when nothing changed (a stranger, or already marked)."""
        return await self._set_unreachable(telegram_id, self._clock())

    async def mark_reachable(self, telegram_id: int) -> bool:
        """The user unblocked the bot. False when nothing changed."""
        return await self._set_unreachable(telegram_id, None)

    async def _set_unreachable(self, telegram_id: int, at: datetime | None) -> bool:
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None or (candidate.unreachable_at is None) == (at is None):
                return False
            candidate.unreachable_at = at
            await uow.commit()
            return True

    async def leave_flow(self, telegram_id: int) -> str | None:
        """Leave whatever flow the candidate is in; the answers given so far stay saved."""
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                return None
            state = await uow.flows.get(candidate.id)
            if state is None or state.flow is None:
                return None
            left = state.flow
            state.leave()
            await uow.commit()
            return left
