"""Numbered plain-SQL migrations (hotline/store/migrations/NNN_name.sql), each in a transaction."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from hotline.errors import StoreError

log = logging.getLogger(__name__)

_FILENAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Two `hotline db migrate` at once (two nodes starting) must not both apply a migration.
_LOCK_KEY = 0x686F746C  # "hotl"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with the package, in order."""
    found = []
    for entry in resources.files("hotline.store").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"two migrations share a number: {versions}")
    return found


async def applied(conn: psycopg.AsyncConnection) -> set[int]:
    await _ensure_table(conn)
    cur = await conn.execute("SELECT version FROM schema_migrations")
    return {row[0] for row in await cur.fetchall()}


async def pending(conn: psycopg.AsyncConnection) -> list[Migration]:
    done = await applied(conn)
    return [m for m in available() if m.version not in done]


async def migrate(conn: psycopg.AsyncConnection) -> list[Migration]:
    """Apply what is pending, each migration in its own transaction; returns what was applied."""
    await _ensure_table(conn)
    done: list[Migration] = []
    for migration in available():
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            cur = await conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s",
                                     (migration.version,))
            if await cur.fetchone():
                continue
            log.info("applying migration %03d_%s", migration.version, migration.name)
            try:
                await conn.execute(migration.sql.encode())
            except psycopg.Error as exc:
                raise StoreError(f"migration {migration.version:03d}_{migration.name} failed: "
                                 f"{exc.diag.message_primary or exc}") from None
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                               (migration.version, migration.name))
            done.append(migration)
    return done


async def _ensure_table(conn: psycopg.AsyncConnection) -> None:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version     integer PRIMARY KEY,
               name        text NOT NULL,
               applied_at  timestamptz NOT NULL DEFAULT now())"""
    )
