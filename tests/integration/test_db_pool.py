"""The daemon's connection pool against the lab's real PostgreSQL: the session settings it asks
for take effect, and the DSN's own libpq options survive them."""

from __future__ import annotations

import psycopg
import pytest

from hotline.store.db import open_pool

pytestmark = pytest.mark.lab


async def _show(dsn: str, setting: str, **pool_args: str) -> str:
    pool = await open_pool(dsn, max_size=1, **pool_args)
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute(f"SHOW {setting}")).fetchone()
            assert row is not None
            return str(row[0])
    finally:
        await pool.close()


async def test_the_pool_commits_without_waiting_for_the_flush_when_asked(db_dsn: str) -> None:
    assert await _show(db_dsn, "synchronous_commit", synchronous_commit="off") == "off"


async def test_without_the_setting_sessions_keep_the_server_default(db_dsn: str) -> None:
    assert await _show(db_dsn, "synchronous_commit") == "on"


async def test_options_of_the_dsn_are_kept_and_the_pools_own_setting_wins(db_dsn: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(db_dsn)
    params["options"] = "-c statement_timeout=7s -c synchronous_commit=on"
    dsn = psycopg.conninfo.make_conninfo(**params)
    assert await _show(dsn, "statement_timeout", synchronous_commit="off") == "7s"
    assert await _show(dsn, "synchronous_commit", synchronous_commit="off") == "off"
