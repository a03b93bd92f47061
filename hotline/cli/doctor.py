"""`hotline doctor`: one line per check of what the daemon needs; any failure fails the whole."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import click

from hotline.asterisk.ami import AmiSession
from hotline.asterisk.ari import AriClient
from hotline.cli.common import settings_of
from hotline.config import Settings
from hotline.errors import HotlineError
from hotline.store import migrations
from hotline.store.db import connect, describe_dsn


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the database, AMI and ARI; non-zero exit on any failure."""
    checks = asyncio.run(run_checks(settings_of(ctx)))
    for check in checks:
        click.echo(check.line())
    if not all(c.ok for c in checks):
        sys.exit(1)


async def run_checks(settings: Settings, timeout: float = 10.0) -> list[Check]:
    checks: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("database", lambda: _database(settings)),
        ("ami", lambda: _ami(settings)),
        ("ari", lambda: _ari(settings)),
    ]
    results = []
    for name, probe in checks:
        try:
            results.append(Check(name, True, await asyncio.wait_for(probe(), timeout)))
        except HotlineError as exc:
            results.append(Check(name, False, str(exc)))
        except TimeoutError:
            results.append(Check(name, False, f"no answer within {timeout:.0f} s"))
    return results


async def _database(settings: Settings) -> str:
    settings.require("dsn")
    conn = await connect(settings.dsn)
    async with conn:
        todo = await migrations.pending(conn)
        cur = await conn.execute("SHOW server_version")
        row = await cur.fetchone()
    where = describe_dsn(settings.dsn)
    if todo:
        raise HotlineError(f"{where} reachable but {len(todo)} migration(s) pending: "
                           "run `hotline db migrate`")
    return f"{where}, PostgreSQL {row[0] if row else '?'}, migrated"


async def _ami(settings: Settings) -> str:
    settings.require("ami_url")
    ami = AmiSession(settings.ami, connect_timeout=5.0, action_timeout=5.0)
    try:
        await ami.connect()
        version = await ami.asterisk_version()
    finally:
        await ami.close()
    return f"logged in as {settings.ami.user} at {settings.ami.host}:{settings.ami.port}, Asterisk {version}"


async def _app_active(settings: Settings) -> bool:
    """Is a daemon's WebSocket connected for the app? ARI's GET /applications keeps listing an
    app after its WebSocket is gone; `ari show apps` lists only the active ones."""
    ami = AmiSession(settings.ami, connect_timeout=5.0, action_timeout=5.0)
    try:
        await ami.connect()
        listing = await ami.command("ari show apps")
    finally:
        await ami.close()
    return settings.ari_app in (line.strip() for line in listing.splitlines())


async def _ari(settings: Settings) -> str:
    settings.require("ari_url")
    client = AriClient(settings.ari, request_timeout=5.0)
    try:
        info = await client.info()
    finally:
        await client.close()
    if not await _app_active(settings):
        raise HotlineError(f"ARI reachable but Stasis app {settings.ari_app!r} is not registered: "
                           "is `hotline run` running?")
    version = info.get("system", {}).get("version", "?")
    return f"{settings.ari.host}:{settings.ari.port}, Asterisk {version}, app {settings.ari_app!r} registered"
