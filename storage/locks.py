"""Work shared among instances on PostgreSQL advisory locks: a leader lease for singleton
work, and each instance's presence (who owns which stored update).

Entry points: `LeaderLock(engine, name)`; `await lock.acquire()` before each singleton
tick (reminder planning, sweeps) answers "am I the one that runs it?"; `await
lock.release()` at shutdown. `InstanceLock(engine)`: this process's owner id, held as a
lock for its lifetime (`acquire()` at start, `keep()` now and then, `release()` at stop),
so other instances see at once that an owner is gone (`OWNER_NAMESPACE`).

PostgreSQL: the lock is a session-level `pg_try_advisory_lock`, held by one dedicated
connection (autocommit, so no transaction stays open) for as long as the process lives.
When the process dies, its connection closes, PostgreSQL releases the lock, and the next
tick of another instance takes it over. Each `acquire()` checks that the held connection
is still alive; a holder whose connection was cut loses the lease and competes again.

SQLite means one instance: `acquire()` always answers True.

The lease only keeps the work from running twice at once; it is not what makes it
correct. Every singleton tick is idempotent (the tables are the truth, inserts are keyed),
so a tick still running on an old leader while a new one starts is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 5.0  # seconds a liveness check or an acquisition may take


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaderLock:
    """A lease on singleton work, shared by every instance on one database."""

    def __init__(self, engine: AsyncEngine, name: str = "examdesk:leader") -> None:
        self._engine = engine
        self.name = name
        self.key = lock_key(name)
        self._conn: AsyncConnection | None = None
        self._guard = asyncio.Lock()

    @property
    def shared(self) -> bool:
        """True when other instances may share the database (PostgreSQL)."""
        return self._engine.dialect.name == "postgresql"

    @property
    def held(self) -> bool:
        return not self.shared or self._conn is not None

    async def acquire(self) -> bool:
        """True when this instance holds the lease (taking it if it is free)."""
        if not self.shared:
            return True
        async with self._guard:
            if self._conn is not None:
                if await self._alive(self._conn):
                    return True
                log.warning("leader lock %s lost: its connection is gone", self.name)
                await self._drop()
            try:
                return await asyncio.wait_for(self._try(), CHECK_TIMEOUT)
            except Exception as exc:
                log.warning("leader lock %s: cannot try (%s)", self.name, exc)
                return False

    async def _try(self) -> bool:
        conn = await self._engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = bool(
                await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            )
        except BaseException:
            await conn.invalidate()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        log.info("leader lock %s taken: this instance runs the singleton work", self.name)
        return True

    @staticmethod
    async def _alive(conn: AsyncConnection) -> bool:
        try:
            await asyncio.wait_for(conn.scalar(text("SELECT 1")), CHECK_TIMEOUT)
            return True
        except Exception:
            return False

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # never back to the pool: the session may be broken

    async def release(self) -> None:
        """Give the lease back (a clean stop); another instance's next tick takes it."""
        async with self._guard:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                await conn.close()
            except Exception:
                await conn.invalidate()


#: The first key of every instance lock, `pg_try_advisory_lock(OWNER_NAMESPACE, owner)`: the
#: two-int4 form, which pg_locks shows as classid = namespace, objid = owner, objsubid = 2.
#: Both keys are positive, so they read the same as the oid columns of pg_locks.
OWNER_NAMESPACE = lock_key("examdesk:instance") & 0x7FFFFFFF


def new_owner_id() -> int:
    """A random positive int32: an instance's owner id (a fresh one per process)."""
    return secrets.randbelow(2**31 - 1) + 1


class InstanceLock:
    """This process's presence on the database, under a random owner id.

    PostgreSQL: a session-level advisory lock (OWNER_NAMESPACE, owner) held by one
    dedicated autocommit connection for as long as the process lives. Rows marked with
    this owner (stored updates) are this instance's: while the lock is held nobody else
    takes them, however long the instance is frozen; when the process dies its connection
    closes, the lock goes, and other instances take the rows at their next sweep.

    If the connection itself is cut while the process lives, others may take its rows in
    the meantime; `keep()` takes the lock again (same owner id) at the next sweep.

    SQLite means one instance: nothing is locked and `held` is always True.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.owner = new_owner_id()
        self._conn: AsyncConnection | None = None
        self._guard = asyncio.Lock()

    @property
    def shared(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    @property
    def held(self) -> bool:
        return not self.shared or self._conn is not None

    async def acquire(self) -> None:
        """Take this instance's lock (at start, before storing any update); raises when the
        database does not answer."""
        if not self.shared:
            return
        async with self._guard:
            if self._conn is None:
                await asyncio.wait_for(self._take(), CHECK_TIMEOUT)

    async def keep(self) -> bool:
        """Check the lock's connection and take the lock again if it was lost; False when
        the database does not answer (the rows of this instance are unguarded meanwhile)."""
        if not self.shared:
            return True
        async with self._guard:
            if self._conn is not None and await LeaderLock._alive(self._conn):
                return True
            if self._conn is not None:
                log.warning("instance lock %s lost: its connection is gone", self.owner)
                await self._drop()
            try:
                await asyncio.wait_for(self._take(), CHECK_TIMEOUT)
                return True
            except Exception as exc:
                log.warning("instance lock %s: cannot take it again (%s)", self.owner, exc)
                return False

    async def _take(self) -> None:
        conn = await self._engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for _ in range(10):
                if await conn.scalar(
                    text("SELECT pg_try_advisory_lock(:namespace, :owner)"),
                    {"namespace": OWNER_NAMESPACE, "owner": self.owner},
                ):
                    self._conn = conn
                    log.info("instance lock taken: this instance is owner %s", self.owner)
                    return
                # Another live instance drew the same id (or, after a cut connection, our old
                # session has not ended yet): a new id, since rows may only name one owner.
                self.owner = new_owner_id()
        except BaseException:
            await conn.invalidate()
            raise
        await conn.close()
        raise RuntimeError("no free instance owner id after 10 tries")

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()

    async def release(self) -> None:
        """A clean stop: the lock goes, and this instance's unfinished rows with it."""
        async with self._guard:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:namespace, :owner)"),
                    {"namespace": OWNER_NAMESPACE, "owner": self.owner},
                )
                await conn.close()
            except Exception:
                await conn.invalidate()
