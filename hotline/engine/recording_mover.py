"""Finished recordings moved out of Asterisk's recording directory (the `recording_move_to`
setting): each file, once Asterisk closed it and its row says `done`, goes to
MOVE_TO/YYYY/MM/DD/NAME.FORMAT (the day the talk began, UTC), and its row's path follows in the
same transaction (hotline.store.recordings.move_with_row). Off the call's path: a talk's end asks
(`finished`), a task of its own does the rest.

Rows and files never disagree: a move that fails (no such directory, no permission, a full disk)
is logged and changes no row, the file staying where Asterisk wrote it and the row saying so; a
row that cannot be updated puts the file back. A file not moved (its row not written within
ROW_PATIENCE_S, the daemon stopped first) stays in the recording directory, which its row names."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from psycopg import Error as DbError
from psycopg_pool import AsyncConnectionPool

from hotline.errors import AriError
from hotline.store import recordings

log = logging.getLogger(__name__)

CLOSE_PATIENCE_S = 30.0  # Asterisk finishing the file after the talk's end (a stop, a bridge gone)
ROW_PATIENCE_S = 120.0  # the write-behind writing the recording's end (the database away a while)
LOOK_EVERY_S = 0.25


class LiveRecordings(Protocol):
    async def live_recording(self, name: str) -> dict[str, Any] | None: ...


def destination(move_to: str, started_at: datetime, file_name: str) -> Path:
    """MOVE_TO/YYYY/MM/DD/FILE: one directory per day, as a retention job or an operator looks."""
    return Path(move_to) / started_at.strftime("%Y/%m/%d") / file_name


def move_file(source: Path, dest: Path) -> None:
    """Move `source` to `dest` (never over an existing file): a rename on one filesystem; across
    two, a copy under a temporary name, flushed, renamed into place, then the source removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        raise FileExistsError(errno.EEXIST, "a file of that name is there already", str(dest))
    try:
        os.rename(source, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    part = dest.with_name(f".{dest.name}.part")
    try:
        shutil.copyfile(source, part)
        with part.open("rb") as f:
            os.fsync(f.fileno())
        os.rename(part, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    source.unlink()


class RecordingMover:
    def __init__(self, pool: AsyncConnectionPool[Any], ari: LiveRecordings, recording_dir: str,
                 move_to: str, *, close_patience_s: float = CLOSE_PATIENCE_S,
                 row_patience_s: float = ROW_PATIENCE_S) -> None:
        self.pool, self.ari = pool, ari
        self.recording_dir, self.move_to = recording_dir, move_to
        self.close_patience_s, self.row_patience_s = close_patience_s, row_patience_s
        self._tasks: set[asyncio.Task[None]] = set()

    def finished(self, name: str, fmt: str) -> None:
        """Recording `name`'s talk is over: move its file once Asterisk closed it (never waits)."""
        task = asyncio.create_task(self._move(name, f"{name}.{fmt}"), name=f"move-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop moving: a file not moved yet stays in the recording directory, as its row says."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _move(self, name: str, file_name: str) -> None:
        source = Path(self.recording_dir) / file_name
        try:
            if not await self._closed_by_asterisk(name):
                log.warning("recording %s not moved: Asterisk still records it after %.0f s", name,
                            self.close_patience_s)
                return
            started_at = await self._done_row(name)
            if started_at is None:
                log.warning("recording %s not moved: its row was not written as done within %.0f s; the "
                            "file stays in %s", name, self.row_patience_s, self.recording_dir)
                return
            dest = destination(self.move_to, started_at, file_name)
            if await self._move_with_row(name, source, dest):
                log.info("recording %s moved to %s", name, dest)
        except (OSError, DbError, AriError) as exc:
            log.warning("recording %s not moved from %s: %s (the row still names it there)", name,
                        source, exc)

    async def _closed_by_asterisk(self, name: str) -> bool:
        """Asterisk has no live recording of that name any more: its file is closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.close_patience_s
        while await self.ari.live_recording(name) is not None:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(LOOK_EVERY_S)
        return True

    async def _done_row(self, name: str) -> datetime | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.row_patience_s
        while True:
            with contextlib.suppress(DbError):  # the database away: looked at again
                async with self.pool.connection() as conn:
                    started_at = await recordings.ended_at_start(conn, name)
                if started_at is not None:
                    return started_at
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(LOOK_EVERY_S * 4)

    async def _move_with_row(self, name: str, source: Path, dest: Path) -> bool:
        async with self.pool.connection() as conn:
            return await recordings.move_with_row(
                conn, name, dest, lambda: asyncio.to_thread(move_file, source, dest),
                lambda: asyncio.to_thread(move_file, dest, source))
