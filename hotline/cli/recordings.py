"""`hotline recording start|stop|pause|resume|path|export|purge`: a live talk's recording started
(a queue that records on_demand), stopped, paused and resumed
(asked of the daemon that runs the call, as a transfer is), a recording's file found or copied,
and old files deleted with their rows marked. Thin: hotline.store.recordings and
hotline.engine.recording do the work."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click
from psycopg import AsyncConnection

from hotline.cli.common import run_with_db, settings_of
from hotline.config import Settings
from hotline.engine.recording import ask_recording
from hotline.errors import AriError, AriNotFound, RecordingError
from hotline.store import recordings
from hotline.store.recordings import ASK_PATIENCE_S, LIVE_STATES, Recording

DONE = {"pause": "paused", "resume": "resumed", "stop": "stopped"}
CASE_ID = click.argument("case_id", type=click.IntRange(min=1))
REC = click.argument("rec")


@click.group("recording")
def recording_group() -> None:
    """Recorded talks (a queue's record = always or on_demand): start, stop, pause, resume,
    files, purge."""


@recording_group.command("start")
@CASE_ID
@click.pass_context
def start(ctx: click.Context, case_id: int) -> None:
    """Start recording case CASE_ID's live talk now (its queue records on_demand, or always and
    it was stopped); recorded to the end of the talk unless stopped."""
    settings = settings_of(ctx)
    settings.require("dsn", "ari_url")

    async def go(conn: AsyncConnection) -> str:
        channel_id, mode = await recordings.talking_leg(conn, case_id)
        if mode == "never":
            raise RecordingError(f"case {case_id}: its queue records never (`hotline queue set "
                                 f"--record on_demand` lets its agents record)")
        live = await recordings.live_recording(conn, case_id)
        if live is not None:
            return f"case {case_id}: recording #{live.id} is {live.state} already"
        await _send(conn, settings, channel_id, "start", case_id)
        await conn.commit()
        began = await recordings.recording_begins(conn, case_id)
        if began is None:
            raise RecordingError(f"case {case_id}: no daemon started the recording within "
                                 f"{ASK_PATIENCE_S:.0f} s (is `hotline run` running? has the talk ended?)")
        return f"case {case_id}: recording #{began.id} started"
    click.echo(run_with_db(ctx, go))


@recording_group.command("stop")
@CASE_ID
@click.pass_context
def stop(ctx: click.Context, case_id: int) -> None:
    """Stop recording case CASE_ID's live talk: its file ends here, and the talk's later
    segments are not recorded unless started again."""
    click.echo(_ask(ctx, case_id, "stop"))


@recording_group.command("pause")
@CASE_ID
@click.pass_context
def pause(ctx: click.Context, case_id: int) -> None:
    """Pause the recording of case CASE_ID's live talk: the file holds nothing until resumed."""
    click.echo(_ask(ctx, case_id, "pause"))


@recording_group.command("resume")
@CASE_ID
@click.pass_context
def resume(ctx: click.Context, case_id: int) -> None:
    """Resume the paused recording of case CASE_ID's live talk."""
    click.echo(_ask(ctx, case_id, "resume"))


def _ask(ctx: click.Context, case_id: int, action: str) -> str:
    settings = settings_of(ctx)
    settings.require("dsn", "ari_url")
    wanted = {"pause": "paused", "resume": "recording", "stop": "done"}[action]

    async def go(conn: AsyncConnection) -> str:
        live, channel_id = await recordings.live_talk_recording(conn, case_id)
        if live.state == wanted:
            return f"case {case_id}: recording #{live.id} is {wanted} already"
        await _send(conn, settings, channel_id, action, case_id)
        await conn.commit()
        if not await recordings.state_becomes(conn, live.id, wanted):
            raise RecordingError(f"case {case_id}: no daemon took the {action} within {ASK_PATIENCE_S:.0f} s "
                                 f"(is `hotline run` running? has the talk ended?)")
        return f"case {case_id}: recording #{live.id} {DONE[action]}"
    return run_with_db(ctx, go)


async def _send(conn: AsyncConnection, settings: Settings, channel_id: str, action: str,
                case_id: int) -> None:
    from hotline.cli.node_ari import ari_for_channel  # the ARI client (aiohttp) only when asked
    ari = await ari_for_channel(conn, settings, channel_id)
    try:
        await ask_recording(ari, settings.ari_app, channel_id, action, "cli")
    except AriNotFound:
        raise RecordingError(f"case {case_id}: no daemon serves Stasis app {settings.ari_app!r} "
                             f"(is `hotline run` running?)") from None
    except AriError as exc:
        raise RecordingError(f"case {case_id}: the {action} did not reach the daemon ({exc})") from None
    finally:
        await ari.close()


@recording_group.command("path")
@REC
@click.pass_context
def path(ctx: click.Context, rec: str) -> None:
    """Print the path of recording REC's file (REC: its number in `hotline case show`, or its
    name); exits non-zero when the file is not there."""
    settings = settings_of(ctx)
    click.echo(_file_of(run_with_db(ctx, lambda conn: recordings.recording(conn, rec)), settings))


@recording_group.command("export")
@REC
@click.argument("dest", type=click.Path(path_type=Path))
@click.pass_context
def export(ctx: click.Context, rec: str, dest: Path) -> None:
    """Copy recording REC's file to DEST (a file, or a directory to copy it into)."""
    settings = settings_of(ctx)
    found = run_with_db(ctx, lambda conn: recordings.recording(conn, rec))
    source = _file_of(found, settings)
    target = dest / found.file_name if dest.is_dir() else dest
    shutil.copyfile(source, target)
    click.echo(f"recording #{found.id} copied to {target} ({target.stat().st_size} bytes)")


def _file_of(found: Recording, settings: Settings) -> Path:
    """The file of a finished recording; RecordingError saying why there is none."""
    if found.state in LIVE_STATES:
        raise RecordingError(f"recording #{found.id} is still {found.state}: its file is complete once "
                             f"the talk ends")
    if found.state == "failed":
        where = found.file_in(settings.recording_dir)
        if not where.is_file():
            raise RecordingError(f"recording #{found.id} failed and has no file: {found.detail}")
        # Cut short (its talk ended while no daemon ran, say): what Asterisk wrote is still served.
        click.echo(f"recording #{found.id} failed ({found.detail}); its file holds what was recorded",
                   err=True)
        return where
    if found.state in ("purged", "missing"):
        raise RecordingError(f"recording #{found.id} was purged on {found.purged_at:%Y-%m-%d}"
                             + (" (its file was missing then)" if found.state == "missing" else ""))
    where = found.file_in(settings.recording_dir)
    if not where.is_file():
        raise RecordingError(f"recording #{found.id}: its file {where} is missing")
    return where


@recording_group.command("purge")
@click.option("--older-than", "days", type=click.IntRange(min=0),
              help="Delete the files of recordings that ended more than DAYS days ago "
                   "(default: the recording_retention setting).")
@click.option("--yes", is_flag=True, help="Delete them; without it, only say what would be deleted.")
@click.pass_context
def purge(ctx: click.Context, days: int | None, yes: bool) -> None:
    """Delete the files of recordings older than --older-than days (or recording_retention) and
    mark their rows purged; a file already gone is reported and its row marked missing (the exit
    status is then 1). Without --yes: a dry run that lists them and changes nothing."""
    settings = settings_of(ctx)
    if days is None:
        days = settings.recording_retention_days
    if days is None:
        raise click.UsageError("give --older-than DAYS, or set recording_retention")
    kept = days

    async def go(conn: AsyncConnection) -> int:
        old = await recordings.older_than(conn, kept)
        missing = without_file = 0
        for found in old:
            where = found.file_in(settings.recording_dir)
            if found.state == "failed" and not where.is_file():
                without_file += 1  # failed before Asterisk wrote anything: nothing to delete or miss
                continue
            if not where.is_file():
                missing += 1
                click.echo(f"MISSING #{found.id} {where}: no file" + ("; row marked missing" if yes else ""),
                           err=True)
                if yes:
                    await recordings.mark(conn, found.id, "missing", "file missing at purge")
                continue
            click.echo(f"{'deleted' if yes else 'would delete'} #{found.id} {where} "
                       f"({where.stat().st_size} bytes, ended {found.ended_at:%Y-%m-%d})")
            if yes:
                where.unlink()
                await recordings.mark(conn, found.id, "purged")
                await conn.commit()  # each file and its row together: an interrupted purge disagrees on none
        await conn.commit()
        done = len(old) - missing - without_file
        click.echo(f"{'purged' if yes else 'dry run: would purge'} {done} recording(s), {missing} missing"
                   + ("" if yes else "; run with --yes to delete them"))
        return missing
    if run_with_db(ctx, go):
        sys.exit(1)
