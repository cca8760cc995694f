"""Staff files: a staff member's file command waiting for its file (docs/results.md,
"Importing a results file").

Staff send `/<command> args…` and then the file. The command waits in the staff member's
flow state (flow `staff_file`, answers `{"command", "args", "until"}`), so a restart or
another instance routes the next file the same way; it lapses after `PENDING_FOR`, and
`/cancel` (leaving the flow) drops it.

Entry points (`StaffFileService`): `await_file(telegram_id, command, args)`,
`pending(telegram_id)` (the waiting command, or an expired one, which it drops),
`clear(telegram_id)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.services.candidates import candidate_and_flow
from storage.uow import UowFactory

FLOW = "staff_file"
PENDING_FOR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class PendingFile:
    command: str
    args: tuple[str, ...]
    until: datetime
    expired: bool = False


class StaffFileService:
    def __init__(self, uow: UowFactory, clock: Callable[[], datetime]) -> None:
        self._uow = uow
        self._clock = clock

    async def await_file(self, telegram_id: int, command: str, args: list[str]) -> PendingFile:
        """Remember that the next file from this staff member is for `command`. Raises
        NotFound for someone the bot has never seen."""
        until = self._clock() + PENDING_FOR
        async with self._uow() as uow:
            _candidate, state = await candidate_and_flow(uow, telegram_id)
            answers = {"command": command, "args": list(args), "until": until.isoformat()}
            state.enter(FLOW, command, answers=answers)
            await uow.commit()
        return PendingFile(command, tuple(args), until)

    async def pending(self, telegram_id: int) -> PendingFile | None:
        """The command waiting for a file; None if none. An expired one is dropped and
        returned with `expired=True`, so the caller can say so."""
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            state = None if candidate is None else await uow.flows.get(candidate.id)
            if state is None or state.flow != FLOW:
                return None
            answers = state.answers_of(FLOW)
            found = PendingFile(
                str(answers.get("command", "")),
                tuple(answers.get("args", [])),
                datetime.fromisoformat(answers["until"]),
            )
            if found.until > self._clock():
                return found
            state.leave()
            await uow.commit()
            return PendingFile(found.command, found.args, found.until, expired=True)

    async def clear(self, telegram_id: int) -> None:
        """The file came (or the wait is over): leave the flow."""
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            state = None if candidate is None else await uow.flows.get(candidate.id)
            if state is not None and state.flow == FLOW:
                state.leave()
                await uow.commit()
