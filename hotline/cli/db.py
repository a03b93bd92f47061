"""`hotline db migrate`: the database schema."""

from __future__ import annotations

import click
from psycopg import AsyncConnection

from hotline.cli.common import run_with_db
from hotline.store.migrations import migrate as apply_migrations


@click.group()
def db() -> None:
    """The database schema."""


@db.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply pending migrations (idempotent)."""
    async def go(conn: AsyncConnection) -> list[str]:
        return [f"{m.version:03d}_{m.name}" for m in await apply_migrations(conn)]

    done = run_with_db(ctx, go)
    click.echo(f"applied: {', '.join(done)}" if done else "database is up to date")
