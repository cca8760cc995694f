"""Verification in the chat (docs/verification.md): `/verify NUMBER NAME…` and the deep link
`/start verify_<code>` (the certificate's QR code when no public URL is set).

Entry points: `setup(application)`; handlers `cmd_verify`, `on_verify_link`. Open to
anyone, registered or not, in any chat; the same answer, masking and limits as the web page
(`bot.services.verification`), the client being the Telegram user (stored as a keyed hash).

Order: this module comes before `common` in `FLOW_MODULES`, so its `/start verify_…`
handler sees the deep link before the plain `/start` does.
"""

from __future__ import annotations

import re

from telegram import LinkPreviewOptions, Update
from telegram.ext import Application, CommandHandler, filters

from bot.i18n import Translator
from bot.services.verification import TooManyAttempts, Verified
from handlers.context import ExamContext
from handlers.render import level_label

NATIONAL_LOOKUP = "http://zscx.osta.org.cn/"
DEEP_LINK = filters.Regex(r"^/start(@\w+)?\s+verify_")


_GLUED = re.compile(r"^([A-Za-z0-9-]+)([^\x00-\x7f].*)$")


def split_number_and_name(args: list[str]) -> list[str]:
    """`RC2027-0001张三` (a Chinese keyboard types no space): the number ends where the
    Chinese begins."""
    if len(args) == 1 and (glued := _GLUED.match(args[0])):
        return [glued[1], glued[2]]
    return args


async def cmd_verify(update: Update, context: ExamContext) -> None:
    """`/verify NUMBER NAME…`: the certificate of this number and holder, or the neutral
    answer."""
    tr, args = context.tr, split_number_and_name(context.args or [])
    if len(args) < 2:
        await update.effective_message.reply_text(_usage(tr))
        return
    number, name = args[0], " ".join(args[1:])
    try:
        found = await context.services.verification.by_number(number, name, _client(update))
    except TooManyAttempts as exc:
        await update.effective_message.reply_text(_too_many(tr, exc))
        return
    await _reply(update, tr, found)


async def on_verify_link(update: Update, context: ExamContext) -> None:
    """`/start verify_<code>`: the certificate of a QR / link code, or the neutral answer."""
    tr = context.tr
    code = (context.args or [""])[0].removeprefix("verify_")
    try:
        found = await context.services.verification.by_code(code, _client(update))
    except TooManyAttempts as exc:
        await update.effective_message.reply_text(_too_many(tr, exc))
        return
    await _reply(update, tr, found)


def _client(update: Update) -> str:
    return f"tg:{update.effective_user.id}"


async def _reply(update: Update, tr: Translator, found: Verified | None) -> None:
    await update.effective_message.reply_text(
        answer_text(tr, found), link_preview_options=LinkPreviewOptions(is_disabled=True)
    )


def answer_text(tr: Translator, found: Verified | None) -> str:
    if found is None:
        return tr.gettext(
            "No matching certificate.\n\n"
            "This bot answers only for certificates issued through this exam centre. Check "
            "the number and the name as printed, or look the certificate up in the national "
            "database (人力资源和社会保障部 技能人才评价证书全国联网查询): {url}",
            url=NATIONAL_LOOKUP,
        )
    lines = [
        tr.gettext("✅ Certificate found")
        if found.valid
        else tr.gettext("⛔ Certificate revoked"),
        tr.gettext("Holder: {name}", name=found.holder_masked),
        tr.gettext("Certificate number: {number}", number=found.number),
        tr.gettext("Level: {level}", level=level_label(tr, found.level_code, found.level_names)),
    ]
    if found.direction_code:
        direction = _name(tr, found.direction_names, found.direction_code)
        lines.append(tr.gettext("Direction: {direction}", direction=direction))
    lines.append(tr.gettext("Issued on: {date}", date=tr.date(found.issued_on)))
    status = (
        tr.gettext("Valid")
        if found.revoked_on is None
        else tr.gettext("Revoked on {date}", date=tr.date(found.revoked_on))
    )
    lines.append(tr.gettext("Status: {status}", status=status))
    return "\n".join(lines)


def _name(tr: Translator, names: dict | None, code: str) -> str:
    names = names or {}
    return str(names.get(tr.language) or names.get("en") or code)


def _usage(tr: Translator) -> str:
    return tr.gettext(
        "To check a certificate, send its number and the holder's full name:\n"
        "/verify NUMBER FULL NAME\n"
        "For example: /verify RC202701-JUNIOR-0007 张三\n\n"
        "Write the number without spaces. Only certificates issued through this exam "
        "centre can be checked here."
    )


def _too_many(tr: Translator, refused: TooManyAttempts) -> str:
    return tr.gettext(
        "Too many attempts. Try again after {time} ({zone}).",
        time=tr.time(refused.retry_at),
        zone=tr.zone_name(),
    )


def setup(application: Application) -> None:
    application.add_handler(CommandHandler("verify", cmd_verify))
    # Before common's /start (FLOW_MODULES order): only the verify_ deep link is taken here.
    application.add_handler(
        CommandHandler("start", on_verify_link, filters.ChatType.PRIVATE & DEEP_LINK)
    )
