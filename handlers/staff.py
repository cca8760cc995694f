"""Staff gate: handlers that only staff (EXAMDESK_ADMIN_IDS) may trigger.

`StaffCallbackQueryHandler` is a CallbackQueryHandler that does not match presses by
anyone else, so a forged or forwarded staff button falls through to the catch-all
("this button is no longer valid") and the service is never called.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler


class StaffCallbackQueryHandler(CallbackQueryHandler):  # type: ignore[type-arg]
    def __init__(self, callback: Any, pattern: str, staff_ids: Collection[int]) -> None:
        super().__init__(callback, pattern=pattern)
        self.staff_ids = frozenset(staff_ids)

    def check_update(self, update: object) -> Any:
        if not isinstance(update, Update) or update.effective_user is None:
            return None
        if update.effective_user.id not in self.staff_ids:
            return None
        return super().check_update(update)
