"""`hotline webhook add|set|list|remove`: the URLs that get the contact events as signed POSTs.
Thin: hotline.store.webhooks checks and writes. A secret is never printed back: one generated is
shown once, at `add` (or `set --new-secret`); one of the user's is read from a file or stdin, not
the command line (which every user of the machine sees in `ps`)."""

from __future__ import annotations

from typing import Any

import click

from hotline.cli.common import run_with_db
from hotline.cli.table import FORMAT, print_rows
from hotline.store import webhooks
from hotline.store.contact_events import KINDS

COLUMNS = ["name", "url", "hotlines", "events", "pending", "delivered", "failed", "oldest_pending",
           "last_delivered_at", "last_error", "last_error_at"]
SECRET_FILE = click.option("--secret-file", type=click.File("r"), metavar="FILE",
                           help="Read the HMAC secret from FILE ('-': stdin); default: one is generated "
                                "and shown once.")
HOTLINES = click.option("--hotline", "hotlines", multiple=True, metavar="NAME",
                        help="Only the events of this hotline's calls (repeat); default: all hotlines.")
EVENTS = click.option("--event", "events", multiple=True, type=click.Choice(KINDS), metavar="KIND",
                      help=f"Only events of this kind (repeat); default: all. Kinds: {', '.join(KINDS)}.")


@click.group("webhook")
def webhook_group() -> None:
    """Webhooks: URLs (a CRM's) that get every contact event as an HMAC-signed POST."""


def _secret_of(file: Any) -> tuple[str, bool]:
    """(the secret, whether it was generated here)."""
    if file is None:
        return webhooks.new_secret(), True
    return file.read().strip(), False


@webhook_group.command("add")
@click.argument("name")
@click.argument("url")
@SECRET_FILE
@HOTLINES
@EVENTS
@click.pass_context
def webhook_add(ctx: click.Context, name: str, url: str, secret_file: Any, hotlines: tuple[str, ...],
                events: tuple[str, ...]) -> None:
    """Add webhook NAME posting to URL (http:// or https://); it gets the events written from now on."""
    secret, generated = _secret_of(secret_file)
    made = run_with_db(ctx, lambda conn: webhooks.add(conn, name, url, secret, hotlines=hotlines or None,
                                                      events=events or None))
    click.echo(f"webhook {made.name} added: {made.url}")
    if generated:
        click.echo(f"secret {secret} (generated; shown only now: give it to the receiver)")


@webhook_group.command("set")
@click.argument("name")
@click.option("--url")
@SECRET_FILE
@click.option("--new-secret", is_flag=True, help="Generate a new secret (shown once).")
@HOTLINES
@click.option("--all-hotlines", is_flag=True, help="Every hotline's events again.")
@EVENTS
@click.option("--all-events", is_flag=True, help="Every kind of event again.")
@click.pass_context
def webhook_set(ctx: click.Context, name: str, url: str | None, secret_file: Any, new_secret: bool,
                hotlines: tuple[str, ...], all_hotlines: bool, events: tuple[str, ...],
                all_events: bool) -> None:
    """Change webhook NAME (only what is given)."""
    if new_secret and secret_file is not None:
        raise click.UsageError("--new-secret or --secret-file, not both")
    secret = webhooks.new_secret() if new_secret else (secret_file.read().strip() if secret_file else None)
    changed = run_with_db(ctx, lambda conn: webhooks.change(
        conn, name, url=url, secret=secret, hotlines=hotlines, all_hotlines=all_hotlines, events=events,
        all_events=all_events))
    click.echo(f"webhook {changed.name} changed: {changed.url}")
    if new_secret:
        click.echo(f"secret {secret} (generated; shown only now: give it to the receiver)")


@webhook_group.command("remove")
@click.argument("name")
@click.pass_context
def webhook_remove(ctx: click.Context, name: str) -> None:
    """Remove webhook NAME, and the events it had not delivered yet."""
    run_with_db(ctx, lambda conn: webhooks.remove(conn, name))
    click.echo(f"webhook {name} removed")


@webhook_group.command("list")
@FORMAT
@click.pass_context
def webhook_list(ctx: click.Context, fmt: str) -> None:
    """Each webhook (never its secret): events waiting, delivered, given up, and the last error."""
    print_rows(run_with_db(ctx, webhooks.listing), fmt, COLUMNS)
