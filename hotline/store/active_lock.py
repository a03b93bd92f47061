"""One active daemon per deployment, any number of hot standbys: a PostgreSQL session advisory lock.

An ARI app has one controller: Asterisk gives the app's events to the last WebSocket that
connected, so a second daemon that connected would steal every call. Each `hotline run` therefore
takes this lock on a connection of its own before it opens ARI or AMI, and holds it as long as it
serves. PostgreSQL frees a session lock the moment the holder's session ends (its process killed:
the kernel closes the socket, the backend reads EOF), so a standby polling for it takes over
within a poll.

The key comes from the ARI app name: what must have one controller is the app, so two deployments
sharing a database under different apps each get an active daemon, and one deployment's daemons
(same app, same database) always meet on one key. Advisory locks live per database, so deployments
in different databases never meet.

The active daemon then only listens on the lock's socket (no query): a slow database never looks
like a lost lock, and only a session that is gone (closed by the server, reset, timed out by TCP
keepalives) fences it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import zlib
from dataclasses import dataclass
from datetime import datetime

import psycopg

from hotline.errors import StoreError
from hotline.store.db import describe_dsn

log = logging.getLogger(__name__)

# The lock's first key: hotline's own, so other applications' advisory locks in the same database
# do not meet ours. The second is the app's.
LOCK_NAMESPACE = zlib.crc32(b"hotline active daemon") & 0x7FFFFFFF
# Polled rather than a blocking pg_advisory_lock: a poll is cancellable at once (SIGTERM of a
# standby), each poll proves the standby's session alive, and half a second keeps a takeover after
# the active's SIGKILL well under the 5 s a caller notices.
POLL_EVERY_S = 0.5
QUERY_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 5
# How the lock's sessions show in pg_stat_activity ("hotline active 1234@host"); the waiting ones
# say standby. PostgreSQL cuts application_name at 63 bytes.
ACTIVE, STANDBY = "hotline active", "hotline standby"
NAME_LIMIT = 63
LISTEN_CHANNEL = "hotline_active_lock"  # nothing is sent on it: LISTEN only lets the socket be watched
# TCP keepalives on the lock's connection (a DSN that sets its own wins): a host that vanished
# (network cut) fails the session after about idle + interval * count = 9 s, tcp_user_timeout
# bounds unacknowledged data the same way. The README says what to set on the server.
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2",
              "keepalives_count": "2", "tcp_user_timeout": "9000"}

HOLDER_SQL = """
SELECT a.pid, a.application_name, host(a.client_addr) AS client, a.query_start
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
   AND l.classid::bigint = %s AND l.objid::bigint = %s
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
STANDBYS_SQL = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND application_name LIKE %s
"""


def lock_key(app: str) -> tuple[int, int]:
    """The two int4 keys of the app's lock (both positive: pg_locks shows them as they are)."""
    return LOCK_NAMESPACE, zlib.crc32(app.encode()) & 0x7FFFFFFF


def session_name(role: str, identity: str) -> str:
    return f"{role} {identity}"[:NAME_LIMIT]


def this_process() -> str:
    """pid@host: who this daemon is, for the other daemons and the operator."""
    return f"{os.getpid()}@{socket.gethostname()}"


def connect_options(dsn: str) -> dict[str, str]:
    """The keepalives the lock's connection adds to the DSN: those the DSN sets stay its own."""
    try:
        own = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        own = {}  # the connection attempt reports the malformed DSN
    return {k: v for k, v in KEEPALIVES.items() if k not in own}


@dataclass(frozen=True)
class Holder:
    """The session that holds the lock, as pg_stat_activity shows it."""

    backend_pid: int
    application_name: str
    client: str | None
    since: datetime | None  # its last statement, run when it took the lock: it runs none after

    def describe(self) -> str:
        who = self.application_name.removeprefix(ACTIVE).strip() or f"backend {self.backend_pid}"
        since = f" since {self.since:%Y-%m-%d %H:%M:%S %Z}" if self.since is not None else ""
        where = f" from {self.client}" if self.client else ""
        return f"{who}{where}{since}"


async def find_holder(conn: psycopg.AsyncConnection, app: str) -> Holder | None:
    """Who holds `app`'s lock in the connection's database, None when nobody does."""
    cur = await conn.execute(HOLDER_SQL, lock_key(app))
    row = await cur.fetchone()
    return Holder(*row) if row else None


async def count_standbys(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute(STANDBYS_SQL, (f"{STANDBY} %",))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


class ActiveLock:
    """This daemon's claim to be the active one: `acquire` waits for it, `watch` says when it is lost."""

    def __init__(self, dsn: str, app: str, *, identity: str | None = None,
                 poll_every_s: float = POLL_EVERY_S) -> None:
        self.dsn = dsn
        self.app = app
        self.identity = identity or this_process()
        self.poll_every_s = poll_every_s
        self.conn: psycopg.AsyncConnection | None = None
        self.active = False
        self.holder: Holder | None = None  # while a standby: the active daemon, as last seen
        # While active: whether a standby waited at the last look (the daemon looks every few
        # seconds). With none, a lost session is a database outage to serve through, not a
        # takeover under way (hotline.daemon._keep_lock).
        self.standbys_waiting = False
        self._reached = False  # a database never reached is a setting to fix, not an outage to wait out

    async def acquire(self, stopping: asyncio.Event) -> bool:
        """Wait until this daemon holds the lock (True), or until `stopping` is set (False).
        StoreError when the very first connection fails (a wrong DSN stops `hotline run` at once,
        as before); later outages are waited out."""
        database_error: str | None = None
        while not stopping.is_set():
            try:
                async with asyncio.timeout(QUERY_TIMEOUT_S + CONNECT_TIMEOUT_S):
                    if await self._try():
                        return True
                    await self._see_holder()
                if database_error is not None:
                    log.info("standby: the database answers again")
                database_error = None
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if not self._reached:
                    where = describe_dsn(self.dsn)
                    raise StoreError(f"database {where} unreachable: {_reason(exc)}") from None
                if database_error is None:
                    database_error = _reason(exc)
                    log.warning("standby: cannot reach the database for the active lock (%s); "
                                "retrying", database_error)
                await self.close()
            try:
                await asyncio.wait_for(stopping.wait(), self.poll_every_s)
            except TimeoutError:
                pass
        return False

    async def watch(self) -> str:
        """Return why the lock's session was lost; never returns while it is only slow or idle."""
        assert self.conn is not None and self.active
        try:
            async for _ in self.conn.notifies():
                pass  # nobody sends on the channel; a stray NOTIFY changes nothing
        except psycopg.Error as exc:
            return _reason(exc)
        return "the lock's session ended"

    async def retake(self, stopping: asyncio.Event) -> str | None:
        """After the session was lost: take the lock again once the database answers (None), or
        say which daemon holds it now (this one must let go). None too when `stopping` is set."""
        await self.close()
        while not stopping.is_set():
            try:
                async with asyncio.timeout(QUERY_TIMEOUT_S + CONNECT_TIMEOUT_S):
                    if await self._try():
                        return None
                    holder = await find_holder(self.conn, self.app) if self.conn is not None else None
                    if holder is not None:
                        return f"daemon {holder.describe()} holds the lock now"
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.debug("active lock not retaken yet: %s", _reason(exc))
                await self.close()
            try:
                await asyncio.wait_for(stopping.wait(), self.poll_every_s)
            except TimeoutError:
                pass
        return None

    async def close(self) -> None:
        """Idempotent; ending the session gives the lock up (a standby takes it at once)."""
        conn, self.conn = self.conn, None
        self.active = False
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:  # closing a broken session: nothing left to give up
                log.debug("active lock connection closed with %s", exc)

    async def _try(self) -> bool:
        if self.conn is None:
            conninfo = psycopg.conninfo.make_conninfo(
                self.dsn, connect_timeout=CONNECT_TIMEOUT_S,
                application_name=session_name(STANDBY, self.identity), **connect_options(self.dsn))
            self.conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            self._reached = True
        cur = await self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)", lock_key(self.app))
        row = await cur.fetchone()
        if not (row and row[0]):
            return False
        # The last statements this session runs: the holder's query_start says since when.
        await self.conn.execute(f"LISTEN {LISTEN_CHANNEL}")
        await self.conn.execute("SELECT set_config('application_name', %s, false)",
                                (session_name(ACTIVE, self.identity),))
        self.active, self.holder = True, None
        log.info("active: this daemon (%s) holds the lock for app %r", self.identity, self.app)
        return True

    async def _see_holder(self) -> None:
        """Log the active daemon once per holder: a standby says whom it stands by for."""
        assert self.conn is not None
        holder = await find_holder(self.conn, self.app)
        if holder is not None and (self.holder is None or holder.backend_pid != self.holder.backend_pid):
            log.info("standby: %s is active for app %r; taking over when it stops", holder.describe(),
                     self.app)
        if holder is not None:
            self.holder = holder


def _reason(exc: BaseException) -> str:
    """libpq's first line says what happened (its last is a generic "before or while processing")."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__
