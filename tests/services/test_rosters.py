"""RosterService on real databases (SQLite and PostgreSQL): who is on a roster and in what
order, full ID numbers for admins only (audited), sign-in sheets per component, the finance
exports and their filters, role refusals; and the roster as XLSX and CSV read back cell by
cell, with a formula in a name kept as text in both formats."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.config import PROJECT_ROOT
from bot.crypto import Vault
from bot.domain.catalog import load_catalog
from bot.domain.lifecycle import RegistrationState
from bot.domain.roles import Role
from bot.i18n import I18n
from bot.services import Services, build_services
from bot.services.errors import NotFound
from bot.services.staff import NotAllowed
from handlers.rosters import parse_export, roster_table, to_csv, to_xlsx
from storage.db import Database
from storage.models import Attendance, AuditEntry, Payment
from storage.uow import UnitOfWork
from tests.factories import NOW, Clock, make_registration, make_session

SECRET = "rosters-test-secret-" + "k" * 32
ADMIN, CHECKIN, FINANCE, NOBODY = 7001, 7002, 7003, 7004
EXAM_DAY = datetime.combine((NOW + timedelta(days=30)).date(), datetime.min.time(), tzinfo=UTC)
TICKETS_FROM = EXAM_DAY - timedelta(days=7)
EN = I18n("en").translator("en")
ZH = I18n("zh_Hans").translator("zh_Hans")
INJECTION = '=HYPERLINK("http://evil.example/","click")'


async def _services(database: Database, clock: Clock) -> Services:
    services = build_services(database, clock, secret_key=SECRET, staff_ids=frozenset({ADMIN}))
    await services.catalog.load(load_catalog(PROJECT_ROOT / "catalog" / "exam-catalog.yaml"))
    await services.staff.grant(ADMIN, CHECKIN, Role.CHECKIN)
    await services.staff.grant(ADMIN, FINANCE, Role.FINANCE)
    return services


async def _candidate(
    database: Database,
    telegram_id: int,
    session_id: int,
    name: str,
    *,
    state: RegistrationState = RegistrationState.PAID,
    components: list[str] | None = None,
    id_number: str = "11010519491231002X",
) -> int:
    registration = await make_registration(
        database,
        telegram_id,
        session_id,
        state=state,
        direction_code="equipment_application",
        components=components or ["practical", "theory"],
        candidate={
            "full_name": name,
            "gender": "female",
            "id_doc_type": "resident_id",
            "id_number_masked": id_number[:4] + "*" * 10 + id_number[-4:],
            "id_number_encrypted": Vault(SECRET).encrypt(id_number),
            "phone": f"+86138{telegram_id:08d}",
            "profile": {"photo": {"file_id": f"photo-{telegram_id}"}},
        },
    )
    return registration.id


async def _session_with_candidates(database: Database, services: Services, clock: Clock) -> int:
    """S1: three PAID (tickets issued in the order 803, 801, 802), one awaiting payment,
    one cancelled; 801 checked in."""
    session_id = await make_session(database, "S1", now=clock.now)
    ids = {
        801: await _candidate(database, 801, session_id, "张小三"),
        802: await _candidate(database, 802, session_id, INJECTION, components=["theory"]),
        803: await _candidate(database, 803, session_id, "Ann Smith"),
    }
    await _candidate(database, 804, session_id, "王五", state=RegistrationState.AWAITING_PAYMENT)
    await _candidate(database, 805, session_id, "赵六", state=RegistrationState.CANCELLED)
    clock.now = TICKETS_FROM
    for telegram_id in (803, 801, 802):
        await services.tickets.ticket(telegram_id, ids[telegram_id])
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(
            Attendance(
                registration_id=ids[801],
                session_id=session_id,
                checked_in_at=EXAM_DAY + timedelta(minutes=31),
                checked_in_by=CHECKIN,
            )
        )
        uow.session.add(
            Payment(
                registration_id=ids[801],
                method="stars",
                external_id="charge-801",
                amount_minor=800,
                currency="XTR",
                status="paid",
            )
        )
        await uow.commit()
    return session_id


async def _audit(database: Database) -> list[tuple[str, str, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.like("%exported") | AuditEntry.action.like("roster%"))
            .order_by(AuditEntry.id)
        )
        return [(r.actor, r.entity, r.action, r.details) for r in rows]


# --- the roster


async def test_roster_lists_seat_holders_by_ticket_number(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await _session_with_candidates(database, services, clock)

    roster = await services.rosters.roster(CHECKIN, "S1")

    actual = [
        (e.ticket_number, e.full_name, e.seat, e.state, e.components, e.paid_by, e.id_full)
        for e in roster.entries
    ]
    assert actual == [
        ("S1-J-0001", "Ann Smith", "001", "paid", ("theory", "practical"), None, None),
        ("S1-J-0002", "张小三", "002", "paid", ("theory", "practical"), "stars", None),
        ("S1-J-0003", INJECTION, "003", "paid", ("theory",), None, None),
        (None, "王五", None, "awaiting_payment", ("theory", "practical"), None, None),
    ]
    assert [e.checked_in_at for e in roster.entries][:2] == [
        None,
        EXAM_DAY + timedelta(minutes=31),
    ]
    assert (roster.full_ids, roster.entries[0].id_masked) == (False, "1101**********002X")
    assert await _audit(database) == [
        (
            "tg:7002",
            "exam_session",
            "roster_exported",
            {"session": "S1", "rows": 4, "full_ids": False},
        )
    ]


async def test_roster_full_ids_by_admin_decrypts_and_is_audited(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await _session_with_candidates(database, services, clock)

    roster = await services.rosters.roster(ADMIN, "S1", full_ids=True)

    assert (roster.full_ids, {e.id_full for e in roster.entries}) == (
        True,
        {"11010519491231002X"},
    )
    assert await _audit(database) == [
        (
            "tg:7001",
            "exam_session",
            "roster_full_ids",
            {"session": "S1", "rows": 4, "full_ids": True},
        )
    ]


async def test_roster_full_ids_by_checkin_member_raises_not_allowed(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await _session_with_candidates(database, services, clock)

    with pytest.raises(NotAllowed) as caught:
        await services.rosters.roster(CHECKIN, "S1", full_ids=True)

    assert (caught.value.needed, await _audit(database)) == (Role.ADMIN, [])


async def test_roster_by_finance_member_raises_not_allowed_naming_checkin(
    database: Database,
) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await make_session(database, "S1", now=clock.now)

    with pytest.raises(NotAllowed) as caught:
        await services.rosters.roster(FINANCE, "S1")

    assert caught.value.needed == Role.CHECKIN


async def test_roster_unknown_session_raises_not_found(database: Database) -> None:
    services = await _services(database, Clock())

    with pytest.raises(NotFound):
        await services.rosters.roster(ADMIN, "NOPE")


# --- the roster as files


async def test_roster_xlsx_read_back_cell_by_cell_keeps_a_formula_as_text(
    database: Database,
) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await _session_with_candidates(database, services, clock)
    roster = await services.rosters.roster(CHECKIN, "S1")

    sheet = load_workbook(io.BytesIO(to_xlsx(roster_table(EN, roster)))).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    formula = sheet.cell(row=4, column=2)

    assert cells == [
        [
            "Ticket number",
            "Name",
            "Gender",
            "ID number",
            "Phone",
            "Level",
            "Direction",
            "Components",
            "Room: Theory",
            "Room: Practical skills",
            "Seat",
            "Payment",
            "Checked in",
        ],
        [
            "S1-J-0001",
            "Ann Smith",
            "Female",
            "1101**********002X",
            "+8613800000803",
            "Junior",
            "Smart equipment and production line application",
            "Theory and Practical skills",
            "Computer room A301",
            "Smart manufacturing lab B105",
            "001",
            "paid",
            None,
        ],
        [
            "S1-J-0002",
            "张小三",
            "Female",
            "1101**********002X",
            "+8613800000801",
            "Junior",
            "Smart equipment and production line application",
            "Theory and Practical skills",
            "Computer room A301",
            "Smart manufacturing lab B105",
            "002",
            "paid (Telegram Stars)",
            "2026-12-26 08:31",
        ],
        [
            "S1-J-0003",
            INJECTION,
            "Female",
            "1101**********002X",
            "+8613800000802",
            "Junior",
            "Smart equipment and production line application",
            "Theory",
            "Computer room A301",
            None,
            "003",
            "paid",
            None,
        ],
        [
            None,
            "王五",
            "Female",
            "1101**********002X",
            "+8613800000804",
            "Junior",
            "Smart equipment and production line application",
            "Theory and Practical skills",
            "Computer room A301",
            "Smart manufacturing lab B105",
            None,
            "not paid",
            None,
        ],
    ]
    assert (formula.data_type, formula.quotePrefix, sheet.cell(row=2, column=5).quotePrefix) == (
        "s",
        True,
        True,
    )


async def test_roster_csv_has_bom_and_an_apostrophe_before_a_formula(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await _session_with_candidates(database, services, clock)
    roster = await services.rosters.roster(CHECKIN, "S1")

    data = to_csv(roster_table(ZH, roster))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))

    assert data[:3] == b"\xef\xbb\xbf"
    assert rows[0][:4] == ["准考证号", "姓名", "性别", "证件号码"]
    assert [r[1] for r in rows[1:]] == ["Ann Smith", "张小三", "'" + INJECTION, "王五"]
    assert [r[4] for r in rows[1:3]] == ["'+8613800000803", "'+8613800000801"]
    assert [r[10] for r in rows[1:]] == ["001", "002", "003", ""]


# --- sign-in sheets


async def test_signin_sheets_one_per_component_paid_only_by_seat(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await _session_with_candidates(database, services, clock)

    sheets = await services.rosters.signin_sheets(CHECKIN, "S1")

    actual = [
        (s.component.code, s.component.room["en"], [(e.seat, e.full_name) for e in s.entries])
        for s in sheets
    ]
    assert actual == [
        (
            "theory",
            "Computer room A301",
            [("001", "Ann Smith"), ("002", "张小三"), ("003", INJECTION)],
        ),
        ("practical", "Smart manufacturing lab B105", [("001", "Ann Smith"), ("002", "张小三")]),
    ]
    assert [a[2] for a in await _audit(database)] == ["signin_exported"]


async def test_signin_sheets_by_member_without_role_raises_not_allowed(database: Database) -> None:
    services = await _services(database, Clock())
    await make_session(database, "S1", now=NOW)

    with pytest.raises(NotAllowed) as caught:
        await services.rosters.signin_sheets(NOBODY, "S1")

    assert caught.value.needed == Role.CHECKIN


# --- finance exports


async def test_export_registrations_filters_by_session_and_state(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await _session_with_candidates(database, services, clock)
    other = await make_session(database, "S2", now=NOW)
    await _candidate(database, 806, other, "钱七", state=RegistrationState.AWAITING_PAYMENT)

    everything = await services.rosters.export_registrations(FINANCE)
    unpaid = await services.rosters.export_registrations(FINANCE, None, "awaiting_payment")
    s1_unpaid = await services.rosters.export_registrations(FINANCE, "S1", "awaiting_payment")
    s2 = await services.rosters.export_registrations(FINANCE, "S2")

    assert [len(e.rows) for e in (everything, unpaid, s1_unpaid, s2)] == [6, 2, 1, 1]
    assert [(r.session_code, r.full_name, r.state) for r in s1_unpaid.rows] == [
        ("S1", "王五", "awaiting_payment")
    ]
    assert (s2.rows[0].id_masked, s2.rows[0].level_name["en"]) == ("1101**********002X", "Junior")


async def test_export_payments_filters_by_status_and_session(database: Database) -> None:
    clock = Clock()
    services = await _services(database, clock)
    await _session_with_candidates(database, services, clock)
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(
            Payment(
                registration_id=None,
                method="provider",
                external_id="stray-1",
                amount_minor=80000,
                currency="CNY",
                status="unmatched",
            )
        )
        await uow.commit()

    everything = await services.rosters.export_payments(FINANCE)
    unmatched = await services.rosters.export_payments(FINANCE, None, "unmatched")
    s1 = await services.rosters.export_payments(FINANCE, "S1")

    assert [(p.external_id, p.session_code, p.full_name) for p in everything.rows] == [
        ("charge-801", "S1", "张小三"),
        ("stray-1", None, None),
    ]
    assert ([p.external_id for p in unmatched.rows], [p.external_id for p in s1.rows]) == (
        ["stray-1"],
        ["charge-801"],
    )
    assert [a[2] for a in await _audit(database)][-3:] == ["payments_exported"] * 3


async def test_export_by_checkin_member_raises_not_allowed_naming_finance(
    database: Database,
) -> None:
    services = await _services(database, Clock())

    with pytest.raises(NotAllowed) as caught:
        await services.rosters.export_payments(CHECKIN)

    assert (caught.value.needed, await _audit(database)) == (Role.FINANCE, [])


async def test_export_unknown_session_raises_not_found(database: Database) -> None:
    services = await _services(database, Clock())

    with pytest.raises(NotFound):
        await services.rosters.export_registrations(FINANCE, "NOPE")


def test_parse_export_tells_state_from_session() -> None:
    assert [
        parse_export(["registrations"]),
        parse_export(["registrations", "2027-01", "paid"]),
        parse_export(["payments", "refund_due"]),
        parse_export(["payments", "refund_due", "2027-01"]),
        parse_export(["payments", "2027-01", "nonsense"]),
        parse_export(["tickets"]),
        parse_export([]),
    ] == [
        ("registrations", None, None),
        ("registrations", "2027-01", "paid"),
        ("payments", None, "refund_due"),
        ("payments", "2027-01", "refund_due"),
        None,
        None,
        None,
    ]
