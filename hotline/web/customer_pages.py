"""What the customer's page asks of the daemon (hotline.web.app.WebBackend's customer part): the
hotline's look for an address, the live stage of the page's own call, and its rating after the
talk. A mixin of hotline.web.backend.DaemonWebBackend, which holds the directory, hub and pool.

The page proves whose call it follows by its browser's own id (hotline-phone.js keeps a random one
per browser, and its INVITE carries it): the stream answers with that call's place in line, never
with anything of another caller's. A rating is taken only for a talk this daemon saw that same
page's call have, once per leg (the table's unique hop)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from hotline.engine.customer_view import TALKING, CustomerView
from hotline.engine.directory import Directory
from hotline.engine.live_hub import WALLBOARD, LiveHub, Subscription
from hotline.errors import RatingRefused
from hotline.provision.model import Hotline, Number, Provisioning
from hotline.store.customer_ratings import add_rating
from hotline.store.db import STORE_DOWN
from hotline.store.switches import SwitchLeg, switch_leg
from hotline.web.app import HotlinePage
from hotline.web.said import refused

# A talk may be rated this long after the page last saw it (a page left open, rated later: no).
RATING_WINDOW_S = 3600.0
# Talks remembered for their ratings at most (the oldest go first).
RATEABLE_TALKS = 10_000

CustomerViews = Callable[[str], CustomerView | None]


def page_language_of(number: Number, hotline: Hotline | None) -> str | None:
    """The language a video address's page speaks by provisioning, as its callers' prompts do: the
    number's own, else its hotline's (None: the browser's, by Accept-Language)."""
    return number.language or (hotline.language if hotline is not None else None)


def switch_look(leg: SwitchLeg, prov: Provisioning) -> HotlinePage:
    """A switch link's page: the look of the hotline its leg came through, in the language that
    leg's prompts were played in, else its number's, else its hotline's."""
    hotline = prov.hotlines.get(leg.hotline) if leg.hotline is not None else None
    number = prov.numbers.get(leg.number) if leg.number is not None else None
    language = leg.language or (number.language if number is not None else None) or (
        hotline.language if hotline is not None else None)
    # Several nodes: the video leg must land where the case's bridge is (a header Kamailio steers by)
    node = leg.node if prov.nodes else ""
    if hotline is None:
        return HotlinePage(language=language, node=node)
    return HotlinePage(hotline.page_title or "", hotline.page_text or "", hotline.page_logo or "",
                       hotline.page_color or "", language, node)


@dataclass(frozen=True)
class _Talk:
    hop_id: int
    seen_at: float


class CustomerPages:
    directory: Directory
    hub: LiveHub
    pool: AsyncConnectionPool
    customer_views: CustomerViews
    _talks_seen: dict[str, _Talk]  # browser id -> its last talk the page saw (for its rating)

    def hotline_page(self, address: str) -> HotlinePage | None:
        """The page of a provisioned video address: its hotline's name, text, logo, colour."""
        prov = self.directory.snapshot.prov
        number = prov.numbers.get(address)
        if number is None or number.kind != "video":
            return None
        hotline = prov.hotlines.get(number.hotline)
        if hotline is None:
            return HotlinePage(language=page_language_of(number, None))
        return HotlinePage(hotline.page_title or "", hotline.page_text or "", hotline.page_logo or "",
                           hotline.page_color or "", page_language_of(number, hotline))

    async def switch_page(self, token: str) -> HotlinePage:
        """The page of a valid switch link: the look of the hotline its case's leg came through,
        in the language that leg's prompts were played in, else its number's, else its hotline's
        (the page's own look for a hotline gone from provisioning)."""
        try:
            async with self.pool.connection() as conn:
                leg = await switch_leg(conn, token)
        except STORE_DOWN as exc:
            raise refused(503, "link_retry") from exc
        return switch_look(leg, self.directory.snapshot.prov) if leg is not None else HotlinePage()

    def customer_view(self, customer: str) -> CustomerView | None:
        view = self.customer_views(customer)
        if view is not None and view.stage == TALKING and view.hop_id is not None:
            self._remember_talk(customer, view.hop_id)
        return view

    def subscribe_customer(self) -> Subscription:
        """A wake-up each time the live queues change (a place in line moves, an agent answers)."""
        return self.hub.subscribe(WALLBOARD)

    def _remember_talk(self, customer: str, hop_id: int) -> None:
        self._talks_seen.pop(customer, None)  # to the end: the dict's order is the age
        self._talks_seen[customer] = _Talk(hop_id, time.monotonic())
        while len(self._talks_seen) > RATEABLE_TALKS:
            del self._talks_seen[next(iter(self._talks_seen))]

    async def rate_call(self, customer: str, hop_id: int, score: object, comment: object) -> None:
        """Keep the page's rating of its talk on leg `hop_id`; WebRefusal 400 (bad score or
        comment), 404 (no talk of this page's to rate), 409 (rated already), 503."""
        talk = self._talks_seen.get(customer)
        if talk is None or talk.hop_id != hop_id or time.monotonic() - talk.seen_at > RATING_WINDOW_S:
            raise refused(404, "rating_no_call")
        try:
            async with self.pool.connection() as conn:
                await add_rating(conn, hop_id, score, comment)
        except RatingRefused as no:
            raise refused(409 if no.already else 400, "rating_refused", reason=str(no)) from None
        except STORE_DOWN as exc:
            raise refused(503, "rating_not_kept") from exc
