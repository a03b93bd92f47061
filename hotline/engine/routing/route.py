"""Where a call goes before anyone answers it: the dialled number's hotline, whether it is open
(or sends callers on to another), and its entry (an 8-800 line's region routes first)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from hotline.engine.directory import Snapshot
from hotline.engine.routing.hours import is_open
from hotline.engine.routing.regions import region_route
from hotline.numbers import to_e164
from hotline.provision.model import Hotline, Number, Target, TargetAction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Where the dialled number leads, decided before the call is answered."""

    number: Number | None = None
    hotline: Hotline | None = None
    number_id: int | None = None
    hotline_id: int | None = None


def route_of_number(snapshot: Snapshot, dialled: str, region: str) -> Route:
    """The number as provisioned (E.164, or a video address as dialled); Route() when unknown."""
    number = snapshot.number(to_e164(dialled, region) or dialled)
    if number is None:
        return Route()
    return Route(number, snapshot.hotline(number.hotline), snapshot.id_of("numbers", number.number),
                 snapshot.id_of("hotlines", number.hotline))


def route_of_hotline(snapshot: Snapshot, hotline_id: int | None) -> Route:
    """A switch leg dials no number: it goes where the leg it continues went (that hotline)."""
    names = {ident: name for name, ident in snapshot.ids.get("hotlines", {}).items()}
    hotline = snapshot.prov.hotlines.get(names.get(hotline_id, "")) if hotline_id is not None else None
    return Route(hotline=hotline, hotline_id=hotline_id if hotline else None)


def hotline_taking_calls(snapshot: Snapshot, hotline: Hotline,
                         at: datetime) -> tuple[Hotline | None, Hotline]:
    """(the hotline that takes the call at `at`, or None: closed; the last hotline looked at).
    A closed hotline may send callers on to another (validation refuses cycles)."""
    seen: set[str] = set()
    while not is_open(hotline, at):
        seen.add(hotline.name)
        target = hotline.closed
        if target.action != TargetAction.HOTLINE or target.name is None or target.name in seen:
            return None, hotline  # hangup or callback:QUEUE (the call does it: engine.call)
        hotline = snapshot.hotline(target.name)
    return hotline, hotline


@dataclass(frozen=True)
class Entry:
    """Where a call enters its hotline, and the priority that way gives it (None: none of its own)."""

    target: Target
    priority: int | None = None


def entry_of(hotline: Hotline, caller_num: str, channel_id: str) -> Entry:
    """The hotline's entry, or for an 8-800 line the queue its region routes say for this caller
    (longest number prefix, then geocoded region), with that route's priority."""
    if hotline.regions:
        route = region_route(hotline, caller_num or None)
        if route is not None:
            log.info("call %s: caller %s routed by region to queue %s", channel_id, caller_num, route.queue)
            return Entry(Target(TargetAction.QUEUE, route.queue), route.priority)
    return Entry(hotline.entry)
