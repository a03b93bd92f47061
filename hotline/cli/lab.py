"""`hotline lab up|down|status|env|logs`: the lab (hotline.lab) from the command line."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from hotline.lab import Lab

# The checkout whose asterisk-conf/ and dialplan/ the lab runs.
PROJECT_DIR = Path(os.environ.get("HOTLINE_PROJECT_DIR", Path(__file__).resolve().parents[2]))


@click.group()
def lab() -> None:
    """The lab: a real Asterisk 22 and PostgreSQL on 127.0.0.1, for trying hotline and for tests."""


def _lab() -> Lab:
    return Lab(PROJECT_DIR)


@lab.command()
def up() -> None:
    """Build (once) and start the lab; reuses what already runs."""
    click.echo(_lab().up().describe())


@lab.command()
def down() -> None:
    """Stop what the lab started."""
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
def env() -> None:
    """Print the HOTLINE_* settings for the lab: eval "$(hotline lab env)"."""
    for key, value in _lab().env().items():
        click.echo(f"export {key}={shlex.quote(value)}")


@lab.command()
@click.argument("service", type=click.Choice(["asterisk", "postgres"]), default="asterisk")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(service: str, lines: int, follow: bool) -> None:
    """Show the lab's Asterisk or PostgreSQL log."""
    path = _lab().log_paths()[service]
    if not path.exists():
        raise click.ClickException(f"no {service} log yet at {path}")
    cmd = ["tail", "-n", str(lines)] + (["-F"] if follow else []) + [str(path)]
    os.execvp("tail", cmd)
