"""Settings: defaults, parsing, and one clear line per wrong or missing setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.config import SettingsError, load_settings

KEY = "k" * 40


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in list(os.environ):
        if name.startswith("EXAMDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no developer .env is read


def test_load_settings_defaults_when_only_secret_key_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXAMDESK_SECRET_KEY", KEY)
    settings = load_settings()
    assert (
        settings.bot_api_url,
        settings.timezone,
        settings.default_language,
        settings.listen_port,
    ) == (
        "https://api.telegram.org",
        "Asia/Shanghai",
        "zh_Hans",
        8080,
    )
    assert settings.database_url.startswith("sqlite+aiosqlite:///") and settings.bot_token is None


def test_load_settings_parses_admin_ids_from_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMDESK_SECRET_KEY", KEY)
    monkeypatch.setenv("EXAMDESK_ADMIN_IDS", "11, 22,33")
    assert load_settings().admin_ids == frozenset({11, 22, 33})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "EXAMDESK_SECRET_KEY: is required"),
        ({"EXAMDESK_SECRET_KEY": "short"}, "EXAMDESK_SECRET_KEY: must be at least 32 characters"),
        (
            {"EXAMDESK_SECRET_KEY": KEY, "EXAMDESK_LISTEN": "8080"},
            "EXAMDESK_LISTEN: must be host:port",
        ),
        (
            {"EXAMDESK_SECRET_KEY": KEY, "EXAMDESK_TIMEZONE": "Mars/Base"},
            "EXAMDESK_TIMEZONE: must be an IANA",
        ),
        (
            {"EXAMDESK_SECRET_KEY": KEY, "EXAMDESK_BOT_TOKEN": "nope"},
            "EXAMDESK_BOT_TOKEN: does not look like",
        ),
        (
            {"EXAMDESK_SECRET_KEY": KEY, "EXAMDESK_ADMIN_IDS": "1,abc"},
            "EXAMDESK_ADMIN_IDS: must be Telegram user ids",
        ),
        (
            {"EXAMDESK_SECRET_KEY": KEY, "EXAMDESK_DEFAULT_LANGUAGE": "fr"},
            "EXAMDESK_DEFAULT_LANGUAGE: must be one of",
        ),
        (
            {"EXAMDESK_SECRET_KEY": KEY, "EXAMDESK_WEBHOOK_URL": "https://x.example/tg"},
            "EXAMDESK_WEBHOOK_SECRET is required when EXAMDESK_WEBHOOK_URL is set",
        ),
    ],
)
def test_load_settings_names_the_bad_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict, expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert expected in str(info.value)


def test_examdesk_command_stops_with_one_line_on_bad_setting(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXAMDESK_")}
    env |= {"EXAMDESK_SECRET_KEY": KEY, "EXAMDESK_LISTEN": "nonsense"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "db", "current"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert (result.returncode, result.stderr.strip().splitlines()) == (
        2,
        ["examdesk: configuration error: EXAMDESK_LISTEN: must be host:port, e.g. 127.0.0.1:8080"],
    )


def test_env_example_documents_every_setting_and_loads_as_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from bot.config import PROJECT_ROOT, Settings

    example = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    documented = {
        line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")
    }
    assert documented == {f"EXAMDESK_{name.upper()}" for name in Settings.model_fields}
    (tmp_path / ".env").write_text(
        example.replace("EXAMDESK_SECRET_KEY=", "EXAMDESK_SECRET_KEY=" + KEY), encoding="utf-8"
    )
    settings = load_settings()
    assert (settings.bot_token, settings.staff_chat_id, settings.webhook_url) == (None, None, None)


async def test_send_limits_from_settings_reach_the_outbox_sender(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from bot.app import Runtime

    monkeypatch.setenv("EXAMDESK_SECRET_KEY", KEY)
    monkeypatch.setenv("EXAMDESK_BOT_TOKEN", "123456:" + "A" * 35)
    monkeypatch.setenv("EXAMDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.setenv("EXAMDESK_SEND_PER_SECOND", "15")
    monkeypatch.setenv("EXAMDESK_SEND_PER_GROUP_PER_MINUTE", "10")
    runtime = Runtime(load_settings())
    try:
        limits = runtime.outbox_sender.config.limits
        assert (
            limits.per_second,
            limits.per_group_per_minute,
            limits.per_private_chat_per_second,
        ) == (15.0, 10.0, 1.0)
    finally:
        await runtime.database.dispose()
