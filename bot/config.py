"""Settings: read once from the environment and `.env`, validated, passed down explicitly.

Entry point: `load_settings()`. Every setting is documented in `.env.example`.
A wrong or missing required setting raises `SettingsError` with one line per problem,
naming the variable, so `examdesk` can stop with a clear message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "EXAMDESK_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_LANGUAGES = ("zh_Hans", "en")
#: The site's time zone unless EXAMDESK_TIMEZONE says otherwise (sessions carry their own).
SITE_TIMEZONE = "Asia/Shanghai"
_TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,64}$")


class SettingsError(Exception):
    """The configuration cannot be used; the message names each bad variable."""


def _default_database_url() -> str:
    return f"sqlite+aiosqlite:///{PROJECT_ROOT / 'data' / 'examdesk.sqlite3'}"


class Settings(BaseSettings):
    """All runtime settings of examdesk (environment variables prefixed `EXAMDESK_`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
    )

    bot_token: SecretStr | None = None
    bot_api_url: str = "https://api.telegram.org"
    database_url: str = Field(default_factory=_default_database_url)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    listen: str = "127.0.0.1:8080"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    staff_chat_id: int | None = None
    timezone: str = SITE_TIMEZONE
    default_language: str = "zh_Hans"
    catalog: Path = PROJECT_ROOT / "catalog" / "exam-catalog.yaml"
    secret_key: SecretStr
    max_concurrent_updates: int = Field(default=32, ge=1, le=1024)
    # Telegram's flood limits, shared by direct replies and the outbox sender (per process:
    # with N instances on one bot, give each 1/N of the bot-wide rates).
    send_per_second: float = Field(default=30.0, gt=0)
    send_per_chat_per_second: float = Field(default=1.0, gt=0)
    send_per_group_per_minute: float = Field(default=20.0, gt=0)
    send_paid_per_second: float = Field(default=1000.0, gt=0)
    send_max_attempts: int = Field(default=5, ge=1, le=50)
    paid_broadcasts: bool = False  # staff broadcasts with allow_paid_broadcast (Telegram Stars)
    # Public root of the built-in web server; admission-ticket QR codes then carry a check URL.
    public_url: str | None = None
    # Payments (docs/payments.md). The grace period after the due date is catalogue data
    # (timeline.payment_grace_hours), not a setting: it belongs with the other deadlines.
    payment_provider_token: SecretStr | None = None  # Telegram Payments provider (CNY invoices)
    payment_stars: bool = False  # Telegram Stars (XTR) invoices
    provider_secret: SecretStr | None = None  # HMAC key of the online provider's notices

    @field_validator("payment_provider_token", "provider_secret")
    @classmethod
    def _empty_secret_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("provider_secret")
    @classmethod
    def _check_provider_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://exam.example.org")
        return value.rstrip("/")

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not _TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("does not look like a BotFather token (digits:letters)")
        return value

    @field_validator("bot_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.strip("/"):
            raise ValueError("must be a URL with a path, e.g. https://exam.example.org/telegram")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        # Telegram's rule for secret_token: 1-256 characters A-Z, a-z, 0-9, _ and -.
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8080")
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            if not all(re.fullmatch(r"-?\d+", p) for p in parts):
                raise ValueError("must be Telegram user ids separated by commas")
            return frozenset(int(p) for p in parts)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as Asia/Shanghai") from exc
        return value

    @field_validator("default_language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        if value not in SUPPORTED_LANGUAGES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LANGUAGES)}")
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                "EXAMDESK_WEBHOOK_SECRET is required when EXAMDESK_WEBHOOK_URL is set"
            )
        return self

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def webhook_path(self) -> str:
        return urlsplit(self.webhook_url).path if self.webhook_url else "/telegram/webhook"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, `.env` and explicit overrides."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            reason = "is required" if error["type"] == "missing" else error["msg"]
            reason = reason.removeprefix("Value error, ")
            if error["loc"]:
                lines.append(f"{ENV_PREFIX}{str(error['loc'][0]).upper()}: {reason}")
            else:
                lines.append(reason)
        raise SettingsError("; ".join(lines)) from None
