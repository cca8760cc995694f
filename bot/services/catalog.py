"""Catalogue flow: load the exam catalogue into the database and read the one in force.

Entry points: `CatalogService.load(catalog, actor)` (validate-then-upsert in one
transaction: a conflict leaves the database unchanged) and `CatalogService.current()`.
Loading the same document twice changes nothing. Sessions already holding registrations
keep them: a capacity below the seats already taken is refused, and a session missing
from a new file is kept as it is (reported, never deleted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.catalog import Catalog, CatalogError, Problem, parse_catalog
from bot.services.errors import CatalogMissing
from bot.services.notify import audit
from storage.models import CatalogVersion, Direction, ExamSession, Level, SessionComponent
from storage.uow import UowFactory


@dataclass(frozen=True)
class LoadResult:
    changed: bool
    version: str
    content_hash: str
    sessions_added: list[str] = field(default_factory=list)
    sessions_updated: list[str] = field(default_factory=list)
    sessions_kept: list[str] = field(default_factory=list)  # in the database, not in the file


class CatalogService:
    def __init__(self, uow: UowFactory, clock: Callable[[], datetime]) -> None:
        self._uow = uow
        self._clock = clock
        self._cache: dict[str, Catalog] = {}

    async def current(self) -> Catalog:
        """The catalogue in force (parsed once per version and cached)."""
        async with self._uow() as uow:
            row = await uow.catalog.get_current()
            if row is None:
                raise CatalogMissing()
            if row.content_hash not in self._cache:
                self._cache[row.content_hash] = parse_catalog(row.document)
            return self._cache[row.content_hash]

    async def load(self, catalog: Catalog, *, actor: str = "cli") -> LoadResult:
        content_hash = catalog.content_hash()
        async with self._uow() as uow:
            current = await uow.catalog.get_current()
            if current is not None and current.content_hash == content_hash:
                return LoadResult(
                    changed=False, version=catalog.version, content_hash=content_hash
                )
            result = LoadResult(changed=True, version=catalog.version, content_hash=content_hash)
            await self._upsert_levels(uow, catalog)
            await self._upsert_sessions(uow, catalog, result)
            previous = await uow.catalog.get_version_by_hash(content_hash)
            if previous is not None:  # going back to an earlier file: make it the newest again
                await uow.catalog.remove_version(previous)
            uow.catalog.add(
                CatalogVersion(
                    version=catalog.version,
                    content_hash=content_hash,
                    document=catalog.model_dump(mode="json"),
                    loaded_at=self._clock(),
                    loaded_by=actor[:64],
                )
            )
            audit(
                uow,
                actor[:64],
                "catalog",
                catalog.version,
                "load",
                self._clock(),
                from_state=current.version if current else None,
                to_state=catalog.version,
                details={
                    "hash": content_hash,
                    "added": result.sessions_added,
                    "updated": result.sessions_updated,
                },
            )
            await uow.commit()
            self._cache[content_hash] = catalog
            return result

    async def _upsert_levels(self, uow, catalog: Catalog) -> None:  # type: ignore[no-untyped-def]
        levels = {row.code: row for row in await uow.catalog.list_levels()}
        for level in catalog.levels:
            row = levels.pop(level.code, None) or Level(code=level.code)
            row.rank, row.names, row.training_hours, row.active = (
                level.rank,
                level.name.model_dump(),
                level.training_hours_required,
                True,
            )
            uow.catalog.add(row)
        for row in levels.values():
            row.active = False
        directions = {row.code: row for row in await uow.catalog.list_directions()}
        for direction in catalog.directions:
            row = directions.pop(direction.code, None) or Direction(code=direction.code)
            row.names, row.active = direction.name.model_dump(), True
            uow.catalog.add(row)
        for row in directions.values():
            row.active = False
        await uow.flush()

    async def _upsert_sessions(self, uow, catalog: Catalog, result: LoadResult) -> None:  # type: ignore[no-untyped-def]
        existing = {row.code: row for row in await uow.catalog.list_sessions()}
        problems = []
        for index, session in enumerate(catalog.sessions):
            timeline = catalog.session_timeline(session.code)
            row = existing.pop(session.code, None)
            if row is None:
                row = ExamSession(code=session.code, seats_taken=0, components=[])
                result.sessions_added.append(session.code)
            else:
                if session.capacity < row.seats_taken:
                    problems.append(
                        Problem(
                            f"sessions[{index}].capacity",
                            f"{row.seats_taken} seats are already taken",
                        )
                    )
                    continue
                result.sessions_updated.append(session.code)
            row.exam_date = session.exam_date
            row.timezone = session.time_zone
            row.capacity = session.capacity
            row.levels = list(session.levels)
            row.registration_opens_at = timeline.registration_opens_at
            row.registration_closes_at = timeline.registration_closes_at
            row.payment_due_at = timeline.payment_due_at
            row.payment_deadline_at = timeline.payment_deadline_at
            row.tickets_from_at = timeline.tickets_from_at
            row.results_at = timeline.results_at
            row.cancellation_cutoff_at = timeline.cancellation_cutoff_at
            row.waitlist_offer_hours = timeline.waitlist_offer_hours
            row.cancelled = False
            slots = {slot.component: slot for slot in session.slots()}
            by_code = {c.component: c for c in row.components}
            for code, slot in slots.items():
                component = by_code.get(code) or SessionComponent(component=code)
                component.starts_at, component.ends_at, component.room = (
                    slot.starts_at,
                    slot.ends_at,
                    slot.room.model_dump(),
                )
                if code not in by_code:
                    row.components.append(component)
            row.components[:] = [c for c in row.components if c.component in slots]
            uow.catalog.add(row)
        if problems:
            raise CatalogError(problems)
        result.sessions_kept.extend(sorted(existing))
        await uow.flush()
