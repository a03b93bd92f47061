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
refused one is lost, and logged. Through a database outage the batch is retried with backoff
while new records queue up behind it, in memory up to `max_pending` records. Past that bound, or
once the outage outlasts `patience_s`, everything waiting goes to the spool on disk
(hotline.store.spool) and memory starts again from empty; spooled batches are written first, in
order, once the database is back, and a daemon started later writes what an earlier one spooled.
Without a spool the same limits drop records, and log each loss. Records carry their own time
(QueueEvent.at), so a late write is dated right.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, stop_never, wait_exponential

from hotline.store.db import STORE_DOWN
from hotline.store.records import Record, write_numbered_batch
from hotline.store.spool import Spool, SpooledBatch, read_segment

log = logging.getLogger(__name__)

MAX_BATCH = 500  # records per round trip; bounds one transaction's size after an outage
LINGER_S = 0.02  # how long a batch waits for more records after its first
# Records held in memory through an outage before they go to the spool: at 10 calls/s and about
# six records a call, half an hour of calls, some 100 MB.
MAX_PENDING = 100_000

ENDING_KINDS = frozenset({"close", "refused"})  # the records that end a hop (hotline.store.records)

Waiting = tuple[Record, asyncio.Future[None] | None]


class WriteBehind:
    def __init__(self, pool: AsyncConnectionPool, *, patience_s: float = 600.0,
                 max_batch: int = MAX_BATCH, linger_s: float = LINGER_S, node: str | None = None,
                 spool_dir: Path | None = None, max_pending: int = MAX_PENDING) -> None:
        self.pool = pool
        self.writer = uuid.uuid4()
        self.node = node or socket.gethostname()
        self._batches_written = 0
        self.linger_s = linger_s
        self.patience_s = patience_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending: deque[Waiting] = deque()
        self._in_flight: tuple[int, list[Waiting]] | None = None  # the batch being written
        self._in_flight_spooled = False
        self.spool = Spool(spool_dir, self.writer) if spool_dir is not None else None
        self._segments: deque[Path] = deque()  # spooled, oldest first
        self._segment_waiters: dict[Path, list[asyncio.Future[None]]] = {}
        self.spooled_records = 0  # in segments not written yet
        # Hops closed (a close or a refused record) since the start, by end reason: every hop's
        # end passes here, so this is the daemon's count of ended calls (hotline.metrics).
        self.ended: Counter[str] = Counter()
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start writing: first what earlier runs spooled for this database, then what comes."""
        if self._task is not None:
            return
        if self.spool is not None:
            left = self.spool.open()
            if left:
                log.warning("%d spooled segment(s) of an earlier run to write first", len(left))
                self._segments.extend(left)
                self._idle.clear()
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
            if self.spool is not None and self.pending:
                self._spill("stopping")
            else:
                log.error("%d records not written before stopping", self.pending)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    @property
    def pending(self) -> int:
        """Records in memory not written yet (the spooled ones are in `spooled_records`)."""
        return len(self._pending) + (len(self._in_flight[1]) if self._in_flight else 0)

    @property
    def backlog(self) -> int:
        """Records not committed yet, in memory or in the spool."""
        return self.pending + self.spooled_records

    def _queue(self, record: Record, done: asyncio.Future[None] | None) -> None:
        if record.get("k") in ENDING_KINDS:
            self.ended[str(record["reason"])] += 1
        self._pending.append((record, done))
        self._idle.clear()
        self._arrived.set()
        if len(self._pending) >= self.max_pending:
            if self.spool is not None:
                self._spill(f"{len(self._pending)} records waiting in memory")
            else:
                lost, _ = self._pending.popleft()
                log.error("record lost: %d records wait for the database and no spool is set: %s",
                          self.max_pending, lost)

    def _spill(self, why: str) -> None:
        """Everything waiting, to one segment on disk, in order. The batch being written goes
        too, under its own number: if its write goes through after all, its spooled copy is
        recognised by that number and skipped."""
        assert self.spool is not None
        batches: list[tuple[int, list[Waiting]]] = []
        if self._in_flight is not None and not self._in_flight_spooled:
            batches.append(self._in_flight)
            self._in_flight_spooled = True
        while self._pending:
            self._batches_written += 1
            batches.append((self._batches_written, [self._pending.popleft()
                                                    for _ in range(min(len(self._pending), self.max_batch))]))
        if not batches:
            return
        path = self.spool.write_segment([(no, [r for r, _ in batch]) for no, batch in batches])
        self._segments.append(path)
        self._segment_waiters[path] = [done for _, batch in batches for _, done in batch if done is not None]
        count = sum(len(batch) for _, batch in batches)
        self.spooled_records += count
        log.warning("%d records spooled to %s (%s); written once the database is back", count, path, why)

    async def _run(self) -> None:
        while True:
            await self._write_spooled()
            if not self._pending:
                self._idle.set()
                await self._arrived.wait()
                self._arrived.clear()
                if self.linger_s > 0 and len(self._pending) < self.max_batch:
                    await asyncio.sleep(self.linger_s)  # the other calls' records join this batch
                continue
            batch = [self._pending.popleft() for _ in range(min(len(self._pending), self.max_batch))]
            await self._write_batch(batch)

    async def _write_spooled(self) -> None:
        """Every spooled segment, oldest first, through any outage: they are on disk, not in memory."""
        while self._segments:
            path = self._segments[0]
            try:
                batches = read_segment(path)
            except (OSError, ValueError) as exc:
                log.error("spooled segment %s unreadable, its records lost: %s", path, exc)
                batches = []
            for spooled in batches:
                await self._write_spooled_batch(spooled)
                self.spooled_records = max(0, self.spooled_records - len(spooled.records))
            path.unlink(missing_ok=True)
            self._segments.popleft()
            for done in self._segment_waiters.pop(path, []):
                if not done.done():
                    done.set_result(None)
            log.info("spooled segment %s written (%d batches)", path.name, len(batches))

    async def _write_spooled_batch(self, spooled: SpooledBatch) -> None:
        """Retried through an outage however long (it is on disk, not in memory); a batch the
        database refuses is lost alone, and logged."""
        try:
            async for attempt in AsyncRetrying(
                    stop=stop_never, wait=wait_exponential(multiplier=0.2, max=5.0),
                    retry=retry_if_exception_type(STORE_DOWN), reraise=True):
                with attempt:
                    await self._apply(spooled.writer, spooled.batch_no, spooled.records)
        except psycopg.Error as exc:
            log.error("spooled batch refused by the database, lost: %s", _first_line(exc))

    async def _write_batch(self, batch: list[Waiting]) -> None:
        self._batches_written += 1
        batch_no = self._batches_written  # every attempt at this batch carries the same number
        self._in_flight, self._in_flight_spooled = (batch_no, batch), False
        try:
            await self._write_numbered(batch_no, batch)
        finally:
            self._in_flight = None

    async def _write_numbered(self, batch_no: int, batch: list[Waiting]) -> None:
        try:
            await self._patiently(lambda: self._in_one_statement(batch_no, [s for s, _ in batch]))
        except STORE_DOWN as exc:
            if self.spool is not None:
                self._spill(f"the database unreachable for {self.patience_s:.0f} s")
                return
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
        await self._apply(self.writer, batch_no, records)

    async def _apply(self, writer: uuid.UUID, batch_no: int, records: list[Record]) -> None:
        async with self.pool.connection() as conn:
            if not await write_numbered_batch(conn, writer, self.node, batch_no, records):
                log.info("batch %d (%d records) was committed before (its reply lost, or spooled "
                         "and written already): not applied again", batch_no, len(records))

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


def _settle(batch: list[Waiting], error: BaseException | None) -> None:
    for _, done in batch:
        if done is not None and not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
