"""The day's figures (issue 14 point 8; docs/staff.md "Figures"): how each session ahead
stands, for staff's `/stats` and the daily digest to the staff chat.

Entry points (`StatsService`):

* `figures()`: per session ahead (exam day today or later, not cancelled, the next
  `MAX_SESSIONS`): seats taken and left, waitlist, unpaid and whether their payment
  deadline falls within 48 h, receipts waiting, refunds open, check-in progress (present
  of PAID), money received by method and currency; across everything: receipts waiting
  and refunds open (money that matched no registration included); and registrations and
  payments per day over the last 30 days (site time zone) for the chart.
* `digest_due()`: the digest to post now, or None: the catalogue's `staff_digest.time`
  has passed today (site zone), it is enabled, there is a staff chat, and today's
  outbox key `digest:<date>` does not exist yet.
* `queue_digest(digest, chart_png)`: the text (template `STAFF_DIGEST`, key
  `digest:<date>`) and the chart (`STAFF_DIGEST_CHART`, key `digest:<date>:chart`) in
  one transaction, once per day across restarts and instances: a tick that runs twice,
  or on two instances, finds the key and queues nothing.

`Figures.to_params()` / `Figures.from_params()` carry the figures through the outbox as
JSON, so the text is rendered at send time in the staff chat's language. The chart is
drawn by the Telegram edge (`handlers/charts.py`) and travels as base64 PNG.
"""

from __future__ import annotations

import base64
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.lifecycle import (
    PAYABLE,
    PAYMENT_ACCEPTED,
    PaymentStatus,
    RefundStatus,
    RegistrationState,
)
from bot.services.catalog import CatalogService
from bot.services.errors import CatalogMissing
from bot.services.notify import Template, notify_staff
from storage.models import ExamSession
from storage.repositories.stats import PaymentGroup
from storage.uow import UowFactory

DAYS = 30  # days of registrations and payments on the chart, today included
SOON = timedelta(hours=48)  # an unpaid registration whose deadline is this close is flagged
MAX_SESSIONS = 6  # sessions ahead shown (the text must fit one Telegram message)


@dataclass(frozen=True, slots=True)
class Money:
    """Money received one way in one currency: `amount_minor` in fen/cents (Stars: Stars)."""

    method: str
    currency: str
    amount_minor: int
    count: int


@dataclass(frozen=True, slots=True)
class SessionFigures:
    code: str
    exam_date: date
    timezone: str
    capacity: int
    seats_taken: int
    waitlisted: int
    unpaid: int  # seat taken, money owed (submitted or awaiting payment)
    payment_deadline: datetime  # when unpaid registrations expire
    unpaid_due_soon: int  # of `unpaid`, those whose deadline is within 48 h from now
    receipts_waiting: int
    refunds_open: int
    checked_in: int
    expected: int  # PAID registrations: who may come through the door
    received: tuple[Money, ...]

    @property
    def seats_left(self) -> int:
        return max(0, self.capacity - self.seats_taken)


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date  # in the site's time zone
    registrations: int
    payments: int  # money received (settled) that day


@dataclass(frozen=True, slots=True)
class Figures:
    at: datetime
    timezone: str  # the site's
    sessions: tuple[SessionFigures, ...]
    more_sessions: bool  # more sessions ahead than shown
    days: tuple[DayCount, ...]  # the last DAYS days, oldest first, today last
    receipts_waiting: int  # everywhere
    refunds_open: int  # everywhere, money that matched no registration included

    def to_params(self) -> dict[str, Any]:
        """JSON-ready (outbox params)."""
        return {
            "at": self.at.isoformat(),
            "timezone": self.timezone,
            "sessions": [_session_params(s) for s in self.sessions],
            "more_sessions": self.more_sessions,
            "days": [[d.day.isoformat(), d.registrations, d.payments] for d in self.days],
            "receipts_waiting": self.receipts_waiting,
            "refunds_open": self.refunds_open,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Figures:
        return cls(
            at=datetime.fromisoformat(params["at"]),
            timezone=params["timezone"],
            sessions=tuple(_session_from(s) for s in params["sessions"]),
            more_sessions=params["more_sessions"],
            days=tuple(DayCount(date.fromisoformat(d), r, p) for d, r, p in params["days"]),
            receipts_waiting=params["receipts_waiting"],
            refunds_open=params["refunds_open"],
        )


@dataclass(frozen=True, slots=True)
class Digest:
    day: date  # the site's date it is for
    figures: Figures

    @property
    def key(self) -> str:
        return f"digest:{self.day.isoformat()}"


class StatsService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        *,
        site_zone: str = "Asia/Shanghai",
        staff_chat_id: int | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._site_zone = site_zone
        self._staff_chat_id = staff_chat_id

    async def figures(self) -> Figures:
        """How every session ahead stands now (see the module doc)."""
        zone = await self._zone()
        now = self._clock()
        today = now.astimezone(ZoneInfo(zone)).date()
        first_day = today - timedelta(days=DAYS - 1)
        since = datetime.combine(first_day, datetime.min.time(), tzinfo=ZoneInfo(zone))
        async with self._uow() as uow:
            sessions = await uow.stats.sessions_from(today, MAX_SESSIONS + 1)
            ids = [s.id for s in sessions[:MAX_SESSIONS]]
            states = await uow.stats.registration_counts(ids)
            payments = await uow.stats.payment_groups()
            present = await uow.stats.checked_in(ids)
            registered_at = await uow.stats.registration_times(since)
            paid_at = await uow.stats.payment_times(since, PAYMENT_ACCEPTED)
            by_session: dict[int | None, list[PaymentGroup]] = defaultdict(list)
            for group in payments:
                by_session[group.session_id].append(group)
            shown = tuple(
                _session_figures(s, states, by_session[s.id], present.get(s.id, 0), now)
                for s in sessions[:MAX_SESSIONS]
            )
        return Figures(
            at=now,
            timezone=zone,
            sessions=shown,
            more_sessions=len(sessions) > MAX_SESSIONS,
            days=_per_day(first_day, today, zone, registered_at, paid_at),
            receipts_waiting=sum(g.count for g in payments if _receipt_waiting(g)),
            refunds_open=sum(g.count for g in payments if _refund_open(g)),
        )

    async def digest_due(self) -> Digest | None:
        """Today's digest when its time has come and it was not queued yet; else None."""
        if self._staff_chat_id is None:
            return None
        try:
            catalog = await self._catalog.current()
        except CatalogMissing:
            return None
        setting = catalog.staff_digest
        local = self._clock().astimezone(ZoneInfo(catalog.site.time_zone))
        if not setting.enabled or local.time() < setting.time:
            return None
        day = local.date()
        async with self._uow() as uow:
            if await uow.outbox.has_key(f"digest:{day.isoformat()}"):
                return None
        return Digest(day, await self.figures())

    async def queue_digest(self, digest: Digest, chart_png: bytes | None) -> bool:
        """Queue the digest's text and chart for the staff chat; False when it was queued
        before (another tick, another instance) or there is no staff chat."""
        now = self._clock()
        async with self._uow() as uow:
            queued = await notify_staff(
                uow,
                self._staff_chat_id,
                now,
                key=digest.key,
                template=Template.STAFF_DIGEST,
                params={"figures": digest.figures.to_params()},
            )
            if not queued:
                return False
            if chart_png is not None:
                await notify_staff(
                    uow,
                    self._staff_chat_id,
                    now,
                    key=f"{digest.key}:chart",
                    template=Template.STAFF_DIGEST_CHART,
                    params={
                        "day": digest.day.isoformat(),
                        "png": base64.b64encode(chart_png).decode("ascii"),
                    },
                )
            await uow.commit()
        return True

    async def _zone(self) -> str:
        """The site's zone: the catalogue's, else the settings'."""
        try:
            return (await self._catalog.current()).site.time_zone
        except CatalogMissing:
            return self._site_zone


def chart_png(params: dict[str, Any]) -> bytes:
    """The chart a `STAFF_DIGEST_CHART` row carries."""
    return base64.b64decode(params["png"])


# --- counting -----------------------------------------------------------------------------

_R = RegistrationState


def _receipt_waiting(group: PaymentGroup) -> bool:
    return group.status == PaymentStatus.PENDING_REVIEW


def _refund_open(group: PaymentGroup) -> bool:
    # A payment flagged before refunds had states has `needs_refund` and no status: due.
    if group.refund_status is not None:
        return group.refund_status == RefundStatus.DUE
    return group.needs_refund


def _received(group: PaymentGroup) -> bool:
    """Money accepted for its registration and not given back."""
    return group.status in PAYMENT_ACCEPTED and group.refund_status != RefundStatus.REFUNDED


def _session_figures(
    session: ExamSession,
    states: dict[tuple[int, str], int],
    payments: list[PaymentGroup],
    present: int,
    now: datetime,
) -> SessionFigures:
    def count(*wanted: RegistrationState) -> int:
        return sum(states.get((session.id, state.value), 0) for state in wanted)

    deadline = session.payment_deadline_at or session.payment_due_at
    unpaid = count(*PAYABLE)
    money: Counter[tuple[str, str]] = Counter()
    counts: Counter[tuple[str, str]] = Counter()
    for group in payments:
        if _received(group):
            money[group.method, group.currency] += group.amount_minor
            counts[group.method, group.currency] += group.count
    return SessionFigures(
        code=session.code,
        exam_date=session.exam_date,
        timezone=session.timezone,
        capacity=session.capacity,
        seats_taken=session.seats_taken,
        waitlisted=count(_R.WAITLISTED),
        unpaid=unpaid,
        payment_deadline=deadline,
        unpaid_due_soon=unpaid if now <= deadline <= now + SOON else 0,
        receipts_waiting=sum(g.count for g in payments if _receipt_waiting(g)),
        refunds_open=sum(g.count for g in payments if _refund_open(g)),
        checked_in=present,
        expected=count(_R.PAID),
        received=tuple(
            Money(method, currency, money[method, currency], counts[method, currency])
            for method, currency in sorted(money)
        ),
    )


def _per_day(
    first: date,
    today: date,
    zone: str,
    registered_at: list[datetime],
    paid_at: list[datetime],
) -> tuple[DayCount, ...]:
    tz = ZoneInfo(zone)
    registrations = Counter(moment.astimezone(tz).date() for moment in registered_at)
    payments = Counter(moment.astimezone(tz).date() for moment in paid_at)
    days = (first + timedelta(days=n) for n in range((today - first).days + 1))
    return tuple(DayCount(day, registrations[day], payments[day]) for day in days)


# --- outbox params ------------------------------------------------------------------------


def _session_params(s: SessionFigures) -> dict[str, Any]:
    return {
        "code": s.code,
        "exam_date": s.exam_date.isoformat(),
        "timezone": s.timezone,
        "capacity": s.capacity,
        "seats_taken": s.seats_taken,
        "waitlisted": s.waitlisted,
        "unpaid": s.unpaid,
        "payment_deadline": s.payment_deadline.isoformat(),
        "unpaid_due_soon": s.unpaid_due_soon,
        "receipts_waiting": s.receipts_waiting,
        "refunds_open": s.refunds_open,
        "checked_in": s.checked_in,
        "expected": s.expected,
        "received": [[m.method, m.currency, m.amount_minor, m.count] for m in s.received],
    }


def _session_from(p: dict[str, Any]) -> SessionFigures:
    return SessionFigures(
        code=p["code"],
        exam_date=date.fromisoformat(p["exam_date"]),
        timezone=p["timezone"],
        capacity=p["capacity"],
        seats_taken=p["seats_taken"],
        waitlisted=p["waitlisted"],
        unpaid=p["unpaid"],
        payment_deadline=datetime.fromisoformat(p["payment_deadline"]),
        unpaid_due_soon=p["unpaid_due_soon"],
        receipts_waiting=p["receipts_waiting"],
        refunds_open=p["refunds_open"],
        checked_in=p["checked_in"],
        expected=p["expected"],
        received=tuple(Money(*m) for m in p["received"]),
    )
