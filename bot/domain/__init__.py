"""Pure domain rules of examdesk: no I/O, no Telegram, no database, no user-facing text.

Modules:

* ``eligibility`` — the eligibility rules engine (``evaluate``, ``suggest_level``,
  ``required_questions``) interpreting the routes of the exam catalogue;
* ``eligibility_csv`` — bulk eligibility check of a CSV file (``check_csv``);
* ``idcard`` — PRC resident ID / passport number validation and masking;
* ``lifecycle`` — the states of registrations, payments, broadcasts and outbox messages,
  and the named sets of states that say what each allows (``ACTIVE``, ``PAYABLE``, …).

Services call these with plain values and the loaded ``bot.domain.catalog.Catalog``.
"""
