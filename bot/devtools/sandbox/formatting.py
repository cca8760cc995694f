"""Bot API sandbox: parse_mode handling and entity detection, as Telegram's server does.

`parse(text, parse_mode)` returns the plain text plus MessageEntity dicts (offsets and
lengths in UTF-16 code units), or raises `ParseError` with Telegram's wording for the
mistakes bots really make (unescaped `<` in HTML, unescaped reserved characters in
MarkdownV2, unclosed tags). `detect_entities(text)` finds the entities Telegram adds to
user-typed text (bot commands, mentions, URLs, e-mails).
"""

from __future__ import annotations

import html
import re
from typing import Any


class ParseError(ValueError):
    """Text that Telegram would refuse with `can't parse entities: ...`."""


def utf16_len(s: str) -> int:
    """Length in UTF-16 code units, the unit of MessageEntity offsets."""
    return len(s.encode("utf-16-le")) // 2


def parse(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities for `text` sent with `parse_mode` (None = as is)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown(text, v2=True)
    if mode == "markdown":
        return _parse_markdown(text, v2=False)
    if mode:
        raise ParseError(f"unsupported parse_mode {parse_mode!r}")
    return text, []


def strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace as Telegram does, moving and clipping entities."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    out = []
    for e in entities:
        start = max(0, e["offset"] - lead)
        stop = min(end, e["offset"] - lead + e["length"])
        if stop > start:
            out.append({**e, "offset": start, "length": stop - start})
    return stripped, out


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_TOKEN = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^>]*)?)>|&(#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);"
)
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    pos16 = 0
    stack: list[tuple[str, int, dict[str, Any]]] = []
    entities: list[dict[str, Any]] = []
    i = 0

    def emit(s: str) -> None:
        nonlocal pos16
        if "<" in s:
            at = len(text[: i + s.index("<")].encode())
            raise ParseError(f"Unsupported start tag at byte offset {at}")
        out.append(s)
        pos16 += utf16_len(s)

    for m in _HTML_TOKEN.finditer(text):
        emit(text[i : m.start()])
        i = m.end()
        if m.group(4):
            out.append(html.unescape("&" + m.group(4) + ";"))
            pos16 += utf16_len(out[-1])
            continue
        closing, tag, attrs = m.group(1), m.group(2).lower(), m.group(3) or ""
        if tag not in _HTML_TAGS:
            raise ParseError(
                f'Unsupported start tag "{tag}" at byte offset {len(text[: m.start()].encode())}'
            )
        if not closing:
            extra = {k.lower(): a or b or c for k, a, b, c in _ATTR.findall(attrs)}
            if tag == "span" and extra.get("class") != "tg-spoiler":
                raise ParseError('Tag "span" must have class "tg-spoiler"')
            stack.append((tag, pos16, extra))
            continue
        if not stack or stack[-1][0] != tag:
            expected = f"</{stack[-1][0]}>" if stack else "nothing"
            raise ParseError(
                f"Unmatched end tag at byte offset {len(text[: m.start()].encode())}, "
                f'expected "{expected}", found "</{tag}>"'
            )
        _, start, extra = stack.pop()
        entity: dict[str, Any] = {
            "type": _HTML_TAGS[tag],
            "offset": start,
            "length": pos16 - start,
        }
        if tag == "a":
            entity["url"] = extra.get("href", "")
        elif tag == "blockquote" and "expandable" in attrs:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = extra.get("emoji-id", "")
        elif tag == "code" and stack and stack[-1][0] == "pre" and "class" in extra:
            # <pre><code class="language-x"> becomes one pre entity with a language.
            stack[-1][2]["language"] = extra["class"].removeprefix("language-")
            continue
        if tag == "pre" and extra.get("language"):
            entity["language"] = extra["language"]
        if entity["length"]:
            entities.append(entity)
    emit(text[i:])
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_MARKS = [
    ("```", "pre"),
    ("||", "spoiler"),
    ("__", "underline"),
    ("*", "bold"),
    ("_", "italic"),
    ("~", "strikethrough"),
    ("`", "code"),
]
_MD1_MARKS = [("```", "pre"), ("*", "bold"), ("_", "italic"), ("`", "code")]


def _parse_markdown(text: str, v2: bool) -> tuple[str, list[dict[str, Any]]]:
    marks = _MD2_MARKS if v2 else _MD1_MARKS
    out: list[str] = []
    pos16 = 0
    open_: dict[str, tuple[int, int]] = {}  # mark -> (utf16 start, byte offset)
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)

    def add(s: str) -> None:
        nonlocal pos16
        out.append(s)
        pos16 += utf16_len(s)

    while i < n:
        ch = text[i]
        if ch == "\\" and v2 and i + 1 < n:
            add(text[i + 1])
            i += 2
            continue
        if "code" in open_ or "pre" in open_:
            closer = "```" if "pre" in open_ else "`"
            if text.startswith(closer, i):
                kind = "pre" if closer == "```" else "code"
                start, _ = open_.pop(kind)
                entities.append({"type": kind, "offset": start, "length": pos16 - start})
                i += len(closer)
            else:
                add(ch)
                i += 1
            continue
        if ch == "[":
            close = text.find("](", i)
            end = text.find(")", close) if close != -1 else -1
            if close != -1 and end != -1:
                label, url = text[i + 1 : close], text[close + 2 : end]
                start = pos16
                inner, inner_entities = _parse_markdown(label, v2)
                for e in inner_entities:
                    entities.append({**e, "offset": e["offset"] + start})
                add(inner)
                entities.append(
                    {"type": "text_link", "offset": start, "length": pos16 - start, "url": url}
                )
                i = end + 1
                continue
        for mark, kind in marks:
            if text.startswith(mark, i):
                i += len(mark)
                if kind in open_:
                    start, _ = open_.pop(kind)
                    if pos16 > start:
                        entities.append({"type": kind, "offset": start, "length": pos16 - start})
                else:
                    open_[kind] = (pos16, len(text[: i - len(mark)].encode()))
                    if kind == "pre" and "\n" in text[i:]:
                        # ```python\ncode``` : the first line names the language.
                        first, _rest = text[i:].split("\n", 1)
                        if first and " " not in first and "```" not in first:
                            i += len(first) + 1
                break
        else:
            if v2 and ch in _MD2_RESERVED:
                raise ParseError(
                    f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
                )
            add(ch)
            i += 1
    if open_:
        kind, (_, at) = next(iter(open_.items()))
        name = kind.capitalize() if v2 else "the"
        raise ParseError(f"Can't find end of {name} entity starting at byte offset {at}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_DETECT = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?)"
    r"|(?P<email>\b[\w.+-]+@[\w-]+\.[\w.-]+\b)"
    r"|(?P<mention>(?<!\w)@[A-Za-z0-9_]{4,32})"
    r"|(?P<url>\bhttps?://[^\s<>]+)"
)


def detect_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram attaches to text a user typed."""
    entities = []
    for m in _DETECT.finditer(text):
        kind = m.lastgroup or "url"
        entities.append(
            {"type": kind, "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        )
    return entities
