"""The certificate record PDF: one page, bilingual, says it is a record and not the
certificate, shows the holder's Chinese name and masked ID number, embeds the Chinese font
as a subset, carries the verification link in its QR code, and says REVOKED when it is."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from pypdf import PdfReader
from reportlab.pdfgen.canvas import Canvas

from bot.domain.certificates import CertificateStatus
from bot.i18n import I18n
from bot.services.certificates import CertificateRecord, certificate_link
from handlers.certificate_pdf import render_certificate_record
from handlers.pdf import qr_drawing

I18N = I18n("zh_Hans")
ZH, EN = I18N.translator("zh_Hans"), I18N.translator("en")
LINK = "https://exam.example/certificates/verify/AbCdEf123456"


def _record(**changes: object) -> CertificateRecord:
    values: dict[str, object] = {
        "number": "RC202701-JUNIOR-0007",
        "level_code": "junior",
        "level_names": {"zh_Hans": "初级", "en": "Junior"},
        "direction_names": {"zh_Hans": "智能装备与产线开发", "en": "Equipment development"},
        "occupation_names": {
            "zh_Hans": "智能制造工程技术人员",
            "en": "Smart Manufacturing Engineering Technician",
        },
        "organisation_names": {
            "zh_Hans": "中国机械工程学会",
            "en": "Chinese Mechanical Engineering Society (CMES)",
        },
        "issued_on": date(2027, 3, 20),
        "status": CertificateStatus.VALID,
        "revoked_at": None,
        "holder_name": "张小三",
        "id_doc_type": "id_card",
        "id_number_masked": "1101**********002X",
        "link": LINK,
        "timezone": "Asia/Shanghai",
    }
    return CertificateRecord(**(values | changes))  # type: ignore[arg-type]


def _text(pdf: bytes) -> str:
    return PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def _rect_ops(content: bytes) -> list[bytes]:
    return [line.strip() for line in content.splitlines() if b" re " in line + b" "]


def _qr_ops(payload: str) -> list[bytes]:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pageCompression=0)
    qr_drawing(payload).drawOn(canvas, 0, 0)
    canvas.save()
    return _rect_ops(PdfReader(io.BytesIO(buffer.getvalue())).pages[0].get_contents().get_data())


def test_render_record_one_page_bilingual_with_holder_and_number() -> None:
    reader = PdfReader(io.BytesIO(render_certificate_record(_record(), ZH, EN)))
    text = reader.pages[0].extract_text()

    found = [
        part in text
        for part in (
            "证书信息记录",
            "Certificate record",
            "This is a record of the certificate, not the certificate itself.",
            "张小三",
            "1101**********002X",
            "RC202701-JUNIOR-0007",
            "初级",
            "Junior",
            "智能装备与产线开发",
            "中国机械工程学会",
            "2027年3月20日",
            LINK,
        )
    ]
    assert (len(reader.pages), found) == (1, [True] * 12)
    assert text.index("证书信息记录") < text.index("Certificate record")
    assert "REVOKED" not in text


def test_render_record_embeds_the_chinese_font_as_a_subset() -> None:
    reader = PdfReader(io.BytesIO(render_certificate_record(_record(), ZH, EN)))

    fonts = reader.pages[0]["/Resources"]["/Font"]
    names = sorted(str(font.get_object()["/BaseFont"]) for font in fonts.values())

    assert any(name.startswith("/") and "+" in name for name in names)
    assert any("WenQuanYi" in name or "AAAAAA" in name for name in names)


def test_render_record_qr_code_carries_the_verification_link() -> None:
    ops = _rect_ops(
        PdfReader(io.BytesIO(render_certificate_record(_record(), ZH, EN)))
        .pages[0]
        .get_contents()
        .get_data()
    )
    genuine, other = _qr_ops(LINK), _qr_ops(LINK.replace("AbCd", "ZZZZ"))

    def contains(part: list[bytes]) -> bool:
        return any(ops[i : i + len(part)] == part for i in range(len(ops) - len(part) + 1))

    assert (len(genuine) > 50, contains(genuine), contains(other)) == (True, True, False)


def test_render_record_revoked_says_so_large_with_the_date() -> None:
    revoked = _record(
        status=CertificateStatus.REVOKED, revoked_at=datetime(2027, 5, 1, 2, 0, tzinfo=UTC)
    )

    text = _text(render_certificate_record(revoked, ZH, EN))

    assert ("已撤销" in text, "REVOKED" in text, "2027年5月1日" in text) == (True, True, True)


def test_certificate_link_public_page_else_deep_link_else_none() -> None:
    links = (
        certificate_link("AbC", public_url="https://exam.example/", bot_username="examdesk_bot"),
        certificate_link("AbC", public_url=None, bot_username="examdesk_bot"),
        certificate_link("AbC", public_url=None, bot_username=None),
    )

    assert links == (
        "https://exam.example/certificates/verify/AbC",
        "https://t.me/examdesk_bot?start=verify_AbC",
        "",
    )
