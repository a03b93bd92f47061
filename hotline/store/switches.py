"""Switch tokens: a live call's customer moves to video, in the same case, by a one-time link.

A token is 32 random bytes in hex, given out once (in the link) and stored only as its SHA-256,
bound to one case and the leg it moves away from. It is used once, within its lifetime: using it
opens the video leg's hop in the same case, in the same transaction, so two browsers racing with
one link cannot both get in.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from hotline.errors import SwitchNotPossible, SwitchRefused
from hotline.store.contacts import insert_hop
from hotline.store.hops import Hop, NewHop

TOKEN_BYTES = 32


class TokenState(enum.StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"  # never issued, or forged
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True)
class IssuedSwitch:
    token: str
    case_id: int
    from_hop_id: int
    caller_num: str
    expires_at: datetime


@dataclass(frozen=True)
class SwitchUse:
    """A token used: the video leg's new hop, and the leg it replaces as it was at that moment."""

    hop: Hop
    from_hop_id: int
    from_hop_live: bool
    hotline_id: int | None
    queue_id: int | None
    agent_id: int | None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


class Switches:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def issue(self, hop_id: int, requested_by: str, ttl_s: int) -> IssuedSwitch:
        """A token for moving the live, answered leg `hop_id` to video; SwitchNotPossible if it is
        not one (the switch joins the agent's bridge: a leg with no agent has none to join)."""
        token = new_token()
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "INSERT INTO switches (case_id, from_hop_id, token_sha256, requested_by, expires_at)"
                " SELECT h.case_id, h.id, %s, %s, now() + make_interval(secs => %s) FROM hops h"
                " WHERE h.id = %s AND h.ended_at IS NULL AND h.answered_at IS NOT NULL"
                " RETURNING case_id, from_hop_id, expires_at,"
                " (SELECT caller_num FROM hops WHERE id = from_hop_id)",
                (token_hash(token), requested_by, ttl_s, hop_id))
            row = await cur.fetchone()
            if row is None:
                raise SwitchNotPossible(await _why_not(conn, hop_id))
        return IssuedSwitch(token, row["case_id"], row["from_hop_id"], row["caller_num"], row["expires_at"])

    async def check(self, token: str) -> TokenState:
        """What `token` is, without using it (the link's page asks before the browser calls)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT used_at IS NOT NULL, expires_at <= now() FROM switches WHERE token_sha256 = %s",
                (token_hash(token),))
            row = await cur.fetchone()
        return _state(row)

    async def use(self, token: str, hop: NewHop) -> SwitchUse:
        """Use `token` for the video leg `hop`: its hop opens in the token's case, now; the token
        is spent. SwitchRefused (and nothing written) when the token is unknown, expired or used."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT s.id, s.case_id, s.used_at IS NOT NULL AS used, s.expires_at <= now() AS expired,"
                " h.id AS from_hop, h.ended_at IS NULL AS live, h.hotline_id, h.queue_id, h.agent_id"
                " FROM switches s JOIN hops h ON h.id = s.from_hop_id"
                " WHERE s.token_sha256 = %s FOR UPDATE OF s", (token_hash(token),))
            row = await cur.fetchone()
            state = _state((row["used"], row["expired"]) if row else None)
            if row is None or state is not TokenState.VALID:
                raise SwitchRefused(state)
            seq = await conn.execute(
                "SELECT max(seq) + 1 FROM hops WHERE case_id = %s", (row["case_id"],))
            next_seq = (await seq.fetchone() or (1,))[0]
            opened = await insert_hop(conn, row["case_id"], next_seq,
                                      replace(hop, hotline_id=row["hotline_id"]), None)
            await conn.execute("UPDATE switches SET used_at = now(), to_hop_id = %s WHERE id = %s",
                               (opened.id, row["id"]))
        return SwitchUse(opened, row["from_hop"], row["live"], row["hotline_id"], row["queue_id"],
                         row["agent_id"])


def _state(row: tuple[bool, bool] | None) -> TokenState:
    if row is None:
        return TokenState.UNKNOWN
    used, expired = row
    return TokenState.USED if used else TokenState.EXPIRED if expired else TokenState.VALID


async def _why_not(conn: AsyncConnection, hop_id: int) -> str:
    cur = await conn.execute("SELECT ended_at IS NOT NULL, answered_at IS NOT NULL FROM hops WHERE id = %s",
                             (hop_id,))
    row = await cur.fetchone()
    if row is None:
        return f"hop {hop_id} does not exist"
    ended, answered = row
    if ended:
        return f"hop {hop_id} has ended: there is no call to move to video"
    if not answered:
        return f"hop {hop_id} is not talking with an agent yet: only an answered call can move to video"
    return f"hop {hop_id} cannot be switched"
