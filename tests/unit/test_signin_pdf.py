"""The sign-in sheet PDF read back with pypdf: header (session, room, component, time),
one row per candidate (name, ticket number, masked ID, seat) with the photo embedded,
page numbers over several pages, and an empty box where a photo is missing or broken."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from PIL import Image
from pypdf import PdfReader

from bot.i18n import I18n
from bot.services.rosters import RosterComponent, RosterEntry, SigninSheet
from handlers.signin_pdf import ROWS_PER_PAGE, render_signin

ZH = I18n("zh_Hans").translator("zh_Hans")
EN = I18n("zh_Hans").translator("en")
THEORY = RosterComponent(
    code="theory",
    name={"zh_Hans": "理论知识", "en": "Theory"},
    starts_at=datetime(2027, 1, 9, 1, 0, tzinfo=UTC),
    ends_at=datetime(2027, 1, 9, 2, 30, tzinfo=UTC),
    room={"zh_Hans": "机房 A301", "en": "Computer room A301"},
)


def _entry(n: int, name: str, photo: str | None = None) -> RosterEntry:
    return RosterEntry(
        registration_id=n,
        ticket_number=f"2027-01-J-{n:04d}",
        seat=f"{n:03d}",
        full_name=name,
        gender="female",
        id_doc_type="resident_id",
        id_masked="1101**********002X",
        id_full=None,
        phone=None,
        level_code="junior",
        level_name={"zh_Hans": "初级", "en": "Junior"},
        direction_code=None,
        direction_name=None,
        components=("theory",),
        state="paid",
        paid_by=None,
        checked_in_at=None,
        photo_file_id=photo,
    )


def _sheet(*entries: RosterEntry) -> SigninSheet:
    return SigninSheet("2027-01", date(2027, 1, 9), "Asia/Shanghai", THEORY, entries)


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (413, 579), (200, 210, 230)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_render_signin_has_header_rows_and_the_photo() -> None:
    sheet = _sheet(_entry(1, "张小三", "photo-1"), _entry(2, "Ann Smith"))

    pdf = render_signin(sheet, ZH, EN, {"photo-1": _photo()})

    [page] = PdfReader(io.BytesIO(pdf)).pages
    text = page.extract_text()
    found = [
        part in text
        for part in (
            "签到表",
            "Sign-in sheet",
            "2027-01",
            "理论知识",
            "09:00–10:30",
            "机房 A301",
            "Computer room A301",
            "张小三",
            "Ann Smith",
            "2027-01-J-0001",
            "2027-01-J-0002",
            "1101**********002X",
            "签名",
            "第 1 页，共 1 页",
            "Page 1 of 1",
        )
    ]
    assert (pdf[:5], found, len(page.images), text.count("无照片")) == (
        b"%PDF-",
        [True] * 15,
        1,
        1,
    )


def test_render_signin_many_candidates_numbers_the_pages() -> None:
    entries = [_entry(n, f"Candidate {n}") for n in range(1, ROWS_PER_PAGE + 3)]

    reader = PdfReader(io.BytesIO(render_signin(_sheet(*entries), ZH, EN, {})))

    texts = [page.extract_text() for page in reader.pages]
    assert [
        ("Page 1 of 2" in texts[0], "Page 2 of 2" in texts[1]),
        [f"Candidate {ROWS_PER_PAGE + 2}" in t for t in texts],
        ["签到表" in t and "机房 A301" in t for t in texts],
    ] == [(True, True), [False, True], [True, True]]


def test_render_signin_broken_photo_leaves_an_empty_box() -> None:
    pdf = render_signin(_sheet(_entry(1, "张小三", "p")), ZH, EN, {"p": b"not an image"})

    page = PdfReader(io.BytesIO(pdf)).pages[0]

    assert (len(page.images), "无照片" in page.extract_text()) == (0, True)


def test_render_signin_empty_sheet_says_so() -> None:
    page = PdfReader(io.BytesIO(render_signin(_sheet(), ZH, EN, {}))).pages[0]

    assert "No paid candidates booked this component." in page.extract_text()
