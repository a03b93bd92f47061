"""`hotline case show|note|switch|invite|transfer`: one case's timeline across channels, a note on
it, moving its live call to video, bringing another agent into its talk, and passing its talk to a
queue or a hotline.
Thin: the store, hotline.web.switch_links and the engine's conference and transfer do the work."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import click
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from hotline.cli.common import run_with_db, run_with_pool, settings_of
from hotline.config import Settings
from hotline.errors import AriError, AriNotFound, HotlineError, PhoneSwitchRefused, TransferRefused
from hotline.provision.model import Agent
from hotline.store import provisioning
from hotline.store.case_notes import CLI_AUTHOR, add_note, check_note
from hotline.store.case_timeline import CaseTimeline, case_timeline, phone_outcome_text
from hotline.store.switches import Switches, case_phone_number
from hotline.store.transfers import TRANSFER_PATIENCE_S, transfer_outcome

# The ARI client (aiohttp) and the engine load in the commands that talk to the daemon, not in
# every `hotline case show`: hotline/cli/__init__.py loads this module for each `case` command.
if TYPE_CHECKING:
    from hotline.engine.transfer import TransferTo
    from hotline.web.switch_links import SwitchLink

CASE_ID = click.argument("case_id", type=click.IntRange(min=1))


@click.group("case")
def case_group() -> None:
    """Cases: one per customer contact, across phone, video and transfers."""


@case_group.command("show")
@CASE_ID
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def show(ctx: click.Context, case_id: int, fmt: str) -> None:
    """The timeline of case CASE_ID: every leg, queue step and switch, oldest first."""
    timeline = run_with_db(ctx, lambda conn: case_timeline(conn, case_id))
    click.echo(json.dumps(_as_json(timeline), ensure_ascii=False, indent=2, default=str)
               if fmt == "json" else _as_text(timeline))


@case_group.command("note")
@CASE_ID
@click.argument("text")
@click.pass_context
def note(ctx: click.Context, case_id: int, text: str) -> None:
    """Keep TEXT as a note on case CASE_ID (author `cli`): listed by `hotline case show`, shown on
    the screen pop of the customer's next calls, and sent to webhooks as `note_added`. At most
    2000 characters; newlines and tabs are kept, any other control character is refused
    (nothing is written)."""
    check_note(text)  # bad text is refused before the database is asked
    kept = run_with_db(ctx, lambda conn: add_note(conn, case_id, CLI_AUTHOR, text))
    click.echo(f"case {case_id}: note {kept.id} kept")


@case_group.command("switch")
@CASE_ID
@click.option("--to", "to", type=click.Choice(["video", "phone"]), default="video", show_default=True)
@click.option("--number", help="With --to phone: the customer's number (default: the case's phone call's).")
@click.pass_context
def switch(ctx: click.Context, case_id: int, to: str, number: str | None) -> None:
    """Move case CASE_ID's live call to video: print the one-time link (and send it by the
    configured switch_link_command / switch_link_webhook, unless the case has had its
    switch_links_per_case). The customer opens it; their video leg joins the agent, and the phone
    leg is released; a link printed before for the same call stops working.

    With --to phone, a live video call moves to the customer's phone instead: the daemon dials it
    through the outbound trunk that allows it; answered, it joins the agent and the video leg is
    released. The command waits for the answer and exits non-zero if there is none."""
    settings = settings_of(ctx)
    if to == "phone":
        click.echo(_switch_to_phone(ctx, settings, case_id, number))
        return
    if number is not None:
        raise click.UsageError("--number goes with --to phone")

    from hotline.web.switch_links import SwitchLinks

    async def go(pool: AsyncConnectionPool) -> SwitchLink:
        async with pool.connection() as conn:
            hop_id = await _live_answered_hop(conn, case_id)
        return await SwitchLinks(Switches(pool), settings).request(hop_id, "cli")

    link = run_with_pool(ctx, go)
    click.echo(link.link)
    click.echo(f"valid until {link.issued.expires_at.isoformat(timespec='seconds')}, once", err=True)
    for how in link.delivered:
        click.echo(f"sent by {how}", err=True)
    for failure in link.failures:
        click.echo(f"not sent: {failure}", err=True)
    if link.held_back:
        click.echo(f"not sent: {link.held_back}", err=True)


def _switch_to_phone(ctx: click.Context, settings: Settings, case_id: int, typed: str | None) -> str:
    from hotline.engine.phone_switch import phone_number
    from hotline.engine.routing.outbound import trunk_for
    settings.require("dsn", "ari_url")

    async def go(conn: AsyncConnection) -> str:
        hop_id, channel_id = await _live_video_talk(conn, case_id)
        trunks = (await provisioning.load(conn)).trunks.values()
        number = phone_number(typed or await _phone_of_case(conn, case_id), trunks, settings.default_region)
        since = await _db_now(conn)
        await _ask_phone(conn, settings, channel_id, number, case_id)
        await conn.commit()
        if not await _switch_row(conn, hop_id, since, "issued_at", SWITCH_PATIENCE_S):
            raise PhoneSwitchRefused(f"case {case_id}: the daemon did not dial {number} within "
                                     f"{SWITCH_PATIENCE_S:.0f} s (see its log; is `hotline run` running?)")
        click.echo(f"case {case_id}: calling {number}", err=True)
        ring_timeout_s = trunk_for(trunks, number).ring_timeout
        outcome = await _dial_outcome(conn, hop_id, since, ring_timeout_s + SWITCH_PATIENCE_S)
        if outcome != "answered":
            why = f": {outcome}" if outcome else ""
            raise PhoneSwitchRefused(f"case {case_id}: {number} did not answer{why}; the video call goes on")
        return f"case {case_id}: the customer answered on {number}; the call goes on by phone"

    return str(run_with_db(ctx, go))


SWITCH_PATIENCE_S = 10.0  # how long the CLI waits for the daemon to dial


async def _live_video_talk(conn: AsyncConnection, case_id: int) -> tuple[int, str]:
    cur = await conn.execute(
        "SELECT id, channel_id, answered_at IS NOT NULL AND agent_id IS NOT NULL, media FROM hops"
        " WHERE case_id = %s AND ended_at IS NULL ORDER BY seq DESC LIMIT 1", (case_id,))
    row = await cur.fetchone()
    if row is None:
        raise PhoneSwitchRefused(f"case {case_id} has no call in progress (or does not exist)")
    if not row[2]:
        raise PhoneSwitchRefused(f"case {case_id}'s call is not talking with an agent: only a live talk "
                                 f"can move to the phone")
    if row[3] != "video":
        raise PhoneSwitchRefused(f"case {case_id}'s call is on the phone already")
    return int(row[0]), str(row[1])


async def _phone_of_case(conn: AsyncConnection, case_id: int) -> str:
    number = await case_phone_number(conn, case_id)
    if number is None:
        raise PhoneSwitchRefused(f"case {case_id} has no phone call to take the number from: give --number")
    return number


async def _db_now(conn: AsyncConnection) -> object:
    cur = await conn.execute("SELECT now()")
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def _switch_row(conn: AsyncConnection, hop_id: int, since: object, column: str,
                      within_s: float) -> bool:
    """Whether the daemon's switch for video leg `hop_id` (asked at `since`) has `column` set
    (issued_at: it dialled; used_at: the phone answered), waiting up to `within_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        cur = await conn.execute(
            f"SELECT 1 FROM switches WHERE from_hop_id = %s AND requested_by = 'cli' AND issued_at >= %s"
            f" AND {column} IS NOT NULL", (hop_id, since))
        found = await cur.fetchone() is not None
        await conn.commit()  # the next look sees what the daemon wrote since
        if found or loop.time() >= deadline:
            return found
        await asyncio.sleep(0.2)


async def _dial_outcome(conn: AsyncConnection, hop_id: int, since: object, within_s: float) -> str | None:
    """How the daemon's dial of the phone for video leg `hop_id` (asked at `since`) ended, as
    `hotline case show` says it ('answered', 'no answer (cause 19 No Answer)'), waiting up to
    `within_s`; None: no news by then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        cur = await conn.execute(
            "SELECT outcome, hangup_cause, hangup_cause_text FROM switches WHERE from_hop_id = %s"
            " AND requested_by = 'cli' AND issued_at >= %s AND to_number IS NOT NULL"
            " AND outcome IS NOT NULL ORDER BY id DESC LIMIT 1", (hop_id, since))
        row = await cur.fetchone()
        await conn.commit()  # the next look sees what the daemon wrote since
        if row is not None:
            return phone_outcome_text(row[0], row[1], row[2])
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(0.2)


async def _ask_phone(conn: AsyncConnection, settings: Settings, channel_id: str, number: str,
                     case_id: int) -> None:
    from hotline.cli.node_ari import ari_for_channel
    from hotline.engine.phone_switch import ask_phone_switch
    ari = await ari_for_channel(conn, settings, channel_id)
    try:
        await ask_phone_switch(ari, settings.ari_app, channel_id, number, "cli")
    except AriNotFound:
        raise PhoneSwitchRefused(f"case {case_id}: no daemon serves Stasis app {settings.ari_app!r} "
                                 f"(is `hotline run` running?)") from None
    except AriError as exc:
        raise PhoneSwitchRefused(f"case {case_id}: the request did not reach the daemon ({exc})") from None
    finally:
        await ari.close()


async def _live_answered_hop(conn: AsyncConnection, case_id: int) -> int:
    cur = await conn.execute(
        "SELECT id, answered_at IS NOT NULL FROM hops WHERE case_id = %s AND ended_at IS NULL"
        " ORDER BY seq DESC LIMIT 1", (case_id,))
    row = await cur.fetchone()
    if row is None:
        raise HotlineError(f"case {case_id} has no call in progress (or does not exist)")
    if not row[1]:
        raise HotlineError(f"case {case_id}'s call is not talking with an agent yet: "
                           f"only an answered call can move to video")
    return int(row[0])


@case_group.command("invite")
@CASE_ID
@click.argument("agent")
@click.pass_context
def invite_agent(ctx: click.Context, case_id: int, agent: str) -> None:
    """Bring AGENT (a second agent, a supervisor) into case CASE_ID's live talk: their phone or
    browser rings, and once answered they join the case's video bridge, where all see each other.
    The daemon must be running (it takes the answered leg); the talk's end releases them."""
    settings = settings_of(ctx)
    settings.require("dsn", "ari_url")

    async def ring(conn: AsyncConnection) -> str:
        invited = (await provisioning.load(conn)).agents.get(agent)
        if invited is None:
            raise HotlineError(f"agent {agent!r} does not exist (see `hotline agent list`)")
        await _live_answered_hop(conn, case_id)
        return await _ring(conn, settings, case_id, invited)

    channel = run_with_db(ctx, ring)
    click.echo(f"ringing {agent} into case {case_id} (channel {channel})")


async def _ring(conn: AsyncConnection, settings: Settings, case_id: int, invited: Agent) -> str:
    from hotline.cli.node_ari import ari_for_case
    from hotline.engine.conference import invite
    ari = await ari_for_case(conn, settings, case_id)  # the leg joins the case's bridge: its node
    try:
        return await invite(ari, settings.ari_app, case_id, invited, "cli")
    finally:
        await ari.close()




@case_group.command("transfer")
@CASE_ID
@click.argument("target", required=False)
@click.option("--attended", is_flag=True,
              help="Consult first: the customer holds while TARGET (an agent) is rung and talks with you.")
@click.option("--complete", "step", flag_value="complete",
              help="Complete the attended transfer under way: the customer talks with its target.")
@click.option("--cancel", "step", flag_value="cancel",
              help="Cancel the attended transfer under way: the customer is back with the agent.")
@click.pass_context
def transfer(ctx: click.Context, case_id: int, target: str | None, attended: bool, step: str | None) -> None:
    """Pass case CASE_ID's live talk to TARGET (queue:NAME, hotline:NAME, agent:NAME,
    number:NUMBER, or a NAME only one queue, hotline or agent has, or a bare number), blind: the
    agent leaves to wrap-up, the customer waits in the queue with its music (or hears the hotline's
    menu, or the agent or number is rung). With --attended, TARGET an agent: the customer holds
    with music while the agent talks with TARGET; then --complete or --cancel. The daemon must be
    running; a transfer it refuses (no live talk, a target gone, an agent not free, a number no
    trunk allows) exits non-zero with the reason, the talk untouched."""
    if step is not None and (target is not None or attended):
        raise click.UsageError(f"--{step} takes no TARGET and no --attended: it ends the attended "
                               f"transfer under way")
    if step is None and target is None:
        raise click.UsageError("give a TARGET (or --complete / --cancel for an attended transfer)")
    from hotline.engine.transfer import AgentTarget, transfer_target
    settings = settings_of(ctx)
    settings.require("dsn", "ari_url")

    async def go(conn: AsyncConnection) -> str:
        to = transfer_target(await provisioning.load(conn), target) if target is not None else None
        if attended and not isinstance(to, AgentTarget):
            raise TransferRefused(f"an attended transfer goes to an agent (agent:NAME), not to {to}")
        channel_id = await _live_talk_channel(conn, case_id)
        request = await _ask(conn, settings, channel_id, to, case_id, attended=attended or step is not None,
                             step=step or "begin")
        await conn.commit()
        outcome = await transfer_outcome(conn, request, TRANSFER_PATIENCE_S)
        if outcome is None:
            raise TransferRefused(f"case {case_id}: no daemon took the transfer within "
                                  f"{TRANSFER_PATIENCE_S:.0f} s (is `hotline run` running?)")
        if outcome.outcome == "refused":
            what = f"transfer to {to}" if to is not None else f"--{step}"
            raise TransferRefused(f"case {case_id}: {what} refused: {outcome.detail}")
        return TRANSFER_SAYS[outcome.outcome].format(case=case_id, target=outcome.target)

    click.echo(run_with_db(ctx, go))


# What the CLI says of each outcome its request had.
TRANSFER_SAYS = {
    "transferred": "case {case}: transferred to {target}",
    "consulting": "case {case}: consulting {target}, the customer on hold; then "
                  "`hotline case transfer {case} --complete` or `--cancel`",
    "cancelled": "case {case}: attended transfer to {target} cancelled, the customer back with the agent",
}


async def _live_talk_channel(conn: AsyncConnection, case_id: int) -> str:
    """The channel of case `case_id`'s leg talking with an agent now (a transfer clears the hop's
    agent until the next one answers)."""
    cur = await conn.execute(
        "SELECT channel_id, answered_at IS NOT NULL AND agent_id IS NOT NULL"
        " FROM hops WHERE case_id = %s AND ended_at IS NULL ORDER BY seq DESC LIMIT 1", (case_id,))
    row = await cur.fetchone()
    if row is None:
        raise TransferRefused(f"case {case_id} has no call in progress (or does not exist)")
    if not row[1]:
        raise TransferRefused(f"case {case_id}'s call is not talking with an agent: only a live talk "
                              f"can be transferred")
    return str(row[0])


async def _ask(conn: AsyncConnection, settings: Settings, channel_id: str, target: TransferTo | None,
               case_id: int, *, attended: bool, step: str) -> str:
    from hotline.cli.node_ari import ari_for_channel
    from hotline.engine.transfer import ask_transfer
    ari = await ari_for_channel(conn, settings, channel_id)
    try:
        return await ask_transfer(ari, settings.ari_app, channel_id, target, "cli", attended=attended,
                                  step=step)
    except AriNotFound:  # the app: Asterisk has none of that name while no daemon is connected
        raise TransferRefused(f"case {case_id}: no daemon serves Stasis app {settings.ari_app!r} "
                              f"(is `hotline run` running?)") from None
    except AriError as exc:  # Asterisk unreachable, or the channel ended a moment ago (422)
        raise TransferRefused(f"case {case_id}: the transfer request did not reach the daemon "
                              f"({exc})") from None
    finally:
        await ari.close()


def _as_text(t: CaseTimeline) -> str:
    c = t.case
    closed = f", closed {c['closed_at']:%Y-%m-%d %H:%M:%S}" if c["closed_at"] else ""
    agent = f", last agent {c['last_agent']}" if c["last_agent"] else ""
    lines = [f"case {c['id']}  customer {c['customer_key']}  {c['status']} "
             f"(opened {c['opened_at']:%Y-%m-%d %H:%M:%S}{closed}{agent})",
             f"{len(t.hops)} leg(s): " + ", ".join(
                 f"{h['seq']} {h['channel_kind']}/{h['media']} {h['end_reason'] or 'live'}"
                 + (f" keys {h['ivr_path']}" if h["ivr_path"] else "")
                 + (f" priority {h['priority']}" if h["priority"] is not None else "")
                 + (f" language {h['language']}" if h.get("language") else "") for h in t.hops),
             "", f"{'TIME':<12}  {'HOP':>3}  {'CHANNEL':<12}  WHAT"]
    lines += [f"{m.at:%H:%M:%S}.{m.at.microsecond // 1000:03d}  {m.hop:>3}  {m.channel:<12}  {m.what}"
              for m in t.moments()]
    if t.recordings:
        lines += ["", f"{len(t.recordings)} recording(s) (`hotline recording path|export N`):"]
        lines += ["  " + r.summary() for r in t.recordings]
    return "\n".join(lines)


def _as_json(t: CaseTimeline) -> dict[str, object]:
    return {"case": t.case, "hops": t.hops, "switches": [asdict(s) for s in t.switches],
            "participants": [asdict(p) for p in t.participants],
            "switch_refusals": [asdict(r) for r in t.refusals],
            "transfers": [asdict(x) for x in t.transfers],
            "media_changes": [asdict(x) for x in t.media_changes],
            "supervisions": [asdict(x) for x in t.supervisions],
            "notes": [asdict(x) for x in t.notes],
            "survey_answers": [asdict(x) for x in t.survey_answers],
            "ratings": [asdict(x) for x in t.ratings],
            "holds": [asdict(x) for x in t.holds],
            "recordings": [{**asdict(r), "pauses": [asdict(p) for p in t.pauses.get(r.id, [])]}
                           for r in t.recordings],
            "queue_events": t.events,
            "timeline": [{"at": m.at, "hop": m.hop, "channel": m.channel, "what": m.what}
                         for m in t.moments()]}
