"""The routers of every Asterisk node the daemon serves, one per node: a call lives on one node
with its agent legs (a bridge cannot span nodes), so each node's events go to its own router. The
questions about any live call (the leg a switch replaces, a page's own call, a supervisor's list)
are asked of all of them; the queues behind the calls are one for all nodes (QueueManager)."""

from __future__ import annotations

import asyncio

from hotline.engine.call import InboundCall
from hotline.engine.customer_view import CustomerView
from hotline.engine.rejoin import AwaitingRejoin
from hotline.engine.router import Router
from hotline.engine.supervision import LiveTalk


class Routers:
    def __init__(self) -> None:
        self.by_node: dict[str, Router] = {}

    def add(self, node: str, router: Router) -> None:
        self.by_node[node] = router

    def node_of_channel(self, channel_id: str) -> str | None:
        """The node whose router owns or watches `channel_id` (a call's or one of its legs)."""
        return next((node for node, router in self.by_node.items() if channel_id in router.inboxes), None)

    def call_of_hop(self, hop_id: int) -> InboundCall | None:
        return next((c for r in self.by_node.values() if (c := r.call_of_hop(hop_id)) is not None), None)

    def conference_legs(self, case_id: int) -> list[str]:
        return [leg for r in self.by_node.values() for leg in r.conference_legs(case_id)]

    def dropped_call_of(self, customer: str) -> InboundCall | AwaitingRejoin | None:
        return next((c for r in self.by_node.values() if (c := r.dropped_call_of(customer)) is not None),
                    None)

    def dropped_for_agent(self, endpoint: str) -> bool:
        return any(r.dropped_for_agent(endpoint) for r in self.by_node.values())

    def camera_turned(self, customer: str, video: bool) -> bool:
        return any(r.camera_turned(customer, video) for r in self.by_node.values())  # the first that has it

    def hanging_up(self, customer: str) -> bool:
        return any(r.hanging_up(customer) for r in self.by_node.values())

    def customer_view(self, customer: str) -> CustomerView | None:
        return next((v for r in self.by_node.values() if (v := r.customer_view(customer)) is not None), None)

    def live_talks(self) -> list[LiveTalk]:
        return sorted((t for r in self.by_node.values() for t in r.live_talks()), key=lambda t: t.since)

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in self.by_node.values()))
