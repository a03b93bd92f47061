"""Agent presence verbs on the `agent` group: `login`, `logout`, `pause`, `unpause`, `status`.

Thin: parse, call one function of `hotline.store.agent_sessions`, print one line. The store
NOTIFYs a running daemon, so the CLI needs nothing but the database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from psycopg import AsyncConnection

from hotline.cli_common import settings_of
from hotline.provision.commands import FORMAT, print_rows, verb
from hotline.store import agent_sessions as presence
from hotline.store.agent_sessions import AgentPresence, Change
from hotline.store.db import connect

T = TypeVar("T")


def _run(ctx: click.Context, action: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    settings = settings_of(ctx)
    settings.require("dsn")

    async def go() -> T:
        conn = await connect(settings.dsn)
        async with conn:
            return await action(conn)
    return asyncio.run(go())


def _when(moment: datetime | None) -> str | None:
    """Local time as a supervisor reads it: 10:32 today, else with the date."""
    if moment is None:
        return None
    local = moment.astimezone()
    return local.strftime("%H:%M" if local.date() == datetime.now().date() else "%Y-%m-%d %H:%M")


def _pause_text(p: AgentPresence) -> str:
    return f"{p.reason} (since {_when(p.paused_since)})"


# -- one line per action ------------------------------------------------------------------------

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


# -- the verbs ----------------------------------------------------------------------------------

AGENT = click.argument("name", metavar="AGENT")


@click.command("login")
@AGENT
@click.pass_context
@verb
def login(ctx: click.Context, name: str) -> None:
    """Log an agent in (nothing changes when already logged in)."""
    click.echo(_login_line(_run(ctx, lambda conn: presence.login(conn, name))))


@click.command("logout")
@AGENT
@click.pass_context
@verb
def logout(ctx: click.Context, name: str) -> None:
    """Log an agent out, ending their pause too."""
    click.echo(_logout_line(_run(ctx, lambda conn: presence.logout(conn, name))))


@click.command("pause")
@AGENT
@click.argument("reason", nargs=-1, required=True)
@click.pass_context
@verb
def pause(ctx: click.Context, name: str, reason: tuple[str, ...]) -> None:
    """Pause a logged-in agent for a reason (a new reason replaces the current one).

    Example: hotline agent pause ivanov lunch break"""
    text = " ".join(reason)
    click.echo(_pause_line(_run(ctx, lambda conn: presence.pause(conn, name, text))))


@click.command("unpause")
@AGENT
@click.pass_context
@verb
def unpause(ctx: click.Context, name: str) -> None:
    """End an agent's pause."""
    click.echo(_unpause_line(_run(ctx, lambda conn: presence.unpause(conn, name))))


@click.command("status")
@FORMAT
@click.pass_context
@verb
def status(ctx: click.Context, fmt: str) -> None:
    """Every agent: logged out, free, or paused (with the reason), and since when."""
    agents = list(_run(ctx, presence.states).values())
    if fmt == "json":
        click.echo(json.dumps([_json_row(p) for p in agents], ensure_ascii=False, indent=2))
    else:
        print_rows([_table_row(p) for p in agents], "table", ["agent", "state", "since"])


def _table_row(p: AgentPresence) -> dict[str, Any]:
    state = f"paused: {p.reason}" if p.state == "paused" else p.state
    return {"agent": p.agent, "state": state, "since": _when(p.paused_since or p.logged_in_since)}


def _json_row(p: AgentPresence) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None
    return {"agent": p.agent, "state": p.state, "reason": p.reason,
            "logged_in_since": iso(p.logged_in_since), "paused_since": iso(p.paused_since)}


def register(agent_group: click.Group) -> None:
    for command in (login, logout, pause, unpause, status):
        agent_group.add_command(command)
