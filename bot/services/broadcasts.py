"""Broadcasts flow: staff compose an announcement, choose the audience, preview, confirm, watch.

Entry points (each one re-checks that the actor is an admin, so forged buttons change nothing):
- `start(actor_id, chat_id, language)`: a new draft; the actor's flow state becomes `broadcast`.
- `set_content(actor_id, chat_id, text, photo, document)`: the announcement (text, or a photo
  or document with a caption); sent again while choosing the audience, it replaces the first.
- `audience_options()`, `choose_audience(actor_id, broadcast_id, kind, value)` → `Preview`
  with the exact recipient count and the known-unreachable count beside it.
- `ask_schedule(actor_id, broadcast_id)`, `set_schedule(actor_id, chat_id, when)` → `Preview`.
- `confirm(actor_id, broadcast_id, progress_chat_id, progress_message_id, scheduled=...)`:
  one transaction queues one outbox row per recipient (`broadcast:{id}:{candidate id}`).
- `pause`, `resume`, `cancel` (any unfinished one), `drop` (a draft only) → `Progress`;
  `progress(broadcast_id)`.
- `tick()`: starts due scheduled broadcasts, finishes the ones with nothing pending (once,
  by a conditional UPDATE, queueing the report), and returns the progress views whose
  content changed (claimed by a conditional UPDATE of the fingerprint, so two instances
  never edit the same message with the same text).
- `not_reached(actor_id, broadcast_id)`: who was not reached, for the CSV.

Pausing and cancelling move one row: the outbox does not claim rows of a paused or
cancelled broadcast (`storage.repositories._not_held`). Rows a sender already holds
(at most one batch, a few seconds of sending) still go out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.lifecycle import (
    BROADCAST_OPEN,
    BROADCAST_STATE_GROUPS,
    OUTBOX_ATTEMPTED,
    BroadcastStatus,
    OutboxStatus,
)
from bot.domain.roles import Role
from bot.services.errors import InvalidAnswer, InvalidState, NotFound, NotStaff, StaleStep
from bot.services.notify import Template, audit, notify_staff
from bot.services.outbox import check_payload
from bot.services.staff import NotAllowed, StaffService
from storage.models import Broadcast
from storage.uow import UnitOfWork, UowFactory

FLOW = "broadcast"
AUDIENCE_KINDS = ("all", "session", "level", "state")
STATE_GROUPS = tuple(BROADCAST_STATE_GROUPS)  # unpaid, waitlisted, paid
REPORT_LIST_LIMIT = 30  # names in the report message; the CSV has them all
TEXT_LIMIT = 4096  # Telegram's limits for a message and a caption
CAPTION_LIMIT = 1024
SCHEDULE_FORMAT = "%Y-%m-%d %H:%M"
MAX_SCHEDULE_AHEAD = timedelta(days=366)
UNREACHABLE_BEFORE = "unreachable before the broadcast"


@dataclass(frozen=True)
class Draft:
    """Where the composer is: `step` is content, audience, confirm or schedule."""

    id: int
    step: str


@dataclass(frozen=True)
class AudienceOptions:
    sessions: tuple[str, ...]
    levels: tuple[str, ...]
    states: tuple[str, ...] = STATE_GROUPS


@dataclass(frozen=True)
class Preview:
    """The message exactly as it will go out, to whom, how many, and when."""

    id: int
    text: str | None
    photo: str | None
    document: str | None
    audience_kind: str
    audience_value: str | None
    recipients: int  # will be sent
    unreachable: int  # in the audience but marked unreachable: not sent, listed in the report
    paid: bool
    scheduled_at: datetime | None


@dataclass(frozen=True)
class Progress:
    """What the progress message shows (counts from the outbox rows of the broadcast)."""

    id: int
    status: str
    language: str
    chat_id: int | None  # the progress message
    message_id: int | None
    audience_kind: str
    audience_value: str | None
    recipients: int
    skipped: int  # known unreachable at confirmation (counted in `unreachable`)
    sent: int
    failed: int
    unreachable: int
    cancelled: int
    remaining: int
    eta_seconds: int | None
    scheduled_at: datetime | None
    finished_now: bool = False  # this call finished it (the report is queued)

    @property
    def fingerprint(self) -> str:
        shown = (
            self.status,
            self.sent,
            self.failed,
            self.unreachable,
            self.cancelled,
            self.remaining,
            self.eta_seconds,
            self.scheduled_at.isoformat() if self.scheduled_at else None,
        )
        return hashlib.sha256(repr(shown).encode()).hexdigest()[:40]


@dataclass(frozen=True)
class NotReached:
    name: str
    telegram_id: int
    status: str  # unreachable, failed or cancelled
    reason: str | None


def _eta_bucket(seconds: float) -> int:
    """Round an ETA so the progress text does not flicker: 5 s steps, then whole minutes."""
    return int(math.ceil(seconds / 5) * 5) if seconds < 120 else int(math.ceil(seconds / 60) * 60)


class BroadcastService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        *,
        staff: StaffService,
        site_zone: str = "Asia/Shanghai",
        paid_allowed: bool = False,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._staff = staff
        self._zone = ZoneInfo(site_zone)
        self._paid = paid_allowed

    # -- composing ----------------------------------------------------------------------

    async def start(self, actor_id: int, chat_id: int, language: str) -> Draft:
        """A new draft composed in `chat_id`; the actor is asked for the announcement."""
        await self._check_staff(actor_id)
        async with self._uow() as uow:
            broadcast = Broadcast(
                created_by=actor_id,
                chat_id=chat_id,
                language=language,
                status=BroadcastStatus.DRAFT,
                audience={},
                paid=self._paid,
                created_at=self._clock(),
            )
            uow.broadcasts.add(broadcast)
            await uow.flush()
            await self._set_step(uow, actor_id, broadcast.id, "content")
            self._audit(uow, actor_id, broadcast, "created", None, BroadcastStatus.DRAFT)
            await uow.commit()
            return Draft(broadcast.id, "content")

    async def current(self, actor_id: int) -> Draft | None:
        """The draft step the actor is on, for resuming after /start."""
        async with self._uow() as uow:
            found = await self._flow(uow, actor_id)
            return Draft(found[0].id, found[1]) if found else None

    async def set_content(
        self,
        actor_id: int,
        chat_id: int,
        *,
        text: str | None,
        photo: str | None = None,
        document: str | None = None,
    ) -> Draft:
        """The announcement: text, or a photo or document with an optional caption."""
        await self._check_staff(actor_id)
        text = (text or "").strip() or None
        if photo is None and document is None and text is None:
            raise InvalidAnswer("content", "empty")
        limit = TEXT_LIMIT if photo is None and document is None else CAPTION_LIMIT
        if text is not None and len(text) > limit:
            raise InvalidAnswer("content", "too_long", limit=limit)
        async with self._uow() as uow:
            found = await self._flow(uow, actor_id)
            if (
                found is None
                or found[1] not in ("content", "audience", "confirm")
                or found[0].chat_id != chat_id
            ):
                raise StaleStep("content")
            broadcast = found[0]
            broadcast.text, broadcast.photo, broadcast.document = text, photo, document
            await self._set_step(uow, actor_id, broadcast.id, "audience")
            await uow.commit()
            return Draft(broadcast.id, "audience")

    async def audience_options(self) -> AudienceOptions:
        """Sessions (by exam date) and levels (by rank) an audience can be chosen from."""
        async with self._uow() as uow:
            sessions = await uow.catalog.list_open_session_codes()
            levels = await uow.catalog.list_active_level_codes()
            return AudienceOptions(tuple(sessions), tuple(levels))

    async def choose_audience(
        self, actor_id: int, broadcast_id: int, kind: str, value: str | None
    ) -> Preview:
        """Set the audience of a draft and count it exactly."""
        await self._check_staff(actor_id)
        async with self._uow() as uow:
            broadcast = await self._draft(uow, broadcast_id)
            if broadcast.text is None and broadcast.photo is None and broadcast.document is None:
                raise StaleStep("audience")
            await self._check_audience(uow, kind, value)
            broadcast.audience = {"kind": kind, "value": value if kind != "all" else None}
            broadcast.scheduled_at = None
            preview = await self._preview(uow, broadcast)
            await self._set_step(
                uow, broadcast.created_by, broadcast.id, "confirm", only_if_on=True
            )
            await uow.commit()
            return preview

    async def ask_schedule(self, actor_id: int, broadcast_id: int) -> Draft:
        """The actor will type the time (site time zone) in the chat the draft belongs to."""
        await self._check_staff(actor_id)
        async with self._uow() as uow:
            broadcast = await self._draft(uow, broadcast_id)
            if not broadcast.audience:
                raise StaleStep("schedule")
            await self._set_step(uow, actor_id, broadcast.id, "schedule")
            await uow.commit()
            return Draft(broadcast.id, "schedule")

    async def set_schedule(self, actor_id: int, chat_id: int, when: str | None) -> Preview:
        """Parse `YYYY-MM-DD HH:MM` in the site time zone; it must lie ahead (at most a year)."""
        await self._check_staff(actor_id)
        now = self._clock()
        try:
            at = datetime.strptime((when or "").strip(), SCHEDULE_FORMAT).replace(
                tzinfo=self._zone
            )
        except ValueError:
            raise InvalidAnswer("schedule", "datetime_format") from None
        if at <= now:
            raise InvalidAnswer("schedule", "datetime_past")
        if at > now + MAX_SCHEDULE_AHEAD:
            raise InvalidAnswer("schedule", "date_too_far")
        async with self._uow() as uow:
            found = await self._flow(uow, actor_id)
            if found is None or found[1] != "schedule" or found[0].chat_id != chat_id:
                raise StaleStep("schedule")
            broadcast = found[0]
            broadcast.scheduled_at = at
            preview = await self._preview(uow, broadcast)
            await self._set_step(uow, actor_id, broadcast.id, "confirm")
            await uow.commit()
            return preview

    # -- confirming and controlling -----------------------------------------------------

    async def confirm(
        self,
        actor_id: int,
        broadcast_id: int,
        progress_chat_id: int,
        progress_message_id: int,
        *,
        scheduled: bool,
    ) -> Progress:
        """Queue one outbox row per recipient, now or for the scheduled
        time; the first press wins."""
        await self._check_staff(actor_id)
        now = self._clock()
        async with self._uow() as uow:
            broadcast = await self._get(uow, broadcast_id)
            if broadcast.status != BroadcastStatus.DRAFT:
                raise InvalidState(broadcast.status)
            if not broadcast.audience:
                raise StaleStep("confirm")
            if scheduled and broadcast.scheduled_at is None:
                raise InvalidAnswer("schedule", "datetime_format")
            if scheduled and broadcast.scheduled_at <= now:
                raise InvalidAnswer("schedule", "datetime_past")
            audience = await uow.broadcasts.list_audience(
                broadcast.audience["kind"], broadcast.audience.get("value")
            )
            reachable = [(cid, chat) for cid, chat, gone in audience if not gone]
            if not reachable:
                raise InvalidAnswer("audience", "no_recipients")
            status = BroadcastStatus.SCHEDULED if scheduled else BroadcastStatus.SENDING
            start_at = broadcast.scheduled_at if scheduled else now
            won = await uow.broadcasts.transition(
                broadcast.id,
                [BroadcastStatus.DRAFT],
                status=status,
                confirmed_by=actor_id,
                confirmed_at=now,
                started_at=start_at,
                scheduled_at=broadcast.scheduled_at if scheduled else None,
                progress_chat_id=progress_chat_id,
                progress_message_id=progress_message_id,
                recipients=len(reachable),
                skipped=len(audience) - len(reachable),
            )
            if not won:  # another staff member confirmed or cancelled it a moment ago
                await uow.broadcasts.refresh(broadcast)
                raise InvalidState(broadcast.status)
            payload = {
                key: value
                for key, value in (
                    ("text", broadcast.text),
                    ("photo", broadcast.photo),
                    ("document", broadcast.document),
                )
                if value is not None
            }
            if broadcast.paid:
                payload["paid"] = True
            check_payload(payload)
            rows = [
                {
                    "idempotency_key": f"broadcast:{broadcast.id}:{cid}",
                    "chat_id": chat,
                    "candidate_id": cid,
                    "kind": "broadcast",
                    "payload": payload,
                    "broadcast_id": broadcast.id,
                    "not_before": start_at,
                    "status": OutboxStatus.PENDING if not gone else OutboxStatus.UNREACHABLE,
                    "last_error": None if not gone else UNREACHABLE_BEFORE,
                    "created_at": now,
                }
                for cid, chat, gone in audience
            ]
            await uow.outbox.add_many(rows)
            uow.queued = True  # wake the sender (a scheduled broadcast: so it notes the time)
            await uow.broadcasts.refresh(broadcast)
            await self._leave(uow, broadcast, actor_id)
            self._audit(
                uow,
                actor_id,
                broadcast,
                "confirmed",
                BroadcastStatus.DRAFT,
                status,
                details={
                    "recipients": broadcast.recipients,
                    "skipped": broadcast.skipped,
                    "audience": broadcast.audience,
                    "scheduled_at": start_at.isoformat() if scheduled else None,
                },
            )
            view = await self._progress(uow, broadcast, now)
            await uow.broadcasts.set_fingerprint(broadcast.id, view.fingerprint)
            await uow.commit()
            return view

    async def pause(self, actor_id: int, broadcast_id: int) -> Progress:
        """Hold the pending rows (the sender finishes what it already holds)."""
        return await self._move(
            actor_id,
            broadcast_id,
            "paused",
            (BroadcastStatus.SENDING, BroadcastStatus.SCHEDULED),
            lambda b, now: BroadcastStatus.PAUSED,
        )

    async def resume(self, actor_id: int, broadcast_id: int) -> Progress:
        """Send the held rows again (or wait for the scheduled time if it is still ahead)."""

        def target(b: Broadcast, now: datetime) -> str:
            return (
                BroadcastStatus.SCHEDULED
                if b.scheduled_at and b.scheduled_at > now
                else BroadcastStatus.SENDING
            )

        return await self._move(
            actor_id, broadcast_id, "resumed", (BroadcastStatus.PAUSED,), target
        )

    async def cancel(self, actor_id: int, broadcast_id: int) -> Progress:
        """Stop for good: pending rows become cancelled; a draft is simply dropped."""
        return await self._move(
            actor_id,
            broadcast_id,
            "cancelled",
            (BroadcastStatus.DRAFT, *BROADCAST_OPEN),
            lambda b, now: BroadcastStatus.CANCELLED,
        )

    async def drop(self, actor_id: int, broadcast_id: int) -> Progress:
        """Cancel a draft only (the Cancel button of the compose steps: never a confirmed one)."""
        return await self._move(
            actor_id,
            broadcast_id,
            "cancelled",
            (BroadcastStatus.DRAFT,),
            lambda b, now: BroadcastStatus.CANCELLED,
        )

    async def _move(
        self,
        actor_id: int,
        broadcast_id: int,
        action: str,
        from_states: Sequence[str],
        target: Callable[[Broadcast, datetime], str],
    ) -> Progress:
        await self._check_staff(actor_id)
        now = self._clock()
        async with self._uow() as uow:
            broadcast = await self._get(uow, broadcast_id)
            old = broadcast.status
            new = target(broadcast, now)
            values: dict[str, object] = {"status": new}
            if new == BroadcastStatus.CANCELLED and old == BroadcastStatus.DRAFT:
                values["finished_at"] = now  # nothing was queued: nothing to report
            if old not in from_states or not await uow.broadcasts.transition(
                broadcast.id, [old], **values
            ):
                await uow.broadcasts.refresh(broadcast)
                raise InvalidState(broadcast.status)
            if new == BroadcastStatus.CANCELLED:
                await uow.outbox.cancel_unleased(broadcast.id, now, "broadcast cancelled")
                await self._leave(uow, broadcast, actor_id)
            await uow.broadcasts.refresh(broadcast)
            self._audit(uow, actor_id, broadcast, action, old, new)
            view = await self._progress(uow, broadcast, now)
            await uow.broadcasts.set_fingerprint(broadcast.id, view.fingerprint)
            await uow.commit()
            return view

    async def progress(self, broadcast_id: int) -> Progress:
        async with self._uow() as uow:
            return await self._progress(uow, await self._get(uow, broadcast_id), self._clock())

    async def tick(self) -> list[Progress]:
        """Start due scheduled broadcasts, finish empty ones once, return
        changed progress views."""
        now = self._clock()
        changed = []
        async with self._uow() as uow:
            for broadcast in await uow.broadcasts.list_ticking():
                if broadcast.status == BroadcastStatus.SCHEDULED and broadcast.scheduled_at <= now:
                    await uow.broadcasts.transition(
                        broadcast.id, [BroadcastStatus.SCHEDULED], status=BroadcastStatus.SENDING
                    )
                if broadcast.status == BroadcastStatus.CANCELLED:
                    # Rows a sender held at the cancel and then gave back: cancel them now.
                    await uow.outbox.cancel_unleased(broadcast.id, now, "broadcast cancelled")
                await uow.broadcasts.refresh(broadcast)
                view = await self._progress(uow, broadcast, now)
                if view.remaining == 0 and broadcast.status != BroadcastStatus.SCHEDULED:
                    final = (
                        BroadcastStatus.CANCELLED
                        if broadcast.status == BroadcastStatus.CANCELLED
                        else BroadcastStatus.DONE
                    )
                    # Conditional: of two instances ticking at once, one finishes and reports.
                    if await uow.broadcasts.transition(
                        broadcast.id, [broadcast.status], status=final, finished_at=now
                    ):
                        await uow.broadcasts.refresh(broadcast)
                        view = await self._progress(uow, broadcast, now, finished_now=True)
                        await self._queue_report(uow, broadcast, view)
                if await uow.broadcasts.set_fingerprint(broadcast.id, view.fingerprint):
                    changed.append(view)
            await uow.commit()
        return changed

    async def not_reached(self, actor_id: int, broadcast_id: int) -> list[NotReached]:
        """Every recipient the broadcast did not reach (unreachable, failed, cancelled)."""
        await self._check_staff(actor_id)
        async with self._uow() as uow:
            await self._get(uow, broadcast_id)
            return [
                NotReached(*row) for row in await uow.broadcasts.list_not_reached(broadcast_id)
            ]

    # -- helpers ------------------------------------------------------------------------

    async def _check_staff(self, actor_id: int) -> None:
        """Broadcasts are the admin role's (issue 14); the handlers check it first."""
        try:
            await self._staff.require(actor_id, Role.ADMIN)
        except NotAllowed:
            raise NotStaff(actor_id) from None

    @staticmethod
    async def _get(uow: UnitOfWork, broadcast_id: int) -> Broadcast:
        broadcast = await uow.broadcasts.get(broadcast_id)
        if broadcast is None:
            raise NotFound("broadcast")
        return broadcast

    async def _draft(self, uow: UnitOfWork, broadcast_id: int) -> Broadcast:
        broadcast = await self._get(uow, broadcast_id)
        if broadcast.status != BroadcastStatus.DRAFT:
            raise InvalidState(broadcast.status)
        return broadcast

    @staticmethod
    async def _check_audience(uow: UnitOfWork, kind: str, value: str | None) -> None:
        if kind == "all":
            return
        if kind == "session" and value and await uow.exam_sessions.get_by_code(value) is not None:
            return
        if (
            kind == "level"
            and value
            and value in {lv.code for lv in await uow.catalog.list_levels()}
        ):
            return
        if kind == "state" and value in STATE_GROUPS:
            return
        raise InvalidAnswer("audience", "not_an_option")

    async def _preview(self, uow: UnitOfWork, broadcast: Broadcast) -> Preview:
        kind, value = broadcast.audience["kind"], broadcast.audience.get("value")
        reachable, unreachable = await uow.broadcasts.count_audience(kind, value)
        return Preview(
            broadcast.id,
            broadcast.text,
            broadcast.photo,
            broadcast.document,
            kind,
            value,
            reachable,
            unreachable,
            broadcast.paid,
            broadcast.scheduled_at,
        )

    async def _progress(
        self, uow: UnitOfWork, b: Broadcast, now: datetime, *, finished_now: bool = False
    ) -> Progress:
        counts = await uow.outbox.count_by_status(b.id)
        remaining = counts.get(OutboxStatus.PENDING, 0)
        settled = sum(counts.get(s, 0) for s in OUTBOX_ATTEMPTED)
        settled -= b.skipped  # known unreachable rows were never sent: no part of the rate
        eta = None
        if (
            b.status == BroadcastStatus.SENDING
            and remaining
            and settled > 0
            and b.started_at is not None
        ):
            elapsed = (now - b.started_at).total_seconds()
            if elapsed > 0:
                eta = _eta_bucket(remaining / (settled / elapsed))
        audience = b.audience or {}
        return Progress(
            id=b.id,
            status=b.status,
            language=b.language,
            chat_id=b.progress_chat_id,
            message_id=b.progress_message_id,
            audience_kind=audience.get("kind", ""),
            audience_value=audience.get("value"),
            recipients=b.recipients,
            skipped=b.skipped,
            sent=counts.get(OutboxStatus.SENT, 0),
            failed=counts.get(OutboxStatus.FAILED, 0),
            unreachable=counts.get(OutboxStatus.UNREACHABLE, 0),
            cancelled=counts.get(OutboxStatus.CANCELLED, 0),
            remaining=remaining,
            eta_seconds=eta,
            scheduled_at=b.scheduled_at,
            finished_now=finished_now,
        )

    async def _queue_report(self, uow: UnitOfWork, b: Broadcast, view: Progress) -> None:
        missed = await uow.broadcasts.list_not_reached(b.id)
        params = {
            "broadcast_id": b.id,
            "status": b.status,
            "recipients": b.recipients,
            "skipped": b.skipped,
            "sent": view.sent,
            "failed": view.failed,
            "unreachable": view.unreachable,
            "cancelled": view.cancelled,
            "not_reached_total": len(missed),
            "not_reached": [
                [name, tid, status] for name, tid, status, _ in missed[:REPORT_LIST_LIMIT]
            ],
        }
        await notify_staff(
            uow,
            b.chat_id,
            self._clock(),
            key=f"broadcast_report:{b.id}",
            template=Template.BROADCAST_REPORT,
            params=params,
        )

    async def _flow(self, uow: UnitOfWork, actor_id: int) -> tuple[Broadcast, str] | None:
        """The draft the actor's flow state points at, and the step; None when not composing."""
        candidate = await uow.candidates.get_by_telegram_id(actor_id)
        state = await uow.flows.get(candidate.id) if candidate is not None else None
        if state is None or state.flow != FLOW:
            return None
        broadcast = await uow.broadcasts.get(int(state.answers_of(FLOW).get("id", 0)))
        if broadcast is None or broadcast.status != BroadcastStatus.DRAFT:
            return None
        return broadcast, state.step or "content"

    @staticmethod
    async def _set_step(
        uow: UnitOfWork,
        telegram_id: int,
        broadcast_id: int,
        step: str,
        *,
        only_if_on: bool = False,
    ) -> None:
        candidate = await uow.candidates.get_by_telegram_id(telegram_id)
        if candidate is None:
            raise NotFound("candidate")
        state = await uow.flows.get_or_add(candidate.id)
        if only_if_on and (state.flow != FLOW or state.answers_of(FLOW).get("id") != broadcast_id):
            return
        state.enter(FLOW, step, answers={"id": broadcast_id})

    @staticmethod
    async def _leave(uow: UnitOfWork, broadcast: Broadcast, actor_id: int) -> None:
        """The composer (and the actor) leave the flow when their draft is confirmed or dropped."""
        for telegram_id in {broadcast.created_by, actor_id}:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            state = await uow.flows.get(candidate.id) if candidate is not None else None
            if state is None or state.flow != FLOW:
                continue
            if state.answers_of(FLOW).get("id") == broadcast.id:
                state.leave()

    def _audit(
        self,
        uow: UnitOfWork,
        actor_id: int,
        b: Broadcast,
        action: str,
        old: str | None,
        new: str | None,
        details: dict[str, object] | None = None,
    ) -> None:
        audit(
            uow,
            f"tg:{actor_id}",
            "broadcast",
            b.id,
            action,
            self._clock(),
            from_state=old,
            to_state=new,
            details=details,
        )
