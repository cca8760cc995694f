"""Payments flow, bank statements: staff send the bank's CSV export; rows are matched to
registrations by reference and amount, shown for review, and applied on confirmation.

Entry points (`StatementService`): `preview(staff_id, file_name, data)` parses and classifies
the rows and stores the preview (`statement_imports`); `apply(import_id, staff_id)` records
the matched rows; `discard(import_id, staff_id)`. The first confirmation of a preview wins.
Format (docs/payments.md): a header line `date,amount,reference,payer`, then one row per
incoming transfer; UTF-8 (with or without BOM) or GB18030, as Chinese banks export.

Each bank row is identified by a hash of (date, amount, reference text, payer), which is
the `external_id` of its `bank_statement` payment: importing the same file twice, or two
overlapping statements, records each transfer once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.domain.lifecycle import SETTLEABLE, PaymentStatus, RegistrationState
from bot.services.catalog import CatalogService
from bot.services.errors import AlreadyDecided, InvalidAnswer, NotFound
from bot.services.notify import audit
from bot.services.payments import (
    PaymentConfig,
    expected_amount,
    receipt_card_key,
    record_payment,
)
from storage.models import StatementImport
from storage.uow import UowFactory

COLUMNS = ("date", "amount", "reference", "payer")
REFERENCE_RE = re.compile(r"ED[A-Z2-7]{8}", re.IGNORECASE)
MAX_ROWS = 5000
MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One row of the file. status: matched, unmatched, ambiguous or recorded (imported before);
    `why` is a code: bad_date, bad_amount, no_reference, unknown_reference, reference_repeated,
    amount_differs, already_paid, registration_<state>."""

    line: int
    date: str
    amount_minor: int | None
    reference: str | None  # the reference found in the row
    payer: str
    status: str
    why: str | None
    row_id: str
    expected_minor: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StatementPreview:
    import_id: int
    rows: tuple[StatementRow, ...]
    currency: str

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)


@dataclass(frozen=True, slots=True)
class StatementApplied:
    import_id: int
    paid: int
    flagged: int  # recorded but needing a refund (state changed since the preview)
    already_recorded: int
    # Staff cards of receipts this import made moot (the registration is paid now), as
    # (chat id, message id): their approve / reject buttons are to be taken away.
    settled_cards: tuple[tuple[int, int], ...] = ()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidAnswer("statement", "encoding")


def _amount(text: str) -> int | None:
    cleaned = text.strip().replace(",", "").replace("¥", "").replace("￥", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    # NaN, Infinity and absurd exponents are not amounts (and would break quantize).
    if not value.is_finite() or value <= 0 or value.adjusted() > 12:
        return None
    if value != value.quantize(Decimal("0.01")):
        return None
    return int(value * 100)


def _date(text: str) -> str | None:
    cleaned = text.strip().replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(cleaned).isoformat()
    except ValueError:
        return None


def row_id(day: str, amount: str, reference: str, payer: str) -> str:
    """The bank row's identity: the same transfer in two files hashes the same."""
    canonical = "\x1f".join(part.strip() for part in (day, amount, reference, payer))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


def parse_statement(data: bytes) -> list[dict[str, Any]]:
    """Rows of the CSV as dicts (line, date, amount_minor, reference, payer, why, row_id).

    Raises InvalidAnswer("statement", code) for a file that is not such a CSV at all:
    too_large, encoding, header (the header line is missing or lacks a column), empty,
    too_many_rows.
    """
    if len(data) > MAX_BYTES:
        raise InvalidAnswer("statement", "too_large")
    reader = csv.reader(io.StringIO(_decode(data)))
    header = next(reader, None)
    names = [h.strip().lower() for h in header or []]
    if not all(c in names for c in COLUMNS):
        raise InvalidAnswer("statement", "header")
    index = {c: names.index(c) for c in COLUMNS}
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise InvalidAnswer("statement", "too_many_rows", limit=MAX_ROWS)
        cell = {c: (cells[i].strip() if i < len(cells) else "") for c, i in index.items()}
        day, amount = _date(cell["date"]), _amount(cell["amount"])
        found = REFERENCE_RE.search(cell["reference"].upper()) or REFERENCE_RE.search(
            cell["payer"].upper()
        )
        why = (
            "bad_date"
            if day is None
            else "bad_amount"
            if amount is None
            else None
            if found
            else "no_reference"
        )
        rows.append(
            {
                "line": line,
                "date": day or cell["date"],
                "amount_minor": amount,
                "reference": found.group(0).upper() if found else None,
                "payer": cell["payer"][:100],
                "why": why,
                "row_id": row_id(cell["date"], cell["amount"], cell["reference"], cell["payer"]),
            }
        )
    if not rows:
        raise InvalidAnswer("statement", "empty")
    return rows


class StatementService:
    def __init__(
        self,
        uow: UowFactory,
        clock: Callable[[], datetime],
        catalog: CatalogService,
        config: PaymentConfig | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._config = config or PaymentConfig()

    async def preview(self, staff_id: int, file_name: str | None, data: bytes) -> StatementPreview:
        """Parse and classify every row against the database; nothing is paid yet."""
        parsed = parse_statement(data)
        catalog = await self._catalog.current()
        currency = catalog.fees.currency
        repeated = Counter(r["reference"] for r in parsed if r["reference"] and r["why"] is None)
        now = self._clock()
        async with self._uow() as uow:
            rows = []
            for r in parsed:
                status, why, expected = "unmatched", r["why"], None
                if why is None:
                    registration = await uow.payments.registration_by_reference(r["reference"])
                    recorded = await uow.payments.get_by_external_id("bank_statement", r["row_id"])
                    if registration is not None:
                        expected = expected_amount(catalog, registration, currency)
                    if recorded is not None:
                        status, why = "recorded", None
                    elif registration is None:
                        why = "unknown_reference"
                    elif repeated[r["reference"]] > 1:
                        status, why = "ambiguous", "reference_repeated"
                    elif r["amount_minor"] != expected:
                        status, why = "ambiguous", "amount_differs"
                    elif registration.state == RegistrationState.PAID:
                        status, why = "ambiguous", "already_paid"
                    elif registration.state not in SETTLEABLE:
                        status, why = "ambiguous", f"registration_{registration.state}"
                    else:
                        status = "matched"
                rows.append(
                    StatementRow(
                        line=r["line"],
                        date=r["date"],
                        amount_minor=r["amount_minor"],
                        reference=r["reference"],
                        payer=r["payer"],
                        status=status,
                        why=why,
                        row_id=r["row_id"],
                        expected_minor=expected,
                    )
                )
            statement = StatementImport(
                staff_id=staff_id,
                file_name=(file_name or "")[:256],
                rows=[row.to_json() for row in rows],
                status="pending",
                created_at=now,
            )
            uow.statements.add(statement)
            await uow.flush()
            audit(
                uow,
                f"tg:{staff_id}",
                "statement_import",
                statement.id,
                "previewed",
                now,
                to_state="pending",
                details={"file_name": file_name, "rows": len(rows)},
            )
            await uow.commit()
            return StatementPreview(statement.id, tuple(rows), currency)

    async def apply(self, import_id: int, staff_id: int) -> StatementApplied:
        """Record the matched rows; each is checked again (the registration may have changed)."""
        catalog = await self._catalog.current()
        currency = catalog.fees.currency
        now = self._clock()
        async with self._uow() as uow:
            statement = await self._pending(uow, import_id)
            if not await uow.statements.decide(import_id, "applied", staff_id, now):
                raise await self._decided(uow, import_id)
            paid = flagged = recorded = 0
            cards: list[tuple[int, int]] = []
            for row in statement.rows:
                if row["status"] != "matched":
                    continue
                registration = await uow.payments.registration_by_reference(row["reference"])
                receipts = (
                    [
                        p.id
                        for p in await uow.payments.list_for_registration(registration.id)
                        if p.status == PaymentStatus.PENDING_REVIEW
                    ]
                    if registration
                    else []
                )
                outcome = await record_payment(
                    uow,
                    registration=registration,
                    method="bank_statement",
                    external_id=row["row_id"],
                    amount_minor=row["amount_minor"],
                    currency=currency,
                    expected=expected_amount(catalog, registration, currency)
                    if registration
                    else None,
                    now=now,
                    actor=f"tg:{staff_id}",
                    staff_chat_id=self._config.staff_chat_id,
                    raw={
                        "import_id": import_id,
                        "line": row["line"],
                        "date": row["date"],
                        "payer": row["payer"],
                    },
                )
                if outcome.replay:
                    recorded += 1
                elif outcome.status == PaymentStatus.PAID:
                    paid += 1
                    # Receipts still under review were superseded by this payment.
                    for payment_id in receipts:
                        card = await uow.outbox.get_sent_message(receipt_card_key(payment_id))
                        if card is not None:
                            cards.append(card)
                else:
                    flagged += 1
            audit(
                uow,
                f"tg:{staff_id}",
                "statement_import",
                import_id,
                "applied",
                now,
                from_state="pending",
                to_state="applied",
                details={"paid": paid, "flagged": flagged, "already_recorded": recorded},
            )
            await uow.commit()
            return StatementApplied(import_id, paid, flagged, recorded, tuple(cards))

    async def discard(self, import_id: int, staff_id: int) -> None:
        now = self._clock()
        async with self._uow() as uow:
            await self._pending(uow, import_id)
            if not await uow.statements.decide(import_id, "discarded", staff_id, now):
                raise await self._decided(uow, import_id)
            audit(
                uow,
                f"tg:{staff_id}",
                "statement_import",
                import_id,
                "discarded",
                now,
                from_state="pending",
                to_state="discarded",
            )
            await uow.commit()

    @staticmethod
    async def _pending(uow, import_id: int) -> StatementImport:  # type: ignore[no-untyped-def]
        statement = await uow.statements.get(import_id)
        if statement is None:
            raise NotFound("statement_import")
        if statement.status != "pending":
            raise AlreadyDecided(statement.decided_by, statement.status)
        return statement

    @staticmethod
    async def _decided(uow, import_id: int) -> AlreadyDecided:  # type: ignore[no-untyped-def]
        statement = await uow.statements.get(import_id)
        return AlreadyDecided(
            statement.decided_by if statement else None,
            statement.status if statement else "missing",
        )
