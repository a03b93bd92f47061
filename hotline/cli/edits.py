"""How the provisioning verbs change things: each is an edit of the whole provisioning, applied
by the store in one transaction with the whole result validated, so a verb can never leave a state
a file could not describe. Objects are built by `provision.parse` from their exported table with
the given options laid over it: `set` and `add` validate exactly like `hotline provision` does."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TypeVar

import click

from hotline.cli.common import run_with_db
from hotline.errors import ProvisionError
from hotline.provision.model import Provisioning
from hotline.provision.plan import Plan
from hotline.provision.validate import validate
from hotline.store import provisioning, provisioning_changes

Edit = Callable[[Provisioning], Provisioning]
Given = dict[str, object]  # the options a user gave, by the name of the field they set
Obj = TypeVar("Obj")

DRY_RUN = click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")


def run_edit(ctx: click.Context, edit: Edit, *, dry_run: bool = False) -> Plan:
    return run_with_db(ctx, lambda conn: provisioning_changes.change(conn, edit, dry_run=dry_run))


def load(ctx: click.Context) -> Provisioning:
    return run_with_db(ctx, provisioning.load)


def report(plan: Plan, dry_run: bool = False) -> None:
    if plan.empty:
        click.echo("nothing to change")
        return
    for line in plan.lines():
        click.echo(line)
    if dry_run:
        click.echo("(dry run: nothing was changed)")
        return
    for agent, password in sorted(plan.generated_passwords.items()):
        click.echo(f"agent {agent}: SIP password {password} (generated; shown only now, only its "
                   f"digest is kept: `hotline agent set {agent} --password ...` sets another)")


def with_object(prov: Provisioning, kind: str, key: str, obj: object | None) -> Provisioning:
    """A copy of `prov` with one object set (or removed, when obj is None)."""
    section = dict(prov.section(kind))
    if obj is None:
        section.pop(key, None)
    else:
        section[key] = obj
    return dataclasses.replace(prov, **{kind: section})  # type: ignore[arg-type]


def need(section: dict[str, Obj], key: str, what: str) -> Obj:
    """section[key]; ProvisionError naming `what` when there is no such object."""
    if key not in section:
        raise ProvisionError(f"{what} {key!r} does not exist")
    return section[key]


def given(**options: object) -> Given:
    """Options the user gave (click passes None or () for the rest)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()
            if v is not None and v != ()}


def pairs(field: str, values: Iterable[str]) -> dict[str, str]:
    """('2027-01-01=closed', ...) -> {'2027-01-01': 'closed'}."""
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise ProvisionError(f"{field}: {value!r} is not KEY=VALUE")
        out[key.strip()] = rest.strip()
    return out


def with_priority(values: dict[str, str], key: str,
                  extras: tuple[str, ...] = ("priority",)) -> dict[str, object]:
    """{'+7913': 'siberia,priority=5'} -> {'+7913': {key: 'siberia', 'priority': '5'}}: a route or
    key given on the command line with the priority its callers wait with (and whatever else of
    `extras` it may say: a menu key's 'then=menu:main')."""
    out: dict[str, object] = {}
    allowed = " or ".join(f"'{extra}=N'" if extra == "priority" else f"'{extra}=...'" for extra in extras)
    for name, value in values.items():
        head, sep, rest = value.partition(",")
        if not sep:
            out[name] = value
            continue
        table: dict[str, object] = {key: head.strip()}
        for part in rest.split(","):
            field, eq, setting = part.partition("=")
            if field.strip() not in extras or not eq:
                raise ProvisionError(f"{name}={value}: after the comma only {allowed} may follow")
            table[field.strip()] = setting.strip()
        out[name] = table
    return out


def remover(kind: str, name: str, what: str) -> Edit:
    """An edit removing one object, refused (naming what still leads to it) while it is in use."""
    def edit(prov: Provisioning) -> Provisioning:
        need(prov.section(kind), name, what)
        after = with_object(prov, kind, name, None)
        try:
            validate(after)
        except ProvisionError as exc:
            raise ProvisionError(f"{what} {name!r} is still in use: {exc}") from None
        return after
    return edit
