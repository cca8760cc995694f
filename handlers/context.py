"""The typed callback context handlers receive, the typed `bot_data` behind it, and the
flow router that sends a typed message to the flow the candidate is in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot, filters

from bot.i18n import Translator

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.i18n import I18n
    from bot.services import Services
    from bot.services.candidates import CandidateView


@dataclass
class BotData:
    """Process-wide objects, set once by `bot.app` (PTB builds this with no arguments)."""

    services: Services | None = None
    i18n: I18n | None = None
    settings: Settings | None = None
    flows: FlowRouter | None = None  # set by handlers.setup
    # Who is staff: EXAMDESK_ADMIN_IDS and everyone with a role. One filter, shared by every
    # staff handler and StaffCallbackQueryHandler, so refreshing its ids (at start, by a
    # tick, at once after /staff changes a role: handlers.staff_roles.refresh_staff)
    # reroutes them all. Empty, it matches nobody.
    staff: filters.User = field(default_factory=lambda: filters.User(allow_empty=False))
    # staff file commands (`/<command> args` + a file), collected from each flow module's
    # STAFF_FILES by handlers.setup; handlers.staff_files routes to them
    staff_files: dict[str, FileCommand] = field(default_factory=dict)
    # update ids whose handlers raised: PTB hands the error to the error handler and
    # returns normally, so this is how the dispatcher learns that an update failed
    failed_updates: set[int] = field(default_factory=set)


class ExamContext(CallbackContext[ExtBot[None], dict, dict, BotData]):  # type: ignore[type-arg]
    """One context per update: the services, and the candidate's translator."""

    def __init__(
        self, application: Application, chat_id: int | None = None, user_id: int | None = None
    ):
        super().__init__(application, chat_id=chat_id, user_id=user_id)
        self.candidate: CandidateView | None = None
        self._tr: Translator | None = None

    @property
    def services(self) -> Services:
        assert self.bot_data.services is not None, "bot.app wires services before start"
        return self.bot_data.services

    @property
    def settings(self) -> Settings:
        assert self.bot_data.settings is not None
        return self.bot_data.settings

    @property
    def flows(self) -> FlowRouter:
        assert self.bot_data.flows is not None, "handlers.setup installs the flow router"
        return self.bot_data.flows

    @property
    def i18n(self) -> I18n:
        assert self.bot_data.i18n is not None
        return self.bot_data.i18n

    @property
    def tr(self) -> Translator:
        """The translator chosen for this update (the site default before it is known)."""
        return self._tr or self.i18n.translator(self.i18n.default_language)

    @tr.setter
    def tr(self, value: Translator) -> None:
        self._tr = value

    @property
    def is_staff(self) -> bool:
        return (
            self.candidate is not None
            and self.candidate.telegram_id in self.bot_data.staff.user_ids
        )


InputHandler = Callable[[Update, ExamContext], Awaitable[None]]
FileHandler = Callable[[Update, ExamContext, list[str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FileCommand:
    """A staff file command: `handle` gets the file's message (update) and the command's
    arguments; `needs_args` says whether the command is useless without them (the router
    then asks for them before it waits for the file)."""

    handle: FileHandler
    needs_args: bool = False


class FlowRouter:
    """Routes a typed message to the candidate's current flow, or resumes a flow's step.

    The candidate's current flow is stored in the database (loaded by `handlers.identity`),
    so a restart or another instance routes the next message the same way. Each flow module
    declares `INPUTS = {flow: handler}` (how it takes a typed answer) and
    `RESUMES = {flow: handler}` (how it shows its current step again); `handlers.setup`
    builds one router from them. With no flow, `fallback` answers.
    """

    def __init__(
        self,
        inputs: Mapping[str, InputHandler],
        resumes: Mapping[str, InputHandler],
        fallback: InputHandler,
    ) -> None:
        self.inputs = dict(inputs)
        self.resumes = dict(resumes)
        self.fallback = fallback

    async def resume(self, update: Update, context: ExamContext) -> bool:
        """Show the step the candidate left off at; False when they are in no flow."""
        flow = context.candidate.flow if context.candidate else None
        handler = self.resumes.get(flow or "")
        if handler is None:
            return False
        await handler(update, context)
        return True

    async def on_private_message(self, update: Update, context: ExamContext) -> None:
        """Route a non-command private message to the candidate's current flow."""
        flow = context.candidate.flow if context.candidate else None
        await self.inputs.get(flow or "", self.fallback)(update, context)
