"""Personal data in the inbox: a typed ID number never reaches the database files in clear,
and an update replayed after a crash still hands the handler the number as typed."""

from __future__ import annotations

import json

from bot.services import build_services
from storage.db import Database
from tests.e2e.conftest import SECRET_KEY, Harness, exchange
from tests.e2e.test_registration import Person, become_eligible_for_junior
from tests.services.test_inbox import database_bytes

ID_NUMBER = "230103198805177318"  # checksum-valid, used by no other e2e test


def _typed(update_id: int, user_id: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_795_000_000,
            "text": text,
            "chat": {"id": user_id, "type": "private", "first_name": "Li"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Li", "language_code": "en"},
        },
    }


async def test_id_number_stored_before_a_crash_is_sealed_and_replayed_as_typed(
    any_bot: Harness,
) -> None:
    p = Person(any_bot, 641, "en")
    await p.command("/start")
    await become_eligible_for_junior(p)
    await p.press("reg:start:junior")
    await p.say("Li Lei")
    await p.press("reg:c:id_type:resident_id")  # the form now asks for the ID number
    await any_bot.stop()
    # The instance that stored the typed number died before handling it.
    database = Database(any_bot.database_url)
    try:
        dead = build_services(database, any_bot.clock, secret_key=SECRET_KEY)
        await dead.instance.acquire()
        await dead.inbox.store(_typed(64_001, 641, ID_NUMBER))
        await dead.instance.release()
        stored = await database_bytes(database)
    finally:
        await database.dispose()
    replies = await exchange(any_bot, p.user, any_bot.start())
    assert (ID_NUMBER.encode() in stored, json.dumps(ID_NUMBER).encode() in stored) == (
        False,
        False,
    )
    assert [m["text"].split("\n")[0] for m in replies][-1].startswith("Your mobile phone number")
