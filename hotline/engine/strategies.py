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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

from hotline.engine.agent_state import AgentState


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
    # Those after the last rung first, then the round wraps to the start.
    return sorted(tier, key=lambda m: m.order <= last)


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
    """The ringing plan for one caller of `queue`; empty when no member is available.

    prefer_video: a video caller in a queue that prefers video agents; video-capable agents come
    first within each tier (with ringall, as an attempt of their own before the audio-only ones,
    since ringing both at once would let an audio agent win). video_only: only video-capable
    agents, for the caller's first wait before it falls back to audio.
    """
    if strategy not in _ORDERS:
        raise ValueError(f"unknown queue strategy {strategy!r} (known: {', '.join(_ORDERS)})")
    ctx = _Context(queue, memory, rng)
    tiers = _tiers(_candidates(members, now, video_only))
    if strategy == "ringall":
        return _ringall(tiers, prefer_video)
    plan: Plan = []
    for tier in tiers:
        ordered = _ORDERS[strategy](tier, ctx)
        plan.extend([m] for m in (_video_first(ordered) if prefer_video else ordered))
    return plan


def _candidates(members: Sequence[Member], now: float, video_only: bool) -> list[Member]:
    """Available members, each agent once (at its lowest penalty if listed twice)."""
    seen: set[int] = set()
    out: list[Member] = []
    for m in sorted(members, key=lambda m: (m.penalty, m.order)):
        if id(m.agent) in seen or not m.agent.available(now) or (video_only and not m.agent.video):
            continue
        seen.add(id(m.agent))
        out.append(m)
    return out


def _tiers(members: list[Member]) -> list[list[Member]]:
    """Members grouped by penalty, lowest first, each group in member order."""
    by_penalty = sorted(members, key=lambda m: (m.penalty, m.order))
    return [list(group) for _, group in groupby(by_penalty, key=lambda m: m.penalty)]


def _ringall(tiers: list[list[Member]], prefer_video: bool) -> Plan:
    if not tiers:
        return []
    if not prefer_video:
        return [tiers[0]]
    video = [m for m in tiers[0] if m.agent.video]
    audio = [m for m in tiers[0] if not m.agent.video]
    return [attempt for attempt in (video, audio) if attempt]


def _video_first(members: list[Member]) -> list[Member]:
    return sorted(members, key=lambda m: not m.agent.video)  # stable: strategy order kept
