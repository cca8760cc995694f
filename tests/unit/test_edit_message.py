"""Every handler edits a pressed message through `handlers.render.edit_message`, the one
place where Telegram's "message is not modified" (a double tap) is no error."""

from __future__ import annotations

import ast
from pathlib import Path

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
EDITS = ("edit_message_text", "edit_message_reply_markup", "edit_message_caption")


def test_handlers_edit_pressed_messages_only_through_edit_message() -> None:
    offenders = []
    for path in sorted(HANDLERS.glob("*.py")):
        if path.name == "render.py":  # where edit_message lives
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # context.bot.edit_… edits a message by id (not a press) and handles its errors
            if (
                isinstance(node, ast.Attribute)
                and node.attr in EDITS
                and ast.unparse(node.value) != "context.bot"
            ):
                offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []
