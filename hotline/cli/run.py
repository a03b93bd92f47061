"""`hotline run`: the daemon in the foreground."""

from __future__ import annotations

import logging

import click

from hotline.cli.common import settings_of
from hotline.logs import use_format


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon in the foreground (SIGTERM or Ctrl-C stops it; calls survive a restart)."""
    from hotline.daemon import run_daemon  # here: the engine is not loaded for the other commands

    settings = settings_of(ctx)
    use_format(settings.log_format)
    verbose = ctx.find_root().obj["verbose"]  # -v and -vv win over log_level
    logging.getLogger().setLevel({0: settings.log_level, 1: "INFO"}.get(verbose, "DEBUG"))
    run_daemon(settings)
