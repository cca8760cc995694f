"""ResultsService imports on real databases: every kind of bad row with its line and
reason, preview-then-confirm, cancel, re-import before release (replaced and audited),
no change after release, CSV (UTF-8, BOM, GB18030) and XLSX files."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import select, update

from bot.crypto import Vault
from bot.domain.lifecycle import RegistrationState
from bot.services import Services
from bot.services.errors import AlreadyDecided, NotFound, ResultsFileInvalid, ResultsReleased
from bot.services.results import ImportPreview, RefusedRow
from storage.db import Database
from storage.models import (
    AdmissionTicket,
    AuditEntry,
    ComponentResult,
    Registration,
    ResultImport,
)
from storage.uow import UnitOfWork
from tests.factories import NOW, catalogued_services, make_registration, make_session

SECRET = "results-test-secret-" + "k" * 32
ID_NUMBER = "11010519491231002X"  # the standard's example: last four 002X
HEADER = "ticket_number,reference,id_last4,theory,practical\n"


async def _services(database: Database) -> Services:
    return await catalogued_services(database, secret_key=SECRET)


async def _seat(
    database: Database,
    telegram_id: int,
    session_id: int,
    *,
    id_number: str = ID_NUMBER,
    state: RegistrationState = RegistrationState.PAID,
    components: tuple[str, ...] = ("practical", "theory"),
    ticket: str | None = None,
) -> tuple[int, str]:
    """A candidate with an encrypted ID number and a registration; (its id, reference)."""
    registration = await make_registration(
        database,
        telegram_id,
        session_id,
        state=state,
        components=list(components),
        candidate={
            "full_name": f"考生{telegram_id}",
            "id_number_encrypted": Vault(SECRET).encrypt(id_number),
            "id_number_masked": id_number[:4] + "*" * 10 + id_number[-4:],
        },
    )
    if ticket is not None:
        async with UnitOfWork(database.sessions) as uow:
            uow.session.add(
                AdmissionTicket(
                    registration_id=registration.id,
                    session_id=session_id,
                    ticket_number=ticket,
                    seat=telegram_id % 1000,
                )
            )
            await uow.commit()
    return registration.id, registration.reference


async def _stored(database: Database) -> dict[tuple[int, str], tuple[str, int | None, int]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(select(ComponentResult))
        return {
            (r.registration_id, r.component): (r.mark, r.score_tenths, r.version) for r in rows
        }


async def _audit(database: Database, entity: str) -> list[tuple[str, str, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = await uow.session.scalars(
            select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)
        )
        return [(r.entity_id, r.action, r.details) for r in rows]


async def _release(database: Database, at: datetime) -> None:
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(update(ComponentResult).values(released_at=at))
        await uow.commit()


def _csv(*lines: str) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode("utf-8")


async def _seated(database: Database, count: int) -> tuple[Services, list[tuple[int, str]]]:
    """The services, session S1 and `count` paid candidates (Telegram ids 1, 2, ...) in it."""
    services = await _services(database)
    s1 = await make_session(database, "S1")
    return services, [await _seat(database, tid, s1) for tid in range(1, count + 1)]


async def _imported(
    services: Services, *lines: str, name: str = "v1.csv", staff_id: int = 900
) -> ImportPreview:
    """The CSV rows previewed and confirmed; the preview."""
    preview = await services.results.preview("S1", name, _csv(*lines), 900)
    await services.results.confirm(preview.import_id, staff_id=staff_id)
    return preview


# --- checking rows ----------------------------------------------------------------------


async def test_preview_bad_rows_reports_each_line_and_reason(database: Database) -> None:
    services = await _services(database)
    s1 = await make_session(database, "S1")
    s2 = await make_session(database, "S2")
    await _seat(database, 1, s1, ticket="S1-J-0001")
    _, elsewhere_ref = await _seat(database, 2, s2)
    _, unpaid_ref = await _seat(database, 3, s1, state=RegistrationState.AWAITING_PAYMENT)
    _, ref4 = await _seat(database, 4, s1)
    _, ref5 = await _seat(database, 5, s1)
    _, ref6 = await _seat(database, 6, s1)
    _, ref7 = await _seat(database, 7, s1)
    _, ref8 = await _seat(database, 8, s1)
    _, ref9 = await _seat(database, 9, s1)
    _, retake_ref = await _seat(database, 10, s1, components=("practical",))
    _, twice_ref = await _seat(database, 11, s1)
    data = _csv(
        "S1-J-0001,,002X,75,60",  # 2: by ticket number, passed
        ",EDUNKNOWN,002X,75,60",  # 3
        f",{elsewhere_ref},002X,75,60",  # 4
        f",{unpaid_ref},002X,75,60",  # 5
        f",{ref4},1234,75,60",  # 6
        f",{ref5},,75,60",  # 7
        f",{ref6},002x,101,60",  # 8
        f",{ref7},002X,abc,60",  # 9
        f",{ref8},002X,72.25,60",  # 10
        f",{ref9},002X,75,",  # 11
        f",{retake_ref},002X,75,80",  # 12
        f",{twice_ref},002X,75,60",  # 13
        ",,002X,75,60",  # 14
        f",{twice_ref.lower()},002X,80,60",  # 15
    )

    preview = await services.results.preview("S1", "s1.csv", data, staff_id=900)

    assert preview.refused == (
        RefusedRow(3, "unknown_reference", {}),
        RefusedRow(4, "not_in_session", {}),
        RefusedRow(5, "not_paid", {"state": "awaiting_payment"}),
        RefusedRow(6, "id_mismatch", {}),
        RefusedRow(7, "id_missing", {}),
        RefusedRow(
            8, "score_out_of_range", {"component": "theory", "value": "101", "max_score": 100}
        ),
        RefusedRow(9, "score_not_a_number", {"component": "theory", "value": "abc"}),
        RefusedRow(10, "score_too_many_decimals", {"component": "theory", "value": "72.25"}),
        RefusedRow(11, "score_missing", {"component": "practical"}),
        RefusedRow(12, "component_not_booked", {"component": "theory"}),
        RefusedRow(13, "duplicate", {"lines": [15]}),
        RefusedRow(14, "no_reference", {}),
        RefusedRow(15, "duplicate", {"lines": [13]}),
    )
    assert (preview.rows, preview.passed, preview.failed, preview.absent) == (14, 1, 0, 0)


async def test_preview_counts_passed_failed_and_absent(database: Database) -> None:
    services = await _services(database)
    s1 = await make_session(database, "S1")
    refs = [(await _seat(database, tid, s1))[1] for tid in (1, 2, 3, 4, 5)]
    _, retake = await _seat(database, 6, s1, components=("practical",))
    data = _csv(
        f",{refs[0]},002X,60,60",  # passed
        f",{refs[1]},002X,59.9,90",  # failed
        f",{refs[2]},002X,缺考,absent",  # absent
        f",{refs[3]},002X,absent,70",  # failed: one absent, one passed
        f",{refs[4]},002X,违纪,80",  # failed: disqualified
        f",{retake},002X,,61.5",  # passed: the only component booked
    )

    preview = await services.results.preview("S1", "s1.csv", data, staff_id=900)

    assert (preview.passed, preview.failed, preview.absent, preview.refused) == (2, 3, 1, ())


async def test_preview_unknown_session_raises_not_found(database: Database) -> None:
    services = await _services(database)

    with pytest.raises(NotFound):
        await services.results.preview("NOPE", "x.csv", _csv(",EDX,002X,1,1"), staff_id=900)


@pytest.mark.parametrize(
    ("data", "reason", "params"),
    [
        (b"reference,theory\nEDX,60\n", "header", {"missing": ["id_last4"]}),
        (b"name,id_last4\nWang,002X\n", "header",
         {"missing": ["ticket_or_reference", "component"]}),
        (HEADER.encode(), "empty", {}),
        (b"PK\x03\x04 not really a workbook", "unreadable", {}),
        (b"\xff\xfe\x00\x00\x81", "encoding", {}),
    ],
)  # fmt: skip
async def test_preview_unreadable_file_raises_with_reason(
    database: Database, data: bytes, reason: str, params: dict
) -> None:
    services = await _services(database)
    await make_session(database, "S1")

    with pytest.raises(ResultsFileInvalid) as caught:
        await services.results.preview("S1", "s1.csv", data, staff_id=900)

    assert (caught.value.reason, caught.value.params) == (reason, params)


# --- preview, confirm, cancel -------------------------------------------------------------


async def test_confirm_saves_only_after_preview_is_confirmed(database: Database) -> None:
    services, [(reg1, ref1), (reg2, ref2)] = await _seated(database, 2)
    preview = await services.results.preview(
        "S1", "s1.csv", _csv(f",{ref1},002X,72.5,60", f",{ref2},002X,缺考,违纪"), staff_id=900
    )
    before = await _stored(database)

    confirmed = await services.results.confirm(preview.import_id, staff_id=901)

    assert before == {}
    assert await _stored(database) == {
        (reg1, "theory"): ("scored", 725, 1),
        (reg1, "practical"): ("scored", 600, 1),
        (reg2, "theory"): ("absent", None, 1),
        (reg2, "practical"): ("disqualified", None, 1),
    }
    assert (confirmed.added, confirmed.replaced, confirmed.removed) == (4, 0, 0)


async def test_confirm_twice_raises_already_decided(database: Database) -> None:
    services, [(_, ref)] = await _seated(database, 1)
    preview = await _imported(services, f",{ref},002X,70,70", name="a.csv", staff_id=901)

    with pytest.raises(AlreadyDecided) as caught:
        await services.results.confirm(preview.import_id, staff_id=902)

    assert (caught.value.decided_by, caught.value.status) == (901, "confirmed")


async def test_cancel_preview_saves_nothing_and_cannot_be_confirmed(database: Database) -> None:
    services, [(_, ref)] = await _seated(database, 1)
    preview = await services.results.preview("S1", "a.csv", _csv(f",{ref},002X,70,70"), 900)

    await services.results.cancel(preview.import_id, staff_id=900)

    with pytest.raises(AlreadyDecided) as caught:
        await services.results.confirm(preview.import_id, staff_id=901)
    assert (caught.value.status, await _stored(database)) == ("cancelled", {})


async def test_confirm_registration_left_since_preview_is_skipped(database: Database) -> None:
    services, [(reg1, ref1), (reg2, ref2)] = await _seated(database, 2)
    preview = await services.results.preview(
        "S1", "a.csv", _csv(f",{ref1},002X,70,70", f",{ref2},002X,80,80"), 900
    )
    async with UnitOfWork(database.sessions) as uow:
        await uow.session.execute(
            update(Registration)
            .where(Registration.id == reg2)
            .values(state=RegistrationState.CANCELLED)
        )
        await uow.commit()

    confirmed = await services.results.confirm(preview.import_id, staff_id=901)

    assert (confirmed.added, confirmed.skipped) == (2, 1)
    assert set(await _stored(database)) == {(reg1, "theory"), (reg1, "practical")}


# --- importing again ----------------------------------------------------------------------


async def test_reimport_before_release_replaces_and_is_audited(database: Database) -> None:
    services, [(reg1, ref1), (reg2, ref2)] = await _seated(database, 2)
    await _imported(services, f",{ref1},002X,58,70", f",{ref2},002X,80,80")

    second = await services.results.preview("S1", "v2.csv", _csv(f",{ref1},002X,62,70"), 900)
    confirmed = await services.results.confirm(second.import_id, staff_id=901)

    assert (second.replaced, second.removed) == (1, 2)
    assert (confirmed.replaced, confirmed.unchanged, confirmed.removed) == (1, 1, 2)
    assert await _stored(database) == {
        (reg1, "theory"): ("scored", 620, 2),
        (reg1, "practical"): ("scored", 700, 1),
    }
    was = {"mark": "scored", "score_tenths": 800}
    assert await _audit(database, "component_result") == [
        (f"{reg1}:theory", "replaced", {
            "import_id": second.import_id,
            "from": {"mark": "scored", "score_tenths": 580},
            "to": {"mark": "scored", "score_tenths": 620},
        }),
        (f"{reg2}:practical", "removed", {"import_id": second.import_id, "from": was, "to": None}),
        (f"{reg2}:theory", "removed", {"import_id": second.import_id, "from": was, "to": None}),
    ]  # fmt: skip


async def test_reimport_of_one_component_keeps_the_other(database: Database) -> None:
    services, [(reg, ref)] = await _seated(database, 1)
    await _imported(services, f",{ref},002X,58,70")
    theory_only = f"reference,id_last4,theory\n{ref},002X,66\n".encode()

    second = await services.results.preview("S1", "theory.csv", theory_only, 900)
    await services.results.confirm(second.import_id, staff_id=900)

    assert (second.components, second.removed) == (("theory",), 0)
    assert await _stored(database) == {
        (reg, "theory"): ("scored", 660, 2),
        (reg, "practical"): ("scored", 700, 1),
    }


async def test_confirm_stale_preview_after_another_was_confirmed_raises(
    database: Database,
) -> None:
    services, [(_, ref)] = await _seated(database, 1)
    older = await services.results.preview("S1", "old.csv", _csv(f",{ref},002X,50,50"), 900)
    newer = await services.results.preview("S1", "new.csv", _csv(f",{ref},002X,90,90"), 901)
    await services.results.confirm(newer.import_id, staff_id=901)

    with pytest.raises(AlreadyDecided) as caught:
        await services.results.confirm(older.import_id, staff_id=900)

    assert (caught.value.decided_by, caught.value.status) == (901, "superseded")


async def test_preview_after_release_raises_results_released(database: Database) -> None:
    services, [(reg, ref)] = await _seated(database, 1)
    await _imported(services, f",{ref},002X,58,70")
    released_at = datetime(2027, 2, 6, 1, 0, tzinfo=UTC)
    await _release(database, released_at)

    with pytest.raises(ResultsReleased) as caught:
        await services.results.preview("S1", "v2.csv", _csv(f",{ref},002X,62,70"), 900)

    assert (caught.value.session_code, caught.value.released_at) == ("S1", released_at)
    assert (await _stored(database))[(reg, "theory")] == ("scored", 580, 1)


async def test_confirm_after_release_raises_and_changes_nothing(database: Database) -> None:
    services, [(reg, ref)] = await _seated(database, 1)
    await _imported(services, f",{ref},002X,58,70")
    second = await services.results.preview("S1", "v2.csv", _csv(f",{ref},002X,62,70"), 900)
    await _release(database, NOW + timedelta(days=58))

    with pytest.raises(ResultsReleased):
        await services.results.confirm(second.import_id, staff_id=900)

    async with UnitOfWork(database.sessions) as uow:
        status = (await uow.session.get(ResultImport, second.import_id)).status
    assert (status, (await _stored(database))[(reg, "theory")]) == ("preview", ("scored", 580, 1))


# --- file formats -------------------------------------------------------------------------


def _xlsx(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def test_preview_xlsx_with_chinese_headers_and_title_row(database: Database) -> None:
    services = await _services(database)
    s1 = await make_session(database, "S1")
    await _seat(database, 1, s1, ticket="S1-J-0001")
    await _seat(database, 2, s1, ticket="S1-J-0002", id_number="371002199001010012")
    await _seat(database, 3, s1, ticket="S1-J-0003")
    await _seat(database, 4, s1, ticket="S1-J-0004")
    data = _xlsx(
        [
            ["2027年1月 成绩"],
            ["准考证号", "姓名", "身份证后四位", "理论知识", "专业能力"],
            ["S1-J-0001", "考生1", "002X", 85.5, 60],
            ["S1-J-0002", "考生2", 12, 72, "缺考"],  # "0012" typed as a number
            ["S1-J-0003", "考生3", "002X", "缺考", "缺考"],
            ["S1-J-0004", "考生4", "002X", 60.25, 70],
        ]
    )

    preview = await services.results.preview("S1", "成绩.xlsx", data, staff_id=900)

    assert (preview.rows, preview.passed, preview.failed, preview.absent) == (4, 1, 1, 1)
    assert preview.refused == (
        RefusedRow(6, "score_too_many_decimals", {"component": "theory", "value": "60.25"}),
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
async def test_preview_csv_in_each_encoding_reads_the_same(
    database: Database, encoding: str
) -> None:
    services, [(_, ref1), (_, ref2)] = await _seated(database, 2)
    text = f"报名编号,身份证后四位,理论知识,专业能力\n{ref1},002X,88,违纪\n{ref2},002X,61,60.5\n"

    preview = await services.results.preview("S1", "s1.csv", text.encode(encoding), 900)

    assert (preview.passed, preview.failed, preview.refused) == (1, 1, ())
