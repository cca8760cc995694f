"""Every notification a service can queue has a renderer (checked here, not as a failed
outbox row at send time), and services name templates only through `Template`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import handlers
from bot.i18n import I18n
from bot.runtime.notifications import UnknownTemplate
from bot.services.notify import Template

SERVICES = Path(__file__).resolve().parents[2] / "bot" / "services"


def test_every_template_has_a_renderer() -> None:
    missing = {str(t) for t in Template} - handlers.templates().names()
    assert missing == set()


def test_every_renderer_belongs_to_a_template() -> None:
    unknown = handlers.templates().names() - {str(t) for t in Template}
    assert unknown == set()


def test_services_write_template_names_only_through_notify() -> None:
    # A payload literal {"template": ...} outside notify.py would bypass the enum.
    offenders = []
    for path in sorted(SERVICES.glob("*.py")):
        if path.name == "notify.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "template" for k in node.keys
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_render_unknown_template_raises_with_its_name() -> None:
    tr = I18n("en").translator("en")
    with pytest.raises(UnknownTemplate) as caught:
        handlers.templates().render({"template": "no.such.template", "params": {}}, tr)
    assert caught.value.args == ("no.such.template",)
