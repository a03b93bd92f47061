"""The nodes' operational state (migration 043): draining, and the active daemon's word that it
serves a node. What a node is (its addresses) is provisioning (hotline.store.provisioning); this is
what operations and the daemon change while it runs, never a provisioning file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

from hotline.errors import ProvisionError
from hotline.store.provisioning_changes import NOTIFY_CHANNEL


@dataclass(frozen=True)
class NodeState:
    name: str
    ari: str
    ami: str
    sip: str
    draining: bool
    serving: bool  # the active daemon serves it now (its word not lapsed)
    serving_until: datetime | None
    live_calls: int  # legs of this node whose hop is open


LISTING = """
SELECT n.name, n.ari_url AS ari, n.ami_url AS ami, n.sip_uri AS sip, n.draining,
       coalesce(n.serving_until > now(), false) AS serving, n.serving_until,
       (SELECT count(*) FROM hops h WHERE h.node = n.name AND h.ended_at IS NULL)::int AS live_calls
  FROM nodes n ORDER BY n.name"""


async def listing(conn: AsyncConnection) -> list[NodeState]:
    cur = conn.cursor(row_factory=class_row(NodeState))
    await cur.execute(LISTING)
    return await cur.fetchall()


async def set_draining(conn: AsyncConnection, name: str, draining: bool) -> None:
    """Drain a node (no new call; its live calls go on) or take it back; the daemon hears at once."""
    async with conn.transaction():
        cur = await conn.execute("UPDATE nodes SET draining = %s WHERE name = %s", (draining, name))
        if cur.rowcount == 0:
            raise ProvisionError(f"node {name!r} does not exist (`hotline node list`)")
        await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")


async def draining(conn: AsyncConnection) -> set[str]:
    cur = await conn.execute("SELECT name FROM nodes WHERE draining")
    return {row[0] for row in await cur.fetchall()}


async def live_calls(conn: AsyncConnection, name: str) -> int:
    cur = await conn.execute("SELECT count(*) FROM hops WHERE node = %s AND ended_at IS NULL", (name,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def serve(conn: AsyncConnection, names: Sequence[str], for_s: float) -> None:
    """The active daemon's word: it serves `names` for the next `for_s` seconds (renewed before
    then while it does; a node it lost, or a daemon gone, lapses on its own)."""
    await conn.execute("UPDATE nodes SET serving_until = CASE WHEN name = ANY(%s)"
                       " THEN now() + make_interval(secs => %s) ELSE NULL END"
                       " WHERE serving_until IS NOT NULL OR name = ANY(%s)",
                       (list(names), for_s, list(names)))


async def ari_url_of_channel(conn: AsyncConnection, channel_id: str) -> str | None:
    """The ARI address of the provisioned node live channel `channel_id` is on (None: no nodes,
    or no such live leg: the settings' one Asterisk)."""
    cur = await conn.execute("SELECT n.ari_url FROM hops h JOIN nodes n ON n.name = h.node"
                             " WHERE h.channel_id = %s AND h.ended_at IS NULL ORDER BY h.id DESC LIMIT 1",
                             (channel_id,))
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def ari_url_of_case(conn: AsyncConnection, case_id: int) -> str | None:
    """The ARI address of the provisioned node case `case_id`'s live leg (and so its bridge) is on."""
    cur = await conn.execute("SELECT n.ari_url FROM hops h JOIN nodes n ON n.name = h.node"
                             " WHERE h.case_id = %s AND h.ended_at IS NULL ORDER BY h.seq DESC LIMIT 1",
                             (case_id,))
    row = await cur.fetchone()
    return str(row[0]) if row else None
