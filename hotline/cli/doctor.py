"""`hotline doctor`: one line per check of what the daemon needs; any failure fails the whole."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import click

from hotline.asterisk.ami import AmiSession
from hotline.asterisk.ari import AriClient
from hotline.cli.common import settings_of
from hotline.config import Settings
from hotline.errors import DoctorWarning, HotlineError
from hotline.store import migrations
from hotline.store.db import connect, describe_dsn


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warn: bool = False  # passes, but an operator should act (the exit stays 0)

    def line(self) -> str:
        return f"{('WARN' if self.warn else 'ok  ') if self.ok else 'FAIL'} {self.name}: {self.detail}"


@click.command()
@click.option("--starting", is_flag=True,
              help="For a daemon about to start (systemd's ExecStartPre): its Stasis app need not "
                   "be registered yet.")
@click.pass_context
def doctor(ctx: click.Context, starting: bool) -> None:
    """Check the database, AMI and ARI; non-zero exit on any failure."""
    checks = asyncio.run(run_checks(settings_of(ctx), starting=starting))
    for check in checks:
        click.echo(check.line())
    if not all(c.ok for c in checks):
        sys.exit(1)


async def run_checks(settings: Settings, timeout: float = 10.0, *, starting: bool = False) -> list[Check]:
    checks: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("database", lambda: _database(settings)),
        ("ami", lambda: _ami(settings)),
        ("ari", lambda: _ari(settings, starting)),
        ("ari exposure", lambda: _ari_exposure(settings)),
    ]
    results = []
    for name, probe in checks:
        try:
            results.append(Check(name, True, await asyncio.wait_for(probe(), timeout)))
        except DoctorWarning as exc:
            results.append(Check(name, True, str(exc), warn=True))
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


async def _cli(settings: Settings, command: str) -> str:
    """An Asterisk CLI command's output, over AMI."""
    ami = AmiSession(settings.ami, connect_timeout=5.0, action_timeout=5.0)
    try:
        await ami.connect()
        return await ami.command(command)
    finally:
        await ami.close()


async def _app_active(settings: Settings) -> bool:
    """Is a daemon's WebSocket connected for the app? ARI's GET /applications keeps listing an
    app after its WebSocket is gone; `ari show apps` lists only the active ones."""
    listing = await _cli(settings, "ari show apps")
    return settings.ari_app in (line.strip() for line in listing.splitlines())


async def _ari_exposure(settings: Settings) -> str:
    """Where Asterisk's HTTP server (ARI, and the SIP WebSocket beside it) listens, as Asterisk
    itself says (`http show status`): the ari_url the daemon uses says nothing about other
    addresses Asterisk may be bound to."""
    settings.require("ami_url")
    bound = http_bindings(await _cli(settings, "http show status"))
    if not bound:
        return "Asterisk's HTTP server is off"
    exposed = [address for address in bound if not is_loopback(address)]
    if exposed:
        raise DoctorWarning(f"ARI is reachable beyond this machine on {', '.join(exposed)}: anyone who "
                       "guesses its password can place calls; bind http.conf to 127.0.0.1 and "
                       "publish only the SIP WebSocket (/ws) through a proxy")
    return f"Asterisk's HTTP server (ARI) listens on loopback only: {', '.join(bound)}"


def http_bindings(status: str) -> list[str]:
    """The host:port addresses in `http show status` ("Server Enabled and Bound to ...")."""
    return re.findall(r"Bound to (\S+)", status)


def is_loopback(address: str) -> bool:
    """Is a host:port (IPv6 in brackets) on a loopback address? 0.0.0.0 and [::] are not."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _ari(settings: Settings, starting: bool = False) -> str:
    settings.require("ari_url")
    client = AriClient(settings.ari, request_timeout=5.0)
    try:
        info = await client.info()
    finally:
        await client.close()
    version = info.get("system", {}).get("version", "?")
    if starting:
        return f"{settings.ari.host}:{settings.ari.port}, Asterisk {version}"
    if not await _app_active(settings):
        raise HotlineError(f"ARI reachable but Stasis app {settings.ari_app!r} is not registered: "
                           "is `hotline run` running?")
    return f"{settings.ari.host}:{settings.ari.port}, Asterisk {version}, app {settings.ari_app!r} registered"
