"""Domain errors raised by services; handlers map each to a translated message."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a service raises on purpose."""


class UnsupportedLanguage(ServiceError):
    """The language asked for has no catalogue."""


class NotFound(ServiceError):
    """The thing referred to does not exist (or is not the caller's)."""


class CatalogMissing(ServiceError):
    """No exam catalogue has been loaded yet."""
