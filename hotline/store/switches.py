"""Switch tokens: a live call's customer moves to video, in the same case, by a one-time link.

A token is 32 random bytes in hex, given out once (in the link) and stored only as its SHA-256,
bound to one case and the leg it moves away from. It is used once, within its lifetime: using it
opens the video leg's hop in the same case, in the same transaction, so two browsers racing with
one link cannot both get in. A leg has one live link at a time (a new one ends the one before),
and a caller's own requests are held to a cooldown and a number per case (SMS cost money).
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
WEBRTC = "webrtc"  # a browser's leg (hops.channel_kind): on video already


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
    links_before: int = 0  # the links the case had been issued before this one


@dataclass(frozen=True)
class SwitchUse:
    """A token used: the video leg's new hop, and the leg it replaces as it was at that moment."""

    hop: Hop
    from_hop_id: int
    from_hop_live: bool
    hotline_id: int | None
    queue_id: int | None
    agent_id: int | None
    priority: int | None = None  # the replaced leg's in queues: a video leg that waits keeps it


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


@dataclass(frozen=True)
class SwitchHeld:
    """A caller's press that sends nothing: the leg's link is valid and younger than the
    cooldown; presses go on sending nothing for `for_s` seconds more."""

    for_s: float


@dataclass(frozen=True)
class SwitchDenied:
    """A caller's press refused; `first`: this refusal was recorded now (the leg's first), not
    before."""

    case_id: int
    reason: str
    first: bool


CallerSwitch = IssuedSwitch | SwitchHeld | SwitchDenied


@dataclass(frozen=True)
class _Leg:
    """A leg asked to move to video, with its case locked, and the case's links so far."""

    hop_id: int
    case_id: int
    channel_kind: str
    caller_num: str
    links: int  # issued for the case, by anyone
    live_link_age_s: float | None  # the leg's valid link: how long ago it was issued


class Switches:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def issue(self, hop_id: int, requested_by: str, ttl_s: int) -> IssuedSwitch:
        """A token for moving the live, answered leg `hop_id` to video (an agent may move a
        browser's call to another browser too); the leg's link before it stops working (one live
        link per leg). SwitchNotPossible if it is not such a leg (the switch joins the agent's
        bridge: a leg with no agent has none to join)."""
        async with self.pool.connection() as conn, conn.transaction():
            return await _issue(conn, await _leg(conn, hop_id), requested_by, ttl_s)

    async def issue_for_caller(self, hop_id: int, ttl_s: int, cooldown_s: int, per_case: int) -> CallerSwitch:
        """The caller of `hop_id` pressed the switch key: a new link (to send), or nothing while
        the leg's link is valid and younger than `cooldown_s`, or a refusal once the case has had
        `per_case` links or when the leg is a browser's. Refusals are recorded once per leg.
        SwitchNotPossible as for issue()."""
        async with self.pool.connection() as conn, conn.transaction():
            leg = await _leg(conn, hop_id)
            if leg.channel_kind == WEBRTC:
                return await _deny(conn, leg, "the call is a browser's, on video already")
            if leg.live_link_age_s is not None and leg.live_link_age_s < cooldown_s:
                return SwitchHeld(cooldown_s - leg.live_link_age_s)
            if leg.links >= per_case:
                return await _deny(conn, leg, f"the case has had its {per_case} switch links "
                                              f"(switch_links_per_case)")
            return await _issue(conn, leg, "caller", ttl_s)

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
                " h.id AS from_hop, h.ended_at IS NULL AS live, h.hotline_id, h.queue_id, h.agent_id,"
                " h.priority"
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
                         row["agent_id"], row["priority"])


def _state(row: tuple[bool, bool] | None) -> TokenState:
    if row is None:
        return TokenState.UNKNOWN
    used, expired = row
    return TokenState.USED if used else TokenState.EXPIRED if expired else TokenState.VALID


async def _leg(conn: AsyncConnection, hop_id: int) -> _Leg:
    """The live, answered leg `hop_id`, its case locked until the transaction ends (two requests
    for one case count its links one after the other); SwitchNotPossible otherwise."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT h.case_id, h.channel_kind, h.caller_num FROM hops h JOIN cases c ON c.id = h.case_id"
        " WHERE h.id = %s AND h.ended_at IS NULL AND h.answered_at IS NOT NULL FOR UPDATE OF c", (hop_id,))
    hop = await cur.fetchone()
    if hop is None:
        raise SwitchNotPossible(await _why_not(conn, hop_id))
    await cur.execute(
        "SELECT count(*) AS links, extract(epoch FROM now() - max(issued_at) FILTER (WHERE from_hop_id = %s"
        " AND used_at IS NULL AND expires_at > now()))::float8 AS age FROM switches WHERE case_id = %s",
        (hop_id, hop["case_id"]))
    counted = await cur.fetchone()
    assert counted is not None  # an aggregate always has its row
    return _Leg(hop_id, hop["case_id"], hop["channel_kind"], hop["caller_num"], counted["links"],
                counted["age"])


async def _issue(conn: AsyncConnection, leg: _Leg, requested_by: str, ttl_s: int) -> IssuedSwitch:
    """A new token for `leg`; its link before stops working now."""
    await conn.execute(
        "UPDATE switches SET expires_at = greatest(now(), issued_at + interval '1 microsecond')"
        " WHERE from_hop_id = %s AND used_at IS NULL AND expires_at > now()", (leg.hop_id,))
    token = new_token()
    cur = await conn.execute(
        "INSERT INTO switches (case_id, from_hop_id, token_sha256, requested_by, expires_at)"
        " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) RETURNING expires_at",
        (leg.case_id, leg.hop_id, token_hash(token), requested_by, ttl_s))
    row = await cur.fetchone()
    assert row is not None  # INSERT ... RETURNING
    return IssuedSwitch(token, leg.case_id, leg.hop_id, leg.caller_num, row[0], links_before=leg.links)


async def _deny(conn: AsyncConnection, leg: _Leg, reason: str) -> SwitchDenied:
    cur = await conn.execute(
        "INSERT INTO switch_refusals (hop_id, case_id, reason) VALUES (%s, %s, %s)"
        " ON CONFLICT (hop_id) DO NOTHING RETURNING hop_id", (leg.hop_id, leg.case_id, reason))
    return SwitchDenied(leg.case_id, reason, first=await cur.fetchone() is not None)


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
