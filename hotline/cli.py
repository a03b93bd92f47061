"""The `hotline` command: thin click commands that build settings and call one function each."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from hotline.cli_common import clear_errors, settings_of

PROJECT_DIR = Path(os.environ.get("HOTLINE_PROJECT_DIR", Path(__file__).resolve().parents[1]))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML settings file (default: $HOTLINE_CONFIG or /etc/hotline/hotline.toml).")
@click.option("--dsn", help="PostgreSQL URL (HOTLINE_DSN).")
@click.option("--ami-url", help="ami://user:secret@host:port (HOTLINE_AMI_URL).")
@click.option("--ari-url", help="http://user:password@host:port (HOTLINE_ARI_URL).")
@click.option("--ari-app", help="Stasis application name (HOTLINE_ARI_APP, default hotline).")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, verbose: int, **cli: str | None) -> None:
    """hotline: telephone and video hotlines on Asterisk (ARI + AMI + PostgreSQL)."""
    ctx.obj = {"cli": cli, "config_file": config_file}
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.pass_context
@clear_errors
def run(ctx: click.Context) -> None:
    """Run the daemon in the foreground (SIGTERM or Ctrl-C stops it; calls survive a restart)."""
    from hotline.daemon import run_daemon

    settings = settings_of(ctx)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    run_daemon(settings)


@main.command()
@click.pass_context
@clear_errors
def doctor(ctx: click.Context) -> None:
    """Check the database, AMI and ARI; non-zero exit on any failure."""
    from hotline.doctor import run_checks

    checks = asyncio.run(run_checks(settings_of(ctx)))
    for check in checks:
        click.echo(check.line())
    if not all(c.ok for c in checks):
        sys.exit(1)


@main.group()
def db() -> None:
    """The database schema."""


@db.command()
@click.pass_context
@clear_errors
def migrate(ctx: click.Context) -> None:
    """Apply pending migrations (idempotent)."""
    from hotline.store.db import connect
    from hotline.store.migrations import migrate as apply

    async def go() -> list[str]:
        settings = settings_of(ctx)
        settings.require("dsn")
        conn = await connect(settings.dsn)
        async with conn:
            return [f"{m.version:03d}_{m.name}" for m in await apply(conn)]

    done = asyncio.run(go())
    click.echo(f"applied: {', '.join(done)}" if done else "database is up to date")


@main.command("apply")
@click.option("--conf-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Asterisk config directory to write into (HOTLINE_ASTERISK_CONF_DIR).")
@click.option("--no-reload", is_flag=True, help="Write the files only; reload Asterisk yourself.")
@click.pass_context
@clear_errors
def apply_command(ctx: click.Context, conf_dir: Path | None, no_reload: bool) -> None:
    """Render PJSIP endpoints and dialplan from the database; reload what changed."""
    from dataclasses import replace

    from hotline.render import apply_from_database

    settings = settings_of(ctx)
    if conf_dir is not None:
        settings = replace(settings, asterisk_conf_dir=str(conf_dir))
    result = asyncio.run(apply_from_database(settings, reload=not no_reload))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for line in result.lines():
        click.echo(line)


@main.group()
def lab() -> None:
    """The lab: a real Asterisk 22 and PostgreSQL on 127.0.0.1, for trying hotline and for tests."""


def _lab() -> Any:
    from hotline.lab import Lab

    return Lab(PROJECT_DIR)


@lab.command()
@clear_errors
def up() -> None:
    """Build (once) and start the lab; reuses what already runs."""
    click.echo(_lab().up().describe())


@lab.command()
@clear_errors
def down() -> None:
    """Stop what the lab started."""
    _lab().down()
    click.echo("lab stopped")


@lab.command()
@clear_errors
def status() -> None:
    """What runs, on which ports."""
    state = _lab().status()
    click.echo(state.describe())
    if not state.running():
        sys.exit(3)


@lab.command()
@clear_errors
def env() -> None:
    """Print the HOTLINE_* settings for the lab: eval "$(hotline lab env)"."""
    for key, value in _lab().env().items():
        click.echo(f"export {key}={shlex.quote(value)}")


@lab.command()
@click.argument("service", type=click.Choice(["asterisk", "postgres"]), default="asterisk")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@clear_errors
def logs(service: str, lines: int, follow: bool) -> None:
    """Show the lab's Asterisk or PostgreSQL log."""
    path = _lab().log_paths()[service]
    if not path.exists():
        raise click.ClickException(f"no {service} log yet at {path}")
    cmd = ["tail", "-n", str(lines)] + (["-F"] if follow else []) + [str(path)]
    os.execvp("tail", cmd)


def _register_provisioning() -> None:
    from hotline.provision.commands import register

    register(main)


_register_provisioning()


def _register_stats() -> None:
    from hotline.stats_commands import register

    register(main)


_register_stats()


def _register_cases() -> None:
    from hotline.case_commands import register

    register(main)


_register_cases()
