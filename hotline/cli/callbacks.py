"""`hotline callback list|cancel`: the queued callbacks waiting to be placed, for supervisors.
Thin: hotline.store.callbacks does the work (a request being placed right now cannot be
cancelled: its daemon holds it)."""

from __future__ import annotations

import getpass

import click

from hotline.cli.common import run_with_db
from hotline.cli.table import FORMAT, print_rows
from hotline.store import callbacks

COLUMNS = ["id", "queue", "number", "status", "joined_at", "due_at", "attempts", "case_id", "detail"]


@click.group("callback")
def callback_group() -> None:
    """Queued callbacks: callers who asked to be called back instead of waiting."""


@callback_group.command("list")
@click.option("--ended-within", type=click.IntRange(min=1), metavar="SECONDS",
              help="Also those answered, failed, expired or cancelled this recently.")
@FORMAT
@click.pass_context
def callback_list(ctx: click.Context, ended_within: int | None, fmt: str) -> None:
    """Callbacks not placed yet, per queue in the order their callers joined."""
    found = run_with_db(ctx, lambda conn: callbacks.listing(conn, ended_within_s=ended_within))
    print_rows(found, fmt, COLUMNS)


@callback_group.command("cancel")
@click.argument("callback_id", type=click.IntRange(min=1))
@click.pass_context
def callback_cancel(ctx: click.Context, callback_id: int) -> None:
    """Cancel callback CALLBACK_ID (one still waiting; one being placed cannot be)."""
    done = run_with_db(ctx, lambda conn: callbacks.cancel(conn, callback_id, getpass.getuser()))
    click.echo(f"callback {done.id} to {done.number} cancelled")
