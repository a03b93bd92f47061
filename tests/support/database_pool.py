"""Each test's own database, copied from the migrated template ahead of time.

A CREATE DATABASE costs its PostgreSQL backend about a third of a second of CPU on the 2-core CI
machine, whatever the template, and the lab tests mostly wait on real call timings with the CPU
partly idle. So one thread per test session keeps a copy or two ready and drops the used ones
after, while the tests run; a test takes a ready copy at once. Every test still gets a database
nobody used before, a plain copy of the template."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

READY = 2  # copies kept ahead: two tests may start back to back
TAKE_PATIENCE_S = 60.0  # a copy not ready by then: the thread is stuck, the test fails saying so


class DatabasePool:
    def __init__(self, admin_dsn: str, template: str, dsn_for: Callable[[str], str]) -> None:
        self._admin = admin_dsn
        self._template = template
        self._dsn_for = dsn_for
        self._ready: queue.Queue[str] = queue.Queue()
        self._used: queue.Queue[str] = queue.Queue()
        self._lent: dict[str, str] = {}  # DSN -> database name, of the copies tests hold
        self._wake = threading.Event()
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="database-pool", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """A fresh copy's DSN, waiting for the thread when none is ready yet."""
        self._wake.set()
        try:
            name = self._ready.get(timeout=TAKE_PATIENCE_S)
        except queue.Empty:
            raise RuntimeError(f"no database copy made in {TAKE_PATIENCE_S:.0f} s: {self._error}") from None
        self._wake.set()  # one taken: make the next
        dsn = self._dsn_for(name)
        self._lent[dsn] = name
        return dsn

    def give_back(self, dsn: str) -> None:
        """The test is over: its database is dropped (WITH FORCE: a daemon it left may still hold it)."""
        self._used.put(self._lent.pop(dsn))
        self._wake.set()

    def close(self) -> None:
        """Drop what is ready or used; the thread ends."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=120)
        while not self._ready.empty():
            self._used.put(self._ready.get())
        self._drop_used()

    def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                self._drop_used()
                while self._ready.qsize() < READY and not self._closing:
                    self._ready.put(self._create())
            except psycopg.Error as exc:  # the lab's PostgreSQL restarted by a test: try again
                self._error = exc
                log.warning("test database pool: %s", exc)
                time.sleep(0.5)
                continue
            self._wake.wait(timeout=1.0)

    def _create(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {self._template}")
        return name

    def _drop_used(self) -> None:
        while not self._used.empty():
            name = self._used.get()
            drop(self._admin, name)


def drop(admin: str, name: str, attempts: int = 5) -> None:
    """DROP ... WITH (FORCE), retried: a backend of the test may still be on its way out."""
    for attempt in range(attempts):
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except (psycopg.errors.ObjectInUse, psycopg.errors.InsufficientPrivilege):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
