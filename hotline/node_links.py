"""The daemon's link to one Asterisk node: its AMI login, its ARI client and WebSocket, and the
router of the calls that live on it. One per node; the daemon keeps them in step with the
provisioned nodes (hotline.asterisk.nodes) and renews its word that it serves them (nodes table)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential

from hotline.asterisk.ami import AmiSession
from hotline.asterisk.ari import AriClient, AriSession
from hotline.asterisk.nodes import NodeAddress
from hotline.cancellation import cancel_and_wait
from hotline.engine.router import Router
from hotline.errors import AmiError

log = logging.getLogger(__name__)


@dataclass
class NodeLink:
    address: NodeAddress
    client: AriClient
    ami: AmiSession
    router: Router
    session: AriSession | None = None
    down_since: float | None = None  # monotonic time its ARI was first seen out of reach
    given_up: bool = False  # taken for lost in this outage (node_lost_after)
    _ami_retry: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.address.name

    @property
    def ari_connected(self) -> bool:
        return self.session is not None and self.session.connected.is_set()

    async def connect_ami(self, *, must: bool) -> None:
        """Log in to the node's AMI. `must` (one node, as before nodes existed): a failure stops the
        start with its message. Several nodes: a node down must not keep the others unserved, so
        its login is retried in the background until it takes."""
        if must:
            await self.ami.connect()
            return
        try:
            await self.ami.connect()
        except (AmiError, OSError) as exc:
            log.warning("node %s: AMI not reachable (%s): retried in the background", self.name, exc)
            self._ami_retry = asyncio.create_task(self._retry_ami(), name=f"ami-retry-{self.name}")

    async def _retry_ami(self) -> None:
        async for attempt in AsyncRetrying(retry=retry_if_exception_type((AmiError, OSError)),
                                           wait=wait_exponential(min=1, max=10), stop=stop_never,
                                           reraise=True):
            with attempt:
                await self.ami.connect()
        log.info("node %s: AMI connected", self.name)

    def start_ari(self, app: str, on_connect: Callable[[], Awaitable[None]], all_channels: bool) -> None:
        self.session = AriSession(self.client, app, on_event=self.router.on_event, on_connect=on_connect,
                                  all_channels=all_channels)
        self.session.start()

    async def close_ari(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def close(self) -> None:
        """After the calls' stop (the router's own close): the AMI login, then the client."""
        if self._ami_retry is not None:
            await cancel_and_wait(self._ami_retry)
        await self.ami.close()
        await self.client.close()
