"""SupportService on real databases: a question opens a thread and queues its card, a
staff reply to the sent card (found through the card's outbox row) reaches the candidate,
the candidate's next message continues the thread, offers and drafts, staff messages by
reference, Telegram id or the find card's button, the open list, and /override told to
the candidate."""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

import pytest
from sqlalchemy import select, update

from bot.config import PROJECT_ROOT
from bot.domain.catalog import load_catalog
from bot.services import Services, build_services
from bot.services.errors import InvalidAnswer, NotFound, StaleStep
from bot.services.payments import PaymentConfig
from bot.services.support import (
    MAX_TEXT,
    Answered,
    Content,
    NotACard,
    Offered,
    Posted,
)
from storage.db import Database
from storage.models import AuditEntry, OutboxMessage, SupportMessage, SupportThread
from storage.uow import UnitOfWork
from tests.factories import Clock, make_candidates, make_registration, make_session

STAFF_CHAT = -100500
STAFF = 900
CANDIDATE = 1001


def _services(database: Database, clock: Clock) -> Services:
    return build_services(
        database,
        clock,
        staff_ids=frozenset({STAFF}),
        payment_config=PaymentConfig(staff_chat_id=STAFF_CHAT),
    )


class Row(NamedTuple):
    chat_id: int
    idempotency_key: str
    payload: dict


async def _rows(database: Database, like: str = "support:%") -> list[Row]:
    async with UnitOfWork(database.sessions) as uow:
        stmt = (
            select(OutboxMessage.chat_id, OutboxMessage.idempotency_key, OutboxMessage.payload)
            .where(OutboxMessage.idempotency_key.like(like))
            .order_by(OutboxMessage.id)
        )
        return [Row(*r) for r in (await uow.session.execute(stmt)).all()]


async def _sent(database: Database, key: str, message_id: int) -> None:
    """What the outbox sender records once a row is sent: its status and Telegram's id."""
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.idempotency_key == key)
            .values(status="sent", message_id=message_id)
        )
        await uow.commit()


async def _thread_status(database: Database, thread_id: int) -> str:
    async with UnitOfWork(database.sessions) as uow:
        return str(
            await uow.session.scalar(
                select(SupportThread.status).where(SupportThread.id == thread_id)
            )
        )


async def _asked(database: Database, clock: Clock, text: str = "Where is the exam room?"):  # type: ignore[no-untyped-def]
    """A candidate with a paid registration who asked `text`, the card sent as message 555."""
    services = _services(database, clock)
    s1 = await make_session(database, "S1")
    registration = await make_registration(database, CANDIDATE, s1)
    await services.support.begin(CANDIDATE)
    posted = await services.support.post(CANDIDATE, Content(text, message_id=11))
    await _sent(database, f"support:{posted.message_id}", 555)
    return services, posted, registration


async def test_post_opens_thread_and_queues_card_with_registrations(database: Database) -> None:
    clock = Clock()
    services = _services(database, clock)
    s1 = await make_session(database, "S1")
    registration = await make_registration(database, CANDIDATE, s1)
    await services.support.begin(CANDIDATE)

    posted = await services.support.post(CANDIDATE, Content("  Where is room A301?  ", None))

    [row] = await _rows(database)
    params = row.payload["params"]
    assert (
        posted.continued,
        posted.queued,
        row.chat_id,
        row.idempotency_key,
        row.payload["template"],
        params["text"],
        params["registrations"][0]["reference"],
        params["registrations"][0]["session_code"],
        params["registrations"][0]["state"],
        await _thread_status(database, posted.thread_id),
    ) == (
        False,
        True,
        STAFF_CHAT,
        f"support:{posted.message_id}",
        "support_question",
        "Where is room A301?",
        registration.reference,
        "S1",
        "paid",
        "open",
    )


async def test_post_outside_the_flow_is_stale(database: Database) -> None:
    services = _services(database, Clock())
    await make_candidates(database, [CANDIDATE])

    with pytest.raises(StaleStep):
        await services.support.post(CANDIDATE, Content("hello"))


async def test_empty_or_too_long_message_is_refused(database: Database) -> None:
    services = _services(database, Clock())
    await make_candidates(database, [CANDIDATE])
    await services.support.begin(CANDIDATE)

    with pytest.raises(InvalidAnswer) as empty:
        await services.support.post(CANDIDATE, Content("   "))
    with pytest.raises(InvalidAnswer) as long:
        await services.support.post(CANDIDATE, Content("x" * (MAX_TEXT + 1)))

    assert (empty.value.reason, long.value.reason) == ("text_expected", "too_long")


async def test_photo_without_caption_is_a_message(database: Database) -> None:
    services = _services(database, Clock())
    await make_candidates(database, [CANDIDATE])
    await services.support.begin(CANDIDATE)

    await services.support.post(CANDIDATE, Content(None, "PHOTO-ID", "photo", 12))

    [row] = await _rows(database)
    params = row.payload["params"]
    assert (params["text"], params["file_id"], params["file_kind"]) == (None, "PHOTO-ID", "photo")


async def test_staff_reply_to_sent_card_reaches_candidate_and_marks_answered(
    database: Database,
) -> None:
    clock = Clock()
    services, posted, _ = await _asked(database, clock)

    answered = await services.support.answer(STAFF, 555, Content("Building A, 3rd floor", None))

    rows = await _rows(database)
    async with UnitOfWork(database.sessions) as uow:
        audit = (
            await uow.session.execute(
                select(
                    AuditEntry.actor, AuditEntry.entity_id, AuditEntry.action, AuditEntry.to_state
                ).where(AuditEntry.entity == "support_thread")
            )
        ).one()
    assert (
        answered,
        [(r.chat_id, r.payload["template"]) for r in rows],
        rows[1].payload["params"]["text"],
        await _thread_status(database, posted.thread_id),
        tuple(audit),
    ) == (
        Answered(posted.thread_id, f"C{CANDIDATE}", delivered=True),
        [(STAFF_CHAT, "support_question"), (CANDIDATE, "support_answer")],
        "Building A, 3rd floor",
        "answered",
        (f"tg:{STAFF}", str(posted.thread_id), "answered", "answered"),
    )


async def test_reply_to_card_not_sent_yet_or_to_another_message_is_no_card(
    database: Database,
) -> None:
    clock = Clock()
    services = _services(database, clock)
    await make_candidates(database, [CANDIDATE])
    await services.support.begin(CANDIDATE)
    await services.support.post(CANDIDATE, Content("question"))

    with pytest.raises(NotACard):
        await services.support.answer(STAFF, 555, Content("answer"))  # the card is pending
    with pytest.raises(NotACard):
        await services.support.answer(STAFF, 777, Content("answer"))


async def test_reply_to_a_staff_answer_in_the_staff_chat_finds_the_thread(
    database: Database,
) -> None:
    clock = Clock()
    services, posted, _ = await _asked(database, clock)
    await services.support.answer(STAFF, 555, Content("First answer", message_id=556))

    again = await services.support.answer(STAFF, 556, Content("And also this"))

    assert again.thread_id == posted.thread_id


async def test_free_message_after_answer_continues_thread_quoting_the_answer(
    database: Database,
) -> None:
    clock = Clock()
    services, posted, _ = await _asked(database, clock)
    await services.support.answer(STAFF, 555, Content("Building A"))
    clock.now += timedelta(days=2)

    routed = await services.support.route_free(
        CANDIDATE, Content("Thanks, which floor?", None, None, 20)
    )

    card = (await _rows(database))[-1].payload["params"]
    assert (
        isinstance(routed, Posted),
        routed.thread_id,
        routed.continued,
        card["continued"],
        card["last_answer"],
        card["text"],
        await _thread_status(database, posted.thread_id),
    ) == (True, posted.thread_id, True, True, "Building A", "Thanks, which floor?", "open")


async def test_free_message_without_recent_answer_is_offered_then_confirmed_once(
    database: Database,
) -> None:
    clock = Clock()
    services = _services(database, clock)
    await make_candidates(database, [CANDIDATE])

    offered = await services.support.route_free(
        CANDIDATE, Content("How much is it?", None, None, 31)
    )
    queued_before = len(await _rows(database))
    with pytest.raises(StaleStep):
        await services.support.confirm(CANDIDATE, 30)  # an older offer
    posted = await services.support.confirm(CANDIDATE, 31)
    with pytest.raises(StaleStep):
        await services.support.confirm(CANDIDATE, 31)  # a double tap

    [row] = await _rows(database)
    assert (offered, queued_before, posted.continued, row.payload["params"]["text"]) == (
        Offered(31),
        0,
        False,
        "How much is it?",
    )


async def test_free_message_a_week_after_the_answer_is_offered_again(database: Database) -> None:
    clock = Clock()
    services, _, _ = await _asked(database, clock)
    await services.support.answer(STAFF, 555, Content("Building A"))
    clock.now += timedelta(days=8)

    routed = await services.support.route_free(CANDIDATE, Content("Another thing", None, None, 40))

    assert routed == Offered(40)


async def test_dropped_draft_is_not_sent(database: Database) -> None:
    services = _services(database, Clock())
    await make_candidates(database, [CANDIDATE])
    await services.support.route_free(CANDIDATE, Content("hi", None, None, 5))

    await services.support.drop(CANDIDATE, 5)

    with pytest.raises(StaleStep):
        await services.support.confirm(CANDIDATE, 5)
    assert await _rows(database) == []


async def test_question_after_30_idle_days_opens_a_new_thread(database: Database) -> None:
    clock = Clock()
    services, posted, _ = await _asked(database, clock)
    clock.now += timedelta(days=31)
    await services.support.begin(CANDIDATE)

    later = await services.support.post(CANDIDATE, Content("New question"))

    assert (later.continued, later.thread_id != posted.thread_id) == (False, True)


async def test_reply_button_posts_to_that_thread_only_for_its_owner(database: Database) -> None:
    clock = Clock()
    services, posted, _ = await _asked(database, clock)
    await make_candidates(database, [2002])

    with pytest.raises(NotFound):
        await services.support.begin(2002, posted.thread_id)
    await services.support.begin(CANDIDATE, posted.thread_id)
    again = await services.support.post(CANDIDATE, Content("More"))

    assert (again.thread_id, again.continued) == (posted.thread_id, True)


async def test_staff_message_by_reference_or_telegram_id(database: Database) -> None:
    clock = Clock()
    services = _services(database, clock)
    s1 = await make_session(database, "S1")
    registration = await make_registration(database, CANDIDATE, s1)

    by_reference = await services.support.message(
        STAFF, registration.reference.lower(), Content("Please bring your ID card")
    )
    by_id = await services.support.message(STAFF, str(CANDIDATE), Content("And a pencil"))
    with pytest.raises(NotFound):
        await services.support.message(STAFF, "NOPE-1", Content("x"))

    rows = await _rows(database)
    async with UnitOfWork(database.sessions) as uow:
        actions = list(
            (
                await uow.session.scalars(
                    select(AuditEntry.action)
                    .where(AuditEntry.entity == "support_thread")
                    .order_by(AuditEntry.id)
                )
            ).all()
        )
    assert (
        by_reference.thread_id == by_id.thread_id,
        [(r.chat_id, r.payload["params"]["text"]) for r in rows],
        actions,
        await _thread_status(database, by_id.thread_id),
    ) == (
        True,
        [(CANDIDATE, "Please bring your ID card"), (CANDIDATE, "And a pencil")],
        ["opened", "messaged"],
        "answered",
    )


async def test_candidate_answer_to_staff_message_comes_back_to_the_thread(
    database: Database,
) -> None:
    clock = Clock()
    services = _services(database, clock)
    await make_candidates(database, [CANDIDATE])
    sent = await services.support.message(STAFF, str(CANDIDATE), Content("Your photo is blurry"))

    back = await services.support.route_free(CANDIDATE, Content("New photo", "P2", "photo", 9))

    assert isinstance(back, Posted) and (back.thread_id, back.continued) == (sent.thread_id, True)


async def test_desk_button_then_typed_text_messages_the_candidate(database: Database) -> None:
    clock = Clock()
    services = _services(database, clock)
    [_staff_row, candidate_id] = await make_candidates(database, [STAFF, CANDIDATE])

    with pytest.raises(NotFound):
        await services.support.begin_message(STAFF, 2**31 - 1, STAFF)
    target = await services.support.begin_message(STAFF, candidate_id, STAFF)
    waiting = await services.support.waiting_for(STAFF)
    with pytest.raises(StaleStep):  # pressed in the private chat, not in the staff chat
        await services.support.message_pending(STAFF, Content("chat"), STAFF_CHAT)
    answered = await services.support.message_pending(STAFF, Content("Call us, please"), STAFF)
    with pytest.raises(StaleStep):
        await services.support.message_pending(STAFF, Content("again"), STAFF)

    [row] = await _rows(database)
    assert (target.name, waiting, answered.delivered, row.chat_id) == (
        f"C{CANDIDATE}",
        target,
        True,
        CANDIDATE,
    )


async def test_staff_message_to_candidate_without_chat_is_saved_not_delivered(
    database: Database,
) -> None:
    services = _services(database, Clock())
    await make_candidates(database, [CANDIDATE], with_chat=False)

    answered = await services.support.message(STAFF, str(CANDIDATE), Content("Hello"))

    assert (answered.delivered, await _rows(database)) == (False, [])


async def test_open_threads_lists_waiting_ones_longest_first(database: Database) -> None:
    clock = Clock()
    services = _services(database, clock)
    await make_candidates(database, [1, 2, 3])
    for telegram_id in (2, 1, 3):
        await services.support.begin(telegram_id)
        await services.support.post(telegram_id, Content(f"q{telegram_id}"))
        clock.now += timedelta(minutes=5)
    async with UnitOfWork(database.sessions) as uow:
        third = await uow.session.scalar(
            select(SupportMessage.id).where(SupportMessage.text == "q3")
        )
    await _sent(database, f"support:{third}", 9000)
    await services.support.answer(STAFF, 9000, Content("done"))

    threads, total = await services.support.open_threads()

    assert ([(t.name, t.messages, t.status) for t in threads], total) == (
        [("C2", 1, "open"), ("C1", 1, "open")],
        2,
    )


async def test_override_tells_the_candidate_with_the_reason(database: Database) -> None:
    clock = Clock()
    services = _services(database, clock)
    await services.catalog.load(load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml"))
    await make_candidates(database, [CANDIDATE])

    await services.eligibility.override(
        STAFF, CANDIDATE, "junior", eligible=True, reason="Certificate checked at the desk"
    )

    [row] = await _rows(database, "eligibility_override:%")
    assert (row.chat_id, row.payload) == (
        CANDIDATE,
        {
            "template": "eligibility_overridden",
            "params": {
                "level_code": "junior",
                "eligible": True,
                "reason": "Certificate checked at the desk",
            },
        },
    )
