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
    language: str | None = None  # the replaced leg's prompts' language: the video leg's too


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


UNWATCHED_DIAL = "not known: no daemon watched the phone ring to its end"


class Switches:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def issue(self, hop_id: int, requested_by: str, ttl_s: int, *,
                    to_number: str | None = None) -> IssuedSwitch:
        """A token for moving the live, answered leg `hop_id` to video (an agent may move a
        browser's call to another browser too), or, `to_number`, to that phone, which the daemon
        dials; the leg's link before it stops working (one live link per leg). SwitchNotPossible
        if it is not such a leg (the switch joins the agent's bridge: a leg with no agent has none
        to join)."""
        async with self.pool.connection() as conn, conn.transaction():
            return await _issue(conn, await _leg(conn, hop_id), requested_by, ttl_s, to_number)

    async def phone_not_answered(self, token: str, outcome: str, cause: int | None, cause_text: str) -> bool:
        """The phone dialled with `token` ended unanswered ('no_answer', 'busy', 'failed'): its
        switch says so, once (a token used meanwhile stays 'answered'). Whether it was written."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE switches SET outcome = %s, outcome_at = now(), hangup_cause = %s,"
                " hangup_cause_text = %s WHERE token_sha256 = %s AND to_number IS NOT NULL"
                " AND used_at IS NULL AND outcome IS NULL RETURNING id",
                (outcome, cause, cause_text or None, token_hash(token)))
            return await cur.fetchone() is not None

    async def close_unwatched_dials(self, watched_for_s: int) -> list[int]:
        """The phone dials for video talks issued more than `watched_for_s` ago that neither
        answered nor were recorded unanswered (their daemon stopped or lost the channel while they
        rang; no daemon watches a ring that long): closed 'failed', saying how it ended is not
        known. The ids of the switches closed."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE switches SET outcome = 'failed', outcome_at = now(), hangup_cause_text = %s"
                " WHERE to_number IS NOT NULL AND used_at IS NULL AND outcome IS NULL"
                " AND issued_at < now() - make_interval(secs => %s) RETURNING id",
                (UNWATCHED_DIAL, watched_for_s))
            return [row[0] for row in await cur.fetchall()]

    async def issue_for_caller(self, hop_id: int, ttl_s: int, cooldown_s: int, per_case: int, *,
                               waiting: bool = False) -> CallerSwitch:
        """The caller of `hop_id` pressed the switch key (or, `waiting`, a queue's or a menu's
        video key: the leg need not be answered by an agent, the engine knows it is in line): a
        new link (to send), or nothing while the leg's link is valid and younger than
        `cooldown_s`, or a refusal once the case has had `per_case` links or when the leg is a
        browser's. Refusals are recorded once per leg. SwitchNotPossible as for issue()."""
        async with self.pool.connection() as conn, conn.transaction():
            leg = await _leg(conn, hop_id, answered=not waiting)
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
                " h.priority, h.language"
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
            # a phone the daemon dialled answered: its dial's outcome (migration 026)
            await conn.execute("UPDATE switches SET used_at = now(), to_hop_id = %s,"
                               " outcome = CASE WHEN to_number IS NOT NULL THEN 'answered' END,"
                               " outcome_at = CASE WHEN to_number IS NOT NULL THEN now() END WHERE id = %s",
                               (opened.id, row["id"]))
        return SwitchUse(opened, row["from_hop"], row["live"], row["hotline_id"], row["queue_id"],
                         row["agent_id"], row["priority"], row["language"])


@dataclass(frozen=True)
class CustomerTalk:
    """A customer's live video talk, as their own page finds it: its leg, and the case's switches
    so far (each may have dialled a number: they are counted against switch_links_per_case)."""

    hop_id: int
    case_id: int
    channel_id: str
    switches: int


async def customer_video_talk(conn: AsyncConnection, *, browser: str, token: str) -> CustomerTalk | None:
    """The live, answered video leg of the customer whose page asks: the leg a switch link's
    `token` (spent) opened, or else the one of the case of browser id `browser` (`web:<id>`)."""
    cur = conn.cursor(row_factory=dict_row)
    if token:
        await cur.execute("SELECT to_hop_id AS hop FROM switches"
                          " WHERE token_sha256 = %s AND used_at IS NOT NULL", (token_hash(token),))
    else:
        await cur.execute("SELECT h.id AS hop FROM hops h JOIN cases c ON c.id = h.case_id"
                          " WHERE c.customer_key = %s AND c.closed_at IS NULL AND h.channel_kind = 'webrtc'"
                          " ORDER BY h.id DESC LIMIT 1", (f"web:{browser}",))
    found = await cur.fetchone()
    if found is None or found["hop"] is None:
        return None
    await cur.execute(
        "SELECT h.id, h.case_id, h.channel_id, (SELECT count(*) FROM switches s WHERE s.case_id = h.case_id)"
        " AS switches FROM hops h WHERE h.id = %s AND h.ended_at IS NULL AND h.answered_at IS NOT NULL"
        " AND h.agent_id IS NOT NULL AND h.media = 'video'", (found["hop"],))
    row = await cur.fetchone()
    return CustomerTalk(row["id"], row["case_id"], row["channel_id"], row["switches"]) if row else None


@dataclass(frozen=True)
class SwitchLeg:
    """Where the leg a switch link was made on came in: its hotline and number (by name, None:
    gone from provisioning) and the language its prompts were played in (None: the default)."""
    hotline: str | None
    number: str | None
    language: str | None
    node: str = ""  # the Asterisk node it lives on: where the case's bridge is


async def switch_leg(conn: AsyncConnection, token: str) -> SwitchLeg | None:
    """The leg switch link `token` was made on (None: no such token)."""
    cur = await conn.execute(
        "SELECT hotline_name(h.hotline_id), n.number, h.language, h.node FROM switches s"
        " JOIN hops h ON h.id = s.from_hop_id LEFT JOIN numbers n ON n.id = h.number_id"
        " WHERE s.token_sha256 = %s", (token_hash(token),))
    row = await cur.fetchone()
    return SwitchLeg(row[0], row[1], row[2], row[3]) if row is not None else None


async def case_phone_number(conn: AsyncConnection, case_id: int) -> str | None:
    """The customer's number from the case's latest phone call to the hotline, as the network gave
    it (not a phone leg the daemon dialled for a switch: its caller id is the hotline's), or None."""
    cur = await conn.execute(
        "SELECT h.caller_num FROM hops h WHERE h.case_id = %s AND h.channel_kind = 'pstn'"
        " AND h.caller_num <> '' AND NOT EXISTS (SELECT 1 FROM switches s WHERE s.to_hop_id = h.id)"
        " ORDER BY h.seq DESC LIMIT 1", (case_id,))
    row = await cur.fetchone()
    return str(row[0]) if row is not None else None


def _state(row: tuple[bool, bool] | None) -> TokenState:
    if row is None:
        return TokenState.UNKNOWN
    used, expired = row
    return TokenState.USED if used else TokenState.EXPIRED if expired else TokenState.VALID


async def _leg(conn: AsyncConnection, hop_id: int, *, answered: bool = True) -> _Leg:
    """The live leg `hop_id` (answered by an agent, unless not `answered` is asked), its case
    locked until the transaction ends (two requests for one case count its links one after the
    other); SwitchNotPossible otherwise."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT h.case_id, h.channel_kind, h.caller_num FROM hops h JOIN cases c ON c.id = h.case_id"
        " WHERE h.id = %s AND h.ended_at IS NULL AND (h.answered_at IS NOT NULL OR NOT %s)"
        " FOR UPDATE OF c", (hop_id, answered))
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


async def _issue(conn: AsyncConnection, leg: _Leg, requested_by: str, ttl_s: int,
                 to_number: str | None = None) -> IssuedSwitch:
    """A new token for `leg` (to the phone `to_number`: one the daemon dials); its link before
    stops working now."""
    await conn.execute(
        "UPDATE switches SET expires_at = greatest(now(), issued_at + interval '1 microsecond')"
        " WHERE from_hop_id = %s AND used_at IS NULL AND expires_at > now()", (leg.hop_id,))
    token = new_token()
    cur = await conn.execute(
        "INSERT INTO switches (case_id, from_hop_id, token_sha256, requested_by, expires_at, to_number)"
        " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s), %s) RETURNING expires_at",
        (leg.case_id, leg.hop_id, token_hash(token), requested_by, ttl_s, to_number))
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
