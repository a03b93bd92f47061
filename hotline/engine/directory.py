"""The daemon's view of provisioning: loaded at start, reloaded when PostgreSQL says it changed.

`hotline provision` and the CLI verbs `NOTIFY hotline_provisioning`; a dedicated connection
LISTENs, so a change reaches the running daemon at once, with no port of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential

from hotline.errors import StoreError
from hotline.provision.model import Hotline, Number, Provisioning
from hotline.store import agent_sessions
from hotline.store import nodes as node_store
from hotline.store import provisioning as store
from hotline.store.agent_sessions import AgentPresence
from hotline.store.db import describe_dsn
from hotline.store.provisioning_changes import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """One consistent provisioning with the row ids hops record."""

    prov: Provisioning = field(default_factory=Provisioning)
    ids: dict[str, dict[str, int]] = field(default_factory=dict)
    presence: dict[str, AgentPresence] = field(default_factory=dict)
    draining_nodes: frozenset[str] = frozenset()  # `hotline node drain`: no new call there

    def number(self, key: str | None) -> Number | None:
        return self.prov.numbers.get(key) if key else None

    def hotline(self, name: str) -> Hotline:
        return self.prov.hotlines[name]

    def id_of(self, kind: str, name: str | None) -> int | None:
        return self.ids.get(kind, {}).get(name) if name else None


class Directory:
    def __init__(self, dsn: str, on_reload: Callable[[Snapshot], None] | None = None) -> None:
        self.dsn = dsn
        self.on_reload = on_reload
        self.snapshot = Snapshot()
        self.loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load once (the caller sees errors), then follow changes in the background."""
        try:
            await self._reload()
        except psycopg.Error as exc:
            raise StoreError(f"cannot load provisioning from {describe_dsn(self.dsn)}: {exc}") from None
        self._task = asyncio.create_task(self._follow(), name="directory-listen")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _reload(self) -> None:
        # A connection of its own: the listening one is busy inside notifies().
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        async with conn, conn.transaction():  # one snapshot: objects and ids agree
            prov = await store.load(conn)
            ids = await store.live_ids(conn)
            presence = await agent_sessions.states(conn)
            draining = frozenset(await node_store.draining(conn))
        self.snapshot = Snapshot(prov, ids, presence, draining)
        self.loaded.set()
        if self.on_reload is not None:
            self.on_reload(self.snapshot)
        log.info("provisioning loaded: %d hotline(s), %d number(s), %d queue(s), %d agent(s)",
                 len(prov.hotlines), len(prov.numbers), len(prov.queues), len(prov.agents))

    async def _follow(self) -> None:
        """LISTEN for changes; after a lost connection, reload (a NOTIFY may have been missed)."""
        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.5, max=10), stop=stop_never,
                                           retry=retry_if_exception_type(psycopg.Error)):
            with attempt:
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    await conn.execute(f"LISTEN {agent_sessions.NOTIFY_CHANNEL}")
                    await self._reload()
                    async for _ in conn.notifies():
                        await self._reload()
