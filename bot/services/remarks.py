"""Re-marking (复核) flow (docs/remarks.md): a candidate asks for one component of a released
sitting to be re-checked; staff decide, and the score may change.

Entry points (`RemarkService`), the candidate's side:

* `options(telegram_id)`: the components that can be re-marked now (for `/remark` and
  the buttons under `/results`), those already asked for, and re-mark windows that closed;
* `begin(telegram_id, result_id)`: checks the component result, then waits for the typed
  reason (flow `remark`, step `reason`);
* `set_reason(telegram_id, text)`: stores the reason, moves to step `confirm`;
* `current(telegram_id)`: the request being written (to show its step again);
* `submit(telegram_id, result_id, staff_chat_id)`: writes the request (`awaiting_fee`
  when the catalogue has a re-mark fee, else `open`), audits it and queues the staff card.

The staff's side:

* `open_requests()`: requests awaiting the fee or a decision, oldest first (`/remarks`);
* `confirm_fee(request_id, staff_id)`: the fee arrived: `awaiting_fee` → `open` (the
  candidate is told);
* `ask_score(request_id, staff_id, chat_id, message_id)`: the staff member's next typed
  message is the new score (flow `remark_score`, for `SCORE_WINDOW`);
* `decide_typed(staff_id, text)`: that typed score (None when no score is owed);
* `decide(request_id, staff_id, new_score)`: `None` keeps the score (`unchanged`).
* `stop_score(staff_id)`: forget a score prompt.

Rules (DOMAIN.md): one request per component per sitting, within
`timeline.recheck_window_days` of the release (the deadline is `results_release`'s own
`recheck_until`, the one the release message shows); absent (缺考) has no marking to
re-check and disqualified (违纪) cannot be re-marked. The first decision wins (conditional
UPDATE on the status). A decision that changes the score rewrites the component result
(`version + 1`, `updated_by`) in the same transaction, audited with the reason
`remark:<id>`, and tells the candidate, with the level's standing before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.domain.catalog import BankAccount, Catalog
from bot.domain.scoring import (
    InvalidScore,
    LevelStanding,
    Mark,
    RemarkStatus,
    ScoringRules,
    SittingResult,
    from_tenths,
    parse_score,
    to_tenths,
)
from bot.services.answers import parse_text
from bot.services.candidates import candidate_and_flow
from bot.services.catalog import CatalogService
from bot.services.errors import (
    AlreadyDecided,
    InvalidAnswer,
    InvalidState,
    NotFound,
    ServiceError,
    StaleStep,
)
from bot.services.notify import Template, audit, notify_candidate, notify_staff

# One deadline for the whole flow: the release message shows this very one.
from bot.services.results_release import recheck_until
from storage.models import Candidate, ComponentResult, ExamSession, Registration, RemarkRequest
from storage.uow import UnitOfWork, UowFactory

FLOW = "remark"  # the candidate writing a request
REASON_STEP = "reason"
CONFIRM_STEP = "confirm"
SCORE_FLOW = "remark_score"  # a staff member about to type a new score
SCORE_STEP = "score"
#: How long a "new score" press waits for the typed score: after that, text in the staff
#: chat is ordinary chat again.
SCORE_WINDOW = timedelta(minutes=15)
MAX_REASON = 500
ENTITY = "remark_request"  # the audit log's entity
PENDING = (RemarkStatus.AWAITING_FEE, RemarkStatus.OPEN)


class NotRemarkable(ServiceError):
    """The component has no score to re-check: `mark` is absent (缺考) or disqualified
    (违纪)."""

    def __init__(self, mark: str) -> None:
        super().__init__(mark)
        self.mark = mark


class RemarkWindowClosed(ServiceError):
    """The re-mark window closed at `closed_at` (aware), in the session's `timezone`."""

    def __init__(self, closed_at: datetime, timezone: str) -> None:
        super().__init__(closed_at)
        self.closed_at = closed_at
        self.timezone = timezone


class AlreadyRequested(ServiceError):
    """This component was asked for on `requested_at`; the request is `status`."""

    def __init__(self, requested_at: datetime, status: str, timezone: str) -> None:
        super().__init__(requested_at, status)
        self.requested_at = requested_at
        self.status = status
        self.timezone = timezone


@dataclass(frozen=True, slots=True)
class RemarkTarget:
    """One released component result of the candidate's."""

    result_id: int
    session_code: str
    level_code: str
    component: str
    names: dict[str, str]  # the component's names by language
    score: str | None  # "72.5"; None for a mark
    mark: str
    deadline: datetime  # when the re-mark window closes
    timezone: str  # the session's


@dataclass(frozen=True, slots=True)
class Fee:
    amount_minor: int
    currency: str
    confirmed: bool  # the catalogue's amount is final


@dataclass(frozen=True, slots=True)
class RemarkDraft:
    target: RemarkTarget
    reason: str | None  # None while the reason is awaited
    fee: Fee | None  # None: free


@dataclass(frozen=True, slots=True)
class RemarkSubmitted:
    request_id: int
    target: RemarkTarget
    status: str  # awaiting_fee or open
    fee: Fee | None
    reference: str  # the registration's: what the transfer remark carries
    bank: BankAccount | None  # when the catalogue takes bank transfers


@dataclass(frozen=True, slots=True)
class AskedRemark:
    target: RemarkTarget
    requested_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class RemarkOptions:
    open: tuple[RemarkTarget, ...]  # can be asked for now
    asked: tuple[AskedRemark, ...]
    closed: tuple[RemarkTarget, ...]  # scored, not asked, window closed; latest first


@dataclass(frozen=True, slots=True)
class PendingRemark:
    """A request in `/remarks`."""

    request_id: int
    requested_at: datetime
    status: str
    reference: str
    name: str
    session_code: str
    level_code: str
    component: str
    names: dict[str, str]
    timezone: str


@dataclass(frozen=True, slots=True)
class ScorePrompt:
    request_id: int
    reference: str
    names: dict[str, str]
    score: str | None  # the current score
    max_score: int


@dataclass(frozen=True, slots=True)
class FeeConfirmed:
    request_id: int
    reference: str


@dataclass(frozen=True, slots=True)
class RemarkDecision:
    request_id: int
    status: str  # unchanged or changed
    reference: str
    names: dict[str, str]
    old: str | None
    new: str | None  # None when unchanged
    notified: bool  # False: the candidate has no private chat with the bot
    card: tuple[int, int] | None  # (chat id, message id) of the card, for a typed score


class RemarkService:
    def __init__(
        self, uow: UowFactory, clock: Callable[[], datetime], catalog: CatalogService
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog

    # --- the candidate ---------------------------------------------------------------------

    async def options(self, telegram_id: int) -> RemarkOptions:
        """What the candidate can ask for now, and what they asked for before."""
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            if candidate is None:
                return RemarkOptions((), (), ())
            rows = [r for r in await uow.results.for_candidate(candidate.id) if r[0].released_at]
            order = [c.code for c in catalog.components]
            rows.sort(key=lambda r: (r[2].exam_date, _index(order, r[0].component)))
            asked = {
                (q.registration_id, q.component): q
                for q in await uow.remarks.list_for_registrations(r[1].id for r in rows)
            }
            can, done, closed = [], [], []
            for result, registration, session in rows:
                target = _target(catalog, result, registration, session)
                request = asked.get((registration.id, result.component))
                if request is not None:
                    done.append(AskedRemark(target, request.created_at, request.status))
                elif result.mark != Mark.SCORED:
                    continue
                elif now > target.deadline:
                    closed.append(target)
                else:
                    can.append(target)
        closed.sort(key=lambda t: t.deadline, reverse=True)
        return RemarkOptions(tuple(can), tuple(done), tuple(closed))

    async def begin(self, telegram_id: int, result_id: int) -> RemarkDraft:
        """Wait for the reason of a request for this component result. Raises NotFound (not
        the candidate's, not released), AlreadyRequested, NotRemarkable, RemarkWindowClosed."""
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            target, _registration = await _check(uow, catalog, candidate, result_id, now)
            state.enter(FLOW, REASON_STEP, answers={"result_id": result_id})
            await uow.commit()
        return RemarkDraft(target, None, _fee(catalog))

    async def set_reason(self, telegram_id: int, text: str | None) -> RemarkDraft:
        """The typed reason; raises InvalidAnswer ("reason": text_expected, too_long),
        StaleStep (not writing a request), and what `begin` raises."""
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            if state.flow != FLOW:
                raise StaleStep(REASON_STEP)
            reason = parse_text(REASON_STEP, text, max_length=MAX_REASON)
            result_id = int(state.answers_of(FLOW).get("result_id", 0))
            try:
                target, _registration = await _check(uow, catalog, candidate, result_id, now)
            except ServiceError:
                state.leave()  # nothing left to ask for: the next message is not a reason
                await uow.commit()
                raise
            state.advance(CONFIRM_STEP, answers={"result_id": result_id, "reason": reason})
            await uow.commit()
        return RemarkDraft(target, reason, _fee(catalog))

    async def current(self, telegram_id: int) -> RemarkDraft | None:
        """The request being written, or None (not in the flow, or its result is gone)."""
        catalog = await self._catalog.current()
        async with self._uow() as uow:
            candidate = await uow.candidates.get_by_telegram_id(telegram_id)
            state = None if candidate is None else await uow.flows.get(candidate.id)
            if state is None or state.flow != FLOW:
                return None
            answers = state.answers_of(FLOW)
            row = await uow.remarks.get_result(int(answers.get("result_id", 0)))
            if row is None or row[1].candidate_id != candidate.id:
                return None
            target = _target(catalog, *row)
            reason = answers.get("reason") if state.step == CONFIRM_STEP else None
        return RemarkDraft(target, reason, _fee(catalog))

    async def submit(
        self, telegram_id: int, result_id: int, staff_chat_id: int | None
    ) -> RemarkSubmitted:
        """Send the request written: raises StaleStep (not the request on screen), and what
        `begin` raises (checked again: the window may have closed since)."""
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            candidate, state = await candidate_and_flow(uow, telegram_id)
            answers = state.answers_of(FLOW)
            ready = state.flow == FLOW and state.step == CONFIRM_STEP
            if not ready or int(answers.get("result_id", 0)) != result_id:
                raise StaleStep(CONFIRM_STEP)
            fee = _fee(catalog)
            status = RemarkStatus.AWAITING_FEE if fee else RemarkStatus.OPEN
            state.leave()
            try:
                target, registration = await _check(uow, catalog, candidate, result_id, now)
                request = await uow.remarks.add_if_new(
                    registration_id=registration.id,
                    component=target.component,
                    reason=answers["reason"],
                    status=status,
                    fee_minor=fee.amount_minor if fee else None,
                    old_mark=target.mark,
                    old_score_tenths=_tenths(target.score),
                    created_at=now,
                )
                if request is None:  # another instance took the same press first
                    await _refuse_repeat(uow, registration.id, target)
                    raise StaleStep(CONFIRM_STEP)
            except ServiceError:
                await uow.commit()  # only the flow is left: nothing else was written
                raise
            actor = f"tg:{telegram_id}"
            audit(uow, actor, ENTITY, request.id, "requested", now, to_state=status)
            ticket = await uow.tickets.get_for_registration(registration.id)
            await notify_staff(
                uow,
                staff_chat_id,
                now,
                key=f"remark_request:{request.id}",
                template=Template.REMARK_REQUEST,
                params={
                    "request_id": request.id,
                    "status": status,
                    "reference": registration.reference,
                    "name": candidate.full_name or candidate.first_name,
                    "telegram_id": candidate.telegram_id,
                    "id_number": candidate.id_number_masked or "",
                    "ticket": ticket.ticket_number if ticket else "",
                    "session_code": target.session_code,
                    "level_code": target.level_code,
                    "component": target.component,
                    "component_names": target.names,
                    "score": target.score,
                    "reason": request.reason,
                    "fee_minor": request.fee_minor,
                    "currency": catalog.fees.currency,
                },
            )
            await uow.commit()
        bank = catalog.payment.bank_account if "bank_transfer" in catalog.payment.methods else None
        return RemarkSubmitted(request.id, target, status, fee, registration.reference, bank)

    # --- staff -----------------------------------------------------------------------------

    async def open_requests(self) -> list[PendingRemark]:
        catalog = await self._catalog.current()
        names = _component_names(catalog)
        async with self._uow() as uow:
            return [
                PendingRemark(
                    request_id=q.id,
                    requested_at=q.created_at,
                    status=q.status,
                    reference=registration.reference,
                    name=candidate.full_name or candidate.first_name,
                    session_code=session.code,
                    level_code=registration.level_code,
                    component=q.component,
                    names=names.get(q.component, {"en": q.component}),
                    timezone=session.timezone,
                )
                for q, registration, candidate, session in await uow.remarks.list_in(PENDING)
            ]

    async def confirm_fee(self, request_id: int, staff_id: int) -> FeeConfirmed:
        """The fee was received: the request waits for a decision now. Raises NotFound,
        AlreadyDecided (the fee was confirmed, or the request decided, before)."""
        catalog = await self._catalog.current()
        now, actor = self._clock(), f"tg:{staff_id}"
        async with self._uow() as uow:
            request, registration = await _request(uow, request_id)
            moved = await uow.remarks.move(
                request_id,
                RemarkStatus.AWAITING_FEE,
                status=RemarkStatus.OPEN,
                fee_confirmed_by=actor,
                fee_confirmed_at=now,
            )
            if not moved:
                raise await _decided(uow, request_id)
            audit(
                uow,
                actor,
                ENTITY,
                request_id,
                "fee_confirmed",
                now,
                from_state=RemarkStatus.AWAITING_FEE,
                to_state=RemarkStatus.OPEN,
            )
            session = await uow.exam_sessions.get(registration.session_id)
            await notify_candidate(
                uow,
                registration.candidate_id,
                now,
                key=f"remark_fee:{request_id}",
                template=Template.REMARK_FEE_CONFIRMED,
                params={
                    "request_id": request_id,
                    "session_code": session.code if session else "",
                    "level_code": registration.level_code,
                    "component": request.component,
                    "component_names": _component_names(catalog).get(
                        request.component, {"en": request.component}
                    ),
                },
            )
            await uow.commit()
            return FeeConfirmed(request_id, registration.reference)

    async def ask_score(
        self, request_id: int, staff_id: int, chat_id: int, message_id: int | None
    ) -> ScorePrompt:
        """The staff member's next typed message (in `chat_id`) is the new score. Raises
        NotFound, InvalidState ("awaiting_fee"), AlreadyDecided."""
        catalog = await self._catalog.current()
        rules = ScoringRules.from_catalog(catalog)
        async with self._uow() as uow:
            request, registration = await _request(uow, request_id)
            _check_open(request)
            _staff, state = await candidate_and_flow(uow, staff_id)
            state.enter(
                SCORE_FLOW,
                SCORE_STEP,
                answers={
                    "request_id": request_id,
                    "chat_id": chat_id,
                    "message_id": message_id,
                    "asked_at": self._clock().isoformat(),
                },
            )
            result = await uow.remarks.get_result_for(registration.id, request.component)
            await uow.commit()
        return ScorePrompt(
            request_id,
            registration.reference,
            _component_names(catalog).get(request.component, {"en": request.component}),
            _score(result),
            rules.max_scores.get(request.component, 100),
        )

    async def stop_score(self, staff_id: int) -> bool:
        """Forget the staff member's score prompt; False when there was none."""
        async with self._uow() as uow:
            _staff, state = await candidate_and_flow(uow, staff_id)
            if state.flow != SCORE_FLOW:
                return False
            state.leave()
            await uow.commit()
            return True

    async def decide_typed(
        self, staff_id: int, chat_id: int, text: str | None
    ) -> RemarkDecision | None:
        """The score a staff member typed after "new score" in `chat_id`; None when they owe
        none there (or the prompt is older than `SCORE_WINDOW`). Raises InvalidAnswer
        ("score": not_a_number, out_of_range, too_many_decimals; `max`) and keeps waiting,
        or AlreadyDecided / NotFound and stops waiting."""
        catalog = await self._catalog.current()
        rules = ScoringRules.from_catalog(catalog)
        now = self._clock()
        async with self._uow() as uow:
            _staff, state = await candidate_and_flow(uow, staff_id)
            answers = state.answers_of(SCORE_FLOW)
            if state.flow != SCORE_FLOW or answers.get("chat_id") != chat_id:
                return None
            if now - datetime.fromisoformat(answers["asked_at"]) > SCORE_WINDOW:
                state.leave()
                await uow.commit()
                return None
            request_id = int(answers["request_id"])
            request, _registration = await _request(uow, request_id)
            highest = rules.max_scores.get(request.component, 100)
            try:
                score = parse_score(text or "", highest)
            except InvalidScore as exc:
                raise InvalidAnswer(SCORE_STEP, exc.reason, max=highest) from None
            state.leave()
            try:
                decision = await self._decide(uow, catalog, request_id, staff_id, score, now)
            except ServiceError:
                await uow.commit()  # only the prompt is forgotten: nothing else was written
                raise
            await uow.commit()
        message_id = answers.get("message_id")
        card = None if message_id is None else (chat_id, int(message_id))
        return replace(decision, card=card)

    async def decide(
        self, request_id: int, staff_id: int, new_score: Decimal | None
    ) -> RemarkDecision:
        """Decide: `None` keeps the score. Raises NotFound, InvalidState ("awaiting_fee"),
        AlreadyDecided (someone decided first), InvalidAnswer ("score") for a score out of
        range."""
        catalog = await self._catalog.current()
        now = self._clock()
        async with self._uow() as uow:
            decision = await self._decide(uow, catalog, request_id, staff_id, new_score, now)
            await uow.commit()
            return decision

    async def _decide(
        self,
        uow: UnitOfWork,
        catalog: Catalog,
        request_id: int,
        staff_id: int,
        new_score: Decimal | None,
        now: datetime,
    ) -> RemarkDecision:
        rules = ScoringRules.from_catalog(catalog)
        actor = f"tg:{staff_id}"
        request, registration = await _request(uow, request_id)
        _check_open(request)
        result = await uow.remarks.get_result_for(registration.id, request.component)
        if result is None:
            raise NotFound("result")
        # Kept now: reading the standing again refreshes `result` from the database.
        old_mark, old_tenths, old = result.mark, result.score_tenths, _score(result)
        session = await uow.exam_sessions.get(result.session_id)
        assert session is not None
        old_sitting = _sitting(result, session.exam_date)
        highest = rules.max_scores.get(request.component, 100)
        if new_score is not None and not 0 <= new_score <= highest:
            raise InvalidAnswer(SCORE_STEP, "out_of_range", max=highest)
        new = None if new_score is None else to_tenths(new_score)
        changed = new is not None and (old_mark != Mark.SCORED or new != old_tenths)
        status = RemarkStatus.CHANGED if changed else RemarkStatus.UNCHANGED
        moved = await uow.remarks.move(
            request_id,
            RemarkStatus.OPEN,
            status=status,
            new_score_tenths=new if changed else None,
            decided_by=actor,
            decided_at=now,
        )
        if not moved:
            raise await _decided(uow, request_id)
        before = await _standing(uow, rules, registration, now.date())
        if changed:
            assert new is not None
            await uow.remarks.rescore(result.id, new, actor, now)
            audit(
                uow,
                actor,
                "component_result",
                f"{registration.id}:{result.component}",
                "remarked",
                now,
                reason=f"remark:{request_id}",
                details={
                    "from": {"mark": old_mark, "score_tenths": old_tenths},
                    "to": {"mark": Mark.SCORED.value, "score_tenths": new},
                },
            )
        after = await _standing(uow, rules, registration, now.date())
        audit(
            uow,
            actor,
            ENTITY,
            request_id,
            "decided",
            now,
            from_state=RemarkStatus.OPEN,
            to_state=status,
            details={"from": old_tenths, "to": new if changed else old_tenths},
        )
        names = _component_names(catalog).get(request.component, {"en": request.component})
        new_text = str(from_tenths(new)) if changed and new is not None else None
        component_passed = rules.passed(
            SittingResult(request.component, Mark.SCORED, from_tenths(new), session.exam_date)
            if changed and new is not None
            else old_sitting
        )
        newly_passed = after.passed and not before.passed
        notified = await notify_candidate(
            uow,
            registration.candidate_id,
            now,
            key=f"remark_decided:{request_id}",
            template=Template.REMARK_DECIDED,
            params={
                "request_id": request_id,
                "status": status,
                "session_code": session.code,
                "level_code": registration.level_code,
                "component": request.component,
                "component_names": names,
                "old": old,
                "new": new_text,
                "component_passed": component_passed,
                "level_passed_before": before.passed,
                "level_passed": after.passed,
                "certificates_about": (
                    _certificates_about(catalog, session).isoformat() if newly_passed else None
                ),
            },
        )
        return RemarkDecision(
            request_id, status, registration.reference, names, old, new_text, notified, None
        )


# --- helpers -------------------------------------------------------------------------------


async def _check(
    uow: UnitOfWork, catalog: Catalog, candidate: Candidate, result_id: int, now: datetime
) -> tuple[RemarkTarget, Registration]:
    """The candidate's released result `result_id`, if a request for it may be made now."""
    row = await uow.remarks.get_result(result_id)
    if row is None or row[1].candidate_id != candidate.id or row[0].released_at is None:
        raise NotFound("result")
    result, registration, session = row
    target = _target(catalog, result, registration, session)
    await _refuse_repeat(uow, registration.id, target)
    if result.mark != Mark.SCORED:
        raise NotRemarkable(result.mark)
    if now > target.deadline:
        raise RemarkWindowClosed(target.deadline, target.timezone)
    return target, registration


async def _refuse_repeat(uow: UnitOfWork, registration_id: int, target: RemarkTarget) -> None:
    earlier = await uow.remarks.get_for(registration_id, target.component)
    if earlier is not None:
        raise AlreadyRequested(earlier.created_at, earlier.status, target.timezone)


def _target(
    catalog: Catalog, result: ComponentResult, registration: Registration, session: ExamSession
) -> RemarkTarget:
    assert result.released_at is not None
    return RemarkTarget(
        result_id=result.id,
        session_code=session.code,
        level_code=registration.level_code,
        component=result.component,
        names=_component_names(catalog).get(result.component, {"en": result.component}),
        score=_score(result),
        mark=result.mark,
        deadline=recheck_until(catalog, session, result.released_at),
        timezone=session.timezone,
    )


async def _request(uow: UnitOfWork, request_id: int) -> tuple[RemarkRequest, Registration]:
    request = await uow.remarks.get(request_id)
    if request is None:
        raise NotFound("remark")
    registration = await uow.registrations.get(request.registration_id)
    assert registration is not None
    return request, registration


def _check_open(request: RemarkRequest) -> None:
    if request.status == RemarkStatus.AWAITING_FEE:
        raise InvalidState(RemarkStatus.AWAITING_FEE)
    if request.status != RemarkStatus.OPEN:
        raise AlreadyDecided(_staff_id(request.decided_by), request.status)


async def _decided(uow: UnitOfWork, request_id: int) -> AlreadyDecided:
    """Who moved the request first (read after the conditional UPDATE found nothing)."""
    request = await uow.remarks.get(request_id)
    assert request is not None
    if request.status == RemarkStatus.OPEN:  # the fee was confirmed by someone else
        return AlreadyDecided(_staff_id(request.fee_confirmed_by), request.status)
    return AlreadyDecided(_staff_id(request.decided_by), request.status)


def _staff_id(actor: str | None) -> int | None:
    if actor and actor.startswith("tg:") and actor[3:].isdigit():
        return int(actor[3:])
    return None


def _index(order: list[str], code: str) -> int:
    return order.index(code) if code in order else len(order)


def _fee(catalog: Catalog) -> Fee | None:
    fee = catalog.fees.remark
    if fee is None or fee.amount_minor_units <= 0:
        return None
    return Fee(fee.amount_minor_units, catalog.fees.currency, fee.confirmed)


def _component_names(catalog: Catalog) -> dict[str, dict[str, str]]:
    return {c.code: c.name.model_dump() for c in catalog.components}


def _score(result: ComponentResult | None) -> str | None:
    if result is None or result.score_tenths is None:
        return None
    return str(from_tenths(result.score_tenths))


def _tenths(score: str | None) -> int | None:
    return None if score is None else to_tenths(Decimal(score))


def _sitting(result: ComponentResult, sat_on: date) -> SittingResult:
    return SittingResult.stored(
        result.component, result.mark, result.score_tenths, sat_on, result.released_at
    )


async def _standing(
    uow: UnitOfWork, rules: ScoringRules, registration: Registration, today: date
) -> LevelStanding:
    """The level's standing from every released result of the candidate for it, as the
    database holds them now."""
    results = [
        _sitting(result, session.exam_date)
        for result, reg, session in await uow.results.for_candidate(registration.candidate_id)
        if reg.level_code == registration.level_code and result.released_at is not None
    ]
    return rules.standing(results, today)


def _certificates_about(catalog: Catalog, session: ExamSession) -> date:
    """When certificates of the sitting come (catalogue `timeline.certificates`)."""
    try:
        at = catalog.session_timeline(session.code).certificates_at
    except KeyError:  # a session no longer (or never) in the catalogue: the default timeline
        return session.exam_date + timedelta(days=catalog.timeline.certificates)
    return at.astimezone(ZoneInfo(session.timezone)).date()
