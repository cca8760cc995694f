"""CertificateService on real databases: every kind of bad row with its line, preview then
confirm, an idempotent confirm, numbers assigned by the catalogue's pattern (also by two
racing confirmations), revocation, and what the holder sees."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from bot.domain.certificates import VERIFY_CODE_PATTERN
from bot.domain.lifecycle import RegistrationState
from bot.services import Services, build_services
from bot.services.certificates import AlreadyRevoked, Awaited, RefusedRow
from bot.services.errors import AlreadyDecided, NotFound
from storage.db import Database
from storage.models import (
    AuditEntry,
    Certificate,
    ComponentResult,
    OutboxMessage,
    Registration,
)
from storage.uow import UnitOfWork
from tests.factories import PROJECT_ROOT, Clock, make_registration, make_session

SECRET = "certificates-secret-" + "k" * 32
PUBLIC_URL = "https://exam.example"
HEADER = "reference,certificate_number,issue_date\n"
EXAM = date(2026, 10, 10)
RELEASED = datetime(2026, 11, 7, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: passed on 2026-11-07
STAFF = 900


async def _services(database: Database, clock: Clock | None = None) -> Services:
    from bot.domain.catalog import load_catalog

    services = build_services(database, clock or Clock(), secret_key=SECRET, public_url=PUBLIC_URL)
    await services.catalog.load(load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml"))
    return services


async def _results(
    database: Database, registration: Registration, session_id: int, **marks: int | None
) -> None:
    """Released results (score in whole points; None: absent) for the registration."""
    async with UnitOfWork(database.sessions) as uow:
        for component, score in marks.items():
            uow.session.add(
                ComponentResult(
                    registration_id=registration.id,
                    session_id=session_id,
                    component=component,
                    mark="scored" if score is not None else "absent",
                    score_tenths=None if score is None else score * 10,
                    released_at=RELEASED,
                    updated_by="cli",
                )
            )
        await uow.commit()


async def _passed(database: Database, telegram_id: int, session_id: int) -> Registration:
    registration = await make_registration(database, telegram_id, session_id)
    await _results(database, registration, session_id, theory=75, practical=80)
    return registration


async def _certificates(database: Database) -> list[tuple[int, str, str, str]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(select(Certificate).order_by(Certificate.id))
        return [(c.registration_id, c.number, c.issued_on.isoformat(), c.status) for c in rows]


async def _outbox(database: Database) -> list[tuple[str, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like("certificate:%"))
            .order_by(OutboxMessage.id)
        )
        return [(r.idempotency_key, r.payload["template"], r.payload["params"]) for r in rows]


async def test_preview_import_refuses_each_bad_row_with_line_and_reason(
    database: Database,
) -> None:
    services = await _services(database)
    s0 = await make_session(database, "S0", exam_date=date(2026, 4, 11))
    s1 = await make_session(database, "S1", exam_date=EXAM)
    ok, taken, mine = [await _passed(database, tid, s1) for tid in (1, 2, 3)]
    others = {tid: await _passed(database, tid, s1) for tid in range(10, 19)}
    failed = await make_registration(database, 4, s1)
    await _results(database, failed, s1, theory=50, practical=80)
    # Carry-over: theory passed at S0, practical at S1: the certificate is S1's.
    early = await make_registration(database, 5, s0, state=RegistrationState.COMPLETED)
    await _results(database, early, s0, theory=70, practical=40)
    async with UnitOfWork(database.sessions) as uow:
        later = Registration(
            candidate_id=early.candidate_id,
            session_id=s1,
            level_code="junior",
            state="paid",
            reference="EDKLATER01",
            components=["practical"],
        )
        uow.session.add(later)
        await uow.commit()
    await _results(database, later, s1, practical=65)
    first = await services.certificates.preview_import(
        "before.csv", (HEADER + f"{mine.reference},RC2026-9999,2026-12-01\n").encode(), STAFF
    )
    await services.certificates.confirm(first.batch_id, STAFF)
    o = {tid: r.reference for tid, r in others.items()}
    data = (
        HEADER
        + f"{ok.reference},RC2026-0001,2026-12-01\n"  # 2: accepted
        + ",RC2026-0002,2026-12-01\n"  # 3
        + "EDKNOSUCH1,RC2026-0003,2026-12-01\n"  # 4
        + f"{failed.reference},RC2026-0004,2026-12-01\n"  # 5
        + f"{early.reference},RC2026-0005,2026-12-01\n"  # 6
        + f"{later.reference},RC2026-0006,2026-11-06\n"  # 7
        + f"{o[10]},bad number!,2026-12-01\n"  # 8
        + f"{o[11]},,2026-12-01\n"  # 9
        + f"{o[12]},RC2026-0007,\n"  # 10
        + f"{o[13]},RC2026-0008,2026-13-01\n"  # 11
        + f"{o[14]},RC2026-0009,2026-12-01\n"  # 12
        + f"{o[15]},rc2026-0009 ,2026-12-01\n"  # 13: the same number, typed otherwise
        + f"{mine.reference},RC2026-0010,2026-12-01\n"  # 14
        + f"{taken.reference},RC2026-9999,2026-12-01\n"  # 15
        + f"{o[16]},RC2026-0011,2026-12-01\n"  # 16
        + f"{o[16]},RC2026-0012,2026-12-01\n"  # 17
    ).encode()

    preview = await services.certificates.preview_import("certs.csv", data, STAFF)

    assert [(r.line, r.reason, r.params) for r in preview.refused] == [
        (3, "no_reference", {}),
        (4, "unknown_reference", {}),
        (5, "not_passed", {}),
        (6, "passed_elsewhere", {"reference": "EDKLATER01"}),
        (7, "issued_before_pass", {"passed_on": "2026-11-07"}),
        (8, "number_format", {}),
        (9, "number_missing", {}),
        (10, "date_missing", {}),
        (11, "date_invalid", {"value": "2026-13-01"}),
        (12, "duplicate_number", {"lines": [13]}),
        (13, "duplicate_number", {"lines": [12]}),
        (14, "other_number", {"number": "RC2026-9999"}),
        (15, "number_taken", {}),
        (16, "duplicate_registration", {"lines": [17]}),
        (17, "duplicate_registration", {"lines": [16]}),
    ]
    assert (preview.kind, preview.rows, preview.new, preview.unchanged) == ("import", 16, 1, 0)
    assert preview.refused[0] == RefusedRow(3, "", "no_reference", {})
    # Nothing is written before confirmation.
    assert [number for _, number, _, _ in await _certificates(database)] == ["RC2026-9999"]


async def test_confirm_import_notifies_once_and_same_file_again_changes_nothing(
    database: Database,
) -> None:
    services = await _services(database)
    s1 = await make_session(database, "S1", exam_date=EXAM)
    passed = await _passed(database, 1, s1)
    data = (HEADER + f"{passed.reference}, RC2026-0001 ,2026-12-01\n").encode()

    preview = await services.certificates.preview_import("c.csv", data, STAFF)
    confirmed = await services.certificates.confirm(preview.batch_id, STAFF)
    with pytest.raises(AlreadyDecided) as twice:
        await services.certificates.confirm(preview.batch_id, 901)
    again = await services.certificates.preview_import("c.csv", data, STAFF)
    confirmed_again = await services.certificates.confirm(again.batch_id, STAFF)

    assert (preview.new, confirmed.added, confirmed.unchanged) == (1, 1, 0)
    assert (twice.value.decided_by, twice.value.status) == (STAFF, "confirmed")
    assert (again.new, again.unchanged, confirmed_again.added) == (0, 1, 0)
    assert await _certificates(database) == [(passed.id, "RC2026-0001", "2026-12-01", "valid")]
    async with UnitOfWork(database.sessions) as uow:
        certificate_id, code = (
            await uow.session.execute(select(Certificate.id, Certificate.verify_code))
        ).one()
    assert VERIFY_CODE_PATTERN.match(code)
    assert await _outbox(database) == [
        (
            f"certificate:{certificate_id}",
            "certificate_issued",
            {
                "level_code": "junior",
                "number": "RC2026-0001",
                "issued_on": "2026-12-01",
                "link": f"{PUBLIC_URL}/certificates/verify/{code}",
            },
        )
    ]


async def test_cancel_then_confirm_says_already_cancelled(database: Database) -> None:
    services = await _services(database)
    s1 = await make_session(database, "S1", exam_date=EXAM)
    passed = await _passed(database, 1, s1)
    data = (HEADER + f"{passed.reference},RC2026-0001,2026-12-01\n").encode()
    preview = await services.certificates.preview_import("c.csv", data, STAFF)

    await services.certificates.cancel(preview.batch_id, 901)
    with pytest.raises(AlreadyDecided) as late:
        await services.certificates.confirm(preview.batch_id, STAFF)
    with pytest.raises(NotFound):
        await services.certificates.confirm(preview.batch_id + 1000, STAFF)

    assert (late.value.decided_by, late.value.status) == (901, "cancelled")
    assert await _certificates(database) == []


async def test_preview_import_xlsx_chinese_headers_and_excel_date_cell(
    database: Database,
) -> None:
    services = await _services(database)
    s1 = await make_session(database, "S1", exam_date=EXAM)
    passed = await _passed(database, 1, s1)
    book = Workbook()
    sheet = book.active
    sheet.append(["2026年证书编号"])  # a title line above the header
    sheet.append(["报名编号", "姓名", "证书编号", "发证日期"])
    sheet.append([passed.reference, "张三", "RC2026-0001", datetime(2026, 12, 1)])
    buffer = io.BytesIO()
    book.save(buffer)

    preview = await services.certificates.preview_import("证书.xlsx", buffer.getvalue(), STAFF)
    await services.certificates.confirm(preview.batch_id, STAFF)

    assert (preview.new, preview.refused) == (1, ())
    assert await _certificates(database) == [(passed.id, "RC2026-0001", "2026-12-01", "valid")]


async def test_assign_numbers_by_pattern_skips_failed_and_certified(database: Database) -> None:
    services = await _services(database)
    s1 = await make_session(database, "S1", exam_date=EXAM)
    a, b = await _passed(database, 1, s1), await _passed(database, 2, s1)
    certified = await _passed(database, 3, s1)
    failed = await make_registration(database, 4, s1)
    await _results(database, failed, s1, theory=59, practical=None)
    first = await services.certificates.preview_import(
        "c.csv", (HEADER + f"{certified.reference},RCS1-JUNIOR-0001,2026-12-01\n").encode(), STAFF
    )
    await services.certificates.confirm(first.batch_id, STAFF)

    early = await services.certificates.preview_assign("S1", date(2026, 11, 6), STAFF)
    preview = await services.certificates.preview_assign("S1", date(2027, 1, 5), STAFF)
    confirmed = await services.certificates.confirm(preview.batch_id, STAFF)

    assert (early.new, [r.reason for r in early.refused]) == (0, ["issued_before_pass"] * 3)
    assert (preview.kind, preview.rows, preview.new, preview.unchanged) == ("assign", 3, 2, 1)
    assert (confirmed.added, confirmed.unchanged) == (2, 1)
    # RCS1-JUNIOR-0001 was imported: the counter passes over it.
    assert await _certificates(database) == [
        (certified.id, "RCS1-JUNIOR-0001", "2026-12-01", "valid"),
        (a.id, "RCS1-JUNIOR-0002", "2027-01-05", "valid"),
        (b.id, "RCS1-JUNIOR-0003", "2027-01-05", "valid"),
    ]
    assert [key for key, _, _ in await _outbox(database)] == [
        f"certificate:{n}" for n in (1, 2, 3)
    ]


async def test_assign_unknown_session_is_not_found(database: Database) -> None:
    services = await _services(database)

    with pytest.raises(NotFound):
        await services.certificates.preview_assign("NOPE", date(2027, 1, 5), STAFF)


async def test_two_assign_confirmations_racing_never_share_a_number(database: Database) -> None:
    services = await _services(database)
    other = await _services(database)  # a second instance: its own services on one database
    s1 = await make_session(database, "S1", exam_date=EXAM)
    passed = [await _passed(database, tid, s1) for tid in range(1, 7)]
    one = await services.certificates.preview_assign("S1", date(2027, 1, 5), STAFF)
    two = await other.certificates.preview_assign("S1", date(2027, 1, 5), 901)

    results = await asyncio.gather(
        services.certificates.confirm(one.batch_id, STAFF),
        other.certificates.confirm(two.batch_id, 901),
    )

    rows = await _certificates(database)
    assert sum(r.added for r in results) == 6
    assert sorted(r.unchanged for r in results) == [0, 6]
    assert sorted(reg for reg, _, _, _ in rows) == sorted(r.id for r in passed)
    assert sorted(number for _, number, _, _ in rows) == [
        f"RCS1-JUNIOR-{n:04d}" for n in range(1, 7)
    ]
    assert len(await _outbox(database)) == 6


async def test_revoke_is_audited_told_and_twice_says_already(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    s1 = await make_session(database, "S1", exam_date=EXAM)
    passed = await _passed(database, 1, s1)
    preview = await services.certificates.preview_import(
        "c.csv", (HEADER + f"{passed.reference},RC2026-0001,2026-12-01\n").encode(), STAFF
    )
    await services.certificates.confirm(preview.batch_id, STAFF)

    revoked = await services.certificates.revoke("rc2026-0001", "  misconduct found  ", STAFF)
    with pytest.raises(AlreadyRevoked) as twice:
        await services.certificates.revoke("RC2026-0001", "again", 901)
    with pytest.raises(NotFound):
        await services.certificates.revoke("RC2026-0404", "no such", STAFF)
    mine = await services.certificates.candidate_certificates(1)

    assert (revoked.number, revoked.revoked_at) == ("RC2026-0001", clock.now)
    assert (twice.value.number, twice.value.revoked_at) == ("RC2026-0001", clock.now)
    assert await _certificates(database) == [(passed.id, "RC2026-0001", "2026-12-01", "revoked")]
    async with UnitOfWork(database.sessions) as uow:
        entries = (
            await uow.session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.reason, AuditEntry.at)
                .where(AuditEntry.entity == "certificate")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [tuple(e) for e in entries] == [
        ("tg:900", "issued", None, clock.now),
        ("tg:900", "revoked", "misconduct found", clock.now),
    ]
    told = (await _outbox(database))[-1]
    assert told[:2] == ("certificate:1:revoked", "certificate_revoked")
    assert told[2]["reason"] == "misconduct found"
    assert [(c.number, c.revoked, c.revoked_at) for c in mine.certificates] == [
        ("RC2026-0001", True, clock.now)
    ]


async def test_candidate_certificates_says_when_a_passed_level_expects_one(
    database: Database,
) -> None:
    services = await _services(database)
    # Session 2027-01 of the shipped catalogue: exam 2027-01-09, certificates at E+70, 09:00.
    async with UnitOfWork(database.sessions) as uow:
        found = await uow.exam_sessions.get_by_code("2027-01")  # loaded with the catalogue
        assert found is not None
        session = found.id
    await _passed(database, 1, session)
    failed = await make_registration(database, 2, session)
    await _results(database, failed, session, theory=20, practical=20)

    waiting = await services.certificates.candidate_certificates(1)
    nothing = await services.certificates.candidate_certificates(2)
    stranger = await services.certificates.candidate_certificates(999)

    assert waiting.certificates == ()
    assert waiting.awaited == (
        Awaited("junior", "2027-01", datetime(2027, 3, 20, 1, 0, tzinfo=UTC), "Asia/Shanghai"),
    )
    assert (nothing.certificates, nothing.awaited) == ((), ())
    assert (stranger.certificates, stranger.awaited) == ((), ())


async def test_confirm_skips_a_number_taken_since_the_preview(database: Database) -> None:
    services = await _services(database)
    s1 = await make_session(database, "S1", exam_date=EXAM)
    first, second = await _passed(database, 1, s1), await _passed(database, 2, s1)
    one = await services.certificates.preview_import(
        "a.csv", (HEADER + f"{first.reference},RC2026-0001,2026-12-01\n").encode(), STAFF
    )
    two = await services.certificates.preview_import(
        "b.csv", (HEADER + f"{second.reference},RC2026-0001,2026-12-01\n").encode(), 901
    )

    await services.certificates.confirm(one.batch_id, STAFF)
    late = await services.certificates.confirm(two.batch_id, 901)

    assert (two.new, late.added, late.skipped) == (1, 0, 1)
    assert await _certificates(database) == [(first.id, "RC2026-0001", "2026-12-01", "valid")]
    assert len(await _outbox(database)) == 1
