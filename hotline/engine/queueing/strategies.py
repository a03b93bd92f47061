"""Which agents a queue rings, in what order: app_queue's strategies and penalties, as a plan.

`choose()` turns a queue's members into a ringing plan: a list of attempts, each the members to
ring at the same time. The call task rings one attempt for the queue's ring timeout, then the
next; it plans again when the plan runs out (or when agents change), as app_queue does after
`retry`. Pure logic, no I/O.

Semantics follow app_queue (queues.conf), penalty first, then the strategy:
- ringall: every available member of the lowest penalty among the available ones, at once.
- linear: in member order, always from the first.
- rrmemory: in member order, starting after the member rung last for this queue, wrapping round.
- leastrecent: the member whose last call from this queue ended longest ago (never: first).
- fewestcalls: the member with the fewest completed calls from this queue.
- random: shuffled with the RNG passed in (seeded in tests).
Ties go to member order, so plans are reproducible. Lower penalty tiers always come before
higher ones; a higher tier is rung only once every lower-tier member was tried.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby

from hotline.engine.queueing.agent_state import AgentState


@dataclass(frozen=True)
class Member:
    """An agent in one queue: its penalty there and its position in the queue's member order."""

    agent: AgentState
    penalty: int
    order: int


Plan = list[list[Member]]  # attempts, in order; the members of one attempt ring together


class StrategyMemory:
    """What rrmemory remembers between callers: per queue, the position of the member rung last.

    A position rather than the agent, so a member leaving the queue does not restart the round.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def remember(self, queue: str, member: Member) -> None:
        """Called by the call task each time it rings a member of `queue`."""
        self._last[queue] = member.order

    def last(self, queue: str) -> int | None:
        return self._last.get(queue)


@dataclass(frozen=True)
class _Context:
    queue: str
    memory: StrategyMemory
    rng: random.Random


def _linear(tier: list[Member], ctx: _Context) -> list[Member]:
    return tier  # tiers arrive in member order


def _rrmemory(tier: list[Member], ctx: _Context) -> list[Member]:
    last = ctx.memory.last(ctx.queue)
    if last is None:
        return tier
    # Those after the last rung first, then the round wraps to the start (the tier is in member
    # order, so this is a rotation, not a sort).
    cut = bisect_right(tier, last, key=lambda m: m.order)
    return tier[cut:] + tier[:cut]


def _leastrecent(tier: list[Member], ctx: _Context) -> list[Member]:
    def idle_since(m: Member) -> float:
        ended = m.agent.last_call_ended_at(ctx.queue)
        return float("-inf") if ended is None else ended  # never had a call: idle the longest

    return sorted(tier, key=idle_since)


def _fewestcalls(tier: list[Member], ctx: _Context) -> list[Member]:
    return sorted(tier, key=lambda m: m.agent.calls_completed(ctx.queue))


def _random(tier: list[Member], ctx: _Context) -> list[Member]:
    return ctx.rng.sample(tier, len(tier))


_ORDERS: dict[str, Callable[[list[Member], _Context], list[Member]]] = {
    "ringall": _linear,  # one attempt of the whole tier, so its order only sets who is dialled first
    "linear": _linear,
    "rrmemory": _rrmemory,
    "leastrecent": _leastrecent,
    "fewestcalls": _fewestcalls,
    "random": _random,
}


def choose(
    strategy: str,
    members: Sequence[Member],
    now: float,
    memory: StrategyMemory,
    rng: random.Random,
    *,
    queue: str,
    prefer_video: bool = False,
    video_only: bool = False,
) -> Plan:
    """The ringing plan for one caller of `queue`, of the members available at `now`; empty when
    none is.

    prefer_video: a video caller in a queue that prefers video agents; video-capable agents come
    first within each tier (with ringall, as an attempt of their own before the audio-only ones,
    since ringing both at once would let an audio agent win). video_only: only video-capable
    agents, for the caller's first wait before it falls back to audio.
    """
    available = [[m for m in tier if m.agent.available(now)] for tier in tiers(members)]
    return list(attempts(strategy, [t for t in available if t], now, memory, rng, queue=queue,
                         prefer_video=prefer_video, video_only=video_only))


def attempts(
    strategy: str,
    member_tiers: list[list[Member]],
    now: float,
    memory: StrategyMemory,
    rng: random.Random,
    *,
    queue: str,
    prefer_video: bool = False,
    video_only: bool = False,
) -> Iterator[list[Member]]:
    """The plan as `choose()` makes it, attempt by attempt, from `tiers()` of all members.

    Lazy, because a queue may have hundreds of members and a caller rarely needs more than the
    first attempt: whoever consumes it skips the members unavailable when their turn comes (an
    agent busy at planning time may be free by then, as app_queue would find). Ringall looks at
    availability at `now`, since its one attempt is the lowest tier with anyone available.
    """
    if strategy not in _ORDERS:
        raise ValueError(f"unknown queue strategy {strategy!r} (known: {', '.join(_ORDERS)})")
    if video_only:
        member_tiers = [t for t in ([m for m in tier if m.agent.video] for tier in member_tiers) if t]
    if strategy == "ringall":
        return iter(_ringall(member_tiers, now, prefer_video))
    return _one_at_a_time(_ORDERS[strategy], member_tiers, _Context(queue, memory, rng), prefer_video)


def _one_at_a_time(order: Callable[[list[Member], _Context], list[Member]], member_tiers: list[list[Member]],
                   ctx: _Context, prefer_video: bool) -> Iterator[list[Member]]:
    for tier in member_tiers:  # a tier is ordered only when the plan reaches it
        ordered = order(tier, ctx)
        for member in _video_first(ordered) if prefer_video else ordered:
            yield [member]


def tiers(members: Sequence[Member]) -> list[list[Member]]:
    """Members grouped by penalty, lowest first, each group in member order; an agent listed
    twice counts once, at its lowest penalty. Depends on provisioning only, so a caller of the
    plan may keep it until the members change."""
    seen: set[int] = set()
    unique: list[Member] = []
    for m in sorted(members, key=lambda m: (m.penalty, m.order)):
        if id(m.agent) not in seen:
            seen.add(id(m.agent))
            unique.append(m)
    return [list(group) for _, group in groupby(unique, key=lambda m: m.penalty)]


def _ringall(member_tiers: list[list[Member]], now: float, prefer_video: bool) -> Plan:
    tier = next((t for t in ([m for m in tier if m.agent.available(now)] for tier in member_tiers) if t), [])
    if not tier:
        return []
    if not prefer_video:
        return [tier]
    video = [m for m in tier if m.agent.video]
    audio = [m for m in tier if not m.agent.video]
    return [attempt for attempt in (video, audio) if attempt]


def _video_first(members: list[Member]) -> list[Member]:
    return sorted(members, key=lambda m: not m.agent.video)  # stable: strategy order kept
