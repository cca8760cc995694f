"""Support flow ("Ask the exam centre", issue 14 point 4): a candidate's questions reach the
staff chat as ticket cards, a staff member's Telegram reply to a card reaches the candidate,
and the candidate's answer comes back to the same thread.

Candidate entry points (`SupportService`):

* `begin(telegram_id, thread_id=None)`: /ask, the menu button, or "Reply" on an answer
  (`thread_id`): the candidate's next message is for the exam centre (flow `support`, step
  `message`); `post(telegram_id, content)` takes it;
* `route_free(telegram_id, content)`: a message outside any flow. Right after an answer
  (`REPLY_WINDOW`) it goes to that thread at once (`Posted`); otherwise it is kept as a
  draft (step `confirm`) and `Offered` back, and `confirm(telegram_id, message_id)` sends
  it, `drop(telegram_id)` forgets it.

Staff entry points:

* `answer(staff_id, reply_to, content)`: a reply in the staff chat to a card (`reply_to`
  is the card's message id there);
* `message(staff_id, target, content)`: `/message <reference|telegram id> <text>`;
* `begin_message(staff_id, candidate_id, chat_id)` (the `desk:msg:<candidate id>`
  button) and `message_pending(staff_id, content, chat_id)` (their next message in that
  chat, flow `support_staff`);
* `open_threads()`: what `/threads` lists.

Every message is a `SupportMessage` row; every card and answer an outbox row keyed
`support:<message id>` written in the same transaction, so a restart between queuing and
sending still delivers it once. A card's message id in the staff chat is copied from its
outbox row when a reply needs it (`SupportRepository.map_sent_cards`). A thread is
`open` while the candidate waits and `answered` once staff wrote; the candidate's next
message continues their latest thread unless it has been idle for `THREAD_IDLE`. Staff
actions are audited (entity `support_thread`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.services.candidates import candidate_and_flow
from bot.services.errors import InvalidAnswer, NotFound, ServiceError, StaleStep
from bot.services.notify import Template, audit, notify_candidate, notify_staff
from storage.models import Candidate, SupportMessage, SupportThread
from storage.repositories.support import outbox_key
from storage.uow import UnitOfWork, UowFactory

FLOW = "support"  # the candidate's: step MESSAGE (waiting) or CONFIRM (a draft offered)
MESSAGE_STEP = "message"
CONFIRM_STEP = "confirm"
STAFF_FLOW = "support_staff"  # a staff member's: the text for one candidate
STAFF_STEP = "text"
ENTITY = "support_thread"  # the audit log's entity

MAX_TEXT = 2000
#: A thread idle this long is closed for continuation: the next question opens a new one.
THREAD_IDLE = timedelta(days=30)
#: Within this time of an answer, the candidate's next free message goes to its thread.
REPLY_WINDOW = timedelta(days=7)
#: Cards are mapped to their staff chat message for this long (older replies find nothing).
MAP_WINDOW = timedelta(days=60)
CARD_REGISTRATIONS = 5  # the most recent registrations a card lists
QUOTE = 300  # characters of the last answer a continuation card quotes
FILE_KINDS = ("photo", "document")


class NotACard(ServiceError):
    """A staff reply to a message that is no support card (or one too old to map)."""


@dataclass(frozen=True, slots=True)
class Content:
    """What someone wrote: text (or a caption) and at most one photo or document."""

    text: str | None = None
    file_id: str | None = None
    file_kind: str | None = None  # one of FILE_KINDS
    message_id: int | None = None  # Telegram's id of it in the writer's chat


@dataclass(frozen=True, slots=True)
class Posted:
    thread_id: int
    message_id: int
    continued: bool  # False: a new thread
    queued: bool  # False: there is no staff chat to send the card to


@dataclass(frozen=True, slots=True)
class Offered:
    """A message outside any flow, kept until the candidate confirms sending it."""

    message_id: int


@dataclass(frozen=True, slots=True)
class Answered:
    thread_id: int
    candidate_name: str
    delivered: bool  # False: the candidate has no private chat with the bot


@dataclass(frozen=True, slots=True)
class MessageTarget:
    candidate_id: int
    name: str


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    thread_id: int
    name: str
    username: str | None
    status: str
    updated_at: datetime
    messages: int


def clean(content: Content) -> Content:
    """The content with its text tidied; raises InvalidAnswer (`text_expected`, `too_long`)."""
    text = unicodedata.normalize("NFC", content.text or "").strip() or None
    kind = content.file_kind if content.file_id else None
    if kind not in (None, *FILE_KINDS):
        raise InvalidAnswer(MESSAGE_STEP, "text_expected")
    if text is None and kind is None:
        raise InvalidAnswer(MESSAGE_STEP, "text_expected")
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidAnswer(MESSAGE_STEP, "too_long", limit=MAX_TEXT)
    return Content(text, content.file_id if kind else None, kind, content.message_id)


def _name(candidate: Candidate) -> str:
    return candidate.full_name or candidate.first_name or str(candidate.telegram_id)


class SupportService:
    def __init__(
        self, uow: UowFactory, clock: Callable[[], datetime], *, staff_chat_id: int | None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.staff_chat_id = staff_chat_id

    # --- the candidate ---------------------------------------------------------------

    async def begin(self, telegram_id: int, thread_id: int | None = None) -> None:
        """The candidate's next message is for the exam centre (`thread_id`: to that
        thread of theirs; NotFound if it is not theirs)."""
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if thread_id is not None:
                thread = await uow.support.get_thread(thread_id)
                if thread is None or thread.candidate_id != candidate.id:
                    raise NotFound("thread")
            state.enter(FLOW, MESSAGE_STEP, answers={"thread_id": thread_id})
            await uow.commit()

    async def post(self, telegram_id: int, content: Content) -> Posted:
        """The message the candidate was asked for; leaves the flow."""
        content = clean(content)
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if state.flow != FLOW or state.step != MESSAGE_STEP:
                raise StaleStep(MESSAGE_STEP)
            hint = state.answers_of(FLOW).get("thread_id")
            state.leave(answers={})
            posted = await self._post(uow, candidate, content, hint)
            await uow.commit()
            return posted

    async def route_free(self, telegram_id: int, content: Content) -> Posted | Offered:
        """A message outside any flow: into the thread just answered, else a draft offered."""
        content = clean(content)
        now = self._clock()
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            thread = await uow.support.latest_thread(candidate.id)
            if thread is not None and thread.status == "answered":
                answer = await uow.support.last_message(thread.id, "out")
                if answer is not None and now - answer.created_at <= REPLY_WINDOW:
                    if state.flow == FLOW:
                        state.leave(answers={})
                    posted = await self._post(uow, candidate, content, thread.id)
                    await uow.commit()
                    return posted
            draft = {
                "text": content.text,
                "file_id": content.file_id,
                "file_kind": content.file_kind,
                "message_id": content.message_id,
            }
            state.enter(FLOW, CONFIRM_STEP, answers={"draft": draft})
            await uow.commit()
            return Offered(content.message_id or 0)

    async def confirm(self, telegram_id: int, message_id: int) -> Posted:
        """Send the draft offered for the candidate's message `message_id` (StaleStep for
        an older offer or one already sent)."""
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            draft = state.answers_of(FLOW).get("draft") if state.flow == FLOW else None
            if not draft or draft.get("message_id") != message_id:
                raise StaleStep(CONFIRM_STEP)
            state.leave(answers={})
            content = Content(
                draft.get("text"), draft.get("file_id"), draft.get("file_kind"), message_id
            )
            posted = await self._post(uow, candidate, clean(content), None)
            await uow.commit()
            return posted

    async def drop(self, telegram_id: int, message_id: int) -> None:
        """Forget the draft offered for `message_id` (StaleStep if it is not the current one)."""
        async with self._uow() as uow:
            _candidate, state = await candidate_and_flow(uow, telegram_id)
            draft = state.answers_of(FLOW).get("draft") if state.flow == FLOW else None
            if not draft or draft.get("message_id") != message_id:
                raise StaleStep(CONFIRM_STEP)
            state.leave(answers={})
            await uow.commit()

    async def _post(
        self, uow: UnitOfWork, candidate: Candidate, content: Content, hint: int | None
    ) -> Posted:
        now = self._clock()
        thread = await uow.support.get_thread(hint, for_update=True) if hint else None
        if thread is None or thread.candidate_id != candidate.id:
            thread = await uow.support.latest_thread(candidate.id)
            if thread is not None and now - thread.updated_at > THREAD_IDLE:
                thread = None
        continued = thread is not None
        if thread is None:
            thread = await uow.support.add_thread(
                SupportThread(candidate_id=candidate.id, status="open", created_at=now)
            )
        last_answer = await uow.support.last_message(thread.id, "out") if continued else None
        thread.status, thread.updated_at = "open", now
        message = await uow.support.add_message(
            SupportMessage(
                thread_id=thread.id,
                direction="in",
                text=content.text,
                file_id=content.file_id,
                file_kind=content.file_kind,
                candidate_message_id=content.message_id,
                created_at=now,
            )
        )
        params = await self._card(uow, candidate, thread, message, continued, last_answer)
        queued = await notify_staff(
            uow,
            self.staff_chat_id,
            now,
            key=outbox_key(message.id),
            template=Template.SUPPORT_QUESTION,
            params=params,
        )
        return Posted(thread.id, message.id, continued, queued)

    async def _card(
        self,
        uow: UnitOfWork,
        candidate: Candidate,
        thread: SupportThread,
        message: SupportMessage,
        continued: bool,
        last_answer: SupportMessage | None,
    ) -> dict[str, Any]:
        registrations = list(await uow.registrations.list_for_candidate(candidate.id))
        shown = registrations[:CARD_REGISTRATIONS]
        sessions = await uow.exam_sessions.list_by_ids([r.session_id for r in shown])
        levels = {lv.code: dict(lv.names) for lv in await uow.catalog.list_levels()}
        quote = None
        if last_answer is not None:
            quote = last_answer.text or ""
            if len(quote) > QUOTE:
                quote = quote[: QUOTE - 1] + "…"
        return {
            "thread_id": thread.id,
            "message_id": message.id,
            "continued": continued,
            "name": _name(candidate),
            "first_name": candidate.first_name,
            "username": candidate.username,
            "id_masked": candidate.id_number_masked,
            "registrations": [
                {
                    "reference": r.reference,
                    "level_code": r.level_code,
                    "level_names": levels.get(r.level_code, {}),
                    "session_code": sessions[r.session_id].code
                    if r.session_id in sessions
                    else "",
                    "state": str(r.state),
                }
                for r in shown
            ],
            "more_registrations": len(registrations) - len(shown),
            "text": message.text,
            "file_id": message.file_id,
            "file_kind": message.file_kind,
            "last_answer": quote,
            "last_answer_file": bool(last_answer and last_answer.file_id),
        }

    # --- staff ---------------------------------------------------------------------------

    async def answer(self, staff_id: int, reply_to: int, content: Content) -> Answered:
        """A staff member's reply (in the staff chat) to the message `reply_to` there;
        NotACard when that message is no support card."""
        content = clean(content)
        now = self._clock()
        async with self._uow() as uow:
            found = await uow.support.get_by_staff_message(reply_to)
            if (
                found is None
                and self.staff_chat_id is not None
                and await uow.support.map_sent_cards(self.staff_chat_id, now - MAP_WINDOW)
            ):
                found = await uow.support.get_by_staff_message(reply_to)
            if found is None:
                await uow.commit()  # the mapping done is kept
                raise NotACard()
            thread = await uow.support.get_thread(found.thread_id, for_update=True)
            assert thread is not None
            answered = await self._send(uow, staff_id, thread, content, "answered", in_staff=True)
            await uow.commit()
            return answered

    async def message(self, staff_id: int, target: str, content: Content) -> Answered:
        """`/message`: `target` is a registration reference or a Telegram id (NotFound)."""
        content = clean(content)
        async with self._uow() as uow:
            candidate = await self._find(uow, target)
            answered = await self._message(uow, staff_id, candidate, content, in_staff=False)
            await uow.commit()
            return answered

    async def begin_message(self, staff_id: int, candidate_id: int, chat_id: int) -> MessageTarget:
        """The staff member's next message in the chat `chat_id` goes to the candidate
        `candidate_id` (NotFound)."""
        async with self._uow() as uow:
            candidate = await uow.candidates.get(candidate_id)
            if candidate is None:
                raise NotFound("candidate")
            _me, state = await candidate_and_flow(uow, staff_id)
            state.enter(
                STAFF_FLOW, STAFF_STEP, answers={"candidate_id": candidate.id, "chat_id": chat_id}
            )
            await uow.commit()
            return MessageTarget(candidate.id, _name(candidate))

    async def message_pending(self, staff_id: int, content: Content, chat_id: int) -> Answered:
        """The message the staff member was asked for after `begin_message`, written in the
        same chat (StaleStep otherwise: a staff member who pressed the button in a private
        chat and then talks in the staff chat is not sending it)."""
        content = clean(content)
        async with self._uow() as uow:
            _me, state = await candidate_and_flow(uow, staff_id)
            answers = state.answers_of(STAFF_FLOW)
            if state.flow != STAFF_FLOW or answers.get("chat_id") != chat_id:
                raise StaleStep(STAFF_STEP)
            candidate_id = int(answers.get("candidate_id", 0))
            state.leave(answers={})
            candidate = await uow.candidates.get(candidate_id)
            if candidate is None:
                await uow.commit()
                raise NotFound("candidate")
            in_staff = chat_id == self.staff_chat_id
            answered = await self._message(uow, staff_id, candidate, content, in_staff=in_staff)
            await uow.commit()
            return answered

    async def waiting_for(self, staff_id: int) -> MessageTarget | None:
        """Whom the staff member's next message goes to (after `begin_message`), if anyone."""
        async with self._uow() as uow:
            me = await uow.candidates.get_by_telegram_id(staff_id)
            state = await uow.flows.get(me.id) if me is not None else None
            if state is None or state.flow != STAFF_FLOW:
                return None
            candidate_id = int(state.answers_of(STAFF_FLOW).get("candidate_id", 0))
            candidate = await uow.candidates.get(candidate_id)
            return MessageTarget(candidate.id, _name(candidate)) if candidate else None

    async def open_threads(self, limit: int = 30) -> tuple[list[ThreadSummary], int]:
        """The open threads, the longest waiting first (at most `limit`), and how many
        there are in all."""
        async with self._uow() as uow:
            rows = await uow.support.list_by_status("open", limit)
            total = await uow.support.count_by_status("open")
            summaries = [
                ThreadSummary(t.id, _name(c), c.username, t.status, t.updated_at, n)
                for t, c, n in rows
            ]
            return summaries, total

    async def _find(self, uow: UnitOfWork, target: str) -> Candidate:
        target = target.strip()
        candidate = None
        if target.isdigit():
            candidate = await uow.candidates.get_by_telegram_id(int(target))
        if candidate is None and target:
            registration = await uow.payments.registration_by_reference(target)
            if registration is not None:
                candidate = await uow.candidates.get(registration.candidate_id)
        if candidate is None:
            raise NotFound("candidate")
        return candidate

    async def _message(
        self,
        uow: UnitOfWork,
        staff_id: int,
        candidate: Candidate,
        content: Content,
        *,
        in_staff: bool,
    ) -> Answered:
        now = self._clock()
        thread = await uow.support.latest_thread(candidate.id)
        action = "messaged"
        if thread is None or now - thread.updated_at > THREAD_IDLE:
            thread = await uow.support.add_thread(
                SupportThread(candidate_id=candidate.id, status="answered", created_at=now)
            )
            action = "opened"
        else:
            await uow.support.get_thread(thread.id, for_update=True)
        return await self._send(uow, staff_id, thread, content, action, in_staff=in_staff)

    async def _send(
        self,
        uow: UnitOfWork,
        staff_id: int,
        thread: SupportThread,
        content: Content,
        action: str,
        *,
        in_staff: bool,
    ) -> Answered:
        """Record a staff message in `thread`, queue it to the candidate and audit it."""
        now = self._clock()
        candidate = await uow.candidates.get(thread.candidate_id)
        assert candidate is not None
        before = thread.status
        thread.status, thread.updated_at = "answered", now
        message = await uow.support.add_message(
            SupportMessage(
                thread_id=thread.id,
                direction="out",
                text=content.text,
                file_id=content.file_id,
                file_kind=content.file_kind,
                # a staff message in the staff chat: a reply to it finds the thread too
                staff_chat_message_id=content.message_id if in_staff else None,
                staff_id=staff_id,
                created_at=now,
            )
        )
        delivered = await notify_candidate(
            uow,
            candidate.id,
            now,
            key=outbox_key(message.id),
            template=Template.SUPPORT_ANSWER,
            params={
                "thread_id": thread.id,
                "text": content.text,
                "file_id": content.file_id,
                "file_kind": content.file_kind,
            },
        )
        audit(
            uow,
            f"tg:{staff_id}",
            ENTITY,
            thread.id,
            action,
            now,
            from_state=before,
            to_state="answered",
            details={"message_id": message.id, "delivered": delivered},
        )
        return Answered(thread.id, _name(candidate), delivered)
