"""The typed callback context handlers receive, and the typed `bot_data` behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telegram.ext import Application, CallbackContext, ExtBot

from bot.i18n import Translator

if TYPE_CHECKING:
    from bot.app import Services
    from bot.config import Settings
    from bot.i18n import I18n
    from bot.services.candidates import CandidateView


@dataclass
class BotData:
    """Process-wide objects, set once by `bot.app` (PTB builds this with no arguments)."""

    services: Services | None = None
    i18n: I18n | None = None
    settings: Settings | None = None
    # update ids whose handlers raised: PTB hands the error to the error handler and
    # returns normally, so this is how the dispatcher learns that an update failed
    failed_updates: set[int] = field(default_factory=set)


class ExamContext(CallbackContext[ExtBot[None], dict, dict, BotData]):  # type: ignore[type-arg]
    """One context per update: the services, and the candidate's translator."""

    def __init__(self, application: Application, chat_id: int | None = None, user_id: int | None = None):
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
        return self.candidate is not None and self.candidate.telegram_id in self.settings.admin_ids
