"""The admission ticket PDF: it opens, has one page, shows the Chinese name and labels in both
languages, and its QR code carries a reference that verifies (a tampered one does not)."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime

import pytest
from PIL import Image
from pypdf import PdfReader
from reportlab.pdfgen.canvas import Canvas

from bot.crypto import Vault
from bot.i18n import I18n
from bot.services.tickets import TicketComponent, TicketData
from handlers.tickets_pdf import qr_drawing, render_ticket

VAULT = Vault("pdf-test-secret-" + "s" * 32)
SIGNED = VAULT.sign("tk:2027-01-J-0007")
I18N = I18n("zh_Hans")
ZH, EN = I18N.translator("zh_Hans"), I18N.translator("en")


def _data(**changes: object) -> TicketData:
    values: dict[str, object] = {
        "registration_id": 7,
        "ticket_number": "2027-01-J-0007",
        "signed_reference": SIGNED,
        "qr_payload": SIGNED,
        "full_name": "张小三",
        "gender": "female",
        "id_number_masked": "1101**********002X",
        "photo_file_id": None,
        "level_code": "junior",
        "level_name": {"zh_Hans": "初级", "en": "Junior"},
        "direction_name": {
            "zh_Hans": "智能装备与产线应用",
            "en": "Smart equipment and production line application",
        },
        "session_code": "2027-01",
        "exam_date": date(2027, 1, 16),
        "timezone": "Asia/Shanghai",
        "components": (
            TicketComponent(
                "theory",
                {"zh_Hans": "理论知识", "en": "Theory"},
                datetime(2027, 1, 16, 1, tzinfo=UTC),
                datetime(2027, 1, 16, 2, 30, tzinfo=UTC),
                {"zh_Hans": "机房 A301", "en": "Computer room A301"},
                "007",
            ),
            TicketComponent(
                "practical",
                {"zh_Hans": "专业能力", "en": "Practical skills"},
                datetime(2027, 1, 16, 5, 30, tzinfo=UTC),
                datetime(2027, 1, 16, 7, 30, tzinfo=UTC),
                {"zh_Hans": "智能制造实训中心 B105", "en": "Smart manufacturing lab B105"},
                "007",
            ),
        ),
        "site_name": {
            "zh_Hans": "哈尔滨理工大学 荣成校区",
            "en": "Harbin University of Science and Technology (HUST), Rongcheng campus",
        },
        "site_address": {
            "zh_Hans": "山东省威海市荣成市学府路2006号",
            "en": "2006 Xuefu Road, Rongcheng, Weihai, Shandong",
        },
        "organisation_name": {
            "zh_Hans": "中国机械工程学会",
            "en": "Chinese Mechanical Engineering Society (CMES)",
        },
        "occupation_name": {
            "zh_Hans": "智能制造工程技术人员",
            "en": "Smart Manufacturing Engineering Technician",
        },
        "issued_at": datetime(2027, 1, 9, 1, tzinfo=UTC),
    }
    return TicketData(**(values | changes))  # type: ignore[arg-type]


def _text(pdf: bytes) -> str:
    return PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def _rect_ops(content: bytes) -> list[bytes]:
    """The QR modules as drawn: every `x y w h re` operation, in order."""
    return [line.strip() for line in content.splitlines() if b" re " in line + b" "]


def test_render_ticket_opens_with_one_page_showing_the_chinese_name() -> None:
    reader = PdfReader(io.BytesIO(render_ticket(_data(), ZH, EN)))

    text = reader.pages[0].extract_text()

    assert (len(reader.pages), "张小三" in text, "1101**********002X" in text) == (1, True, True)


def test_render_ticket_shows_labels_chinese_first_then_english() -> None:
    text = _text(render_ticket(_data(), ZH, EN))

    found = [
        label in text
        for label in (
            "准考证",
            "Admission ticket",
            "考生须知",
            "Rules for candidates",
            "请于考试开始前30分钟到达考场。",
            "机房 A301",
            "座位号",
            "哈尔滨理工大学 荣成校区",
            "中国机械工程学会",
            "智能装备与产线应用",
        )
    ]
    assert found == [True] * 10
    assert text.index("准考证") < text.index("Admission ticket")


def test_render_ticket_reference_verifies_and_tampered_reference_does_not() -> None:
    pdf = render_ticket(_data(), ZH, EN)

    [printed] = re.findall(r"tk:[\w-]+\.[\w-]+", _text(pdf))
    tampered = printed.replace("J-0007", "J-0008")

    actual = (
        printed,
        VAULT.verify(printed),
        VAULT.verify(tampered),
        PdfReader(io.BytesIO(pdf)).metadata.subject,
    )
    assert actual == (SIGNED, "tk:2027-01-J-0007", None, SIGNED)


def test_render_ticket_qr_code_encodes_the_reference() -> None:
    """No QR decoder is available offline, so: the modules drawn on the ticket are exactly the
    modules of a QR code made from the printed reference, and not those of a tampered one."""
    ticket_ops = _rect_ops(
        PdfReader(io.BytesIO(render_ticket(_data(), ZH, EN))).pages[0].get_contents().get_data()
    )

    def modules(payload: str) -> list[bytes]:
        buffer = io.BytesIO()
        canvas = Canvas(buffer, pageCompression=0)
        qr_drawing(payload).drawOn(canvas, 0, 0)
        canvas.save()
        return _rect_ops(
            PdfReader(io.BytesIO(buffer.getvalue())).pages[0].get_contents().get_data()
        )

    def contains(ops: list[bytes], part: list[bytes]) -> bool:
        return any(ops[i : i + len(part)] == part for i in range(len(ops) - len(part) + 1))

    genuine, tampered = modules(SIGNED), modules(SIGNED.replace("J-0007", "J-0008"))
    assert (len(genuine) > 50, contains(ticket_ops, genuine), contains(ticket_ops, tampered)) == (
        True,
        True,
        False,
    )


def test_render_ticket_with_check_url_puts_the_url_in_the_qr_code() -> None:
    url = f"https://exam.example.org/tickets/verify?ref={SIGNED}"
    ticket_ops = _rect_ops(
        PdfReader(io.BytesIO(render_ticket(_data(qr_payload=url), ZH, EN)))
        .pages[0]
        .get_contents()
        .get_data()
    )
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pageCompression=0)
    qr_drawing(url).drawOn(canvas, 0, 0)
    canvas.save()
    expected = _rect_ops(
        PdfReader(io.BytesIO(buffer.getvalue())).pages[0].get_contents().get_data()
    )

    assert any(ticket_ops[i : i + len(expected)] == expected for i in range(len(ticket_ops)))


def _photo(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (413, 579), (200, 210, 230)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_render_ticket_with_photo_embeds_the_image(fmt: str) -> None:
    pdf = render_ticket(_data(), ZH, EN, photo=_photo(fmt))

    page = PdfReader(io.BytesIO(pdf)).pages[0]

    assert (len(page.images), "照片已存档" in page.extract_text()) == (1, False)


@pytest.mark.parametrize("photo", [None, b"not an image"])
def test_render_ticket_without_usable_photo_shows_photo_on_file_box(photo: bytes | None) -> None:
    pdf = render_ticket(_data(), ZH, EN, photo=photo)

    page = PdfReader(io.BytesIO(pdf)).pages[0]

    assert (
        len(page.images),
        "照片已存档" in page.extract_text(),
        "Photo on file" in page.extract_text(),
    ) == (0, True, True)


def test_render_ticket_with_latin_name_and_passport_renders() -> None:
    text = _text(
        render_ticket(
            _data(full_name="Ann Smith", gender="male", id_number_masked="E1*****89"), ZH, EN
        )
    )

    assert ("Ann Smith" in text, "E1*****89" in text, "男" in text) == (True, True, True)


def _fonts(pdf: bytes) -> dict[str, set[str]]:
    """Every font of the page by base name, with the font-file keys of its descriptor."""
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    found: dict[str, set[str]] = {}
    for font in page["/Resources"]["/Font"].values():
        font = font.get_object()
        descriptors = [font.get("/FontDescriptor")] + [
            d.get_object().get("/FontDescriptor") for d in font.get("/DescendantFonts", [])
        ]
        files = {
            key
            for d in descriptors
            if d is not None
            for key in ("/FontFile", "/FontFile2", "/FontFile3")
            if key in d.get_object()
        }
        found[str(font["/BaseFont"])] = files
    return found


def test_render_ticket_embeds_the_cjk_font_subset_as_truetype() -> None:
    fonts = _fonts(render_ticket(_data(), ZH, EN))

    cjk = {name: files for name, files in fonts.items() if "WenQuanYi" in name}
    assert (len(cjk) >= 1, all(files == {"/FontFile2"} for files in cjk.values())) == (True, True)
    # Base-14 Latin fonts only besides it: nothing the viewer has to supply for the Chinese.
    assert "STSong-Light" not in " ".join(fonts)


def test_render_ticket_chinese_and_middle_dot_extract_from_the_embedded_font() -> None:
    text = _text(render_ticket(_data(), ZH, EN))

    found = [
        phrase in text
        for phrase in (
            "智能制造工程技术人员 · 初级",
            "张小三",
            "2027年1月16日（周六）",
            "考生须知",
        )
    ]
    assert found == [True, True, True, True]


def test_render_ticket_for_a_passport_holder_says_passport() -> None:
    text = _text(render_ticket(_data(id_doc_type="passport"), ZH, EN))

    found = [
        phrase in text
        for phrase in ("护照号码", "Passport number", "Bring your passport", "身份证", "ID card")
    ]
    assert found == [True, True, True, False, False]
