"""What the commands share: the settings (the root's options laid over the other layers), a
database to run their coroutine against, and options declared once for several commands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from hotline.config import Settings, load_settings
from hotline.store.db import connect, open_pool

T = TypeVar("T")
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]  # what click.option() returns


def settings_of(ctx: click.Context) -> Settings:
    """Settings from the layers, with the root command's options on top."""
    root = ctx.find_root()
    return load_settings(root.obj["cli"], config_file=root.obj["config_file"])


def run_with_db(ctx: click.Context, action: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `action` on one connection to the configured database, closed afterwards. An outage
    on the way is the root group's to report (hotline.cli.HotlineGroup)."""
    dsn = _dsn(ctx)

    async def go() -> T:
        async with await connect(dsn) as conn:
            return await action(conn)
    return asyncio.run(go())


def run_with_pool(ctx: click.Context, action: Callable[[AsyncConnectionPool], Awaitable[T]]) -> T:
    """As run_with_db, for the store's classes that take a pool: one of a single connection."""
    dsn = _dsn(ctx)

    async def go() -> T:
        pool = await open_pool(dsn, min_size=1, max_size=1)
        try:
            return await action(pool)
        finally:
            await pool.close()
    return asyncio.run(go())


def _dsn(ctx: click.Context) -> str:
    settings = settings_of(ctx)
    settings.require("dsn")
    return settings.dsn


def options(*declared: Decorator) -> Decorator:
    """The click options `declared`, as one decorator; shown in --help in the order given."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(declared):
            func = option(func)
        return func
    return decorate
