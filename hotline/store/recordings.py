"""Recordings as the CLI reads them (migration 030): a case's list, one by id or name, the live one
of a case (to pause or stop it), the talking leg (to start one), and the old ones a purge deletes;
a hop's open ones (a talk adopted after a restart). The engine writes these rows through its
record funnel (hotline.engine.recording); the mover (hotline.engine.recording_mover) points a
row at the file it moved, in the same transaction (migration 034); the purge marks them; nothing
else changes them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from psycopg import AsyncConnection
from psycopg.rows import class_row

from hotline.errors import RecordingError

LIVE_STATES = ("recording", "paused")
ASK_PATIENCE_S = 5.0  # how long a start, stop, pause or resume asked of the call's daemon is waited for


@dataclass(frozen=True)
class Pause:
    paused_at: datetime
    resumed_at: datetime | None
    asked_by: str


@dataclass(frozen=True)
class Recording:
    id: int
    name: str
    case_id: int
    hop_id: int
    hop_seq: int
    agent: str | None
    queue: str | None
    format: str
    path: str
    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None
    state: str  # recording | paused | done | failed | purged | missing
    detail: str | None
    purged_at: datetime | None
    moved_at: datetime | None  # moved to recording_move_to (path says where); None: in recording_dir

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.format}"

    def file_in(self, directory: str) -> Path:
        """Where its file is: `path`, once the daemon moved it; else in `directory` (the
        recording_dir setting, Asterisk's directory as this machine sees it)."""
        if self.moved_at is not None:
            return Path(self.path)
        return Path(directory) / self.file_name

    def summary(self) -> str:
        """'#3 hop 1 agent anna queue support done 12.3 s (case7-...wav)': one line of case show."""
        who = " ".join(f"{label} {name}" for label, name in (("agent", self.agent), ("queue", self.queue))
                       if name)
        length = f" {self.duration_ms / 1000:.1f} s" if self.duration_ms is not None else ""
        why = f" ({self.detail})" if self.detail else ""
        return f"#{self.id} hop {self.hop_seq} {who} {self.state}{length}{why}: {self.file_name}"


SELECT = ("SELECT g.id, g.name, g.case_id, g.hop_id, h.seq AS hop_seq, a.name AS agent, q.name AS queue,"
          " g.format, g.path, g.started_at, g.ended_at, g.duration_ms, g.state, g.detail, g.purged_at,"
          " g.moved_at"
          " FROM recordings g JOIN hops h ON h.id = g.hop_id LEFT JOIN agents a ON a.id = g.agent_id"
          " LEFT JOIN queues q ON q.id = g.queue_id")


async def case_recordings(conn: AsyncConnection, case_id: int) -> list[Recording]:
    cur = conn.cursor(row_factory=class_row(Recording))
    await cur.execute(SELECT + " WHERE g.case_id = %s ORDER BY g.started_at, g.id", (case_id,))
    return await cur.fetchall()


async def pauses_of(conn: AsyncConnection, recording_ids: list[int]) -> dict[int, list[Pause]]:
    out: dict[int, list[Pause]] = {i: [] for i in recording_ids}
    cur = await conn.execute("SELECT recording_id, paused_at, resumed_at, asked_by FROM recording_pauses"
                             " WHERE recording_id = ANY(%s) ORDER BY paused_at", (recording_ids,))
    for rec_id, paused_at, resumed_at, asked_by in await cur.fetchall():
        out[rec_id].append(Pause(paused_at, resumed_at, asked_by))
    return out


async def recording(conn: AsyncConnection, ref: str) -> Recording:
    """The recording `ref` names: its id (as `case show` lists it: 3 or #3) or its name."""
    cur = conn.cursor(row_factory=class_row(Recording))
    ident = ref.removeprefix("#")
    if ident.isdigit():
        await cur.execute(SELECT + " WHERE g.id = %s", (int(ident),))
    else:
        await cur.execute(SELECT + " WHERE g.name = %s", (ref,))
    found = await cur.fetchone()
    if found is None:
        raise RecordingError(f"no recording {ref!r} (give its number from `hotline case show`, or its name)")
    return found


async def live_talk_recording(conn: AsyncConnection, case_id: int) -> tuple[Recording, str]:
    """Case `case_id`'s recording under way and the channel of the leg whose talk it records."""
    live = await live_recording(conn, case_id)
    if live is None:
        raise RecordingError(f"case {case_id} has no recording under way (no live talk, or its queue "
                             f"does not record)")
    chan = await conn.execute("SELECT channel_id FROM hops WHERE id = %s", (live.hop_id,))
    row = await chan.fetchone()
    assert row is not None
    return live, str(row[0])


async def live_recording(conn: AsyncConnection, case_id: int) -> Recording | None:
    """Case `case_id`'s recording under way (recording or paused, its leg still up), if any."""
    cur = conn.cursor(row_factory=class_row(Recording))
    await cur.execute(SELECT + " WHERE g.case_id = %s AND g.state = ANY(%s) AND h.ended_at IS NULL"
                      " ORDER BY g.started_at DESC, g.id DESC LIMIT 1", (case_id, list(LIVE_STATES)))
    return await cur.fetchone()


async def talking_leg(conn: AsyncConnection, case_id: int) -> tuple[str, str]:
    """The channel of case `case_id`'s leg talking with a queue's agent now, and that queue's
    `record` (never | always | on_demand; a queue that sets none: its hop's hotline's): where a
    recording start is asked."""
    cur = await conn.execute(
        "SELECT h.channel_id, coalesce(q.record, hl.record, 'never') FROM hops h"
        " JOIN queues q ON q.id = h.queue_id LEFT JOIN hotlines hl ON hl.id = h.hotline_id"
        " WHERE h.case_id = %s AND h.ended_at IS NULL AND h.answered_at IS NOT NULL"
        " AND h.agent_id IS NOT NULL ORDER BY h.seq DESC LIMIT 1", (case_id,))
    row = await cur.fetchone()
    if row is None:
        raise RecordingError(f"case {case_id} has no talk with an agent in progress (or does not exist)")
    return str(row[0]), str(row[1])


async def recording_begins(conn: AsyncConnection, case_id: int,
                           patience_s: float = ASK_PATIENCE_S) -> Recording | None:
    """Case `case_id`'s recording under way, once the call's daemon wrote it (a start asked of
    it), within `patience_s`; None when none began."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    while True:
        live = await live_recording(conn, case_id)
        await conn.commit()  # the next look sees what was committed since
        if live is not None or loop.time() >= deadline:
            return live
        await asyncio.sleep(0.1)


async def older_than(conn: AsyncConnection, days: int) -> list[Recording]:
    """Recordings ended more than `days` days ago whose file may still be theirs to delete: done
    ones, and failed ones (a recording cut short, e.g. its talk ended while no daemon ran, may
    have left a file)."""
    cur = conn.cursor(row_factory=class_row(Recording))
    await cur.execute(SELECT + " WHERE g.state IN ('done', 'failed')"
                      " AND g.ended_at < now() - make_interval(days => %s)"
                      " ORDER BY g.ended_at, g.id", (days,))
    return await cur.fetchall()


async def mark(conn: AsyncConnection, recording_id: int, state: str, detail: str | None = None) -> None:
    """A purged recording: its file deleted (purged) or found gone (missing)."""
    await conn.execute("UPDATE recordings SET state = %s, purged_at = now(), detail = coalesce(%s, detail)"
                       " WHERE id = %s", (state, detail, recording_id))


async def state_becomes(conn: AsyncConnection, recording_id: int, state: str,
                        patience_s: float = ASK_PATIENCE_S) -> bool:
    """Whether recording `recording_id` is in `state` within `patience_s` (the call's daemon
    wrote the pause or resume asked of it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    while True:
        cur = await conn.execute("SELECT state FROM recordings WHERE id = %s", (recording_id,))
        row = await cur.fetchone()
        await conn.commit()  # the next look sees what was committed since
        if row is not None and row[0] == state:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class OpenRecording:
    """A recording whose row has no end: under way, or left so by a daemon stopped during its talk."""

    name: str
    format: str
    state: str  # recording | paused


async def open_recordings(conn: AsyncConnection, hop_id: int) -> list[OpenRecording]:
    """Hop `hop_id`'s recordings with no end yet, oldest first: what a daemon adopting its talk
    after a restart takes over (the last, if Asterisk still records it) or closes."""
    cur = conn.cursor(row_factory=class_row(OpenRecording))
    await cur.execute("SELECT name, format, state FROM recordings WHERE hop_id = %s AND ended_at IS NULL"
                      " ORDER BY started_at, id", (hop_id,))
    return await cur.fetchall()


async def ended_at_start(conn: AsyncConnection, name: str) -> datetime | None:
    """When recording `name` began, once its row says it is done and still where Asterisk wrote
    it; None before that (its records not written yet), and for one failed, moved or purged."""
    cur = await conn.execute("SELECT started_at FROM recordings WHERE name = %s AND state = 'done'"
                             " AND moved_at IS NULL", (name,))
    row = await cur.fetchone()
    await conn.commit()  # the next look sees what was committed since
    return row[0] if row is not None else None


async def move_with_row(conn: AsyncConnection, name: str, dest: Path,
                        move: Callable[[], Awaitable[None]], back: Callable[[], Awaitable[None]]) -> bool:
    """Move recording `name`'s file (`move`) and point its row at `dest`, in one step: the row is
    locked, the file moved, the row updated and committed; a move that fails changes no row, and
    a commit that fails after the move puts the file back (`back`). False: no row to move (failed,
    purged or moved meanwhile)."""
    moved = False
    try:
        async with conn.transaction():
            cur = await conn.execute("SELECT id FROM recordings WHERE name = %s AND state = 'done'"
                                     " AND moved_at IS NULL FOR UPDATE", (name,))
            if await cur.fetchone() is None:
                return False
            await move()
            moved = True
            await conn.execute("UPDATE recordings SET path = %s, moved_at = now() WHERE name = %s",
                               (str(dest), name))
    except BaseException:
        if moved:
            await back()
        raise
    return True
