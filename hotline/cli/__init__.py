"""The `hotline` command: thin click commands, one module per command group, that build settings
and call one function each. The root group maps errors once: a HotlineError, or an outage of the
database or of Asterisk met by any command, is one line on stderr and exit 1, never a traceback."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg_pool import PoolTimeout

from hotline import __version__
from hotline.cli import (
    agents,
    apply,
    callbacks,
    cases,
    config,
    db,
    doctor,
    events,
    lab,
    nodes,
    provision,
    recordings,
    run,
    stats,
    supervise,  # noqa: F401 - registers `hotline case listen|whisper|barge`
    webhooks,
)
from hotline.cli.common import settings_of
from hotline.config import refuse_secrets_on_command_line
from hotline.errors import HotlineError
from hotline.logs import setup_logging
from hotline.store.db import STORE_DOWN, describe_dsn

log = logging.getLogger(__name__)

# What an unreachable database or Asterisk raises past the modules that name it themselves.
OUTAGES = (*STORE_DOWN, psycopg.Error, OSError)


class HotlineGroup(click.Group):
    """The root group. Its invoke runs every subcommand (sub-groups' too), so it is the one place
    where errors become the user's one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HotlineError as exc:
            raise click.ClickException(str(exc)) from None
        except OUTAGES as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # output piped into `head`: click ends quietly, as before
            log.debug("the command failed", exc_info=True)  # the traceback, with -vv
            raise click.ClickException(outage_line(ctx, exc)) from None


def outage_line(ctx: click.Context, exc: BaseException) -> str:
    """What went away, and why, in one line."""
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


for _command in (run.run, doctor.doctor, db.db, apply.apply_command, config.config_group, lab.lab,
                 *provision.COMMANDS, agents.agent, cases.case_group, callbacks.callback_group,
                 stats.stats_group, webhooks.webhook_group, events.events_group,
                 recordings.recording_group, nodes.node_group):
    main.add_command(_command)
