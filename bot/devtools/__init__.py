"""Developer tools shipped with examdesk: the Bot API sandbox, `examdesk chat` and the
i18n tools. Never imported by the running bot (only `examdesk chat` and tests use them).
"""
