"""Standing lines: what `/status` adds to each registration's card: its released results
(score or mark, passed or not) or when they come out, the level passed with that sitting,
and the certificate (number and issue date, revoked with the date, or about when it is
expected). docs/results.md, "Next level, status and reminders".

Entry point: `standing_lines(tr, standing)` for one registration's
`StandingService.for_candidate` entry. Not a flow module: no handlers, buttons or
templates; `handlers.registration.cmd_status` calls it.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.domain.certificates import CertificateStatus
from bot.i18n import Translator
from bot.services.standing import ComponentLine, RegistrationStanding


def standing_lines(tr: Translator, s: RegistrationStanding) -> list[str]:
    lines = []
    if s.results:
        lines.append(tr.gettext("📊 Results:"))
        lines += [_component(tr, c) for c in s.results]
    if s.results_at is not None:
        lines.append(
            tr.gettext(
                "📊 Results come out on {when}.", when=tr.datetime(s.results_at, s.timezone)
            )
        )
    if s.passed_on is not None:
        lines.append(tr.gettext("✅ You passed this level on {date}.", date=tr.date(s.passed_on)))
    certificate = s.certificate
    if certificate is not None and certificate.status == CertificateStatus.REVOKED:
        lines.append(
            tr.gettext(
                "🎓 Certificate {number} was revoked on {date}.",
                number=certificate.number,
                date=tr.date(_local(certificate.revoked_at or certificate.issued_on, s)),
            )
        )
    elif certificate is not None:
        lines.append(
            tr.gettext(
                "🎓 Certificate {number}, issued on {date}.",
                number=certificate.number,
                date=tr.date(certificate.issued_on),
            )
        )
    elif s.certificates_at is not None:
        lines.append(
            tr.gettext(
                "🎓 Your certificate is expected around {date}.",
                date=tr.date(_local(s.certificates_at, s)),
            )
        )
    return lines


def _local(moment: datetime | date, s: RegistrationStanding) -> date:
    """The day of `moment` in the session's zone (a date stays as it is)."""
    if isinstance(moment, datetime):
        return moment.astimezone(ZoneInfo(s.timezone)).date()
    return moment


def _component(tr: Translator, c: ComponentLine) -> str:
    return tr.gettext(
        "• {component}: {mark} ({outcome})",
        component=c.names.get(tr.language) or c.names.get("en") or c.component,
        mark=_mark(tr, c),
        outcome=tr.gettext("passed") if c.passed else tr.gettext("not passed"),
    )


def _mark(tr: Translator, c: ComponentLine) -> str:
    if c.mark == "absent":
        return tr.gettext("absent")
    if c.mark == "disqualified":
        return tr.gettext("disqualified")
    return str(c.score) if c.score is not None else "-"
