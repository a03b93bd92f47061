"""`hotline doctor`: one line per check of what the daemon needs; any failure fails the whole."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click
import psycopg

from hotline.asterisk import prerequisites as pre
from hotline.asterisk.ami import AmiSession
from hotline.asterisk.ari import AriClient
from hotline.asterisk.nodes import NodeAddress, node_addresses
from hotline.asterisk.sounds import SoundsDir
from hotline.asterisk.sounds import refusal as sounds_refusal
from hotline.cli.apply import include_warning, loaded_endpoints
from hotline.cli.common import settings_of
from hotline.config import Settings
from hotline.errors import AmiError, DoctorWarning, HotlineError
from hotline.media import AGENTS_CONTEXT, WEB_ENDPOINT, WS_TRANSPORT
from hotline.provision import prompts
from hotline.provision.model import Trunk
from hotline.provision.render import (
    DIALPLAN_FILE,
    FILES,
    INBOUND_CONTEXT,
    PJSIP_FILE,
    ConfFile,
)
from hotline.store import migrations
from hotline.store import provisioning as provisioning_store
from hotline.store.active_lock import count_standbys, find_holder
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
                   "be registered yet, and Asterisk's prerequisites are not checked.")
@click.pass_context
def doctor(ctx: click.Context, starting: bool) -> None:
    """Check the database, AMI, ARI and what hotline needs of Asterisk (modules, ari.conf, the
    SIP WebSocket, the dialplan, the included files); non-zero exit on any failure."""
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
    if not starting:  # a start is not held up by what an operator fixes with doctor's help
        checks += [
            ("asterisk modules", lambda: _modules(settings)),
            ("ari.conf", lambda: _ari_conf(settings)),
            ("sip websocket", lambda: _sip_websocket(settings)),
            ("dialplan", lambda: _dialplan(settings)),
            ("included files", lambda: _included_files(settings)),
            ("trunks", lambda: _trunks(settings)),
            ("nodes", lambda: _nodes(settings)),
            ("prompts", lambda: _prompts(settings)),
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
        daemons = await _daemons(conn, settings.ari_app)
    where = describe_dsn(settings.dsn)
    if todo:
        raise HotlineError(f"{where} reachable but {len(todo)} migration(s) pending: "
                           "run `hotline db migrate`")
    return f"{where}, PostgreSQL {row[0] if row else '?'}, migrated; {daemons}"


async def _daemons(conn: psycopg.AsyncConnection, app: str) -> str:
    """Which daemon is active for the app (it holds the active lock), and how many stand by."""
    holder = await find_holder(conn, app)
    standbys = await count_standbys(conn)
    active = f"active daemon {holder.describe()}" if holder is not None else "no active daemon"
    return f"{active}, {standbys} standby" + ("s" if standbys != 1 else "")


async def _ami(settings: Settings) -> str:
    settings.require("ami_url")
    ami = AmiSession(settings.ami, connect_timeout=5.0, action_timeout=5.0)
    try:
        await ami.connect()
        version = await ami.asterisk_version()
    finally:
        await ami.close()
    return f"logged in as {settings.ami.user} at {settings.ami.host}:{settings.ami.port}, Asterisk {version}"


T = TypeVar("T")


async def _with_ami(settings: Settings, use: Callable[[AmiSession], Awaitable[T]]) -> T:
    """`use` on an AMI session of its own, closed afterwards."""
    settings.require("ami_url")
    ami = AmiSession(settings.ami, connect_timeout=5.0, action_timeout=5.0)
    try:
        await ami.connect()
        return await use(ami)
    finally:
        await ami.close()


async def _nodes(settings: Settings) -> str:
    """Every provisioned node answers ARI and AMI with the settings' users, under its own name as
    Asterisk's systemname (two nodes with one systemname could give two channels one id)."""
    settings.require("dsn")
    async with await connect(settings.dsn) as conn:
        if await migrations.pending(conn):  # the database line says what to do
            raise HotlineError("not checked: the database is not migrated")
        nodes = (await provisioning_store.load(conn)).nodes
    if not nodes:
        return f"none provisioned: the one Asterisk of ari_url/ami_url, as node {settings.node!r}"
    problems = [p for address in node_addresses(settings, nodes) if (p := await _node_problem(address))]
    if problems:
        raise HotlineError("; ".join(problems))
    return f"{len(nodes)} reachable by ARI and AMI, each under its own systemname: {', '.join(sorted(nodes))}"


async def _node_problem(address: NodeAddress) -> str | None:
    ami = AmiSession(address.ami, connect_timeout=5.0, action_timeout=5.0)
    client = AriClient(address.ari, request_timeout=5.0)
    try:
        await ami.connect()
        name = await ami.system_name()
        await client.info()
    except (HotlineError, OSError) as exc:
        return f"node {address.name}: {exc}"
    finally:
        await ami.close()
        await client.close()
    if name != address.name:
        return (f"node {address.name}: Asterisk's systemname is {name!r}: set `systemname = {address.name}` "
                f"in asterisk.conf's [options] and restart it")
    return None


async def _cli(settings: Settings, command: str) -> str:
    """An Asterisk CLI command's output, over AMI."""
    return await _with_ami(settings, lambda ami: ami.command(command))


# -- what hotline needs of the operator's Asterisk (docs/deploy.md) ---------------------------------

async def _modules(settings: Settings) -> str:
    missing = pre.missing_modules(pre.loaded_modules(await _cli(settings, "module show")))
    if missing:
        listed = ", ".join(f"{name} ({pre.REQUIRED_MODULES[name]})" for name in missing)
        raise HotlineError(f"not loaded: {listed}: add `load = MODULE` to modules.conf for each "
                           "(or autoload = yes) and restart Asterisk")
    return f"the {len(pre.REQUIRED_MODULES)} modules hotline uses are loaded"


async def _ari_conf(settings: Settings) -> str:
    """ari.conf's websocket_write_timeout, as Asterisk reads the file (AMI GetConfig)."""
    reply = await _with_ami(settings, lambda ami: ami.action(
        "GetConfig", {"Filename": "ari.conf", "Category": "general"}, as_list=False))
    value = pre.config_value(reply if isinstance(reply, dict) else {}, "websocket_write_timeout")
    fix = (f"set `websocket_write_timeout = {pre.WEBSOCKET_WRITE_TIMEOUT_MS}` in ari.conf's [general] "
           "and run `module reload res_ari.so`")
    if value is None:
        raise HotlineError(f"no websocket_write_timeout in ari.conf (Asterisk's default, 100 ms, drops "
                           f"the daemon's event WebSocket under a burst of events): {fix}")
    if not value.isdigit() or int(value) < pre.MIN_WEBSOCKET_WRITE_TIMEOUT_MS:
        raise HotlineError(f"websocket_write_timeout = {value} in ari.conf is under "
                           f"{pre.MIN_WEBSOCKET_WRITE_TIMEOUT_MS} ms: {fix}")
    return f"websocket_write_timeout = {value} ms"


async def _sip_websocket(settings: Settings) -> str:
    """The transport the browsers' endpoints name, and /ws on Asterisk's HTTP server."""
    protocol = pre.transports(await _cli(settings, "pjsip show transports")).get(WS_TRANSPORT)
    if protocol not in ("ws", "wss"):
        found = f"is {protocol}" if protocol else "is missing"
        raise HotlineError(f"PJSIP transport {WS_TRANSPORT} {found} (the browsers' endpoints name it): "
                           f"add `[{WS_TRANSPORT}]` with `type = transport`, `protocol = ws`, "
                           "`bind = 127.0.0.1` to pjsip.conf and run `module reload res_pjsip.so`")
    if "/ws" not in pre.http_uris(await _cli(settings, "http show status")):
        raise HotlineError("Asterisk's HTTP server serves no /ws: set `enabled = yes` and "
                           "`bindaddr = 127.0.0.1` in http.conf and load res_http_websocket.so")
    return f"transport {WS_TRANSPORT} ({protocol}), /ws on Asterisk's HTTP server"


async def _dialplan(settings: Settings) -> str:
    """The static context trunks' calls land in hands them to the daemon's Stasis app."""
    try:
        shown = await _cli(settings, f"dialplan show {INBOUND_CONTEXT}")
    except AmiError as exc:
        if "no existence" not in str(exc):
            raise
        raise HotlineError(f"no context {INBOUND_CONTEXT} in Asterisk's dialplan: add it to "
                           "extensions.conf as docs/deploy.md shows (trunks' calls land there)") from None
    apps = pre.stasis_apps(shown)
    if settings.ari_app not in apps:
        raise HotlineError(f"context {INBOUND_CONTEXT} hands calls to Stasis({', '.join(sorted(apps))}), "
                           f"not to ari_app {settings.ari_app!r}: make its Stasis() steps name "
                           f"{settings.ari_app!r}, then `dialplan reload`")
    return f"context {INBOUND_CONTEXT} hands calls to Stasis({settings.ari_app})"


async def _included_files(settings: Settings) -> str:
    """What `hotline apply` writes, as Asterisk has it: extensions_hotline.conf's context for
    agents, pjsip_hotline.conf's endpoint for browsers (both are there whatever is provisioned)."""
    async def probe(ami: AmiSession) -> dict[str, bool]:
        try:
            await ami.command(f"dialplan show {AGENTS_CONTEXT}")
            dialplan = True
        except AmiError as exc:
            if "no existence" not in str(exc):
                raise
            dialplan = False
        return {DIALPLAN_FILE: dialplan, PJSIP_FILE: WEB_ENDPOINT in await loaded_endpoints(ami)}

    read = await _with_ami(settings, probe)
    problems = [_not_read(settings, conf) for conf in FILES if not read[conf.name]]
    if problems:
        raise HotlineError("; ".join(problems))
    return f"Asterisk has read {', '.join(conf.name for conf in FILES)}"


async def _trunks(settings: Settings) -> str:
    """Every provisioned trunk names an endpoint Asterisk has loaded (the site's own, in
    pjsip_local.conf): else each call through it would fail only when a customer waits for it."""
    settings.require("dsn")
    conn = await connect(settings.dsn)
    async with conn:
        if await migrations.pending(conn):  # no trunks table yet: the database line says what to do
            raise HotlineError("not checked: the database is not migrated")
        trunks = list((await provisioning_store.load(conn)).trunks.values())
    if not trunks:
        return "none provisioned: nothing is dialled to outside numbers"
    return trunks_loaded(trunks, await _with_ami(settings, loaded_endpoints))


async def _prompts(settings: Settings) -> str:
    """Every prompt callers can hear exists in their language (what `hotline apply` refuses)."""
    settings.require("dsn")
    conn = await connect(settings.dsn)
    async with conn:
        if await migrations.pending(conn):
            raise HotlineError("not checked: the database is not migrated")
        prov = await provisioning_store.load(conn)
    found = SoundsDir(settings.asterisk_sounds_dir, settings.asterisk_root)
    return prompts_found(prompts.needed(prov), found)


def prompts_found(needed: dict[str, dict[str, str]], found: SoundsDir) -> str:
    """The doctor's line for the prompts `needed` per language; HotlineError listing the missing."""
    if not needed:
        return "no language set: callers hear Asterisk's default language"
    if not found.exists():
        raise HotlineError(f"Asterisk's sounds directory {found.path} is not at {found.here()}: set "
                           "HOTLINE_ASTERISK_SOUNDS_DIR (and HOTLINE_ASTERISK_ROOT for a chroot)")
    missing = found.missing(needed)
    if missing:
        raise HotlineError(sounds_refusal(missing, found).replace("\n  ", "; "))
    return "; ".join(f"{len(names)} prompt(s) in {language}" for language, names in sorted(needed.items()))


def trunks_loaded(trunks: list[Trunk], loaded: set[str]) -> str:
    """The doctor's line for `trunks` against the endpoints Asterisk has; HotlineError naming each
    trunk whose endpoint it lacks."""
    missing = [f"trunk {t.name}: endpoint {t.endpoint!r} is not loaded in Asterisk (add it to "
               "pjsip_local.conf from the hotline-trunk template, with an aor giving the carrier's "
               "address, then `module reload res_pjsip.so`)" for t in sorted(trunks, key=lambda t: t.name)
               if t.endpoint not in loaded]
    if missing:
        raise HotlineError("; ".join(missing))
    return "; ".join(f"{t.name} through endpoint {t.endpoint}, allowing {', '.join(t.allow)}, "
                     f"as {t.caller_id}" for t in sorted(trunks, key=lambda t: t.name))


def _not_read(settings: Settings, conf: ConfFile) -> str:
    """Why Asterisk lacks what `conf` holds, as far as this machine can tell, and what to do."""
    conf_dir = Path(settings.asterisk_conf_dir)
    if not (conf_dir / conf.includer).is_file():  # Asterisk on another machine, or unreadable
        return (f"Asterisk has not read {conf.name}: add `#tryinclude {conf.name}` at the end of "
                f"{conf.includer}, then run `hotline apply`")
    missing_include = include_warning(conf_dir, conf)
    if missing_include:
        return missing_include
    if not (conf_dir / conf.name).is_file():
        return f"{conf_dir / conf.name} is not written yet: run `hotline apply`"
    return f"Asterisk has not loaded {conf_dir / conf.name}: run `hotline apply` (it reloads {conf.module})"


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
    version = str(info.get("system", {}).get("version", "?"))
    said = f"{settings.ari.host}:{settings.ari.port}, Asterisk {version}"
    if not starting:
        if not await _app_active(settings):
            raise HotlineError(f"ARI reachable but Stasis app {settings.ari_app!r} is not registered: "
                               "is `hotline run` running?")
        said += f", app {settings.ari_app!r} registered"
    if pre.takes_refer_over_ari(version) is False:
        raise DoctorWarning(f"{said}; this Asterisk does not hand an agent's REFER to the app (22.3, 21.8 "
                            f"or 20.13 and later do): agents' transfer buttons fail, `hotline case "
                            f"transfer` still works")
    return said
