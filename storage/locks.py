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


class _AdvisoryLock:
    """A session-level advisory lock on PostgreSQL, held by one dedicated autocommit
    connection; on SQLite (one instance) nothing is locked and `held` is always True.

    A subclass names its key (`_KEY_ARGS`, `_key_params()`), what it does once it holds
    the lock (`_take`), how it takes it on a fresh connection (`_lock_on`, one try unless
    overridden) and how its log lines name it (`_KIND`, `_label`, `_CANNOT_TAKE`)."""

    _KIND = "advisory lock"
    _KEY_ARGS = ":key"  # the arguments of pg_try_advisory_lock / pg_advisory_unlock
    _CANNOT_TAKE = "cannot take it"  # what the warning says when taking the lock fails

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._guard = asyncio.Lock()

    @property
    def shared(self) -> bool:
        """True when other instances may share the database (PostgreSQL)."""
        return self._engine.dialect.name == "postgresql"

    @property
    def held(self) -> bool:
        return not self.shared or self._conn is not None

    @property
    def _label(self) -> object:
        raise NotImplementedError

    def _key_params(self) -> dict[str, int]:
        raise NotImplementedError

    async def _lock_on(self, conn: AsyncConnection) -> bool:
        """Try to take the lock on `conn`; True when taken."""
        return await self._try_lock(conn)

    async def _try_lock(self, conn: AsyncConnection) -> bool:
        return bool(
            await conn.scalar(
                text(f"SELECT pg_try_advisory_lock({self._KEY_ARGS})"), self._key_params()
            )
        )

    async def _connect_and_lock(self) -> bool:
        """A fresh autocommit connection that takes the lock, kept as the holder; False (and
        the connection closed) when the lock is not free."""
        conn = await self._engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = await self._lock_on(conn)
        except BaseException:
            await conn.invalidate()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def _take(self) -> bool:
        raise NotImplementedError

    async def _keep_or_take(self) -> bool:
        """True when the held connection is alive, or when the lock is taken afresh (after
        a lost connection too); False when it is not free or the database does not answer."""
        if not self.shared:
            return True
        async with self._guard:
            if self._conn is not None:
                if await self._alive(self._conn):
                    return True
                log.warning("%s %s lost: its connection is gone", self._KIND, self._label)
                await self._drop()
            try:
                return await asyncio.wait_for(self._take(), CHECK_TIMEOUT)
            except Exception as exc:
                log.warning("%s %s: %s (%s)", self._KIND, self._label, self._CANNOT_TAKE, exc)
                return False

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
        """Give the lock back (a clean stop): another instance's next tick takes the leader
        lease; with an instance lock go this instance's unfinished rows."""
        async with self._guard:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await conn.execute(
                    text(f"SELECT pg_advisory_unlock({self._KEY_ARGS})"), self._key_params()
                )
                await conn.close()
            except Exception:
                await conn.invalidate()


class LeaderLock(_AdvisoryLock):
    """A lease on singleton work, shared by every instance on one database."""

    _KIND = "leader lock"
    _CANNOT_TAKE = "cannot try"

    def __init__(self, engine: AsyncEngine, name: str = "examdesk:leader") -> None:
        super().__init__(engine)
        self.name = name
        self.key = lock_key(name)

    @property
    def _label(self) -> object:
        return self.name

    def _key_params(self) -> dict[str, int]:
        return {"key": self.key}

    async def acquire(self) -> bool:
        """True when this instance holds the lease (taking it if it is free)."""
        return await self._keep_or_take()

    async def _take(self) -> bool:
        if not await self._connect_and_lock():
            return False
        log.info("leader lock %s taken: this instance runs the singleton work", self.name)
        return True


#: The first key of every instance lock, `pg_try_advisory_lock(OWNER_NAMESPACE, owner)`: the
#: two-int4 form, which pg_locks shows as classid = namespace, objid = owner, objsubid = 2.
#: Both keys are positive, so they read the same as the oid columns of pg_locks.
OWNER_NAMESPACE = lock_key("examdesk:instance") & 0x7FFFFFFF


def new_owner_id() -> int:
    """A random positive int32: an instance's owner id (a fresh one per process)."""
    return secrets.randbelow(2**31 - 1) + 1


class InstanceLock(_AdvisoryLock):
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

    _KIND = "instance lock"
    _KEY_ARGS = ":namespace, :owner"
    _CANNOT_TAKE = "cannot take it again"

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.owner = new_owner_id()

    @property
    def _label(self) -> object:
        return self.owner

    def _key_params(self) -> dict[str, int]:
        return {"namespace": OWNER_NAMESPACE, "owner": self.owner}

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
        return await self._keep_or_take()

    async def _lock_on(self, conn: AsyncConnection) -> bool:
        for _ in range(10):
            if await self._try_lock(conn):
                return True
            # Another live instance drew the same id (or, after a cut connection, our old
            # session has not ended yet): a new id, since rows may only name one owner.
            self.owner = new_owner_id()
        return False

    async def _take(self) -> bool:
        if not await self._connect_and_lock():
            raise RuntimeError("no free instance owner id after 10 tries")
        log.info("instance lock taken: this instance is owner %s", self.owner)
        return True
