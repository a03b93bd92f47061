"""`hotline node add|set|remove|drain|undrain|list`: the Asterisk nodes the active daemon serves
(several behind Kamailio; README "Several nodes"). No node provisioned: the settings' one Asterisk.
Addresses are provisioning (the file's `[nodes.NAME]` too); draining is operations."""

from __future__ import annotations

import click

from hotline.cli.common import options, run_with_db
from hotline.cli.edits import DRY_RUN, Edit, Given, given, need, remover, report, run_edit, with_object
from hotline.cli.table import FORMAT, print_rows
from hotline.errors import ProvisionError
from hotline.provision import export, parse
from hotline.provision.model import Provisioning
from hotline.store import nodes as node_store

COLUMNS = ["name", "ari", "ami", "sip", "draining", "serving", "live_calls"]

_node_options = options(
    click.option("--ari", help="The node's ARI: http://host:port (user and secret: the ari_url setting's)."),
    click.option("--ami", help="The node's AMI: ami://host:port (user and secret: the ami_url setting's)."),
    click.option("--sip", help="Where Kamailio sends the node its calls: sip:host:port."),
)


@click.group("node")
def node_group() -> None:
    """Asterisk nodes: several behind Kamailio, served by one active daemon."""


def _node_edit(name: str, options: Given, *, create: bool) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        if create and name in prov.nodes:
            raise ProvisionError(f"node {name!r} already exists: use `hotline node set`")
        base = {} if create else export.node_table(need(prov.nodes, name, "node"))
        return with_object(prov, "nodes", name, parse.node(name, {**base, **options}))
    return edit


@node_group.command("add")
@click.argument("name")
@_node_options
@DRY_RUN
@click.pass_context
def node_add(ctx: click.Context, /, name: str, dry_run: bool, **options: object) -> None:
    """Add node NAME (--ari, --ami and --sip are required); a running daemon connects to it at once."""
    report(run_edit(ctx, _node_edit(name, given(**options), create=True), dry_run=dry_run), dry_run)


@node_group.command("set")
@click.argument("name")
@_node_options
@DRY_RUN
@click.pass_context
def node_set(ctx: click.Context, /, name: str, dry_run: bool, **options: object) -> None:
    """Change node NAME's addresses (only what is given)."""
    report(run_edit(ctx, _node_edit(name, given(**options), create=False), dry_run=dry_run), dry_run)


@node_group.command("remove")
@click.argument("name")
@click.pass_context
def node_remove(ctx: click.Context, name: str) -> None:
    """Remove node NAME; refused while it has live calls (drain it first and let them end)."""
    calls = run_with_db(ctx, lambda conn: node_store.live_calls(conn, name))
    if calls:
        raise ProvisionError(f"node {name!r} has {calls} live call(s): `hotline node drain {name}` and "
                             "remove it once `hotline node list` shows none")
    report(run_edit(ctx, remover("nodes", name, "node")))


@node_group.command("drain")
@click.argument("name")
@click.pass_context
def node_drain(ctx: click.Context, name: str) -> None:
    """No new call to node NAME (Kamailio skips it; the daemon refuses one that still comes with
    503); its live calls go on to their end."""
    run_with_db(ctx, lambda conn: node_store.set_draining(conn, name, True))
    click.echo(f"node {name} draining: no new call; its live calls go on")


@node_group.command("undrain")
@click.argument("name")
@click.pass_context
def node_undrain(ctx: click.Context, name: str) -> None:
    """Node NAME takes new calls again."""
    run_with_db(ctx, lambda conn: node_store.set_draining(conn, name, False))
    click.echo(f"node {name} takes new calls")


@node_group.command("list")
@FORMAT
@click.pass_context
def node_list(ctx: click.Context, fmt: str) -> None:
    """Each node: addresses, draining, served by the active daemon now, live calls."""
    rows = [vars(n) for n in run_with_db(ctx, node_store.listing)]
    print_rows(rows, fmt, COLUMNS)
