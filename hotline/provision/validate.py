"""Cross-checks of a whole Provisioning: every reference resolves, every menu can be left, and
nothing collides. Field-level checks live in parse; these need the whole picture."""

from __future__ import annotations

from collections.abc import Iterator

from hotline.errors import ProvisionError
from hotline.media import WEB_ENDPOINT
from hotline.provision.model import Hotline, Menu, Provisioning, Queue, Target, TargetAction

# Endpoints and templates the reference configuration and the lab define: an agent may not take
# their names.
RESERVED_ENDPOINTS = frozenset({"sipp-trunk", "sipp-video", "sipp-carrier", "anonymous", "hotline-customer",
                                "hotline-trunk", "hotline-video-phone"})


def validate(prov: Provisioning) -> None:
    """Raise ProvisionError for the first problem found (stable order: the same input, the same
    message)."""
    for problem in _problems(prov):
        raise ProvisionError(problem)


def _problems(prov: Provisioning) -> Iterator[str]:
    yield from _references(prov)
    yield from _endpoints(prov)
    yield from _trunks(prov)
    yield from _nodes(prov)
    yield from _callback_targets(prov)
    yield from _menus_without_exit(prov)
    yield from _cycles(prov)


def _exists(prov: Provisioning, t: Target) -> bool:
    return not t.names_object or t.name in prov.section(t.kind)


def _references(prov: Provisioning) -> Iterator[str]:
    for q in prov.queues.values():
        if not _exists(prov, q.overflow):
            yield f"queues.{q.name}.overflow: {str(q.overflow)!r} does not exist"
        if q.overflow == Target("queue", q.name):
            yield f"queues.{q.name}.overflow: {str(q.overflow)!r} overflows into itself"
        if q.breakout_menu is not None and q.breakout_menu not in prov.menus:
            yield f"queues.{q.name}.breakout_menu: menu {q.breakout_menu!r} does not exist"
        breakout = prov.menus.get(q.breakout_menu or "")
        if breakout is not None and q.video_key in {o.digit for o in breakout.options}:
            yield (f"queues.{q.name}.video_key: {q.video_key!r} is also a key of its breakout menu "
                   f"{q.breakout_menu!r}: a caller pressing it could mean either")
        yield from _callback_key(prov, q)
        yield from _breakout_languages(prov, q)
        yield from _queue_announcement(prov, q)
        if q.survey_thanks is not None and not q.survey:
            yield (f"queues.{q.name}.survey_thanks: the queue has no survey, so it would never be played "
                   f"(set survey to one or two question sounds, or survey_thanks to 'none')")
        if q.video_key is not None and q.video_key == q.callback_key:
            yield (f"queues.{q.name}.callback_key: {q.callback_key!r} is also the queue's video_key: "
                   "a caller pressing it could mean either")
    for h in prov.hotlines.values():
        if not _exists(prov, h.entry):
            yield f"hotlines.{h.name}.entry: {str(h.entry)!r} does not exist"
        if not _exists(prov, h.closed):
            yield f"hotlines.{h.name}.closed: {str(h.closed)!r} does not exist"
        if h.closed == Target("hotline", h.name):
            yield f"hotlines.{h.name}.closed: {str(h.closed)!r} sends callers back to the closed hotline"
        for r in h.regions:
            if r.queue not in prov.queues:
                yield f"hotlines.{h.name}.regions.{r.match}: queue {r.queue!r} does not exist"
        yield from _hotline_announcement(prov, h)
    for m in prov.menus.values():
        for o in m.options:
            if not _exists(prov, o.target):
                yield f"menus.{m.name}.options.{o.digit}: {str(o.target)!r} does not exist"
            if o.then is not None and not _exists(prov, o.then):
                yield f"menus.{m.name}.options.{o.digit}.then: {str(o.then)!r} does not exist"
    for n in prov.numbers.values():
        if n.hotline not in prov.hotlines:
            yield f"numbers.{n.number}.hotline: {n.hotline!r} does not exist"
    for a in prov.agents.values():
        for queue, _ in a.queues:
            if queue not in prov.queues:
                yield f"agents.{a.name}.queues: queue {queue!r} does not exist"


def _queue_announcement(prov: Provisioning, q: Queue) -> Iterator[str]:
    """A queue's record_announcement is played only when its talks are recorded: never with its
    own record `never`, nor when it follows its hotline's and no hotline records."""
    if q.record_announcement is None:
        return
    if q.record == "never":
        yield (f"queues.{q.name}.record_announcement: the queue records never, so it would never "
               f"be played (set record to always, on_demand or inherit, or the announcement to 'none')")
    elif q.record is None and all(h.record == "never" for h in prov.hotlines.values()):
        yield (f"queues.{q.name}.record_announcement: the queue records as its hotline does and no "
               f"hotline records, so it would never be played (set the queue's or a hotline's record "
               f"to always or on_demand, or the announcement to 'none')")


def _hotline_announcement(prov: Provisioning, h: Hotline) -> Iterator[str]:
    """A hotline's record_announcement is played before the first queue of a call that records:
    with the hotline recording never, only a queue recording of its own could ever play it."""
    if h.record_announcement is None or h.record != "never":
        return
    if not any(q.record in ("always", "on_demand") for q in prov.queues.values()):
        yield (f"hotlines.{h.name}.record_announcement: the hotline records never and no queue records "
               f"of its own, so it would never be played (set the hotline's record to always or "
               f"on_demand, or the announcement to 'none')")


def _breakout_languages(prov: Provisioning, q: Queue) -> Iterator[str]:
    """A waiting caller's breakout key leaves the queue for where it leads; a language key would
    leave it for nowhere (it replays a menu the caller is not in): refused there."""
    menu = prov.menus.get(q.breakout_menu or "")
    for o in menu.options if menu is not None else ():
        if o.target.action == TargetAction.LANGUAGE:
            yield (f"queues.{q.name}.breakout_menu: key {o.digit!r} of menu {q.breakout_menu!r} is "
                   f"{str(o.target)!r}, which a caller waiting in a queue cannot use (a breakout "
                   f"key leaves the queue)")


def _callback_key(prov: Provisioning, q: Queue) -> Iterator[str]:
    """A queue offering callbacks needs a trunk to call back through, and a key its breakout
    menu does not take already."""
    if q.callback_key is None:
        return
    if not prov.trunks:
        yield f"queues.{q.name}.callback_key: no trunk is provisioned to call the customer back through"
    menu = prov.menus.get(q.breakout_menu or "")
    if menu is not None and any(o.digit == q.callback_key for o in menu.options):
        yield (f"queues.{q.name}.callback_key: key {q.callback_key!r} is also a key of its breakout menu"
               f" {menu.name!r}")


def _callback_targets(prov: Provisioning) -> Iterator[str]:
    """A menu key or closed action `callback:QUEUE` needs a trunk to call back through; a bare
    `callback` (stored before it named its queue, when it only hung up) must name one now."""
    used = [(f"menus.{m.name}.options.{o.digit}", o.leads_to) for m in prov.menus.values() for o in m.options]
    used += [(f"hotlines.{h.name}.closed", h.closed) for h in prov.hotlines.values()]
    for field, t in used:
        if t.action != "callback":
            continue
        if t.name is None:
            yield f"{field}: 'callback' needs the queue whose line the callback joins: 'callback:QUEUE'"
        elif not prov.trunks:
            yield f"{field}: {str(t)!r}: no trunk is provisioned to call the customer back through"


def _endpoints(prov: Provisioning) -> Iterator[str]:
    seen: dict[str, str] = {}
    for a in sorted(prov.agents.values(), key=lambda a: a.name):
        if a.endpoint in RESERVED_ENDPOINTS:
            yield f"agents.{a.name}.endpoint: {a.endpoint!r} is reserved by the reference configuration"
        if a.endpoint in seen:
            yield f"agents.{a.name}.endpoint: {a.endpoint!r} is already agent {seen[a.endpoint]!r}'s"
        seen[a.endpoint] = a.name


# The reference templates (`(!)`: never an endpoint of their own) and the web endpoint, which
# cannot carry a call to a carrier.
_NOT_TRUNKS = frozenset({"anonymous", "hotline-customer", "hotline-trunk", "hotline-video-phone",
                         WEB_ENDPOINT})


def _trunks(prov: Provisioning) -> Iterator[str]:
    agents = {a.endpoint: a.name for a in prov.agents.values()}
    for t in sorted(prov.trunks.values(), key=lambda t: t.name):
        if t.endpoint in _NOT_TRUNKS:
            yield f"trunks.{t.name}.endpoint: {t.endpoint!r} is not a carrier's endpoint"
        if t.endpoint in agents:
            yield f"trunks.{t.name}.endpoint: {t.endpoint!r} is the phone of agent {agents[t.endpoint]!r}"
        number = prov.numbers.get(t.caller_id)
        if number is None or number.kind == "video":
            yield (f"trunks.{t.name}.caller_id: {t.caller_id!r} is not one of the hotlines' "
                   "telephone numbers")


def _menus_without_exit(prov: Provisioning) -> Iterator[str]:
    """A menu from which no key ever leads out of the menus (to a queue, a hotline, hang-up, video
    or callback) keeps a caller pressing keys for ever: refuse it."""
    leaves = {name for name, m in prov.menus.items() if any(_leaves(o.leads_to) for o in m.options)}
    changed = True
    while changed:  # a menu exits when one of its keys leads to a menu that exits
        changed = False
        for name, m in prov.menus.items():
            if name not in leaves and any(o.leads_to.action == "menu" and o.leads_to.name in leaves
                                          for o in m.options):
                leaves.add(name)
                changed = True
    for name in sorted(prov.menus.keys() - leaves):
        yield (f"menus.{name}.options: {_describe(prov.menus[name])!r} never leads out of the menus "
               "(add a queue, hotline or hangup option)")


def _leaves(t: Target) -> bool:
    return t.action not in ("menu", "repeat")


def _describe(m: Menu) -> str:
    return ", ".join(f"{o.digit}={o.target}" + (f" then {o.then}" if o.then else "")
                     for o in m.options) or "no options"


def _cycles(prov: Provisioning) -> Iterator[str]:
    """Overflow chains (queue -> queue) and closed chains (hotline -> hotline) that come back to
    where they started would pass a caller round for ever."""
    chains = {
        "queues": ({n: q.overflow.name for n, q in prov.queues.items() if q.overflow.action == "queue"},
                   "overflow"),
        "hotlines": ({n: h.closed.name for n, h in prov.hotlines.items() if h.closed.action == "hotline"},
                     "closed"),
    }
    for kind, (next_of, field) in chains.items():
        for start in sorted(next_of):
            path, here = [start], next_of.get(start)
            while here is not None and here not in path:
                path.append(here)
                here = next_of.get(here)
            if here == start and len(path) > 1:
                yield f"{kind}.{start}.{field}: {' -> '.join(path + [start])!r} goes round in a circle"


def _nodes(prov: Provisioning) -> Iterator[str]:
    """Two nodes at one address are one Asterisk counted twice: its calls would be served twice."""
    for what in ("ari", "ami", "sip"):
        seen: dict[str, str] = {}
        for n in sorted(prov.nodes.values(), key=lambda n: n.name):
            address = getattr(n, what)
            if address in seen:
                yield f"nodes.{n.name}.{what}: {address!r} is already node {seen[address]!r}'s"
            seen.setdefault(address, n.name)
