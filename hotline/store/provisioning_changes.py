"""Every provisioning change, from a file or a CLI verb, goes through here: under one lock, read
the live state, build the desired one, validate it whole, diff, write, notify the daemon. Here,
not in provision/: provision/ describes provisioning, the store keeps it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from psycopg import AsyncConnection

from hotline.provision import parse, sip_auth
from hotline.provision.model import Provisioning
from hotline.provision.plan import Plan, diff, merge
from hotline.provision.validate import validate
from hotline.store import provisioning as store

# The daemon LISTENs on this channel and reloads provisioning when it fires.
NOTIFY_CHANNEL = "hotline_provisioning"


async def change(conn: AsyncConnection, edit: Callable[[Provisioning], Provisioning], *,
                 dry_run: bool = False) -> Plan:
    """Apply `edit` to the live provisioning in one transaction; nothing is written on any error.
    An agent without a password gets a generated one: the plan carries it, to be shown once."""
    async with conn.transaction():
        await store.lock(conn)
        current = await store.load(conn)
        desired = edit(current)
        validate(desired)
        desired, generated = sip_auth.fill_in(current, desired)
        plan = dataclasses.replace(diff(current, desired), generated_passwords=generated)
        if not dry_run and not plan.empty:
            await store.write(conn, desired, plan)
            await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return plan


async def apply_document(conn: AsyncConnection, doc: Mapping[str, object], *, prune: bool = False,
                         dry_run: bool = False, region: str = "RU") -> Plan:
    """`hotline provision FILE`: the file's objects over the live ones (only them, with prune)."""
    wanted = parse.provisioning(doc, region)
    states = "pause_reasons" in doc

    def edit(current: Provisioning) -> Provisioning:
        return merge(current, wanted, prune=prune, states_pause_reasons=states)
    return await change(conn, edit, dry_run=dry_run)


async def current(conn: AsyncConnection) -> Provisioning:
    return await store.load(conn)
