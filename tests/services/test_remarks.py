"""RemarkService (复核) on real databases: the window, one request per component, absent and
disqualified refused, forged ids, the fee, decisions (unchanged, changed, typed), the first
decision winning under concurrency, and a level newly passed by a re-mark."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.config import PROJECT_ROOT
from bot.crypto import Vault
from bot.domain.catalog import Fee, load_catalog
from bot.services import Services
from bot.services.errors import AlreadyDecided, InvalidAnswer, InvalidState, NotFound, StaleStep
from bot.services.remarks import (
    AlreadyRequested,
    NotRemarkable,
    RemarkWindowClosed,
)
from storage.db import Database
from storage.models import (
    AuditEntry,
    Candidate,
    ComponentResult,
    FlowState,
    OutboxMessage,
    Registration,
    RemarkRequest,
)
from storage.uow import UnitOfWork
from tests.factories import (
    Clock,
    catalogued_services,
    make_candidates,
    make_registration,
    make_session,
)

SECRET = "remarks-secret-" + "k" * 32
ID_NUMBER = "11010519491231002X"
HEADER = "reference,id_last4,theory,practical\n"
STAFF_CHAT = -100
STAFF, STAFF_2 = 900, 901
# Session S1 (tests/factories.make_session): exam 2026-12-26, results 2027-01-23 00:00 UTC
# (08:00 in Shanghai); the window: 7 days, until 2027-01-30 18:00 there.
RELEASED = datetime(2027, 1, 23, tzinfo=UTC)
DEADLINE = datetime(2027, 1, 30, 10, 0, tzinfo=UTC)


async def _released(
    database: Database, clock: Clock, *rows: tuple[str, str], fee: Fee | None = None
) -> Services:
    """Session S1 with one paid candidate (Telegram ids 1, 2, ...) per row of (theory,
    practical), imported and released at RELEASED; staff 900 and 901 known to the bot."""
    services = await catalogued_services(database, clock, secret_key=SECRET)
    if fee is not None:
        catalog = load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml")
        fees = catalog.fees.model_copy(update={"remark": fee})
        await services.catalog.load(catalog.model_copy(update={"fees": fees}))
    s1 = await make_session(database, "S1")
    lines = []
    for telegram_id, (theory, practical) in enumerate(rows, start=1):
        registration = await make_registration(
            database,
            telegram_id,
            s1,
            candidate={
                "id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER),
                "id_number_masked": "1101**********002X",
                "full_name": f"Candidate {telegram_id}",
            },
        )
        lines.append(f"{registration.reference},002X,{theory},{practical}\n")
    preview = await services.results.preview(
        "S1", "r.csv", (HEADER + "".join(lines)).encode(), STAFF
    )
    await services.results.confirm(preview.import_id, staff_id=STAFF)
    await make_candidates(database, [STAFF, STAFF_2])
    clock.now = RELEASED
    await services.results_release.release_due()
    clock.now = RELEASED + timedelta(days=1)
    return services


async def _result_id(database: Database, telegram_id: int, component: str) -> int:
    async with UnitOfWork(database.sessions) as uow:
        return int(
            await uow.session.scalar(
                select(ComponentResult.id)
                .join(Registration, Registration.id == ComponentResult.registration_id)
                .join(Candidate, Candidate.id == Registration.candidate_id)
                .where(
                    Candidate.telegram_id == telegram_id, ComponentResult.component == component
                )
            )
        )


async def _ask(services: Services, telegram_id: int, result_id: int, reason: str = "Sum?") -> int:
    await services.remarks.begin(telegram_id, result_id)
    await services.remarks.set_reason(telegram_id, reason)
    return (await services.remarks.submit(telegram_id, result_id, STAFF_CHAT)).request_id


async def _outbox(database: Database, prefix: str) -> list[tuple[int, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like(prefix + "%"))
            .order_by(OutboxMessage.id)
        )
        return [(r.chat_id, r.payload["template"], r.payload["params"]) for r in rows]


async def _result(database: Database, result_id: int) -> tuple[str, int | None, int, str]:
    async with UnitOfWork(database.sessions) as uow:
        r = await uow.session.get(ComponentResult, result_id)
        assert r is not None
        return (r.mark, r.score_tenths, r.version, r.updated_by)


async def _requests(database: Database) -> list[tuple[str, str]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.execute(select(RemarkRequest.component, RemarkRequest.status))
        return [(r[0], r[1]) for r in rows]


async def _flow(database: Database, telegram_id: int) -> str | None:
    async with UnitOfWork(database.sessions) as uow:
        return await uow.session.scalar(
            select(FlowState.flow)
            .join(Candidate, Candidate.id == FlowState.candidate_id)
            .where(Candidate.telegram_id == telegram_id)
        )


# --- asking -----------------------------------------------------------------------------


async def test_submit_within_window_opens_request_and_queues_staff_card(
    database: Database,
) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    theory = await _result_id(database, 1, "theory")

    draft = await services.remarks.begin(1, theory)
    written = await services.remarks.set_reason(1, "  I think   question 7 was not counted ")
    sent = await services.remarks.submit(1, theory, STAFF_CHAT)

    assert (draft.target.score, draft.target.deadline, draft.reason, draft.fee) == (
        "55.0",
        DEADLINE,
        None,
        None,
    )
    assert written.reason == "I think question 7 was not counted"
    assert (sent.status, sent.fee) == ("open", None)
    assert await _requests(database) == [("theory", "open")]
    assert await _flow(database, 1) is None
    [(chat, template, params)] = await _outbox(database, "remark_request:")
    assert (chat, template) == (STAFF_CHAT, "remark_request")
    assert {k: params[k] for k in ("name", "id_number", "score", "reason", "status")} == {
        "name": "Candidate 1",
        "id_number": "1101**********002X",
        "score": "55.0",
        "reason": "I think question 7 was not counted",
        "status": "open",
    }


async def test_begin_at_the_deadline_is_allowed_and_after_it_refused(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    theory = await _result_id(database, 1, "theory")

    clock.now = DEADLINE
    at_deadline = await services.remarks.begin(1, theory)
    clock.now = DEADLINE + timedelta(seconds=1)
    with pytest.raises(RemarkWindowClosed) as late:
        await services.remarks.set_reason(1, "Please check")

    assert at_deadline.target.deadline == DEADLINE
    assert (late.value.closed_at, late.value.timezone) == (DEADLINE, "Asia/Shanghai")
    assert await _requests(database) == []
    assert await _flow(database, 1) is None  # the late reason closed the flow


async def test_second_request_for_same_component_is_refused_with_date_and_status(
    database: Database,
) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    theory = await _result_id(database, 1, "theory")
    asked_at = clock.now
    await _ask(services, 1, theory)
    clock.now += timedelta(hours=2)

    with pytest.raises(AlreadyRequested) as again:
        await services.remarks.begin(1, theory)
    practical = await services.remarks.begin(1, await _result_id(database, 1, "practical"))

    assert (again.value.requested_at, again.value.status) == (asked_at, "open")
    assert practical.target.component == "practical"


@pytest.mark.parametrize(("theory", "mark"), [("缺考", "absent"), ("违纪", "disqualified")])
async def test_absent_and_disqualified_are_not_remarkable(
    database: Database, theory: str, mark: str
) -> None:
    clock = Clock()
    services = await _released(database, clock, (theory, "70"))

    with pytest.raises(NotRemarkable) as refused:
        await services.remarks.begin(1, await _result_id(database, 1, "theory"))
    options = await services.remarks.options(1)

    assert refused.value.mark == mark
    assert [t.component for t in options.open] == ["practical"]
    assert await _flow(database, 1) is None


async def test_forged_or_another_candidates_result_is_not_found(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"), ("80", "90"))
    theirs = await _result_id(database, 1, "theory")

    for result_id in (theirs, 2**31 - 1):
        with pytest.raises(NotFound):
            await services.remarks.begin(2, result_id)
    await services.remarks.begin(2, await _result_id(database, 2, "theory"))
    await services.remarks.set_reason(2, "Please check")
    with pytest.raises(StaleStep):  # confirming another result than the one written
        await services.remarks.submit(2, theirs, STAFF_CHAT)

    assert await _requests(database) == []


async def test_unreleased_result_is_not_found(database: Database) -> None:
    clock = Clock()
    services = await catalogued_services(database, clock, secret_key=SECRET)
    s1 = await make_session(database, "S1")
    registration = await make_registration(
        database, 1, s1, candidate={"id_number_encrypted": Vault(SECRET).encrypt(ID_NUMBER)}
    )
    data = (HEADER + f"{registration.reference},002X,55,70\n").encode()
    preview = await services.results.preview("S1", "r.csv", data, STAFF)
    await services.results.confirm(preview.import_id, staff_id=STAFF)

    with pytest.raises(NotFound):
        await services.remarks.begin(1, await _result_id(database, 1, "theory"))
    assert (await services.remarks.options(1)).open == ()


async def test_empty_reason_is_refused_and_the_flow_waits(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    await services.remarks.begin(1, await _result_id(database, 1, "theory"))

    for text in (None, "   "):
        with pytest.raises(InvalidAnswer) as refused:
            await services.remarks.set_reason(1, text)
        assert (refused.value.step, refused.value.reason) == ("reason", "text_expected")
    current = await services.remarks.current(1)

    assert current is not None and (current.target.component, current.reason) == ("theory", None)


async def test_options_list_open_asked_and_closed(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    await _ask(services, 1, await _result_id(database, 1, "theory"))

    within = await services.remarks.options(1)
    clock.now = DEADLINE + timedelta(minutes=1)
    after = await services.remarks.options(1)

    assert [t.component for t in within.open] == ["practical"]
    assert [(a.target.component, a.status) for a in within.asked] == [("theory", "open")]
    assert (after.open, [t.component for t in after.closed]) == ((), ["practical"])


# --- the fee ----------------------------------------------------------------------------


async def test_fee_request_awaits_the_fee_before_a_decision(database: Database) -> None:
    clock = Clock()
    fee = Fee(amount=Decimal(50), confirmed=True)
    services = await _released(database, clock, ("55", "70"), fee=fee)
    request_id = await _ask(services, 1, await _result_id(database, 1, "theory"))

    with pytest.raises(InvalidState):
        await services.remarks.decide(request_id, STAFF, None)
    with pytest.raises(InvalidState):
        await services.remarks.ask_score(request_id, STAFF, STAFF_CHAT, 1)
    confirmed = await services.remarks.confirm_fee(request_id, STAFF)
    with pytest.raises(AlreadyDecided) as twice:
        await services.remarks.confirm_fee(request_id, STAFF_2)
    decided = await services.remarks.decide(request_id, STAFF_2, None)

    assert confirmed.request_id == request_id
    assert (twice.value.decided_by, twice.value.status) == (STAFF, "open")
    assert decided.status == "unchanged"
    [(_, _, card)] = await _outbox(database, "remark_request:")
    assert (card["status"], card["fee_minor"], card["currency"]) == ("awaiting_fee", 5000, "CNY")
    assert [t for _, t, _ in await _outbox(database, "remark_fee:")] == ["remark_fee_confirmed"]
    async with UnitOfWork(database.sessions) as uow:
        row = await uow.session.get(RemarkRequest, request_id)
        assert row is not None
        assert (row.fee_minor, row.fee_confirmed_by) == (5000, f"tg:{STAFF}")


# --- decisions --------------------------------------------------------------------------


async def test_decide_unchanged_keeps_the_score_and_tells_the_candidate(
    database: Database,
) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    theory = await _result_id(database, 1, "theory")
    request_id = await _ask(services, 1, theory)

    decision = await services.remarks.decide(request_id, STAFF, None)

    assert (decision.status, decision.old, decision.new, decision.notified) == (
        "unchanged",
        "55.0",
        None,
        True,
    )
    assert await _result(database, theory) == ("scored", 550, 1, f"tg:{STAFF}")
    [(chat, template, params)] = await _outbox(database, "remark_decided:")
    assert (chat, template, params["status"], params["level_passed"]) == (
        1,
        "remark_decided",
        "unchanged",
        False,
    )


async def test_decide_new_score_rewrites_the_result_audited(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("75", "80"))
    theory = await _result_id(database, 1, "theory")
    request_id = await _ask(services, 1, theory)

    decision = await services.remarks.decide(request_id, STAFF, Decimal("71.5"))

    assert (decision.status, decision.old, decision.new) == ("changed", "75.0", "71.5")
    assert await _result(database, theory) == ("scored", 715, 2, f"tg:{STAFF}")
    async with UnitOfWork(database.sessions) as uow:
        entry = (
            await uow.session.execute(
                select(AuditEntry.actor, AuditEntry.reason, AuditEntry.details).where(
                    AuditEntry.entity == "component_result", AuditEntry.action == "remarked"
                )
            )
        ).one()
    assert tuple(entry) == (
        f"tg:{STAFF}",
        f"remark:{request_id}",
        {
            "from": {"mark": "scored", "score_tenths": 750},
            "to": {"mark": "scored", "score_tenths": 715},
        },
    )
    [(_, _, params)] = await _outbox(database, "remark_decided:")
    assert (params["old"], params["new"], params["level_passed"]) == ("75.0", "71.5", True)
    assert params["certificates_about"] is None  # passed before as well


async def test_decide_newly_passes_the_level(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    request_id = await _ask(services, 1, await _result_id(database, 1, "theory"))

    await services.remarks.decide(request_id, STAFF, Decimal("62"))
    mine = await services.results_release.candidate_results(1)

    [(_, _, params)] = await _outbox(database, "remark_decided:")
    assert (params["level_passed_before"], params["level_passed"]) == (False, True)
    assert params["component_passed"] is True
    # timeline.certificates: E+70 from the exam on 2026-12-26.
    assert params["certificates_about"] == "2027-03-06"
    [level] = mine.levels
    assert level.standing.passed is True
    assert [str(s.score) for s in level.sittings if s.component == "theory"] == ["62.0"]


async def test_concurrent_decisions_first_wins(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    other = await catalogued_services(database, clock, secret_key=SECRET)
    theory = await _result_id(database, 1, "theory")
    request_id = await _ask(services, 1, theory)

    outcomes = await asyncio.gather(
        services.remarks.decide(request_id, STAFF, Decimal("65")),
        other.remarks.decide(request_id, STAFF_2, None),
        return_exceptions=True,
    )

    [won] = [o for o in outcomes if not isinstance(o, BaseException)]
    [lost] = [o for o in outcomes if isinstance(o, BaseException)]
    assert isinstance(lost, AlreadyDecided)
    assert lost.status == won.status
    expected = (550, 1) if won.status == "unchanged" else (650, 2)
    assert (await _result(database, theory))[1:3] == expected
    assert len(await _outbox(database, "remark_decided:")) == 1
    with pytest.raises(AlreadyDecided):
        await services.remarks.decide(request_id, STAFF, Decimal("90"))


async def test_typed_score_is_checked_then_decides_once(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    theory = await _result_id(database, 1, "theory")
    request_id = await _ask(services, 1, theory)

    prompt = await services.remarks.ask_score(request_id, STAFF, STAFF_CHAT, 42)
    elsewhere = await services.remarks.decide_typed(STAFF, 12345, "61")
    reasons = []
    for text in ("sixty", "101", "60.25", None):
        with pytest.raises(InvalidAnswer) as refused:
            await services.remarks.decide_typed(STAFF, STAFF_CHAT, text)
        reasons.append(refused.value.reason)
    decision = await services.remarks.decide_typed(STAFF, STAFF_CHAT, "61")
    again = await services.remarks.decide_typed(STAFF, STAFF_CHAT, "62")

    assert (prompt.score, prompt.max_score, elsewhere) == ("55.0", 100, None)
    assert reasons == ["not_a_number", "out_of_range", "too_many_decimals", "not_a_number"]
    assert decision is not None
    assert (decision.status, decision.new, decision.card) == ("changed", "61.0", (STAFF_CHAT, 42))
    assert again is None
    assert await _result(database, theory) == ("scored", 610, 2, f"tg:{STAFF}")


async def test_typed_score_after_another_decision_is_refused_and_forgotten(
    database: Database,
) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"))
    theory = await _result_id(database, 1, "theory")
    request_id = await _ask(services, 1, theory)
    await services.remarks.ask_score(request_id, STAFF, STAFF_CHAT, 42)
    await services.remarks.decide(request_id, STAFF_2, None)

    with pytest.raises(AlreadyDecided) as late:
        await services.remarks.decide_typed(STAFF, STAFF_CHAT, "61")

    assert (late.value.decided_by, late.value.status) == (STAFF_2, "unchanged")
    assert await _flow(database, STAFF) is None
    assert await _result(database, theory) == ("scored", 550, 1, f"tg:{STAFF}")


async def test_open_requests_oldest_first(database: Database) -> None:
    clock = Clock()
    services = await _released(database, clock, ("55", "70"), ("50", "65"))
    first = await _ask(services, 2, await _result_id(database, 2, "theory"))
    clock.now += timedelta(minutes=5)
    second = await _ask(services, 1, await _result_id(database, 1, "practical"))
    clock.now += timedelta(minutes=5)
    decided = await _ask(services, 1, await _result_id(database, 1, "theory"))
    await services.remarks.decide(decided, STAFF, None)

    listed = await services.remarks.open_requests()

    assert [(r.request_id, r.component, r.name) for r in listed] == [
        (first, "theory", "Candidate 2"),
        (second, "practical", "Candidate 1"),
    ]
