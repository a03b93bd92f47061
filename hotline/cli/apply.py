"""`hotline apply`: the rendered config (hotline.provision.render) written atomically into
Asterisk's config directory, and reloaded where needed.

Reloads go through AMI (`Reload` of res_pjsip.so / pbx_config.so, checked on Asterisk 22.10:
a res_pjsip reload adds and removes endpoints), and only for a file that changed or whose
objects Asterisk turns out not to have (a run with --no-reload, a failed reload). Afterwards
Asterisk is asked whether it now has them: Asterisk logs a bad object and keeps going, so a
successful `Reload` proves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import click
import psycopg
from psycopg import AsyncConnection

from hotline.asterisk import sounds
from hotline.asterisk.ami import AmiSession
from hotline.cli.common import run_with_db, settings_of
from hotline.config import Settings
from hotline.errors import AmiError, AsteriskError, ConfigError, HotlineError, PromptsMissing, StoreError
from hotline.media import AGENTS_CONTEXT
from hotline.provision import prompts
from hotline.provision.model import Provisioning
from hotline.provision.render import (
    DIALPLAN_FILE,
    FILES,
    INBOUND_CONTEXT,
    PJSIP_FILE,
    ConfFile,
    consult_extensions,
    endpoint_views,
    number_views,
    render,
    supervise_extensions,
    supervise_patterns,
)
from hotline.store import migrations, provisioning
from hotline.store.db import describe_dsn

log = logging.getLogger(__name__)

_RELOAD_RETRIES = 5  # Asterisk refuses a reload while another one runs (a concurrent apply, lab up)


@click.command("apply")
@click.option("--conf-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Asterisk config directory to write into (HOTLINE_ASTERISK_CONF_DIR).")
@click.option("--no-reload", is_flag=True, help="Write the files only; reload Asterisk yourself.")
@click.pass_context
def apply_command(ctx: click.Context, conf_dir: Path | None, no_reload: bool) -> None:
    """Render PJSIP endpoints and dialplan from the database; reload what changed."""
    settings = settings_of(ctx)
    if conf_dir is not None:
        settings = replace(settings, asterisk_conf_dir=str(conf_dir))
    settings.require("dsn")
    conf_dir_of(settings)  # before touching anything else
    prov = run_with_db(ctx, lambda conn: live_provisioning(conn, settings.dsn))
    result = asyncio.run(apply_and_reload(prov, settings, reload=not no_reload))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for line in result.lines():
        click.echo(line)


@dataclass(frozen=True)
class Reload:
    module: str
    reason: str


@dataclass(frozen=True)
class ApplyResult:
    conf_dir: Path
    changed: tuple[str, ...] = ()  # file names written
    reloads: tuple[Reload, ...] = ()
    pending: tuple[str, ...] = ()  # modules a changed file needs reloaded, left alone
    not_reloaded_because: str = "no AMI session"
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """What changed, one line per file and per reload, as `hotline apply` prints it."""
        out = [f"wrote {self.conf_dir / name}" for name in self.changed]
        out += [f"reloaded {r.module} ({r.reason})" for r in self.reloads]
        # Only new objects would be noticed by a later apply; a changed password would not.
        out += [f"not reloaded ({self.not_reloaded_because}): {module}; reload it in Asterisk: "
                f"module reload {module}" for module in self.pending]
        return out or ["nothing changed"]


# -- writing ---------------------------------------------------------------------------------------

def conf_dir_of(settings: Settings) -> Path:
    conf_dir = Path(settings.asterisk_conf_dir)
    if not conf_dir.is_dir():
        raise ConfigError(f"Asterisk config directory {conf_dir} does not exist: set "
                          f"HOTLINE_ASTERISK_CONF_DIR or --conf-dir (nothing written)")
    return conf_dir


def write_if_changed(path: Path, text: str, mode: int) -> bool:
    """Write `text` atomically unless the file already holds it; True when written.

    A temporary file in the same directory, fsync'd, then renamed over the old one: Asterisk
    (reading on a reload at any moment) sees the old file or the new one, never half of one.
    """
    data = text.encode("utf-8")
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == data:
            if path.stat().st_mode & 0o777 != mode:
                os.chmod(path, mode)  # a mode fix alone needs no reload
            return False
    owner = _owner_for(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            _chown(fh.fileno(), owner, path)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return True


def _owner_for(path: Path) -> tuple[int, int]:
    """Keep the owner of the file being replaced; a new file takes the directory's group, which
    is how Asterisk (user asterisk, group owning /etc/asterisk) can read a 0640 file."""
    try:
        st = path.stat()
        return st.st_uid, st.st_gid
    except FileNotFoundError:
        return os.geteuid(), path.parent.stat().st_gid


def _chown(fd: int, owner: tuple[int, int], path: Path) -> None:
    try:
        os.fchown(fd, *owner)
    except PermissionError:
        # Not root: the file is ours; if Asterisk cannot read it, the check after the reload says so.
        log.warning("cannot give %s to uid %d gid %d: left as the current user's", path, *owner)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a crash
    finally:
        os.close(fd)


def write_files(conf_dir: Path, files: dict[str, str]) -> tuple[str, ...]:
    changed = []
    for conf in FILES:
        try:
            if write_if_changed(conf_dir / conf.name, files[conf.name], conf.mode):
                changed.append(conf.name)
        except OSError as exc:
            raise HotlineError(f"cannot write {conf_dir / conf.name}: {exc.strerror or exc}") from None
    return tuple(changed)


def include_warnings(conf_dir: Path) -> tuple[str, ...]:
    """A rendered file that no static file includes is never read by Asterisk: say so."""
    return tuple(filter(None, (include_warning(conf_dir, conf) for conf in FILES)))


def include_warning(conf_dir: Path, conf: ConfFile) -> str | None:
    """What to add when `conf`'s includer in conf_dir does not include it; None when it does."""
    includer = conf_dir / conf.includer
    try:
        text = includer.read_text(errors="replace")
    except OSError:
        return (f"{includer} not found: Asterisk reads {conf.name} only if {conf.includer} "
                f"has `#tryinclude {conf.name}`")
    if not re.search(rf"^\s*#(try)?include\s+\"?{re.escape(conf.name)}\"?\s*$", text, re.M):
        return f"{includer} does not include {conf.name}: add `#tryinclude {conf.name}` at its end"
    return None


# -- applying --------------------------------------------------------------------------------------

async def apply(prov: Provisioning, settings: Settings, ami: AmiSession | None) -> ApplyResult:
    """Render, write what changed into settings.asterisk_conf_dir, reload what needs it.

    With `ami` None the files are written and the modules that need a reload are listed as
    pending. Nothing is written when rendering fails (a bad value refuses the whole apply).
    """
    conf_dir = conf_dir_of(settings)
    prompts_unchecked = check_prompts(prov, settings)  # refused before anything is written
    files = render(prov, settings)
    changed = write_files(conf_dir, files)
    result = ApplyResult(conf_dir, changed, warnings=include_warnings(conf_dir) + prompts_unchecked)
    if ami is None:
        return replace(result, pending=tuple(c.module for c in FILES if c.name in changed))
    reloads = []
    for check in _checks(prov, settings):
        done = await _sync(ami, check, check.file in changed)
        if done is not None:
            reloads.append(done)
    return replace(result, reloads=tuple(reloads))


def check_prompts(prov: Provisioning, settings: Settings) -> tuple[str, ...]:
    """Refuse (PromptsMissing, listing file and language) when a prompt callers can hear is missing
    in their language; a warning when the sounds directory cannot be seen from here."""
    needed = prompts.needed(prov)
    if not needed:
        return ()
    found = sounds.SoundsDir(settings.asterisk_sounds_dir, settings.asterisk_root)
    if not found.exists():
        return (f"Asterisk's sounds directory {found.path} is not at {found.here()}: the prompts of "
                f"{', '.join(sorted(needed))} were not checked (set HOTLINE_ASTERISK_SOUNDS_DIR, and "
                f"HOTLINE_ASTERISK_ROOT where Asterisk runs in a chroot or container)",)
    missing = found.missing(needed)
    if missing:
        raise PromptsMissing(f"{sounds.refusal(missing, found)}\n(nothing written)")
    return ()


async def apply_and_reload(prov: Provisioning, settings: Settings, *, reload: bool = True) -> ApplyResult:
    """Apply, with an AMI session when one is configured and reloading is wanted."""
    if not reload or not settings.ami_url:
        why = "--no-reload" if not reload else "no AMI URL set"
        return replace(await apply(prov, settings, None), not_reloaded_because=why)
    ami = AmiSession(settings.ami)
    await ami.connect()  # unreachable AMI: fail before writing, so nothing is left unreloaded
    try:
        return await apply(prov, settings, ami)
    finally:
        await ami.close()


async def live_provisioning(conn: AsyncConnection, dsn: str) -> Provisioning:
    """The live provisioning of an up-to-date schema; StoreError naming `dsn`'s database otherwise."""
    try:
        todo = await migrations.pending(conn)
        if todo:
            raise StoreError(f"database {describe_dsn(dsn)} has {len(todo)} migration(s) pending: "
                             f"run `hotline db migrate` (nothing written)")
        return await provisioning.load(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot read provisioning from {describe_dsn(dsn)}: "
                         f"{str(exc).strip().splitlines()[0]}") from None


@dataclass(frozen=True)
class _Check:
    """What one file must have put into Asterisk, and how to ask Asterisk for it."""

    file: str
    module: str
    what: str
    wanted: frozenset[str]
    loaded: Callable[[AmiSession], Awaitable[set[str]]]


def _checks(prov: Provisioning, settings: Settings) -> list[_Check]:
    views = endpoint_views(prov.agents.values())
    endpoints = frozenset(v.endpoint for v in views)
    extensions = frozenset([f"{form}@{INBOUND_CONTEXT}" for v in number_views(prov.numbers.values())
                            for form in v.forms] + [f"_X.@{AGENTS_CONTEXT}"]
                           + [f"{exten}@{AGENTS_CONTEXT}" for exten, _ in consult_extensions(views)]
                           + [f"{exten}@{AGENTS_CONTEXT}" for exten, _, _ in supervise_extensions(views)]
                           + [f"{pattern}@{AGENTS_CONTEXT}" for pattern in supervise_patterns()])
    return [_Check(PJSIP_FILE, "res_pjsip.so", "endpoint", endpoints, loaded_endpoints),
            _Check(DIALPLAN_FILE, "pbx_config.so", "extension", extensions, loaded_extensions)]


async def _sync(ami: AmiSession, check: _Check, changed: bool) -> Reload | None:
    """Reload when the file changed or Asterisk lacks what it holds; then prove Asterisk has it."""
    if changed:
        reason = f"{check.file} changed"
    else:
        missing = check.wanted - await check.loaded(ami)
        if not missing:
            return None
        reason = f"Asterisk lacked {_some(check.what, missing)}"
    await reload_module(ami, check.module)
    missing = check.wanted - await check.loaded(ami)
    if missing:
        raise AsteriskError(f"after reloading {check.module}, Asterisk still lacks "
                            f"{_some(check.what, missing)} from {check.file}: see its log for the "
                            f"lines it rejected")
    return Reload(check.module, reason)


def _some(what: str, names: set[str] | frozenset[str], limit: int = 5) -> str:
    shown = sorted(names)[:limit]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{what}{'s' if len(names) > 1 else ''} {', '.join(shown)}{more}"


async def reload_module(ami: AmiSession, module: str) -> None:
    for attempt in range(_RELOAD_RETRIES):
        try:
            await ami.action("Reload", {"Module": module})
            return
        except AmiError as exc:
            # Asterisk answers "A reload is in progress" while another reload runs; the text is
            # its only signal (no error code in AMI).
            if "in progress" not in str(exc) or attempt == _RELOAD_RETRIES - 1:
                raise
        await asyncio.sleep(0.2 * (attempt + 1))


async def loaded_endpoints(ami: AmiSession) -> set[str]:
    try:
        reply = await ami.action("PJSIPShowEndpoints", as_list=True)
    except AmiError as exc:
        # Asterisk answers an error, not an empty list, when it has no endpoint at all.
        if "No endpoints found" in str(exc):
            return set()
        raise
    return {m["ObjectName"] for m in _listed(reply) if m.get("Event") == "EndpointList"}


async def loaded_extensions(ami: AmiSession) -> set[str]:
    """`exten@context` of hotline's two contexts (ShowDialPlan of all contexts: a missing context
    is then simply absent, not an error)."""
    reply = await ami.action("ShowDialPlan", as_list=True)
    return {f"{m['Extension']}@{m['Context']}" for m in _listed(reply)
            if m.get("Event") == "ListDialplan" and m.get("Context") in (INBOUND_CONTEXT, AGENTS_CONTEXT)}


def _listed(reply: list[dict[str, str]] | dict[str, str]) -> list[dict[str, str]]:
    return reply if isinstance(reply, list) else [reply]
