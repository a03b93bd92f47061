"""`hotline provision FILE`, `export`, and the verbs of the objects agents are not:
`number`, `queue`, `hotline`, `member`, `ivr` (the `agent` verbs: hotline.cli.agents)."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path

import click

from hotline.cli.common import options, run_with_db, settings_of
from hotline.cli.edits import (
    DRY_RUN,
    Edit,
    Given,
    given,
    load,
    need,
    pairs,
    remover,
    report,
    run_edit,
    with_object,
    with_priority,
)
from hotline.cli.table import FORMAT, print_rows
from hotline.errors import ProvisionError
from hotline.provision import export, parse
from hotline.provision.model import INHERIT, RECORD, STRATEGIES, TRANSFER_NO_ANSWER, Provisioning
from hotline.store import provisioning_changes

# -- provision / export -------------------------------------------------------------------------

@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prune", is_flag=True, help="Also remove what the file no longer names.")
@DRY_RUN
@click.pass_context
def provision(ctx: click.Context, file: Path, prune: bool, dry_run: bool) -> None:
    """Apply a declarative TOML file in one transaction (see examples/)."""
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"{file}: not a valid TOML file: {exc}") from None
    region = settings_of(ctx).default_region
    plan = run_with_db(ctx, lambda conn: provisioning_changes.apply_document(
        conn, doc, prune=prune, dry_run=dry_run, region=region))
    report(plan, dry_run)


@click.command("export")
@click.option("--with-secrets", is_flag=True,
              help="Include agents' SIP password digests (password_ha1; the passwords are not kept).")
@click.pass_context
def export_command(ctx: click.Context, with_secrets: bool) -> None:
    """Print the live provisioning as a file `hotline provision` takes back."""
    click.echo(export.to_toml(load(ctx), with_secrets=with_secrets), nl=False)


# -- numbers ------------------------------------------------------------------------------------

@click.group()
def number() -> None:
    """Numbers callers dial: city, 8-800 and video addresses."""


@number.command("add")
@click.argument("number_text", metavar="NUMBER")
@click.option("--hotline", "hotline_name", required=True, help="The hotline it serves.")
@click.option("--kind", type=click.Choice(["city", "tollfree", "video"]), help="Default: inferred.")
@click.option("--lines", help="Line limit: a number, or 'unlimited' (default: city 1, video 10, "
                                "8-800 unlimited).")
@click.option("--priority", help="0-10: its callers' priority in queues, higher served first (default 0).")
@click.option("--language", help="Language of its callers' prompts, e.g. ru, en, en_GB (default: the "
                                 "hotline's).")
@DRY_RUN
@click.pass_context
def number_add(ctx: click.Context, number_text: str, hotline_name: str, kind: str | None,
               lines: str | None, priority: str | None, language: str | None, dry_run: bool) -> None:
    """Add a number (as people type it: '8 (495) 123-45-67') to a hotline, or change it."""
    new = parse.number(number_text, given(hotline=hotline_name, kind=kind, lines=lines, priority=priority,
                                          language=language))

    def edit(prov: Provisioning) -> Provisioning:
        old = prov.numbers.get(new.number)
        if old is not None and old.hotline != new.hotline:
            raise ProvisionError(f"number {new.number} already serves hotline {old.hotline!r}: "
                                 f"remove it there first")
        return with_object(prov, "numbers", new.number, new)
    report(run_edit(ctx, edit, dry_run=dry_run), dry_run)


@number.command("set")
@click.argument("number_text", metavar="NUMBER")
@click.option("--lines", help="Line limit: a number, or 'unlimited'.")
@click.option("--priority", help="0-10: its callers' priority in queues, higher served first.")
@click.option("--language", help="Language of its callers' prompts, e.g. ru, en, en_GB ('none': the "
                                 "hotline's).")
@DRY_RUN
@click.pass_context
def number_set(ctx: click.Context, number_text: str, lines: str | None, priority: str | None,
               language: str | None, dry_run: bool) -> None:
    """Change a number's settings (only those given)."""
    key, _ = parse.number_key("number", number_text, None, settings_of(ctx).default_region)
    changes = given(lines=lines, priority=priority, language=language)

    def edit(prov: Provisioning) -> Provisioning:
        base = export.number_table(need(prov.numbers, key, "number"))
        return with_object(prov, "numbers", key, parse.number(key, {**base, **changes}))
    report(run_edit(ctx, edit, dry_run=dry_run), dry_run)


@number.command("remove")
@click.argument("number_text", metavar="NUMBER")
@click.pass_context
def number_remove(ctx: click.Context, number_text: str) -> None:
    """Remove a number (its history stays)."""
    key, _ = parse.number_key("number", number_text, None)

    def edit(prov: Provisioning) -> Provisioning:
        need(prov.numbers, key, "number")
        return with_object(prov, "numbers", key, None)
    report(run_edit(ctx, edit))


@number.command("list")
@FORMAT
@click.pass_context
def number_list(ctx: click.Context, fmt: str) -> None:
    """List numbers."""
    rows = [{"number": n.number, **export.number_table(n)} for n in load(ctx).numbers.values()]
    print_rows(rows, fmt, ["number", "kind", "hotline", "lines", "priority", "language"])


# -- queues -------------------------------------------------------------------------------------

_queue_options = options(
    click.option("--strategy", type=click.Choice(STRATEGIES)),
    click.option("--ring-timeout", type=int, help="Seconds an agent rings."),
    click.option("--retry", type=int, help="Seconds before ringing again."),
    click.option("--wrapup", type=int, help="Seconds after a call before the next."),
    click.option("--max-wait", help="Seconds before overflow (default 900; 'none': never)."),
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
    click.option("--video-key", help="Key a waiting caller presses to be sent a video link ('none')."),
    click.option("--transfer-no-answer", type=click.Choice(TRANSFER_NO_ANSWER),
                 help="A caller transferred to an agent who does not answer: first in this line"
                      " (queue), or the transferring agent rung back first (agent)."),
    click.option("--callback-key", help="Key a waiting caller presses to be called back ('none')."),
    click.option("--callback-retries", type=int, help="Tries after the first when not answered."),
    click.option("--callback-retry-interval", type=int, help="Seconds between callback tries."),
    click.option("--callback-expiry", help="Seconds before a callback is dropped ('never')."),
    click.option("--record", type=click.Choice((*RECORD, INHERIT)),
                 help="Record this queue's talks: always, on_demand (once the agent asks), never, or"
                      " inherit (the default: the hotline's record)."),
    click.option("--record-announcement",
                 help="Sound played to a caller before the first queue of the call that records"
                      " (wins over the hotline's; 'none')."),
    click.option("--survey", multiple=True, metavar="SOUND",
                 help="A question of the post-call survey, answered with a key 1-5 after the agent"
                      " hangs up (repeat for a second; 'none': no survey)."),
    click.option("--survey-thanks", help="Sound played after the survey's last question ('none')."),
)


@click.group()
def queue() -> None:
    """Queues: strategy, timings, overflow."""


def _queue_edit(name: str, options: Given, *, create: bool) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        exists = name in prov.queues
        if create and exists:
            raise ProvisionError(f"queue {name!r} already exists: use `hotline queue set`")
        base = {} if create else export.queue_table(need(prov.queues, name, "queue"))
        return with_object(prov, "queues", name, parse.queue(name, {**base, **_survey_off(options)}))
    return edit


def _survey_off(options: Given) -> Given:
    """`--survey none` (or off) switches the survey off; any other --survey gives its questions."""
    if options.get("survey") in (["none"], ["off"]):
        return {**options, "survey": "none"}
    return options


@queue.command("add")
@click.argument("name")
@_queue_options
@click.pass_context
def queue_add(ctx: click.Context, /, name: str, **options: object) -> None:
    """Add a queue."""
    report(run_edit(ctx, _queue_edit(name, given(**options), create=True)))


@queue.command("set")
@click.argument("name")
@_queue_options
@click.pass_context
def queue_set(ctx: click.Context, /, name: str, **options: object) -> None:
    """Change a queue's settings (only those given)."""
    report(run_edit(ctx, _queue_edit(name, given(**options), create=False)))


@queue.command("remove")
@click.argument("name")
@click.pass_context
def queue_remove(ctx: click.Context, name: str) -> None:
    """Remove a queue and its memberships (refused while a hotline, menu or queue leads to it)."""
    def without_members(prov: Provisioning) -> Provisioning:
        agents = {n: dataclasses.replace(a, queues=tuple(q for q in a.queues if q[0] != name))
                  for n, a in prov.agents.items()}
        return remover("queues", name, "queue")(dataclasses.replace(prov, agents=agents))
    report(run_edit(ctx, without_members))


@queue.command("list")
@FORMAT
@click.pass_context
def queue_list(ctx: click.Context, fmt: str) -> None:
    """List queues."""
    prov = load(ctx)
    rows = [{"name": q.name, **export.queue_table(q), "record": q.record or INHERIT,
             "agents": [a.name for a in prov.agents.values() if q.name in dict(a.queues)]}
            for q in prov.queues.values()]
    print_rows(rows, fmt, ["name", "strategy", "ring_timeout", "wrapup", "max_wait", "overflow",
                       "service_level", "record", "survey", "agents"])


# -- hotlines -----------------------------------------------------------------------------------

_hotline_options = options(
    click.option("--entry", help="menu:NAME or queue:NAME: where calls go."),
    click.option("--description"),
    click.option("--time-zone", help="IANA name, e.g. Europe/Moscow."),
    click.option("--hours", multiple=True, help="'mon-fri 09:00-18:00' (repeat; replaces all)."),
    click.option("--holiday", multiple=True, help="'2027-01-01=closed' or '2027-03-08=10:00-15:00'."),
    click.option("--closed", help="hangup | hotline:NAME | callback:QUEUE: outside hours."),
    click.option("--closed-prompt", help="Sound played when closed."),
    click.option("--region", multiple=True, help="'+7913=QUEUE' or 'Novosibirsk=QUEUE' (8-800); "
                                                 "'+7913=QUEUE,priority=5' sets its callers' priority."),
    click.option("--record", type=click.Choice(RECORD),
                 help="Record the talks of its queues that set no record of their own: always,"
                      " on_demand, or never (the default)."),
    click.option("--record-announcement",
                 help="Sound played before the first queue of a call that records, unless the queue"
                      " has its own ('none')."),
    click.option("--page-title", help="The name its customer web page shows ('none': the page's own)."),
    click.option("--page-text", help="A short text under it on the page, at most 300 characters."),
    click.option("--page-logo", help="An https URL of its logo for the page ('none': no logo)."),
    click.option("--page-color", help="The page's accent colour, #RRGGBB ('none': the page's own)."),
    click.option("--language", help="Language of its callers' prompts: a directory of Asterisk's sounds,"
                                    " e.g. ru, en, en_GB ('none': Asterisk's default)."),
)


@click.group("hotline")
def hotline_group() -> None:
    """Hotlines: route, hours, closed action, region routing."""


def _hotline_given(holiday: tuple[str, ...], region: tuple[str, ...], **options: object) -> Given:
    out = given(**options)
    if holiday:
        out["holidays"] = pairs("holiday", holiday)
    if region:
        out["regions"] = with_priority(pairs("region", region), "queue")
    return out


def _hotline_edit(name: str, options: Given, *, create: bool) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        if create and name in prov.hotlines:
            raise ProvisionError(f"hotline {name!r} already exists: use `hotline hotline set`")
        base = {} if create else export.hotline_table(need(prov.hotlines, name, "hotline"))
        return with_object(prov, "hotlines", name, parse.hotline(name, {**base, **options}))
    return edit


@hotline_group.command("add")
@click.argument("name")
@_hotline_options
@click.pass_context
def hotline_add(ctx: click.Context, /, name: str, holiday: tuple[str, ...], region: tuple[str, ...],
                **options: object) -> None:
    """Add a hotline (--entry is required)."""
    report(run_edit(ctx, _hotline_edit(name, _hotline_given(holiday, region, **options), create=True)))


@hotline_group.command("set")
@click.argument("name")
@_hotline_options
@click.pass_context
def hotline_set(ctx: click.Context, /, name: str, holiday: tuple[str, ...], region: tuple[str, ...],
                **options: object) -> None:
    """Change a hotline (only what is given; --hours, --holiday, --region replace their lists)."""
    report(run_edit(ctx, _hotline_edit(name, _hotline_given(holiday, region, **options), create=False)))


@hotline_group.command("remove")
@click.argument("name")
@click.pass_context
def hotline_remove(ctx: click.Context, name: str) -> None:
    """Remove a hotline (refused while numbers or routes still lead to it)."""
    report(run_edit(ctx, remover("hotlines", name, "hotline")))


@hotline_group.command("list")
@FORMAT
@click.pass_context
def hotline_list(ctx: click.Context, fmt: str) -> None:
    """List hotlines."""
    prov = load(ctx)
    rows = [{"name": h.name, **export.hotline_table(h), "record": h.record,
             "numbers": [n.number for n in prov.numbers.values() if n.hotline == h.name]}
            for h in prov.hotlines.values()]
    print_rows(rows, fmt, ["name", "entry", "time_zone", "hours", "closed", "record", "language",
                           "page_title", "page_color", "numbers"])


# -- queue memberships --------------------------------------------------------------------------

@click.group()
def member() -> None:
    """Queue memberships with penalties."""


def _membership_edit(queue_name: str, agent_name: str, penalty: int | None) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        a = need(prov.agents, agent_name, "agent")
        need(prov.queues, queue_name, "queue")
        queues = dict(a.queues)
        if penalty is None:
            if queue_name not in queues:
                raise ProvisionError(f"agent {agent_name!r} is not a member of queue {queue_name!r}")
            del queues[queue_name]
        else:
            queues[queue_name] = parse.integer("penalty", penalty, 0, 1000)
        changed = dataclasses.replace(a, queues=tuple(sorted(queues.items())))
        return with_object(prov, "agents", agent_name, changed)
    return edit


@member.command("add")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("agent_name", metavar="AGENT")
@click.option("--penalty", type=int, default=0, show_default=True, help="Lower rings first.")
@click.pass_context
def member_add(ctx: click.Context, queue_name: str, agent_name: str, penalty: int) -> None:
    """Put an agent into a queue (or change their penalty there)."""
    report(run_edit(ctx, _membership_edit(queue_name, agent_name, penalty)))


@member.command("remove")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("agent_name", metavar="AGENT")
@click.pass_context
def member_remove(ctx: click.Context, queue_name: str, agent_name: str) -> None:
    """Take an agent out of a queue."""
    report(run_edit(ctx, _membership_edit(queue_name, agent_name, None)))


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
@click.option("--option", "option_specs", multiple=True,
              help="'1=queue:support' (repeat); '1=queue:vip,priority=5' sets the caller's priority;"
                   " '9=language:en' replays the menu in English, '9=language:en,then=menu:main' goes on.")
@click.pass_context
def ivr_add(ctx: click.Context, /, name: str, option_specs: tuple[str, ...], **options: object) -> None:
    """Add a menu (or replace it when it exists)."""
    table = {**given(**options),
             "options": with_priority(pairs("option", option_specs), "action", ("priority", "then"))}
    menu = parse.menu(name, table)
    report(run_edit(ctx, lambda prov: with_object(prov, "menus", name, menu)))


@ivr.command("option")
@click.argument("menu_name", metavar="MENU")
@click.argument("digit")
@click.argument("action", required=False)
@click.option("--prompt", help="Sound said before the action.")
@click.option("--priority", help="0-10: the caller's priority in queues from this key on (keys to a "
                                 "menu, queue, hotline or video:QUEUE).")
@click.option("--then", "then", help="A language:LANG key's next step (menu:NAME, queue:NAME, ...); "
                                     "default: the same menu again, in the new language.")
@click.option("--remove", is_flag=True, help="Remove this key from the menu.")
@click.pass_context
def ivr_option(ctx: click.Context, menu_name: str, digit: str, action: str | None,
               prompt: str | None, priority: str | None, then: str | None, remove: bool) -> None:
    """Set what a key does: ACTION is menu:NAME, queue:NAME, hotline:NAME, hangup, video:QUEUE,
    repeat, callback:QUEUE, language:LANG (the caller's prompts from now on in LANG)."""
    if not remove and not action:
        raise click.UsageError("give an ACTION, or --remove")

    def edit(prov: Provisioning) -> Provisioning:
        m = need(prov.menus, menu_name, "menu")
        kept = [o for o in m.options if o.digit != digit]
        if remove and len(kept) == len(m.options):
            raise ProvisionError(f"menu {menu_name!r} has no key {digit!r}")
        if not remove:
            spec: Mapping[str, object] = {"action": action, **given(prompt=prompt, priority=priority,
                                                                    then=then)}
            kept.append(parse.option(f"menus.{menu_name}.options", digit, spec))
        new = dataclasses.replace(m, options=tuple(sorted(kept, key=lambda o: o.digit)))
        return with_object(prov, "menus", menu_name, new)
    report(run_edit(ctx, edit))


@ivr.command("remove")
@click.argument("name")
@click.pass_context
def ivr_remove(ctx: click.Context, name: str) -> None:
    """Remove a menu (refused while a hotline, queue or menu still leads to it)."""
    report(run_edit(ctx, remover("menus", name, "menu")))


@ivr.command("list")
@FORMAT
@click.pass_context
def ivr_list(ctx: click.Context, fmt: str) -> None:
    """List menus and their keys."""
    rows = [{"name": m.name, **export.menu_table(m)} for m in load(ctx).menus.values()]
    print_rows(rows, fmt, ["name", "prompt", "timeout", "retries", "options"])


# -- outbound trunks ----------------------------------------------------------------------------

_trunk_options = options(
    click.option("--endpoint", help="The PJSIP endpoint calls go out through (pjsip_local.conf)."),
    click.option("--caller-id", help="The hotline number presented to whoever is called."),
    click.option("--allow", multiple=True,
                 help="An E.164 prefix it may dial, like +7495 (repeat; replaces the list)."),
    click.option("--ring-timeout", type=int,
                 help="Seconds a number dialled through it rings before it counts as not answered "
                      "(5-300, default 30)."),
)


@click.group()
def trunk() -> None:
    """Outbound trunks: endpoint, allowed number prefixes, caller id."""


def _trunk_edit(name: str, options: Given, region: str, *, create: bool) -> Edit:
    def edit(prov: Provisioning) -> Provisioning:
        if create and name in prov.trunks:
            raise ProvisionError(f"trunk {name!r} already exists: use `hotline trunk set`")
        base = {} if create else export.trunk_table(need(prov.trunks, name, "trunk"))
        return with_object(prov, "trunks", name, parse.trunk(name, {**base, **options}, region))
    return edit


@trunk.command("add")
@click.argument("name")
@_trunk_options
@click.pass_context
def trunk_add(ctx: click.Context, /, name: str, **options: object) -> None:
    """Add a trunk (--endpoint, --caller-id and --allow are required)."""
    region = settings_of(ctx).default_region
    report(run_edit(ctx, _trunk_edit(name, given(**options), region, create=True)))


@trunk.command("set")
@click.argument("name")
@_trunk_options
@click.pass_context
def trunk_set(ctx: click.Context, /, name: str, **options: object) -> None:
    """Change a trunk (only what is given; --allow replaces the list)."""
    region = settings_of(ctx).default_region
    report(run_edit(ctx, _trunk_edit(name, given(**options), region, create=False)))


@trunk.command("remove")
@click.argument("name")
@click.pass_context
def trunk_remove(ctx: click.Context, name: str) -> None:
    """Remove a trunk: nothing is dialled through it any more."""
    report(run_edit(ctx, remover("trunks", name, "trunk")))


@trunk.command("list")
@FORMAT
@click.pass_context
def trunk_list(ctx: click.Context, fmt: str) -> None:
    """List trunks."""
    rows = [{"name": t.name, **export.trunk_table(t)} for t in load(ctx).trunks.values()]
    print_rows(rows, fmt, ["name", "endpoint", "caller_id", "allow", "ring_timeout"])


COMMANDS = (provision, export_command, number, queue, hotline_group, member, ivr, trunk)
