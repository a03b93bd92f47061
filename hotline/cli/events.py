"""`hotline events show|purge`: the contact-event stream as receivers get it, and its pruning.
Thin: hotline.store.contact_events reads and deletes."""

from __future__ import annotations

import click
from psycopg import AsyncConnection

from hotline.cli.common import run_with_db, settings_of
from hotline.errors import CaseNotFound
from hotline.store import contact_events
from hotline.store.webhooks import events_of_case


@click.group("events")
def events_group() -> None:
    """Contact events: every step of every contact, as webhooks get them."""


@events_group.command("show")
@click.argument("case_id", type=click.IntRange(min=1))
def show(case_id: int) -> None:
    """Case CASE_ID's events in their order, one JSON object a line: the exact body a webhook
    POSTs (a receiver's developer can test against it)."""
    ctx = click.get_current_context()

    async def go(conn: AsyncConnection) -> list[bytes]:
        cur = await conn.execute("SELECT 1 FROM cases WHERE id = %s", (case_id,))
        if await cur.fetchone() is None:
            raise CaseNotFound(f"case {case_id} does not exist")
        return [contact_events.body(e) for e in await events_of_case(conn, case_id)]
    for line in run_with_db(ctx, go):
        click.echo(line.decode())


@events_group.command("purge")
@click.option("--older-than", "days", type=click.IntRange(min=1),
              help="Delete the events older than DAYS days (default: the event_retention setting).")
@click.option("--yes", is_flag=True, help="Delete them; without it, only count what would go.")
@click.pass_context
def purge(ctx: click.Context, days: int | None, yes: bool) -> None:
    """Delete contact events older than --older-than days (or event_retention), with their
    finished webhook deliveries. An event some webhook has still to deliver is kept, and counted.
    Without --yes: a dry run that counts them and changes nothing. The daemon does the same once an
    hour by itself when event_retention is set."""
    if days is None:
        days = settings_of(ctx).event_retention_days
    if days is None:
        raise click.UsageError("give --older-than DAYS, or set event_retention")
    kept = days

    async def go(conn: AsyncConnection) -> contact_events.Pruned:
        if not yes:
            return await contact_events.prune(conn, kept, limit=2**62, dry_run=True)
        total = contact_events.Pruned(0, 0, 0, 0)
        while True:  # in batches, each committed: a long purge holds no lock for long
            batch = await contact_events.prune(conn, kept)
            await conn.commit()
            total = total.then(batch)
            if batch.events < contact_events.PRUNE_BATCH:
                return total
    done = run_with_db(ctx, go)
    click.echo(f"{'deleted' if yes else 'dry run: would delete'} {done.events} event(s) older than {kept} "
               f"day(s) and {done.deliveries} finished deliveries ({done.failed} of them failed); "
               f"{done.held} older event(s) kept, still to be delivered"
               + ("" if yes else "; run with --yes to delete them"))
