"""The provisioning verbs: `hotline number|hotline|queue|agent|member|ivr ...`, `provision`, `export`.

Each verb is an edit of the whole provisioning, applied by `changes.change` (one transaction, the
whole result validated), so a verb can never leave a state a file could not describe. Objects are
built by `parse` from their exported table with the given options laid over it: `set` and `add`
validate exactly like `hotline provision` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from hotline.cli_common import clear_errors, settings_of
from hotline.config import Settings
from hotline.errors import ProvisionError
from hotline.provision import export, parse
from hotline.provision.model import STRATEGIES, Provisioning
from hotline.provision.plan import Plan
from hotline.provision.validate import validate
from hotline.store import provisioning_changes as changes
from hotline.store.db import connect

Edit = Callable[[Provisioning], Provisioning]


# -- plumbing -----------------------------------------------------------------------------------

def _settings(ctx: click.Context) -> Settings:
    settings = settings_of(ctx)
    settings.require("dsn")
    return settings


def _run_edit(ctx: click.Context, edit: Edit, *, dry_run: bool = False) -> Plan:
    async def go() -> Plan:
        conn = await connect(_settings(ctx).dsn)
        async with conn:
            return await changes.change(conn, edit, dry_run=dry_run)
    return asyncio.run(go())


def _load(ctx: click.Context) -> Provisioning:
    async def go() -> Provisioning:
        conn = await connect(_settings(ctx).dsn)
        async with conn:
            return await changes.current(conn)
    return asyncio.run(go())


def _report(plan: Plan, dry_run: bool = False) -> None:
    if plan.empty:
        click.echo("nothing to change")
        return
    for line in plan.lines():
        click.echo(line)
    if dry_run:
        click.echo("(dry run: nothing was changed)")


def _with(prov: Provisioning, kind: str, key: str, obj: object | None) -> Provisioning:
    """A copy of `prov` with one object set (or removed, when obj is None)."""
    section = dict(prov.section(kind))
    if obj is None:
        section.pop(key, None)
    else:
        section[key] = obj
    return dataclasses.replace(prov, **{kind: section})  # type: ignore[arg-type]


def _need(prov: Provisioning, kind: str, key: str, what: str) -> Any:
    if key not in prov.section(kind):
        raise ProvisionError(f"{what} {key!r} does not exist")
    return prov.section(kind)[key]


def _given(**options: Any) -> dict[str, Any]:
    """Options the user gave (click passes None or () for the rest)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()
            if v is not None and v != ()}


def _pairs(field: str, values: Iterable[str]) -> dict[str, str]:
    """('2027-01-01=closed', ...) -> {'2027-01-01': 'closed'}."""
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise ProvisionError(f"{field}: {value!r} is not KEY=VALUE")
        out[key.strip()] = rest.strip()
    return out


def print_rows(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


verb = clear_errors


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                      show_default=True, help="Output format.")
DRY_RUN = click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")


# -- provision / export -------------------------------------------------------------------------

@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prune", is_flag=True, help="Also remove what the file no longer names.")
@DRY_RUN
@click.pass_context
@verb
def provision(ctx: click.Context, file: Path, prune: bool, dry_run: bool) -> None:
    """Apply a declarative TOML file in one transaction (see examples/)."""
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"{file}: not a valid TOML file: {exc}") from None
    settings = _settings(ctx)

    async def go() -> Plan:
        conn = await connect(settings.dsn)
        async with conn:
            return await changes.apply_document(conn, doc, prune=prune, dry_run=dry_run,
                                                region=settings.default_region)
    _report(asyncio.run(go()), dry_run)


@click.command("export")
@click.option("--with-secrets", is_flag=True, help="Include agents' SIP passwords.")
@click.pass_context
@verb
def export_command(ctx: click.Context, with_secrets: bool) -> None:
    """Print the live provisioning as a file `hotline provision` takes back."""
    click.echo(export.to_toml(_load(ctx), with_secrets=with_secrets), nl=False)


# -- numbers ------------------------------------------------------------------------------------

@click.group()
def number() -> None:
    """Numbers callers dial: city, 8-800 and video addresses."""


@number.command("add")
@click.argument("number_text", metavar="NUMBER")
@click.option("--hotline", "hotline_name", required=True, help="The hotline it serves.")
@click.option("--kind", type=click.Choice(["city", "tollfree", "video"]), help="Default: inferred.")
@click.option("--lines", help="Line limit: a number, or 'unlimited' (city default 1).")
@DRY_RUN
@click.pass_context
@verb
def number_add(ctx: click.Context, number_text: str, hotline_name: str, kind: str | None,
               lines: str | None, dry_run: bool) -> None:
    """Add a number (as people type it: '8 (495) 123-45-67') to a hotline."""
    new = parse.number(number_text, _given(hotline=hotline_name, kind=kind, lines=lines))

    def edit(prov: Provisioning) -> Provisioning:
        old = prov.numbers.get(new.number)
        if old is not None and old.hotline != new.hotline:
            raise ProvisionError(f"number {new.number} already serves hotline {old.hotline!r}: "
                                 f"remove it there first")
        return _with(prov, "numbers", new.number, new)
    _report(_run_edit(ctx, edit, dry_run=dry_run), dry_run)


@number.command("remove")
@click.argument("number_text", metavar="NUMBER")
@click.pass_context
@verb
def number_remove(ctx: click.Context, number_text: str) -> None:
    """Remove a number (its history stays)."""
    key, _ = parse.number_key("number", number_text, None)

    def edit(prov: Provisioning) -> Provisioning:
        _need(prov, "numbers", key, "number")
        return _with(prov, "numbers", key, None)
    _report(_run_edit(ctx, edit))


@number.command("list")
@FORMAT
@click.pass_context
@verb
def number_list(ctx: click.Context, fmt: str) -> None:
    """List numbers."""
    rows = [{"number": n.number, **export.number_table(n)} for n in _load(ctx).numbers.values()]
    print_rows(rows, fmt, ["number", "kind", "hotline", "lines"])


# -- queues -------------------------------------------------------------------------------------

def _queue_options(func: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--strategy", type=click.Choice(STRATEGIES)),
        click.option("--ring-timeout", type=int, help="Seconds an agent rings."),
        click.option("--retry", type=int, help="Seconds before ringing again."),
        click.option("--wrapup", type=int, help="Seconds after a call before the next."),
        click.option("--max-wait", help="Seconds before overflow ('none': never)."),
        click.option("--max-len", help="Callers waiting at most ('none': no limit)."),
        click.option("--join-empty/--no-join-empty", default=None, help="Join with no agent logged in."),
        click.option("--announce-period", help="Seconds between position announcements ('none')."),
        click.option("--music", help="Music on hold class."),
        click.option("--service-level", type=int, help="Service-level threshold, seconds."),
        click.option("--prefer-video-agents/--no-prefer-video-agents", default=None),
        click.option("--overflow", help="hangup | queue:NAME | hotline:NAME | menu:NAME."),
        click.option("--announce-holdtime/--no-announce-holdtime", default=None,
                     help="Say the estimated hold time with the position."),
        click.option("--breakout-menu", help="Menu whose keys let a waiting caller leave ('none')."),
        click.option("--ringback", type=int,
                     help="Seconds a caller whose agent rings at once hears ringing, then music (0: music)."),
        click.option("--video-fallback",
                     help="Seconds a video caller rings only video agents before all ('never')."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def queue() -> None:
    """Queues: strategy, timings, overflow."""


def _queue_edit(name: str, given: dict[str, Any], *, create: bool) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        exists = name in prov.queues
        if create and exists:
            raise ProvisionError(f"queue {name!r} already exists: use `hotline queue set`")
        base = {} if create else export.queue_table(_need(prov, "queues", name, "queue"))
        return _with(prov, "queues", name, parse.queue(name, {**base, **given}))
    return edit


@queue.command("add")
@click.argument("name")
@_queue_options
@click.pass_context
@verb
def queue_add(ctx: click.Context, name: str, **options: Any) -> None:
    """Add a queue."""
    _report(_run_edit(ctx, _queue_edit(name, _given(**options), create=True)))


@queue.command("set")
@click.argument("name")
@_queue_options
@click.pass_context
@verb
def queue_set(ctx: click.Context, name: str, **options: Any) -> None:
    """Change a queue's settings (only those given)."""
    _report(_run_edit(ctx, _queue_edit(name, _given(**options), create=False)))


@queue.command("remove")
@click.argument("name")
@click.pass_context
@verb
def queue_remove(ctx: click.Context, name: str) -> None:
    """Remove a queue and its memberships (refused while a hotline, menu or queue leads to it)."""
    def without_members(prov: Provisioning) -> Provisioning:
        agents = {n: dataclasses.replace(a, queues=tuple(q for q in a.queues if q[0] != name))
                  for n, a in prov.agents.items()}
        return _remover("queues", name, "queue")(dataclasses.replace(prov, agents=agents))
    _report(_run_edit(ctx, without_members))


@queue.command("list")
@FORMAT
@click.pass_context
@verb
def queue_list(ctx: click.Context, fmt: str) -> None:
    """List queues."""
    prov = _load(ctx)
    rows = [{"name": q.name, **export.queue_table(q),
             "agents": [a.name for a in prov.agents.values() if q.name in dict(a.queues)]}
            for q in prov.queues.values()]
    print_rows(rows, fmt, ["name", "strategy", "ring_timeout", "wrapup", "max_wait", "overflow",
                       "service_level", "agents"])


def _remover(kind: str, name: str, what: str) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        _need(prov, kind, name, what)
        after = _with(prov, kind, name, None)
        try:
            validate(after)
        except ProvisionError as exc:
            raise ProvisionError(f"{what} {name!r} is still in use: {exc}") from None
        return after
    return edit


# -- hotlines -----------------------------------------------------------------------------------

def _hotline_options(func: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--entry", help="menu:NAME or queue:NAME: where calls go."),
        click.option("--description"),
        click.option("--time-zone", help="IANA name, e.g. Europe/Moscow."),
        click.option("--hours", multiple=True, help="'mon-fri 09:00-18:00' (repeat; replaces all)."),
        click.option("--holiday", multiple=True, help="'2027-01-01=closed' or '2027-03-08=10:00-15:00'."),
        click.option("--closed", help="hangup | hotline:NAME | callback: outside hours."),
        click.option("--closed-prompt", help="Sound played when closed."),
        click.option("--region", multiple=True, help="'+7913=QUEUE' or 'Novosibirsk=QUEUE' (8-800)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group("hotline")
def hotline_group() -> None:
    """Hotlines: route, hours, closed action, region routing."""


def _hotline_given(options: dict[str, Any]) -> dict[str, Any]:
    given = _given(**{k: v for k, v in options.items() if k not in ("holiday", "region")})
    if options.get("holiday"):
        given["holidays"] = _pairs("holiday", options["holiday"])
    if options.get("region"):
        given["regions"] = _pairs("region", options["region"])
    return given


def _hotline_edit(name: str, given: dict[str, Any], *, create: bool) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        if create and name in prov.hotlines:
            raise ProvisionError(f"hotline {name!r} already exists: use `hotline hotline set`")
        base = {} if create else export.hotline_table(_need(prov, "hotlines", name, "hotline"))
        return _with(prov, "hotlines", name, parse.hotline(name, {**base, **given}))
    return edit


@hotline_group.command("add")
@click.argument("name")
@_hotline_options
@click.pass_context
@verb
def hotline_add(ctx: click.Context, name: str, **options: Any) -> None:
    """Add a hotline (--entry is required)."""
    _report(_run_edit(ctx, _hotline_edit(name, _hotline_given(options), create=True)))


@hotline_group.command("set")
@click.argument("name")
@_hotline_options
@click.pass_context
@verb
def hotline_set(ctx: click.Context, name: str, **options: Any) -> None:
    """Change a hotline (only what is given; --hours, --holiday, --region replace their lists)."""
    _report(_run_edit(ctx, _hotline_edit(name, _hotline_given(options), create=False)))


@hotline_group.command("remove")
@click.argument("name")
@click.pass_context
@verb
def hotline_remove(ctx: click.Context, name: str) -> None:
    """Remove a hotline (refused while numbers or routes still lead to it)."""
    _report(_run_edit(ctx, _remover("hotlines", name, "hotline")))


@hotline_group.command("list")
@FORMAT
@click.pass_context
@verb
def hotline_list(ctx: click.Context, fmt: str) -> None:
    """List hotlines."""
    prov = _load(ctx)
    rows = [{"name": h.name, **export.hotline_table(h),
             "numbers": [n.number for n in prov.numbers.values() if n.hotline == h.name]}
            for h in prov.hotlines.values()]
    print_rows(rows, fmt, ["name", "entry", "time_zone", "hours", "closed", "numbers"])


# -- agents and members -------------------------------------------------------------------------

def _agent_options(func: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--endpoint", help="PJSIP endpoint name (default: the agent's name)."),
        click.option("--display-name"),
        click.option("--password", help="SIP password (default: generated)."),
        click.option("--capability", "capabilities", multiple=True,
                     type=click.Choice(["audio", "video", "webrtc"]), help="Repeat; replaces all."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def agent() -> None:
    """Agents: their endpoint and what they can take."""


def _agent_edit(name: str, given: dict[str, Any], *, create: bool) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        if create and name in prov.agents:
            raise ProvisionError(f"agent {name!r} already exists: use `hotline agent set`")
        base = {} if create else export.agent_table(_need(prov, "agents", name, "agent"), True)
        return _with(prov, "agents", name, parse.agent(name, {**base, **given}))
    return edit


@agent.command("add")
@click.argument("name")
@_agent_options
@click.pass_context
@verb
def agent_add(ctx: click.Context, name: str, **options: Any) -> None:
    """Add an agent."""
    _report(_run_edit(ctx, _agent_edit(name, _given(**options), create=True)))


@agent.command("set")
@click.argument("name")
@_agent_options
@click.pass_context
@verb
def agent_set(ctx: click.Context, name: str, **options: Any) -> None:
    """Change an agent (only what is given)."""
    _report(_run_edit(ctx, _agent_edit(name, _given(**options), create=False)))


@agent.command("remove")
@click.argument("name")
@click.pass_context
@verb
def agent_remove(ctx: click.Context, name: str) -> None:
    """Remove an agent (and their queue memberships; history stays)."""
    _report(_run_edit(ctx, _remover("agents", name, "agent")))


@agent.command("list")
@FORMAT
@click.pass_context
@verb
def agent_list(ctx: click.Context, fmt: str) -> None:
    """List agents (never their passwords)."""
    rows = [{"name": a.name, **export.agent_table(a)} for a in _load(ctx).agents.values()]
    print_rows(rows, fmt, ["name", "endpoint", "display_name", "capabilities", "queues"])


@click.group()
def member() -> None:
    """Queue memberships with penalties."""


def _membership_edit(queue_name: str, agent_name: str, penalty: int | None) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        a = _need(prov, "agents", agent_name, "agent")
        _need(prov, "queues", queue_name, "queue")
        queues = dict(a.queues)
        if penalty is None:
            if queue_name not in queues:
                raise ProvisionError(f"agent {agent_name!r} is not a member of queue {queue_name!r}")
            del queues[queue_name]
        else:
            queues[queue_name] = parse.integer("penalty", penalty, 0, 1000)
        return _with(prov, "agents", agent_name, dataclasses.replace(a, queues=tuple(sorted(queues.items()))))
    return edit


@member.command("add")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("agent_name", metavar="AGENT")
@click.option("--penalty", type=int, default=0, show_default=True, help="Lower rings first.")
@click.pass_context
@verb
def member_add(ctx: click.Context, queue_name: str, agent_name: str, penalty: int) -> None:
    """Put an agent into a queue (or change their penalty there)."""
    _report(_run_edit(ctx, _membership_edit(queue_name, agent_name, penalty)))


@member.command("remove")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("agent_name", metavar="AGENT")
@click.pass_context
@verb
def member_remove(ctx: click.Context, queue_name: str, agent_name: str) -> None:
    """Take an agent out of a queue."""
    _report(_run_edit(ctx, _membership_edit(queue_name, agent_name, None)))


# -- IVR menus ----------------------------------------------------------------------------------

@click.group()
def ivr() -> None:
    """IVR menus: prompt, keys, timeout and retries."""


@ivr.command("add")
@click.argument("name")
@click.option("--prompt", required=True, help="Asterisk sound, e.g. hotline/welcome.")
@click.option("--timeout", type=int, help="Seconds to wait for a key.")
@click.option("--retries", type=int, help="Invalid or missing keys before giving up.")
@click.option("--invalid-prompt")
@click.option("--timeout-prompt")
@click.option("--option", "option_specs", multiple=True, help="'1=queue:support' (repeat).")
@click.pass_context
@verb
def ivr_add(ctx: click.Context, name: str, option_specs: tuple[str, ...], **options: Any) -> None:
    """Add a menu (or replace it when it exists)."""
    table = {**_given(**options), "options": _pairs("option", option_specs)}
    menu = parse.menu(name, table)
    _report(_run_edit(ctx, lambda prov: _with(prov, "menus", name, menu)))


@ivr.command("option")
@click.argument("menu_name", metavar="MENU")
@click.argument("digit")
@click.argument("action", required=False)
@click.option("--prompt", help="Sound said before the action.")
@click.option("--remove", is_flag=True, help="Remove this key from the menu.")
@click.pass_context
@verb
def ivr_option(ctx: click.Context, menu_name: str, digit: str, action: str | None,
               prompt: str | None, remove: bool) -> None:
    """Set what a key does: ACTION is menu:NAME, queue:NAME, hotline:NAME, hangup, video, repeat,
    callback."""
    if not remove and not action:
        raise click.UsageError("give an ACTION, or --remove")

    def edit(prov: Provisioning) -> Provisioning:
        m = _need(prov, "menus", menu_name, "menu")
        kept = [o for o in m.options if o.digit != digit]
        if remove and len(kept) == len(m.options):
            raise ProvisionError(f"menu {menu_name!r} has no key {digit!r}")
        if not remove:
            spec: Mapping[str, Any] = {"action": action, **({"prompt": prompt} if prompt else {})}
            kept.append(parse.option(f"menus.{menu_name}.options", digit, spec))
        new = dataclasses.replace(m, options=tuple(sorted(kept, key=lambda o: o.digit)))
        return _with(prov, "menus", menu_name, new)
    _report(_run_edit(ctx, edit))


@ivr.command("remove")
@click.argument("name")
@click.pass_context
@verb
def ivr_remove(ctx: click.Context, name: str) -> None:
    """Remove a menu (refused while a hotline, queue or menu still leads to it)."""
    _report(_run_edit(ctx, _remover("menus", name, "menu")))


@ivr.command("list")
@FORMAT
@click.pass_context
@verb
def ivr_list(ctx: click.Context, fmt: str) -> None:
    """List menus and their keys."""
    rows = [{"name": m.name, **export.menu_table(m)} for m in _load(ctx).menus.values()]
    print_rows(rows, fmt, ["name", "prompt", "timeout", "retries", "options"])


COMMANDS = (provision, export_command, number, queue, hotline_group, agent, member, ivr)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
    from hotline.provision import presence_commands  # here: it imports this module's helpers

    presence_commands.register(agent)

