"""Domain errors raised by services; handlers map each to a translated message."""

from __future__ import annotations

from datetime import datetime


class ServiceError(Exception):
    """Base of every error a service raises on purpose."""


class UnsupportedLanguage(ServiceError):
    """The language asked for has no catalogue."""


class NotFound(ServiceError):
    """The thing referred to does not exist (or is not the caller's)."""


class CatalogMissing(ServiceError):
    """No exam catalogue has been loaded yet."""


class LevelNotOffered(ServiceError):
    """The exam session does not offer the level asked for."""

    def __init__(self, session_code: str, level_code: str) -> None:
        super().__init__(session_code, level_code)
        self.session_code = session_code
        self.level_code = level_code


class RegistrationNotOpen(ServiceError):
    """Registration for the session opens later, at `opens_at` (aware UTC)."""

    def __init__(self, opens_at: datetime) -> None:
        super().__init__(opens_at)
        self.opens_at = opens_at


class RegistrationClosed(ServiceError):
    """Registration for the session has closed (or the session was cancelled).

    `next_session_code` names the earliest session of the same level that is open for
    registration now, or is None when there is none.
    """

    def __init__(self, next_session_code: str | None) -> None:
        super().__init__(next_session_code)
        self.next_session_code = next_session_code


class SessionFull(ServiceError):
    """No seat is free; `waitlist_length` people are already waiting for one."""

    def __init__(self, waitlist_length: int) -> None:
        super().__init__(waitlist_length)
        self.waitlist_length = waitlist_length


class AlreadyRegistered(ServiceError):
    """The candidate already has an active registration for that level or that session."""

    def __init__(self, registration_id: int | None = None) -> None:
        super().__init__(registration_id)
        self.registration_id = registration_id


class CancellationClosed(ServiceError):
    """Cancelling or moving is no longer possible: the cut-off was `cutoff_at` (aware UTC)."""

    def __init__(self, cutoff_at: datetime) -> None:
        super().__init__(cutoff_at)
        self.cutoff_at = cutoff_at


class InvalidState(ServiceError):
    """The registration is in a state that does not allow the action (`state`)."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class OfferExpired(ServiceError):
    """The seat offered from the waitlist was not accepted in time."""


class InvalidAnswer(ServiceError):
    """An answer to a flow step was refused; `reason` says why (a code, not text)."""

    def __init__(self, step: str, reason: str, **params: object) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.params = params


class StaleStep(ServiceError):
    """A button or answer for a step the candidate is no longer on (an old message)."""


class FormIncomplete(ServiceError):
    """Submit pressed while the form still lacks answers (`missing`: step names, in order)."""

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(missing)
        self.missing = missing


class IdentityFrozen(ServiceError):
    """The candidate may not change their identity (`field`): registration
    `registration_id` is paid or its payment is being checked; staff correct it."""

    def __init__(self, registration_id: int, field: str) -> None:
        super().__init__(registration_id, field)
        self.registration_id = registration_id
        self.field = field


class AlreadyDecided(ServiceError):
    """Another staff member decided first."""

    def __init__(self, decided_by: int | None, status: str) -> None:
        super().__init__(f"already {status} by {decided_by}")
        self.decided_by = decided_by
        self.status = status


class NotStaff(ServiceError):
    """A staff-only action by someone who is not staff."""


class InvalidPayload(ServiceError):
    """An outbox payload names no template and carries no text or file (a programming error)."""


class NotEligible(ServiceError):
    """Registration for a level the candidate has not been found eligible for."""

    def __init__(self, level: str, status: str) -> None:
        super().__init__(f"{level}: {status}")
        self.level = level
        self.status = status


class AlreadyPaid(ServiceError):
    """The registration is already paid."""


class PaymentUnavailable(ServiceError):
    """This payment cannot be made now; `reason` is a code: fee_unconfirmed, method_disabled,
    deadline_passed, eligibility_pending, not_payable, amount_mismatch, unknown_invoice."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotPaid(ServiceError):
    """An admission ticket for a registration that is not paid (its `state`, or "none")."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class TicketNotYetAvailable(ServiceError):
    """The admission ticket is issued from `available_from` (aware UTC), in
    the session's `timezone`."""

    def __init__(self, available_from: datetime, timezone: str) -> None:
        super().__init__(available_from)
        self.available_from = available_from
        self.timezone = timezone


class ResultsFileInvalid(ServiceError):
    """A results file that cannot be read as one; `reason` is a code: too_large, encoding,
    unreadable (not CSV or XLSX), header (`missing`: the columns not found), empty,
    too_many_rows (`limit`)."""

    def __init__(self, reason: str, **params: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


class ResultsReleased(ServiceError):
    """The session's results were released at `released_at` (aware UTC): an import can no
    longer change them (a re-mark decision or an audited staff correction can)."""

    def __init__(self, session_code: str, released_at: datetime) -> None:
        super().__init__(session_code, released_at)
        self.session_code = session_code
        self.released_at = released_at
