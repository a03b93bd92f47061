"""`hotline agent ...`: agents as provisioned (add, set, remove, list) and their presence (login,
logout, pause, unpause, status). Presence goes through hotline.store.agent_sessions, which
NOTIFYs a running daemon, so these verbs need nothing but the database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import click

from hotline.cli.common import options, run_with_db
from hotline.cli.edits import Edit, Given, given, load, need, remover, report, run_edit, with_object
from hotline.cli.table import FORMAT, print_rows
from hotline.errors import ProvisionError
from hotline.provision import export, parse
from hotline.provision.model import Provisioning
from hotline.store import agent_sessions as presence
from hotline.store.agent_sessions import AgentPresence, Change


@click.group()
def agent() -> None:
    """Agents: their endpoint and what they can take."""


# -- provisioning -------------------------------------------------------------------------------

_agent_options = options(
    click.option("--endpoint", help="PJSIP endpoint name (default: the agent's name)."),
    click.option("--display-name"),
    click.option("--password", help="SIP password (default: generated and shown once; only its digest "
                                    "is kept)."),
    click.option("--capability", "capabilities", multiple=True,
                 type=click.Choice(["audio", "video", "webrtc"]), help="Repeat; replaces all."),
    click.option("--supervisor/--no-supervisor", default=None,
                 help="May listen to, whisper into and barge into live talks (`hotline case listen`)."),
)


def _agent_edit(name: str, options: Given, *, create: bool) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        if create and name in prov.agents:
            raise ProvisionError(f"agent {name!r} already exists: use `hotline agent set`")
        base = {} if create else export.agent_table(need(prov.agents, name, "agent"), True)
        if "password" in options:
            base.pop("password_ha1", None)  # a new password replaces the stored digest
        return with_object(prov, "agents", name, parse.agent(name, {**base, **options}))
    return edit


@agent.command("add")
@click.argument("name")
@_agent_options
@click.pass_context
def agent_add(ctx: click.Context, /, name: str, **options: object) -> None:
    """Add an agent."""
    report(run_edit(ctx, _agent_edit(name, given(**options), create=True)))


@agent.command("set")
@click.argument("name")
@_agent_options
@click.pass_context
def agent_set(ctx: click.Context, /, name: str, **options: object) -> None:
    """Change an agent (only what is given)."""
    report(run_edit(ctx, _agent_edit(name, given(**options), create=False)))


@agent.command("remove")
@click.argument("name")
@click.pass_context
def agent_remove(ctx: click.Context, name: str) -> None:
    """Remove an agent (and their queue memberships; history stays)."""
    report(run_edit(ctx, remover("agents", name, "agent")))


@agent.command("list")
@FORMAT
@click.pass_context
def agent_list(ctx: click.Context, fmt: str) -> None:
    """List agents (never their passwords)."""
    rows = [{"name": a.name, **export.agent_table(a)} for a in load(ctx).agents.values()]
    print_rows(rows, fmt, ["name", "endpoint", "display_name", "capabilities", "queues", "supervisor"])


@agent.command("pause-reasons")
@click.argument("reasons", nargs=-1)
@click.option("--any", "any_reason", is_flag=True, help="Drop the list: any reason goes again.")
@click.pass_context
def pause_reasons(ctx: click.Context, reasons: tuple[str, ...], any_reason: bool) -> None:
    """Show the reasons agents may pause for, or replace the list (the order is the agent page's).

    Example: hotline agent pause-reasons lunch training "team meeting"
    """
    if reasons and any_reason:
        raise click.UsageError("give the reasons or --any, not both")
    if not reasons and not any_reason:
        listed = load(ctx).pause_reasons
        click.echo("\n".join(listed) if listed else "any reason (no list is provisioned)")
        return
    wanted = parse.pause_reasons("pause_reasons", list(reasons))
    report(run_edit(ctx, lambda prov: replace(prov, pause_reasons=wanted)))


# -- presence: one line per action --------------------------------------------------------------

def _when(moment: datetime | None) -> str | None:
    """Local time as a supervisor reads it: 10:32 today, else with the date."""
    if moment is None:
        return None
    local = moment.astimezone()
    return local.strftime("%H:%M" if local.date() == datetime.now().date() else "%Y-%m-%d %H:%M")


def _pause_text(p: AgentPresence) -> str:
    return f"{p.reason} (since {_when(p.paused_since)})"


def _login_line(c: Change) -> str:
    if not c.changed:
        return f"{c.before.agent} is already logged in (since {_when(c.before.logged_in_since)})"
    return f"{c.after.agent} logged in"


def _logout_line(c: Change) -> str:
    if not c.changed:
        return f"{c.before.agent} is not logged in"
    ended = f" (pause ended: {_pause_text(c.before)})" if c.before.paused_since else ""
    return f"{c.before.agent} logged out{ended}"


def _pause_line(c: Change) -> str:
    if not c.changed:
        return f"{c.before.agent} is already paused: {_pause_text(c.before)}"
    was = f" (was: {_pause_text(c.before)})" if c.before.paused_since else ""
    return f"{c.after.agent} paused: {c.after.reason}{was}"


def _unpause_line(c: Change) -> str:
    return f"{c.before.agent} unpaused (was: {_pause_text(c.before)})"


# -- presence: the verbs ------------------------------------------------------------------------

AGENT = click.argument("name", metavar="AGENT")


@agent.command("login")
@AGENT
@click.pass_context
def login(ctx: click.Context, name: str) -> None:
    """Log an agent in (nothing changes when already logged in)."""
    click.echo(_login_line(run_with_db(ctx, lambda conn: presence.login(conn, name))))


@agent.command("logout")
@AGENT
@click.pass_context
def logout(ctx: click.Context, name: str) -> None:
    """Log an agent out, ending their pause too."""
    click.echo(_logout_line(run_with_db(ctx, lambda conn: presence.logout(conn, name))))


@agent.command("pause")
@AGENT
@click.argument("reason", nargs=-1, required=True)
@click.pass_context
def pause(ctx: click.Context, name: str, reason: tuple[str, ...]) -> None:
    """Pause a logged-in agent for a reason (a new reason replaces the current one); once
    `hotline agent pause-reasons` lists the reasons, one of them.

    Example: hotline agent pause ivanov lunch break"""
    text = " ".join(reason)
    click.echo(_pause_line(run_with_db(ctx, lambda conn: presence.pause(conn, name, text))))


@agent.command("unpause")
@AGENT
@click.pass_context
def unpause(ctx: click.Context, name: str) -> None:
    """End an agent's pause."""
    click.echo(_unpause_line(run_with_db(ctx, lambda conn: presence.unpause(conn, name))))


@agent.command("status")
@FORMAT
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Every agent: logged out, free, or paused (with the reason), and since when."""
    agents = list(run_with_db(ctx, presence.states).values())
    if fmt == "json":
        click.echo(json.dumps([_json_row(p) for p in agents], ensure_ascii=False, indent=2))
    else:
        print_rows([_table_row(p) for p in agents], "table", ["agent", "state", "since"])


def _table_row(p: AgentPresence) -> dict[str, str | None]:
    state = f"paused: {p.reason}" if p.state == "paused" else p.state
    return {"agent": p.agent, "state": state, "since": _when(p.paused_since or p.logged_in_since)}


def _json_row(p: AgentPresence) -> dict[str, str | None]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None
    return {"agent": p.agent, "state": p.state, "reason": p.reason,
            "logged_in_since": iso(p.logged_in_since), "paused_since": iso(p.paused_since)}
