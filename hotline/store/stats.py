"""Supervisor statistics: the SQL functions of migration 005 (stats_queue, stats_agent, ...), read
as dict rows, and the live snapshot the daemon publishes (queue_live_now, agent_live_now).

The figures are computed in SQL, not here, so a supervisor's own query in Grafana or psql and
`hotline stats` can never disagree.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, errors, sql
from psycopg.rows import dict_row

from hotline.errors import StoreError
from hotline.stats.output import Row
from hotline.stats.period import Period

# The SQL function behind each report of `hotline stats`.
REPORTS = {
    "queues": "stats_queue",
    "agents": "stats_agent",
    "hotlines": "stats_hotline",
    "numbers": "stats_number",
    "channels": "stats_channel",
    "cases": "stats_case",
}


async def report(conn: AsyncConnection, name: str, period: Period, **extra: int) -> list[Row]:
    """One report's rows for the period: `SELECT * FROM stats_<name>(since, until, bucket, ..., tz)`."""
    function = REPORTS[name]
    args: list[sql.Composable] = [sql.Placeholder(k) for k in ("since", "until", "bucket")]
    args += [sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in extra]
    args.append(sql.SQL("tz => {}").format(sql.Placeholder("tz")))
    query = sql.SQL("SELECT * FROM {}({})").format(sql.Identifier(function), sql.SQL(", ").join(args))
    params = {"since": period.since, "until": period.until, "bucket": period.bucket, "tz": period.tz,
              **extra}
    return await _rows(conn, query, params)


async def live_queues(conn: AsyncConnection) -> list[Row]:
    return await _rows(conn, sql.SQL("SELECT * FROM queue_live_now ORDER BY queue"), {})


async def live_agents(conn: AsyncConnection) -> list[Row]:
    return await _rows(conn, sql.SQL("SELECT * FROM agent_live_now ORDER BY agent"), {})


async def live_waiting(conn: AsyncConnection) -> list[Row]:
    """The callers waiting now, queue by queue in the order they will be served."""
    return await _rows(conn, sql.SQL(
        "SELECT q.name AS queue, w.position, w.priority, w.waiting_since,"
        " greatest(0, extract(epoch FROM now() - w.waiting_since))::integer AS wait_s,"
        " w.ringing, h.case_id, h.caller_num AS caller"
        " FROM queue_waiting w JOIN queues q ON q.id = w.queue_id"
        " LEFT JOIN hops h ON h.node = w.node AND h.channel_id = w.channel_id"
        " ORDER BY q.name, w.position"), {})


async def hotline_time_zones(conn: AsyncConnection) -> set[str]:
    """The time zones of the live hotlines (a contact centre's day starts at its midnight)."""
    rows = await _rows(conn, sql.SQL("SELECT DISTINCT time_zone FROM hotlines WHERE retired_at IS NULL"), {})
    return {r["time_zone"] for r in rows}


async def _rows(conn: AsyncConnection, query: sql.SQL | sql.Composed, params: dict[str, Any]) -> list[Row]:
    try:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        return await cur.fetchall()
    except (errors.UndefinedFunction, errors.UndefinedTable):
        raise StoreError("the database has no statistics functions yet: run `hotline db migrate`") from None
    except errors.InvalidParameterValue as exc:  # an unknown time zone, as PostgreSQL sees it
        raise StoreError(f"the database refused the request: {exc.diag.message_primary}") from None
