"""The `hotline` command: thin click commands, one module per command group, that build settings
and call one function each. The root group maps errors once: a HotlineError, or an outage of the
database or of Asterisk met by any command, is one line on stderr and exit 1, never a traceback.

The root imports a command's module only when that command runs (click's "lazily loading
subcommands"): every module pulls in its own share of psycopg, aiohttp, jinja2 and the engine, and
an operator's `hotline agent login` or a script's loop of them should not pay for all of them."""

from __future__ import annotations

import errno
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import click

from hotline import __version__
from hotline.config import refuse_secrets_on_command_line
from hotline.errors import HotlineError
from hotline.logs import setup_logging

log = logging.getLogger(__name__)

# Every command of the root: its name -> "module:attribute". `case` comes from supervise, which
# imports the group from hotline.cli.cases and adds `case listen|whisper|barge` to it.
LAZY_COMMANDS = {
    "run": "hotline.cli.run:run",
    "doctor": "hotline.cli.doctor:doctor",
    "db": "hotline.cli.db:db",
    "apply": "hotline.cli.apply:apply_command",
    "config": "hotline.cli.config:config_group",
    "lab": "hotline.cli.lab:lab",
    "provision": "hotline.cli.provision:provision",
    "export": "hotline.cli.provision:export_command",
    "number": "hotline.cli.provision:number",
    "queue": "hotline.cli.provision:queue",
    "hotline": "hotline.cli.provision:hotline_group",
    "member": "hotline.cli.provision:member",
    "ivr": "hotline.cli.provision:ivr",
    "trunk": "hotline.cli.provision:trunk",
    "agent": "hotline.cli.agents:agent",
    "case": "hotline.cli.supervise:case_group",
    "callback": "hotline.cli.callbacks:callback_group",
    "stats": "hotline.cli.stats:stats_group",
    "webhook": "hotline.cli.webhooks:webhook_group",
    "events": "hotline.cli.events:events_group",
    "recording": "hotline.cli.recordings:recording_group",
    "node": "hotline.cli.nodes:node_group",
}


class HotlineGroup(click.Group):
    """The root group. Its invoke runs every subcommand (sub-groups' too), so it is the one place
    where errors become the user's one line. Its commands load on first use (LAZY_COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command) and command.name == cmd_name, cmd_name
            self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HotlineError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            if not is_outage(exc):
                raise
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # output piped into `head`: click ends quietly, as before
            log.debug("the command failed", exc_info=True)  # the traceback, with -vv
            raise click.ClickException(outage_line(ctx, exc)) from None


def is_outage(exc: BaseException) -> bool:
    """What an unreachable database or Asterisk raises past the modules that name it themselves:
    an OSError, or any psycopg error (psycopg_pool's PoolTimeout is one). A command that never
    loaded psycopg cannot have met one, and a `--help` should not load it to find that out."""
    if isinstance(exc, OSError):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def outage_line(ctx: click.Context, exc: BaseException) -> str:
    """What went away, and why, in one line."""
    import psycopg
    from psycopg_pool import PoolTimeout
    if isinstance(exc, PoolTimeout):
        return f"database {_database(ctx)} unreachable: {_first_line(exc)}"
    if isinstance(exc, psycopg.Error):
        # No SQLSTATE: the connection itself broke; with one, the server's own message says why.
        lost = isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None
        return f"database {_database(ctx)}{' went away' if lost else ''}: {_first_line(exc)}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"connection failed: {_first_line(exc)}"


def _database(ctx: click.Context) -> str:
    from hotline.cli.common import settings_of
    from hotline.store.db import describe_dsn
    try:
        return describe_dsn(settings_of(ctx).dsn)
    except HotlineError:
        return "(settings unreadable)"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@click.group(cls=HotlineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML settings file (default: $HOTLINE_CONFIG or /etc/hotline/hotline.toml).")
@click.option("--dsn", help="PostgreSQL URL without a password (HOTLINE_DSN; a password: "
              "there, in the TOML file or in ~/.pgpass).")
# Refused with a clear line (their secrets would show in `ps`): HOTLINE_AMI_URL, HOTLINE_ARI_URL.
@click.option("--ami-url", hidden=True)
@click.option("--ari-url", hidden=True)
@click.option("--ari-app", help="Stasis application name (HOTLINE_ARI_APP, default hotline).")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(__version__, prog_name="hotline")
@click.pass_context
def main(ctx: click.Context, /, config_file: Path | None, verbose: int, **cli: str | None) -> None:
    """hotline: telephone and video hotlines on Asterisk (ARI + AMI + PostgreSQL)."""
    refuse_secrets_on_command_line(cli)
    ctx.obj = {"cli": cli, "config_file": config_file, "verbose": verbose}
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    setup_logging(level)


