"""The connection pool: one per process, opened by the composition root (daemon or CLI)."""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hotline.errors import StoreError

log = logging.getLogger(__name__)

# What a database outage looks like to a caller of the pool: retried, never a reason to drop a call.
STORE_DOWN = (psycopg.OperationalError, PoolTimeout)



# How the daemon's sessions show in pg_stat_activity.
APPLICATION_NAME = "hotline"


async def open_pool(dsn: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 10.0,
                    synchronous_commit: str | None = None,
                    application_name: str = APPLICATION_NAME) -> AsyncConnectionPool:
    """Open a pool and prove the database answers; StoreError names the host, never the password.
    `synchronous_commit` sets PostgreSQL's setting of that name for the pool's sessions."""
    kwargs: dict[str, object] = {"autocommit": True, "application_name": application_name}
    if synchronous_commit is not None:
        kwargs["options"] = with_option(dsn, "synchronous_commit", synchronous_commit)
    # A short checkout timeout: a call waiting on a dead database retries on its own terms.
    pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False, timeout=timeout,
                               kwargs=kwargs, name=application_name)
    try:
        await pool.open(wait=True, timeout=timeout)
    except Exception as exc:  # psycopg_pool raises PoolTimeout with the libpq error inside the log
        await pool.close()
        raise StoreError(f"database {describe_dsn(dsn)} unreachable: {_reason(exc)}") from None
    return pool


async def connect(dsn: str, *, timeout: float = 10.0) -> psycopg.AsyncConnection:
    """One plain connection (CLI one-shots, migrations)."""
    try:
        return await psycopg.AsyncConnection.connect(dsn, connect_timeout=int(timeout), autocommit=True)
    except psycopg.Error as exc:
        raise StoreError(f"database {describe_dsn(dsn)} unreachable: {_reason(exc)}") from None


def with_option(dsn: str, name: str, value: str) -> str:
    """The DSN's own libpq `options` with `-c name=value` added (set last, so it wins)."""
    try:
        own = psycopg.conninfo.conninfo_to_dict(dsn).get("options") or ""
    except psycopg.ProgrammingError:
        own = ""  # the connection attempt reports the malformed DSN
    return f"{own} -c {name}={value}".strip()


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of a DSN, for messages (the password stays out of logs)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(malformed DSN)"
    host = info.get("host") or "localhost"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else type(exc).__name__
