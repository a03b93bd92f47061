"""What calls record (queue events, IVR keys, hop ends), written behind the calls: one task
writes everything in the order it was recorded, as many records per round trip as are waiting.

A call never waits on the database for a record, and the daemon pays one round trip and one
commit per batch instead of per record. A batch starts with the first record waiting and takes
whatever the other calls record within `linger_s` (20 ms: hundreds of records at call-centre
rates, still at once for a supervisor's wallboard), then whatever arrives while it is written.

A batch is one call of record_call_batch() (migrations 006 and 010) with the records as a jsonb
array, so one statement and one transaction. Each WriteBehind is a writer of its own (a uuid) and
numbers its batches: a batch retried after a connection lost between its commit and the reply is
recognised by its number and not applied twice. A record the database refuses (a bug, a row
deleted under us) rolls the batch back; the batch is then written record by record, so only the
refused one is lost, and logged. Through a database outage the batch is retried with backoff for `patience_s`
while new records queue up behind it; past that they are dropped, and logged as lost. Records
carry their own time (QueueEvent.at), so a late write is dated right.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

import psycopg
from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from hotline.store.db import STORE_DOWN
from hotline.store.records import Record, write_numbered_batch

log = logging.getLogger(__name__)

MAX_BATCH = 500  # records per round trip; bounds one transaction's size after an outage
LINGER_S = 0.02  # how long a batch waits for more records after its first


class WriteBehind:
    def __init__(self, pool: AsyncConnectionPool, *, patience_s: float = 600.0,
                 max_batch: int = MAX_BATCH, linger_s: float = LINGER_S, node: str | None = None) -> None:
        self.pool = pool
        self.writer = uuid.uuid4()
        self.node = node or socket.gethostname()
        self._batches_written = 0
        self.linger_s = linger_s
        self.patience_s = patience_s
        self.max_batch = max_batch
        self._pending: deque[tuple[Record, asyncio.Future[None] | None]] = deque()
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="write-behind")

    def submit(self, record: Record) -> None:
        """Queue `record`; it is written after everything submitted before it."""
        self._queue(record, None)

    async def write(self, record: Record) -> None:
        """Queue `record` and wait until it (and everything before it) is committed; raises
        the database's error when it was refused or the outage outlasted `patience_s`."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue(record, done)
        await done

    async def flush(self, timeout: float) -> bool:
        """Wait until everything recorded so far is written (or given up); False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is pending (a stopping daemon keeps its records), then stop."""
        if self._task is None:
            return
        if not await self.flush(timeout):
            log.error("%d records not written before stopping", len(self._pending))
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _queue(self, record: Record, done: asyncio.Future[None] | None) -> None:
        self._pending.append((record, done))
        self._idle.clear()
        self._arrived.set()

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if self.linger_s > 0 and len(self._pending) < self.max_batch:
                await asyncio.sleep(self.linger_s)  # the other calls' records join this batch
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), self.max_batch))]
                await self._write_batch(batch)
            self._idle.set()

    async def _write_batch(self, batch: list[tuple[Record, asyncio.Future[None] | None]]) -> None:
        self._batches_written += 1
        batch_no = self._batches_written  # every attempt at this batch carries the same number
        try:
            await self._patiently(lambda: self._in_one_statement(batch_no, [s for s, _ in batch]))
        except STORE_DOWN as exc:
            log.error("%d records lost: the database stayed unreachable for %.0f s: %s", len(batch),
                      self.patience_s, exc)
            _settle(batch, exc)
            return
        except psycopg.Error as exc:
            if len(batch) > 1:  # rolled back as a whole: find the one the database refuses
                log.warning("a batch of %d records was refused (%s); writing them one by one",
                            len(batch), _first_line(exc))
                for item in batch:
                    await self._write_batch([item])
                return
            log.error("record refused by the database, lost: %s (%s)", _first_line(exc), batch[0][0])
            _settle(batch, exc)
            return
        _settle(batch, None)

    async def _in_one_statement(self, batch_no: int, records: list[Record]) -> None:
        async with self.pool.connection() as conn:
            if not await write_numbered_batch(conn, self.writer, self.node, batch_no, records):
                log.info("batch %d (%d records) was committed before its reply was lost: not "
                         "applied again", batch_no, len(records))

    async def _patiently(self, write: Callable[[], Awaitable[None]]) -> None:
        try:
            return await write()  # the usual case, without building a retry loop for it
        except STORE_DOWN as exc:
            log.warning("database write failed, retrying: %s", _first_line(exc))
        async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.patience_s), wait=wait_exponential(multiplier=0.2, max=5.0),
                retry=retry_if_exception_type(STORE_DOWN), reraise=True):
            with attempt:
                await write()


def _settle(batch: list[tuple[Record, asyncio.Future[None] | None]], error: BaseException | None) -> None:
    for _, done in batch:
        if done is not None and not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
