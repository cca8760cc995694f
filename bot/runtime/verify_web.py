"""The public certificate verification page (docs/verification.md), rendered with Jinja2.

Entry point: `setup(app, verification, i18n)`, called once by `create_web_app`. Routes:

* `GET /certificates/verify`: the form (certificate number + holder name); with
  `?number=…&name=…` it also answers, so a link can carry a look-up;
* `POST /certificates/verify`: what the form sends. POST keeps the holder's full name
  and the number out of the address bar, the browser history, proxy and access logs and
  the Referer header; the answer page carries no personal data beyond the masked name;
* `GET /certificates/verify/<code>`: the QR / link target; the code alone answers;
* `GET /certificates/static/verify.css`: the only asset (no script, nothing external).

The language is the `lang` parameter (query or form) when it names a catalogue, else the
best of Accept-Language, else the site default; every link and the form keep it. Every
text comes from the translator (the templates hold no words) and Jinja2 escapes
everything. The client is `request.remote` (behind a proxy: the proxy's address, see the
docs); the service stores it only as a keyed hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.i18n import I18n, Translator
from bot.services.verification import TooManyAttempts, VerificationService, Verified

TEMPLATES_DIR = Path(__file__).with_name("templates")
PAGE = "/certificates/verify"
CSS = "/certificates/static/verify.css"
NATIONAL_LOOKUP = "http://zscx.osta.org.cn/"
OFFICIAL_LANGUAGE = "zh_Hans"
HTML_LANG = {"zh_Hans": "zh-Hans", "en": "en"}
SWITCH_LABELS = {"zh_Hans": "中文", "en": "English"}  # each in its own language
# Accept-Language tags for Simplified Chinese; traditional-script tags are not mapped.
_ZH_HANS_TAGS = {"zh", "zh-cn", "zh-hans", "zh-sg", "zh-my", "zh-hans-cn"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # an answer is about a person: never kept by a cache
}


@dataclass(frozen=True)
class VerifyDeps:
    verification: VerificationService
    i18n: I18n
    css: bytes


VERIFY = web.AppKey("verify", VerifyDeps)


def setup(app: web.Application, verification: VerificationService, i18n: I18n) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        default_helpers=False,
        undefined=jinja2.StrictUndefined,
    )
    app[VERIFY] = VerifyDeps(verification, i18n, (TEMPLATES_DIR / "verify.css").read_bytes())
    app.router.add_get(PAGE, verify_page)
    app.router.add_post(PAGE, verify_page)
    app.router.add_get(PAGE + "/{code}", verify_code)
    app.router.add_get(CSS, stylesheet)


async def verify_page(request: web.Request) -> web.Response:
    """The form; with a number and a name (query or form), the answer under it."""
    deps = request.app[VERIFY]
    fields: Any = await request.post() if request.method == "POST" else request.query
    number, name = _text(fields, "number"), _text(fields, "name")
    language = _language(request, deps.i18n, _text(fields, "lang"))
    tr = deps.i18n.translator(language)
    page = _Page(tr, language, number=number, name=name)
    if "number" not in fields and "name" not in fields:
        return page.render(request)
    if not number.strip() or not name.strip():
        return page.render(
            request, problem=tr.gettext("Enter both the certificate number and the holder's name.")
        )
    try:
        found = await deps.verification.by_number(number, name, _client(request))
    except TooManyAttempts as exc:
        return page.too_many(request, exc)
    return page.render(request, found=found, looked_up=True)


async def verify_code(request: web.Request) -> web.Response:
    """The QR target: the code alone answers; an unknown code gets the neutral answer (404)."""
    deps = request.app[VERIFY]
    language = _language(request, deps.i18n, _text(request.query, "lang"))
    page = _Page(deps.i18n.translator(language), language)
    try:
        found = await deps.verification.by_code(request.match_info["code"], _client(request))
    except TooManyAttempts as exc:
        return page.too_many(request, exc)
    return page.render(request, found=found, looked_up=True, status=200 if found else 404)


async def stylesheet(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[VERIFY].css, content_type="text/css", charset="utf-8")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class _Page:
    """One rendering of verify.html in one language."""

    def __init__(self, tr: Translator, language: str, *, number: str = "", name: str = "") -> None:
        self.tr, self.language = tr, language
        self.number, self.name = number, name

    def render(
        self,
        request: web.Request,
        *,
        found: Verified | None = None,
        looked_up: bool = False,
        problem: str | None = None,
        retry: str | None = None,
        status: int = 200,
    ) -> web.Response:
        context = {
            "html_lang": HTML_LANG[self.language],
            "lang": self.language,
            "t": _texts(self.tr),
            "switch": _switch(request, self.language),
            "form_action": PAGE,
            "css": CSS,
            "number": self.number,
            "name": self.name,
            "problem": problem,
            "retry": retry,
            "looked_up": looked_up,
            "answer": _answer(self.tr, found) if found else None,
            "national_lookup": NATIONAL_LOOKUP,
        }
        response = aiohttp_jinja2.render_template("verify.html", request, context, status=status)
        response.headers.update(HEADERS)
        return response

    def too_many(self, request: web.Request, refused: TooManyAttempts) -> web.Response:
        """429, no look-up made: when to come back, in the site's time zone."""
        retry = self.tr.gettext(
            "Too many attempts. Try again after {time} ({zone}).",
            time=self.tr.time(refused.retry_at),
            zone=self.tr.zone_name(),
        )
        response = self.render(request, retry=retry, status=429)
        response.headers["Retry-After"] = str(refused.seconds)
        return response


def _texts(tr: Translator) -> dict[str, str]:
    return {
        "title": tr.gettext("Certificate verification"),
        "intro": tr.gettext(
            "Check a Smart Manufacturing Engineering Technician certificate issued through "
            "the exam centre of Harbin University of Science and Technology (Rongcheng campus)."
        ),
        "number": tr.gettext("Certificate number"),
        "number_hint": tr.gettext("As printed on the certificate, e.g. RC202701-JUNIOR-0007"),
        "name": tr.gettext("Holder's full name"),
        "name_hint": tr.gettext("As on the holder's ID document"),
        "submit": tr.gettext("Verify"),
        "found": tr.gettext("Certificate found"),
        "holder": tr.gettext("Holder"),
        "level": tr.gettext("Level"),
        "direction": tr.gettext("Direction"),
        "issued": tr.gettext("Issued on"),
        "status": tr.gettext("Status"),
        "none": tr.gettext("No matching certificate."),
        "none_why": tr.gettext(
            "This page answers only for certificates issued through this exam centre. "
            "Check the number and the name as printed, or look the certificate up in the "
            "national database:"
        ),
        "national": tr.gettext(
            "Ministry of Human Resources and Social Security: national skills certificate "
            "lookup (人力资源和社会保障部 技能人才评价证书全国联网查询)"
        ),
        "another": tr.gettext("Check another certificate"),
        "language": tr.gettext("Language"),
    }


def _answer(tr: Translator, found: Verified) -> dict[str, Any]:
    status = (
        tr.gettext("Valid")
        if found.revoked_on is None
        else tr.gettext("Revoked on {date}", date=tr.date(found.revoked_on))
    )
    return {
        "valid": found.valid,
        "holder": found.holder_masked,
        "number": found.number,
        "level": _level(tr, found.level_names, found.level_code),
        "direction": (
            _name(tr, found.direction_names, found.direction_code or "")
            if found.direction_code
            else None
        ),
        "issued": tr.date(found.issued_on),
        "status": status,
    }


def _level(tr: Translator, names: dict[str, Any], code: str) -> str:
    """The reader's name of the level, the official (Chinese) one beside it when it differs:
    the certificate itself is printed in Chinese."""
    name, official = _name(tr, names, code), names.get(OFFICIAL_LANGUAGE)
    if not official or official == name:
        return name
    return tr.gettext("{name} ({official})", name=name, official=official)


def _name(tr: Translator, names: dict[str, Any] | None, code: str) -> str:
    names = names or {}
    return str(names.get(tr.language) or names.get("en") or code)


def _switch(request: web.Request, current: str) -> list[dict[str, Any]]:
    """Links to this page in each language. A GET keeps its query (a shared link stays a
    look-up); a POST's answer is not put in a link: the switch leads to the empty form."""
    query = dict(request.query) if request.method == "GET" else {}
    links = []
    for language, label in SWITCH_LABELS.items():
        href = request.path + "?" + urlencode(query | {"lang": language})
        links.append(
            {
                "label": label,
                "href": href,
                "current": language == current,
                "html_lang": HTML_LANG[language],
            }
        )
    return links


def _language(request: web.Request, i18n: I18n, asked: str) -> str:
    if asked in i18n.languages:
        return asked
    return _accepted(request.headers.get("Accept-Language", ""), i18n.languages) or (
        i18n.default_language
    )


def _accepted(header: str, languages: tuple[str, ...]) -> str | None:
    """The best language of an Accept-Language header that has a catalogue, or None."""
    ranked = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        tag = tag.strip().lower().replace("_", "-")
        language = (
            "zh_Hans"
            if tag in _ZH_HANS_TAGS or tag.startswith("zh-hans")
            else "en"
            if tag.split("-")[0] == "en"
            else None
        )
        if language in languages and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else None


def _text(fields: Any, key: str) -> str:
    value = fields.get(key, "")
    return value if isinstance(value, str) else ""


def _client(request: web.Request) -> str:
    return f"ip:{request.remote or 'unknown'}"
