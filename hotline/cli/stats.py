"""`hotline stats queues|agents|hotlines|numbers|channels|cases|live`: the supervisor's figures from
the command line. Thin: parse the period, call hotline.store.stats, print with hotline.stats.

Periods default to today in the contact centre's time zone (see hotline.stats.period).
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click
from psycopg import AsyncConnection

from hotline.cli.common import options, run_with_db, settings_of
from hotline.errors import StatsError
from hotline.stats.output import FORMATS
from hotline.stats.period import Period, default_tz, machine_tz, period
from hotline.stats.reports import live_queue_rows, live_text, report_text
from hotline.store import callbacks, live_state, stats
from hotline.store.db import connect

WATCH_REFRESH_S = 1.0  # waits on screen advance at least this often, with or without a NOTIFY

REPORTS = [
    ("queues", "Per queue: offered, answered, abandoned, service level, ASA, AHT, waits."),
    ("agents", "Per agent: rung, answered, missed, talk, wrap-up, logged-in and pause time, occupancy."),
    ("hotlines", "Per hotline: calls by how they ended (busy: refused, every line taken), answer times."),
    ("numbers", "Per number (city, 8-800, video): calls, busy refusals, peak lines in use."),
    ("channels", "Per channel kind and media: calls, cases, answered, switched."),
    ("cases", "Per case: hops per case, channel switches, time to first answer across hops."),
]


@click.group("stats")
def stats_group() -> None:
    """Supervisor statistics (definitions of every column: README, Statistics).

    Seconds are whole seconds, percentages have one decimal. --since/--until take YYYY-MM-DD,
    YYYY-MM-DDTHH:MM[+03:00], today, yesterday or now; a day alone means that whole day, the
    default is today. Days start at midnight in --tz, by default the hotlines' time zone (when
    they all share one), else the machine's.
    """


_period_options = options(
    click.option("--since", help="Start (default: today)."),
    click.option("--until", help="End, not included (default: the end of --since's day, or now)."),
    click.option("--interval", help="Rows per 15m, 30m, hour or day (default: one row for the period)."),
    click.option("--tz", help="Time zone of days (default: the hotlines', else the machine's)."),
    click.option("--format", "fmt", default="table", show_default=True, help="table, json or csv."),
)
_short_abandon_option = click.option(
    "--short-abandon", "short_abandon_s", type=click.IntRange(0, 3600), default=5, show_default=True,
    help="Abandons shorter than this many seconds are short.")


def _report_command(name: str, doc: str, *, short_abandon: bool = False) -> click.Command:
    @click.pass_context
    def command(ctx: click.Context, since: str | None, until: str | None, interval: str | None,
                tz: str | None, fmt: str, short_abandon_s: int | None = None) -> None:
        _check_format(fmt)
        extra = {"short_abandon_s": short_abandon_s} if short_abandon_s is not None else {}

        async def go(conn: AsyncConnection) -> str:
            p = await _period_in_zone(conn, since, until, interval, tz)
            return report_text(name, await stats.report(conn, name, p, **extra), fmt, p)

        _check_period(since, until, interval, tz)  # bad input is refused before the database is asked
        click.echo(run_with_db(ctx, go))

    command.__doc__ = doc
    command = _period_options(command)
    if short_abandon:
        command = _short_abandon_option(command)
    return click.command(name)(command)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise StatsError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def _check_period(since: str | None, until: str | None, interval: str | None, tz: str | None) -> None:
    """The options' syntax, in the machine's zone: refused before the database is asked."""
    period(since, until, interval, tz or machine_tz(), check_order=False)


async def _period_in_zone(conn: AsyncConnection, since: str | None, until: str | None,
                          interval: str | None, tz: str | None) -> Period:
    zone = tz or default_tz(await stats.hotline_time_zones(conn))
    return period(since, until, interval, zone)


# -- live ---------------------------------------------------------------------------------------

@click.command("live")
@click.option("--watch", is_flag=True, help="Redraw on every change (and every second); Ctrl-C stops.")
@click.option("--tz", help="Time zone of 'today' (default: the hotlines', else the machine's).")
@click.option("--format", "fmt", default="table", show_default=True, help="table, json or csv (queues).")
@click.pass_context
def live(ctx: click.Context, watch: bool, tz: str | None, fmt: str) -> None:
    """Queues and agents now: who waits and for how long, agents by state, today's figures."""
    _check_format(fmt)
    if watch and fmt != "table":
        raise StatsError("--watch draws a table: leave out --format")
    _check_period(None, None, None, tz)

    async def show(conn: AsyncConnection) -> str:
        if watch:
            await _watch(conn, settings_of(ctx).dsn, tz)
        return await _live_text(conn, tz, fmt)
    try:
        click.echo(run_with_db(ctx, show))
    except KeyboardInterrupt:
        sys.exit(0)


async def _live_text(conn: AsyncConnection, tz: str | None, fmt: str) -> str:
    p = await _period_in_zone(conn, None, None, None, tz)
    today = await stats.report(conn, "queues", p)
    waiting = await callbacks.waiting_per_queue(conn)
    queues = live_queue_rows(await stats.live_queues(conn), today, p.zone, waiting)
    return live_text(queues, await stats.live_agents(conn), fmt, p.zone, await stats.live_waiting(conn))


async def _watch(conn: AsyncConnection, dsn: str, tz: str | None) -> NoReturn:
    """Redraw whenever the daemon publishes, and at least every WATCH_REFRESH_S, until Ctrl-C."""
    listener = await connect(dsn)
    async with listener:
        await listener.execute(f"LISTEN {live_state.NOTIFY_CHANNEL}")
        clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else "\n"
        while True:
            click.echo(clear + await _live_text(conn, tz, "table"))
            sys.stdout.flush()
            async for _ in listener.notifies(timeout=WATCH_REFRESH_S, stop_after=1):
                pass


for _name, _doc in REPORTS:
    stats_group.add_command(_report_command(_name, _doc, short_abandon=_name == "queues"))
stats_group.add_command(live)
