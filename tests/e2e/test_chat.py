"""End-to-end: `examdesk chat --script` and `examdesk run` without a token, as subprocesses.

Each run gets its own SQLite file and no token; the bot runs for real against the
in-process sandbox, so these check the whole path: migrations, catalogue loading,
polling, handlers, rendering. The working directory is a temporary one so a developer's
`.env` (with a real token) is never read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.devtools.chat import format_amount, make_png, render_message, render_reply_keyboard
from bot.devtools.sandbox.media import image_size

ROOT = Path(__file__).resolve().parents[2]


def run_examdesk(
    args: list[str], script: str, tmp_path: Path, lang: str = "en_US.UTF-8"
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EXAMDESK_") and k not in ("LC_ALL", "LC_MESSAGES", "LANGUAGE")
    }
    env.update(
        EXAMDESK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'chat.sqlite3'}",
        EXAMDESK_SECRET_KEY="chat-test-secret-key-0123456789abcdef",
        EXAMDESK_BOT_TOKEN="",
        LANG=lang,
        PYTHONPATH=str(ROOT),
        PYTHONIOENCODING="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=script,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("lang", "greeting", "help_button", "help_line"),
    [
        ("zh_CN.UTF-8", "哈尔滨理工大学", "❓ 帮助", "  /start：主菜单"),
        (
            "en_US.UTF-8",
            "Harbin University of Science and Technology",
            "❓ Help",
            "  /start: main menu",
        ),
    ],
    ids=["zh", "en"],
)
def test_chat_script_start_and_press_shows_menu_in_language(
    tmp_path: Path, lang: str, greeting: str, help_button: str, help_line: str
) -> None:
    script = f"# a comment\n/start\n\n:press {help_button}\n/language\n:2\n"
    result = run_examdesk(["chat", "--script"], script, tmp_path, lang)

    assert (result.returncode, "Traceback" in result.stderr) == (0, False), result.stderr
    lines = result.stdout.splitlines()
    start, pressed = lines.index("> /start"), lines.index(f"> :press {help_button}")
    assert lines[start + 1].startswith("bot: ") and greeting in lines[start + 1]
    menu = [line for line in lines[start:pressed] if re.match(r"^  \[\d+\] ", line)]
    assert [f"] {help_button}" in line for line in menu].count(True) == 1
    assert help_line in lines[pressed + 1 :]
    language = lines.index("> /language")
    assert lines[language + 2] == "  [1] 中文  [2] English"
    assert lines[language + 3 : language + 6] == [
        "> :2",
        "(pressed English)",
        "bot (edited): Language set to English.",
    ]


def test_chat_script_missing_button_exits_nonzero(tmp_path: Path) -> None:
    result = run_examdesk(["chat", "--script"], "/start\n:press 99\n/help\n", tmp_path)

    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("examdesk chat: line 2: no button 99: the latest message has buttons 1-")
    )
    assert "Traceback" not in result.stderr
    assert "> /help" not in result.stdout  # the script stops at the failing line


def test_run_without_token_opens_chat(tmp_path: Path) -> None:
    result = run_examdesk(["run"], "/start\n", tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == "examdesk: no EXAMDESK_BOT_TOKEN set: opening the local sandbox (examdesk chat)."
    )
    assert lines[1] == "> /start"
    assert "Harbin University of Science and Technology" in lines[2]


def test_chat_script_staff_group_message_shows_in_staff_chat(tmp_path: Path) -> None:
    script = ":group /help\n:as candidate\n:group hello\n"
    result = run_examdesk(["chat", "--script", "--staff"], script, tmp_path)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1] == "bot @ staff group: Staff commands for your roles (admin):"
    assert "(you are now 考生 (candidate, id 10001))" in lines
    assert result.stderr.strip().splitlines()[-1] == (
        "examdesk chat: line 3: only staff write in the staff group (:as staff first)"
    )


def test_render_message_with_keyboard_numbers_buttons_across_rows() -> None:
    msg = {
        "text": "Choose:",
        "reply_markup": {
            "inline_keyboard": [
                [
                    {"text": "中文", "callback_data": "lang:zh_Hans"},
                    {"text": "English", "callback_data": "lang:en"},
                ],
                [{"text": "Site", "url": "https://example.org"}],
            ]
        },
    }

    assert render_message(msg) == [
        "bot: Choose:",
        "  [1] 中文  [2] English",
        "  [3] Site <https://example.org>",
    ]


def test_render_message_media_shows_kind_and_size() -> None:
    photo = {
        "photo": [{"width": 90, "height": 126}, {"width": 413, "height": 579}],
        "caption": "ID photo",
    }
    document = {"document": {"file_name": "ticket.pdf"}}
    invoice = {
        "invoice": {
            "title": "Exam fee",
            "description": "Level 3",
            "currency": "CNY",
            "total_amount": 32000,
        }
    }

    assert render_message(photo, edited=True) == ["bot (edited): [photo 413x579]", "  ID photo"]
    assert render_message(document, "staff group") == ["bot @ staff group: [document ticket.pdf]"]
    assert render_message(invoice) == ["bot: [invoice: Exam fee, 320.00 CNY]", "  Level 3"]


def test_render_reply_keyboard_marks_contact_request() -> None:
    markup = {
        "keyboard": [[{"text": "📱 Share phone", "request_contact": True}, {"text": "Cancel"}]]
    }

    assert render_reply_keyboard(markup) == [
        "keyboard:",
        "  [📱 Share phone] (shares your contact: :contact)  [Cancel]",
    ]
    assert render_reply_keyboard(None) == ["keyboard: (removed)"]


def test_format_amount_uses_currency_exponent() -> None:
    assert [format_amount(32000, "CNY"), format_amount(150, "XTR")] == ["320.00 CNY", "150 XTR"]


def test_make_png_has_id_photo_size() -> None:
    assert image_size(make_png()) == (413, 579)


def test_chat_script_presses_a_button_of_an_earlier_message_by_its_number(
    tmp_path: Path,
) -> None:
    script = "/start\n/language\n:messages\n:6@1\n:press 2@2\n:9@1\n"
    result = run_examdesk(["chat", "--script"], script, tmp_path)

    lines = result.stdout.splitlines()
    listed = lines.index("> :messages")
    assert lines[listed + 1 : listed + 3] == [
        "#1 bot: Welcome, 考生! I am the registration desk of the Smart Manufa…  (6 buttons)",
        "#2 bot: Choose your language:  (2 buttons)",
    ]
    help_press, language_press = lines.index("> :6@1"), lines.index("> :press 2@2")
    assert lines[help_press + 1 : help_press + 3] == [
        "(pressed ❓ Help)",
        "bot: I help you take the Smart Manufacturing Engineering Technician exam:",
    ]
    assert lines[language_press + 1 : language_press + 3] == [
        "(pressed English)",
        "bot (edited): Language set to English.",
    ]
    assert (result.returncode, result.stderr.strip().splitlines()[-1]) == (
        1,
        "examdesk chat: line 6: no button 9: message 1 has buttons 1-6",
    )


def test_chat_script_saves_a_received_document_to_a_file(tmp_path: Path) -> None:
    (tmp_path / "notice.txt").write_bytes("Room A302 · 考场变更\n".encode())
    (tmp_path / "saved").mkdir()
    script = ":as staff\n/broadcast\n:doc notice.txt\n:press 1\n:save saved\n:save 3 copy.txt\n"
    result = run_examdesk(["chat", "--script"], script, tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "bot: [document notice.txt]" in lines
    assert lines[-3:] == [
        "(saved notice.txt, 26 bytes, to saved/notice.txt)",
        "> :save 3 copy.txt",
        "(saved notice.txt, 26 bytes, to copy.txt)",
    ]
    assert [(tmp_path / f).read_bytes() for f in ("saved/notice.txt", "copy.txt")] == [
        (tmp_path / "notice.txt").read_bytes()
    ] * 2


def test_chat_script_prints_outbox_messages_that_arrive_before_it_ends(tmp_path: Path) -> None:
    # "Send now" queues the broadcast in the outbox; the staff member's own copy waits
    # behind the replies just sent to the same chat (1 message/s per chat), after the
    # press has settled: the script must still print it before it exits.
    script = ":as staff\n/broadcast\nRoom A302 from now on.\n:press 1\n:press ▶️ Send now\n"
    result = run_examdesk(["chat", "--script"], script, tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    after = lines[lines.index("> :press ▶️ Send now") + 1 :]
    assert "bot: Room A302 from now on." in after
