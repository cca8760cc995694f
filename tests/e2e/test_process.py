"""The `examdesk run` process: SIGTERM finishes and exits cleanly; errors
reach the user politely."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from telegram.ext import CommandHandler

from bot.config import PROJECT_ROOT
from bot.devtools.sandbox import Sandbox
from tests.e2e.conftest import (
    SECRET_KEY,
    STAFF_CHAT_ID,
    Harness,
    exchange,
    free_port,
    prepare_database,
)


async def test_run_process_answers_then_exits_cleanly_on_sigterm(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'run.sqlite3'}"
    await prepare_database(url)
    token = sandbox.add_bot()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXAMDESK_")} | {
        "EXAMDESK_BOT_TOKEN": token,
        "EXAMDESK_BOT_API_URL": sandbox.url,
        "EXAMDESK_DATABASE_URL": url,
        "EXAMDESK_SECRET_KEY": SECRET_KEY,
        "EXAMDESK_LISTEN": f"127.0.0.1:{free_port()}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        user = sandbox.user(801, language_code="en")
        await user.send_command("/start")
        first = await user.wait_for_message(timeout=30)
        await user.send_command("/help")
        await sandbox.wait_idle(timeout=15, quiet=0.01)  # /help fetched by the process
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 40)
        output = (await process.stdout.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    texts = [m["text"] for m in user.messages()]
    assert (code, "Harbin University" in first["text"]) == (0, True)
    assert any(t.startswith("I help you take") for t in texts)
    assert "examdesk stopped" in output and "Traceback" not in output
    assert PROJECT_ROOT.exists()


async def _boom(update, context) -> None:  # type: ignore[no-untyped-def]
    raise RuntimeError("internal detail that must not reach the chat")


async def test_handler_error_is_logged_and_the_user_gets_a_translated_apology(
    bot: Harness,
) -> None:
    bot.runtime.application.add_handler(
        CommandHandler("boom", _boom), group=-2
    )  # public API: a failing flow
    user = bot.sandbox.user(802, language_code="zh-hans")
    replies = await exchange(bot, user, user.send_command("/boom"))
    staff = await bot.sandbox.wait_for_message(STAFF_CHAT_ID, timeout=10)
    assert [m["text"] for m in replies] == [
        "抱歉，系统出现了问题。您的答案已保存。请稍后再试，或发送 /start。"
    ]
    assert "internal detail" not in staff["text"] and "RuntimeError" in staff["text"]
