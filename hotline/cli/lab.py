"""`hotline lab up|down|status|env|logs|phones|call`: the lab (hotline.lab) from the command line."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path

import click

from hotline.config import Settings, load_settings
from hotline.errors import LabError
from hotline.lab import Lab, phones
from hotline.lab.caller import CallPlan, check_daemon, random_caller, run_call
from hotline.lab.instances import INSTANCE_ENV, NETNS_DIR, enter_netns, netns_name
from hotline.lab.nodes import MAX_NODES, node_names
from hotline.lab.sipp import require_sipp
from hotline.store import agent_sessions
from hotline.store.db import connect

NODE_LOGS = [f"node-{name}" for name in node_names(MAX_NODES)]
# The checkout whose asterisk-conf/ and dialplan/ the lab runs.
PROJECT_DIR = Path(os.environ.get("HOTLINE_PROJECT_DIR", Path(__file__).resolve().parents[2]))


@click.group()
@click.option("--instance", type=click.IntRange(min=1), envvar=INSTANCE_ENV, default=1, show_default=True,
              help="Which lab: 1 on this machine's network, N >= 2 the same ports in the network "
                   f"namespace hotline-labN, from a copy of lab 1's root (${INSTANCE_ENV}).")
@click.pass_context
def lab(ctx: click.Context, instance: int) -> None:
    """The lab: a real Asterisk 22 and PostgreSQL on 127.0.0.1, for trying hotline and for tests."""
    # Whatever this command spawns (sipp, psql) reads it too; lab N's ports are in its namespace.
    os.environ[INSTANCE_ENV] = str(instance)
    namespace = netns_name(instance)
    # `up` enters it itself, once it has the root (building lab 1's first needs the network).
    if namespace is not None and ctx.invoked_subcommand != "up" and (NETNS_DIR / namespace).exists():
        enter_netns(namespace)


def _lab() -> Lab:
    return Lab(PROJECT_DIR)


@lab.command()
@click.option("--nodes", type=click.IntRange(min=0), default=None,
              help="Run N Asterisk nodes (a on 127.0.0.2, b on 127.0.0.3, ...) behind Kamailio on "
                   "127.0.0.1 instead of the one Asterisk; 0: back to the one Asterisk. "
                   "Default: as the last `up`.")
def up(nodes: int | None) -> None:
    """Build (once) and start the lab; reuses what already runs."""
    the_lab = _lab()
    state = the_lab.up(nodes)
    click.echo(f"{the_lab.describe()}\n{state.describe()}")


@lab.command()
def down() -> None:
    """Stop what the lab started."""
    for endpoint in phones.stop(phones.default_pidfile()):
        click.echo(f"lab phone {endpoint} stopped")
    _lab().down()
    click.echo("lab stopped")


@lab.command()
def status() -> None:
    """What runs, on which ports."""
    state = _lab().status()
    click.echo(state.describe())
    if not state.running():
        sys.exit(3)


@lab.command()
@click.option("--node", default=None, metavar="NAME",
              help="With nodes: that node's ARI, AMI and config (default: node a), e.g. for "
                   "`hotline apply` on each node.")
def env(node: str | None) -> None:
    """Print the HOTLINE_* settings for the lab: eval "$(hotline lab env)"."""
    for key, value in _lab().env(node).items():
        click.echo(f"export {key}={shlex.quote(value)}")


@lab.command()
@click.argument("service", type=click.Choice(["asterisk", "postgres", "kamailio", *NODE_LOGS]),
                default="asterisk")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(service: str, lines: int, follow: bool) -> None:
    """Show the lab's Asterisk, PostgreSQL or (with nodes) Kamailio or node-NAME log."""
    path = _lab().log_paths()[service]
    if not path.exists():
        raise click.ClickException(f"no {service} log yet at {path}")
    cmd = ["tail", "-n", str(lines)] + (["-F"] if follow else []) + [str(path)]
    os.execvp("tail", cmd)


def _lab_settings(ctx: click.Context) -> Settings:
    """The settings, with the running lab's as the lowest layer: `hotline lab call` works without
    `eval "$(hotline lab env)"`, and HOTLINE_* or the root options still win."""
    the_lab = _lab()
    if not the_lab.status().running():
        raise LabError("the lab is not running: `hotline lab up` (or `make run`) first")
    root = ctx.find_root()
    settings = load_settings(root.obj["cli"], environ={**the_lab.env(), **os.environ},
                             config_file=root.obj["config_file"])
    settings.require("dsn")
    return settings


@lab.command("phones")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ring-ms", type=click.IntRange(0, 60000), default=500, show_default=True,
              help="How long each phone rings before it answers.")
@click.option("--stop", is_flag=True, help="Stop the lab phones instead.")
@click.option("--pidfile", type=click.Path(dir_okay=False, path_type=Path), default=phones.default_pidfile,
              help="Where their pids are kept ($HOTLINE_LAB_PHONES_PIDFILE).")
@click.pass_context
def phones_command(ctx: click.Context, file: Path | None, ring_ms: int, stop: bool, pidfile: Path) -> None:
    """Lab phones (sipp) for the agents of provisioning FILE that have a password there:
    registered, logged in and answering every call, in the background (for an hour)."""
    if stop:
        stopped = phones.stop(pidfile)
        click.echo(f"stopped: {', '.join(stopped)}" if stopped else "no lab phone was running")
        return
    if file is None:
        raise click.UsageError("FILE is needed (the provisioning file the agents come from), or --stop")
    require_sipp()
    settings = _lab_settings(ctx)
    found, skipped = phones.phones_in(file, settings.default_region)
    for line in skipped:
        click.echo(f"no lab phone for {line}")
    if not found:
        raise LabError(f"{file} has no agent a lab phone can stand in for (give an agent a password)")
    asyncio.run(_log_in(settings.dsn, [p.agent for p in found]))
    phones.start(found, pidfile, ring_ms)
    for phone in found:
        click.echo(f"lab phone {phone.endpoint} registered and answering; agent {phone.agent} logged in")
    click.echo(f"(stop them with `hotline lab phones --stop`; pids in {pidfile})")


async def _log_in(dsn: str, agents: list[str]) -> None:
    async with await connect(dsn) as conn:
        for agent in agents:
            await agent_sessions.login(conn, agent)


@lab.command("call")
@click.argument("number")
@click.option("--keys", default="", help="Menu keys to press after the answer, in order (e.g. 12).")
@click.option("--seconds", type=click.IntRange(1, 3600), default=15, show_default=True,
              help="How long the caller stays on the line after the answer, unless hung up on.")
@click.option("--caller", help="The caller id (default: a random +7916 number, a case of its own).")
@click.pass_context
def call_command(ctx: click.Context, number: str, keys: str, seconds: int, caller: str | None) -> None:
    """Call NUMBER through the lab (sipp), press --keys, and say what became of the call: its case
    and hop, the agent who answered, the end. Exit 3 when no agent answered."""
    require_sipp()
    settings = _lab_settings(ctx)
    check_daemon(settings)
    dialled = "".join(ch for ch in number if ch not in " -()")
    outcome = run_call(settings, CallPlan(dialled, caller or random_caller(), tuple(keys), seconds))
    for line in outcome.lines():
        click.echo(line)
    if outcome.answered_by is None:
        sys.exit(3)
