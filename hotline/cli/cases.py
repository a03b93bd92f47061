"""`hotline case show|switch|invite|transfer`: one case's timeline across channels, moving its live
call to video, bringing another agent into its talk, and passing its talk to a queue or a hotline.
Thin: the store, hotline.web.switch_links and the engine's conference and transfer do the work."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import click
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from hotline.asterisk.ari import AriClient
from hotline.cli.common import run_with_db, run_with_pool, settings_of
from hotline.config import Settings
from hotline.engine.conference import invite
from hotline.engine.transfer import ask_transfer, transfer_target
from hotline.errors import AriError, AriNotFound, HotlineError, TransferRefused
from hotline.provision.model import Agent, Target
from hotline.store import provisioning
from hotline.store.case_timeline import CaseTimeline, case_timeline
from hotline.store.switches import Switches
from hotline.store.transfers import transfer_outcome
from hotline.web.switch_links import SwitchLink, SwitchLinks

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


@case_group.command("switch")
@CASE_ID
@click.pass_context
def switch(ctx: click.Context, case_id: int) -> None:
    """Move case CASE_ID's live call to video: print the one-time link (and send it by the
    configured switch_link_command / switch_link_webhook, unless the case has had its
    switch_links_per_case). The customer opens it; their video leg joins the agent, and the phone
    leg is released; a link printed before for the same call stops working."""
    settings = settings_of(ctx)

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

    async def invitee(conn: AsyncConnection) -> Agent:
        invited = (await provisioning.load(conn)).agents.get(agent)
        if invited is None:
            raise HotlineError(f"agent {agent!r} does not exist (see `hotline agent list`)")
        await _live_answered_hop(conn, case_id)
        return invited

    invited = run_with_db(ctx, invitee)
    channel = asyncio.run(_ring(settings, case_id, invited))
    click.echo(f"ringing {agent} into case {case_id} (channel {channel})")


async def _ring(settings: Settings, case_id: int, invited: Agent) -> str:
    ari = AriClient(settings.ari)
    try:
        return await invite(ari, settings.ari_app, case_id, invited, "cli")
    finally:
        await ari.close()


TRANSFER_PATIENCE_S = 10.0  # how long the CLI waits for the daemon's word on a transfer


@case_group.command("transfer")
@CASE_ID
@click.argument("target")
@click.pass_context
def transfer(ctx: click.Context, case_id: int, target: str) -> None:
    """Pass case CASE_ID's live talk to TARGET (queue:NAME, hotline:NAME, or a NAME only one queue
    or hotline has), blind: the agent leaves to wrap-up, the customer waits in the queue with its
    music (or hears the hotline's menu). The daemon must be running; a transfer it refuses (no
    live talk, a target gone) exits non-zero with the reason, the talk untouched."""
    settings = settings_of(ctx)
    settings.require("dsn", "ari_url")

    async def go(conn: AsyncConnection) -> str:
        to = transfer_target(await provisioning.load(conn), target)
        channel_id = await _live_talk_channel(conn, case_id)
        request = await _ask(settings, channel_id, to, case_id)
        await conn.commit()
        outcome = await transfer_outcome(conn, request, TRANSFER_PATIENCE_S)
        if outcome is None:
            raise TransferRefused(f"case {case_id}: no daemon took the transfer within "
                                  f"{TRANSFER_PATIENCE_S:.0f} s (is `hotline run` running?)")
        if outcome.outcome != "transferred":
            raise TransferRefused(f"case {case_id}: transfer to {to} refused: {outcome.detail}")
        return str(to)

    click.echo(f"case {case_id}: transferred to {run_with_db(ctx, go)}")


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


async def _ask(settings: Settings, channel_id: str, target: Target, case_id: int) -> str:
    ari = AriClient(settings.ari)
    try:
        return await ask_transfer(ari, settings.ari_app, channel_id, target, "cli")
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
                 + (f" keys {h['ivr_path']}" if h["ivr_path"] else "") for h in t.hops),
             "", f"{'TIME':<12}  {'HOP':>3}  {'CHANNEL':<12}  WHAT"]
    lines += [f"{m.at:%H:%M:%S}.{m.at.microsecond // 1000:03d}  {m.hop:>3}  {m.channel:<12}  {m.what}"
              for m in t.moments()]
    return "\n".join(lines)


def _as_json(t: CaseTimeline) -> dict[str, object]:
    return {"case": t.case, "hops": t.hops, "switches": [asdict(s) for s in t.switches],
            "participants": [asdict(p) for p in t.participants],
            "switch_refusals": [asdict(r) for r in t.refusals],
            "transfers": [asdict(x) for x in t.transfers],
            "media_changes": [asdict(x) for x in t.media_changes],
            "queue_events": t.events,
            "timeline": [{"at": m.at, "hop": m.hop, "channel": m.channel, "what": m.what}
                         for m in t.moments()]}
