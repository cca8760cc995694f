"""The process around the services: web routes, update dispatch, scheduler ticks and the
outbox sender with its notification templates. Talks to Telegram and aiohttp; never
imports `handlers` (what it needs from there is handed over by `bot.app`).
"""
