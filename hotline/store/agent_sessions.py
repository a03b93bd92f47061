"""Agent presence: login sessions and pauses, kept as intervals in `agent_sessions` and
`agent_pauses` so statistics can add up logged-in time and pause time by reason.

Each change is one transaction that first locks the agent's row, so the changes of one agent
(from the CLI or the daemon) happen one after the other: a pause cannot slip in behind a logout
and leave an open pause with no session. It ends with `pg_notify('hotline_agents', <json>)`,
which PostgreSQL delivers at commit to a daemon LISTENing on that channel.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, errors

from hotline.errors import AgentStateError

# The daemon LISTENs here; each payload is {"agent": ..., "event": ..., "reason": ...}.
NOTIFY_CHANNEL = "hotline_agents"
EVENTS = ("login", "logout", "pause", "unpause")
MAX_REASON = 100
# Control characters, line separators and format characters (bidi overrides): a reason is shown
# in one line of `agent status` and of supervisors' reports.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


@dataclass(frozen=True)
class AgentPresence:
    """One agent now: logged out, logged in and free, or logged in and paused for a reason."""

    agent: str
    logged_in_since: datetime | None = None
    paused_since: datetime | None = None
    reason: str | None = None

    @property
    def state(self) -> str:
        if self.logged_in_since is None:
            return "logged out"
        return "free" if self.paused_since is None else "paused"


@dataclass(frozen=True)
class Change:
    """What one action did; `changed` is False for a no-op (login when already logged in)."""

    event: str
    changed: bool
    before: AgentPresence
    after: AgentPresence


@dataclass(frozen=True)
class _Locked:
    """The agent, its row locked until commit, and the one moment every write of the change uses."""

    id: int
    presence: AgentPresence
    moment: datetime


_PRESENCE_SQL = (
    "SELECT a.name, s.logged_in_at, p.started_at, p.reason, statement_timestamp() FROM agents a"
    " LEFT JOIN agent_sessions s ON s.agent_id = a.id AND s.logged_out_at IS NULL"
    " LEFT JOIN agent_pauses p ON p.agent_id = a.id AND p.ended_at IS NULL")


# -- the actions --------------------------------------------------------------------------------

async def login(conn: AsyncConnection, agent: str, at: datetime | None = None) -> Change:
    """Open a session (from `at`, default now); a no-op when one is already open."""
    _check_login_time(agent, at)
    try:
        async with _changing(conn, agent) as locked:
            if locked.presence.logged_in_since is not None:
                return _same("login", locked.presence)
            since = await _open_session(conn, locked, at)
            await _notify(conn, agent, "login")
    except errors.UniqueViolation:
        # A session was opened at the same moment without this lock (the partial unique index
        # keeps one open per agent): the agent is logged in, which is what was asked.
        return _same("login", await _presence(conn, agent))
    return Change("login", True, locked.presence, replace(locked.presence, logged_in_since=since))


async def logout(conn: AsyncConnection, agent: str) -> Change:
    """Close the session and the pause, if any; a no-op when not logged in."""
    async with _changing(conn, agent) as locked:
        before = locked.presence
        if before.logged_in_since is None:
            return _same("logout", before)
        await _end_pause(conn, locked)
        await conn.execute("UPDATE agent_sessions SET logged_out_at = %s"
                           " WHERE agent_id = %s AND logged_out_at IS NULL", (locked.moment, locked.id))
        await _notify(conn, agent, "logout")
    return Change("logout", True, before, AgentPresence(agent))


async def pause(conn: AsyncConnection, agent: str, reason: str) -> Change:
    """Pause a logged-in agent; another reason while paused ends that pause and starts this one."""
    reason = clean_reason(reason)
    async with _changing(conn, agent) as locked:
        before = locked.presence
        if before.logged_in_since is None:
            raise AgentStateError(f"agent {agent!r} is not logged in: log in before pausing")
        await _check_listed(conn, reason)
        if before.paused_since is not None and before.reason == reason:
            return _same("pause", before)
        # Both ends at the same moment: time by reason adds up with no gap and no overlap.
        await _end_pause(conn, locked)
        await conn.execute("INSERT INTO agent_pauses (agent_id, reason, started_at) VALUES (%s, %s, %s)",
                           (locked.id, reason, locked.moment))
        await _notify(conn, agent, "pause", reason)
    return Change("pause", True, before, replace(before, paused_since=locked.moment, reason=reason))


async def unpause(conn: AsyncConnection, agent: str) -> Change:
    """End the agent's pause; refused when the agent is not paused."""
    async with _changing(conn, agent) as locked:
        before = locked.presence
        if before.paused_since is None:
            raise AgentStateError(f"agent {agent!r} is not paused")
        await _end_pause(conn, locked)
        await _notify(conn, agent, "unpause", before.reason)
    return Change("unpause", True, before, replace(before, paused_since=None, reason=None))


async def states(conn: AsyncConnection) -> dict[str, AgentPresence]:
    """Every live agent's presence, by name."""
    cur = await conn.execute(_PRESENCE_SQL + " WHERE a.retired_at IS NULL ORDER BY a.name")
    return {row[0]: _presence_of(row) for row in await cur.fetchall()}


async def _check_listed(conn: AsyncConnection, reason: str) -> None:
    """Once provisioning lists the pause reasons (migration 041), a pause takes one of them: the
    statistics by reason then add up over a known set, and the agent's desk offers the same list."""
    cur = await conn.execute("SELECT reason FROM pause_reasons ORDER BY position")
    listed = [row[0] for row in await cur.fetchall()]
    if listed and reason not in listed:
        raise AgentStateError(f"pause reason {reason!r} is not one of the provisioned reasons: "
                              f"{', '.join(listed)}")


def clean_reason(reason: str) -> str:
    """The reason as stored: trimmed, one line of at most MAX_REASON characters."""
    text = reason.strip()
    if not text:
        raise AgentStateError("a pause needs a reason")
    if len(text) > MAX_REASON:
        raise AgentStateError(f"pause reason is {len(text)} characters long, at most {MAX_REASON}")
    bad = next((c for c in text if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise AgentStateError(f"pause reason {text!r} contains the control character {bad!r}")
    return text


# -- plumbing -----------------------------------------------------------------------------------

@asynccontextmanager
async def _changing(conn: AsyncConnection, agent: str) -> AsyncIterator[_Locked]:
    """One transaction holding the agent's row lock; commits when the block ends normally."""
    async with conn.transaction():
        yield await _lock(conn, agent)


async def _lock(conn: AsyncConnection, agent: str) -> _Locked:
    # NO KEY UPDATE: serialises presence changes of this agent without blocking hops and queue
    # events that reference the agent (their foreign keys take KEY SHARE).
    cur = await conn.execute("SELECT id, retired_at IS NOT NULL FROM agents WHERE name = %s"
                             " FOR NO KEY UPDATE", (agent,))
    row = await cur.fetchone()
    if row is None:
        raise AgentStateError(f"agent {agent!r} does not exist")
    if row[1]:
        raise AgentStateError(f"agent {agent!r} was removed")
    # Read in a statement of its own, after the lock: under READ COMMITTED it sees what the
    # previous holder committed (a join in the locking statement would see the older rows), and
    # its statement_timestamp() is later than anything that holder wrote.
    cur = await conn.execute(_PRESENCE_SQL + " WHERE a.id = %s", (row[0],))
    presence_row = await cur.fetchone()
    assert presence_row is not None
    return _Locked(row[0], _presence_of(presence_row), presence_row[4])


async def _presence(conn: AsyncConnection, agent: str) -> AgentPresence:
    cur = await conn.execute(_PRESENCE_SQL + " WHERE a.name = %s", (agent,))
    row = await cur.fetchone()
    return _presence_of(row) if row is not None else AgentPresence(agent)


def _presence_of(row: tuple[Any, ...]) -> AgentPresence:
    return AgentPresence(row[0], row[1], row[2], row[3])


def _same(event: str, presence: AgentPresence) -> Change:
    return Change(event, False, presence, presence)


def _check_login_time(agent: str, at: datetime | None) -> None:
    # A naive time would be read in the database session's time zone, whatever the caller meant.
    if at is not None and at.tzinfo is None:
        raise AgentStateError(f"agent {agent!r}: login time {at.isoformat()} has no time zone")


async def _open_session(conn: AsyncConnection, locked: _Locked, at: datetime | None) -> datetime:
    """Insert the session; a given `at` must lie between the last logout and now, so sessions
    never overlap and logged-in time adds up."""
    since = locked.moment if at is None else at
    cur = await conn.execute(
        "INSERT INTO agent_sessions (agent_id, logged_in_at) SELECT %(id)s, %(at)s"
        " WHERE %(at)s <= %(now)s AND %(at)s >= coalesce((SELECT max(logged_out_at)"
        " FROM agent_sessions WHERE agent_id = %(id)s), '-infinity') RETURNING logged_in_at",
        {"id": locked.id, "at": since, "now": locked.moment})
    row = await cur.fetchone()
    if row is None:
        raise AgentStateError(f"agent {locked.presence.agent!r}: login time {since.isoformat()} is in the"
                              f" future or before the agent's last logout")
    logged_in_at: datetime = row[0]
    return logged_in_at


async def _end_pause(conn: AsyncConnection, locked: _Locked) -> None:
    await conn.execute("UPDATE agent_pauses SET ended_at = %s WHERE agent_id = %s AND ended_at IS NULL",
                       (locked.moment, locked.id))


async def _notify(conn: AsyncConnection, agent: str, event: str, reason: str | None = None) -> None:
    # pg_notify takes the payload as a bound parameter: no quoting of the reason by hand.
    payload = json.dumps({"agent": agent, "event": event, "reason": reason})
    await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload))
