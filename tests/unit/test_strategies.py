"""Who a queue rings, in what order, checked the way an engineer checks app_queue strategies."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.engine.queueing.agent_state import AgentState
from hotline.engine.queueing.strategies import Member, Plan, StrategyMemory, choose
from hotline.provision.model import STRATEGIES

T0 = 1_700_000_000.0
NOW = T0 + 3600
Q = "support"


def agent(name: str, capabilities: tuple[str, ...] = ("audio",)) -> AgentState:
    a = AgentState(name, f"{name}-phone", capabilities)
    a.login(T0)
    a.device("NOT_INUSE", T0)
    return a


def members(*spec: str | tuple[str, int]) -> list[Member]:
    """Members in the order given; a bare name has penalty 0, ("carol", 1) a penalty of 1."""
    out = []
    for order, item in enumerate(spec):
        name, penalty = (item, 0) if isinstance(item, str) else item
        out.append(Member(agent(name), penalty, order))
    return out


def names(plan: Plan) -> list[list[str]]:
    return [[m.agent.name for m in attempt] for attempt in plan]


def plan_of(strategy: str, queue_members: list[Member], memory: StrategyMemory | None = None,
            seed: int = 0, now: float = NOW, **options: bool) -> list[list[str]]:
    memory = memory or StrategyMemory()
    return names(choose(strategy, queue_members, now, memory, random.Random(seed), queue=Q, **options))


def by_name(queue_members: list[Member], name: str) -> Member:
    return next(m for m in queue_members if m.agent.name == name)


def complete_call(m: Member, ended: float, queue: str = Q) -> None:
    m.agent.ringing(ended - 20, queue)
    m.agent.answered(ended - 15)
    m.agent.call_ended(ended, wrapup_s=0)


# -- linear -----------------------------------------------------------------------------------------

def test_linear_rings_one_at_a_time_in_member_order() -> None:
    assert plan_of("linear", members("alice", "bob", "carol")) == [["alice"], ["bob"], ["carol"]]


def test_linear_always_starts_at_the_first_member_whoever_was_rung_last() -> None:
    queue_members = members("alice", "bob", "carol")
    memory = StrategyMemory()
    memory.remember(Q, by_name(queue_members, "bob"))
    assert plan_of("linear", queue_members, memory)[0] == ["alice"]


# -- rrmemory -------------------------------------------------------------------------------------

def test_rrmemory_without_history_starts_at_the_first_member() -> None:
    assert plan_of("rrmemory", members("alice", "bob", "carol")) == [["alice"], ["bob"], ["carol"]]


def test_rrmemory_continues_after_the_member_rung_last() -> None:
    queue_members = members("alice", "bob", "carol")
    memory = StrategyMemory()
    memory.remember(Q, by_name(queue_members, "alice"))
    assert plan_of("rrmemory", queue_members, memory) == [["bob"], ["carol"], ["alice"]]


def test_rrmemory_wraps_round_after_the_last_member() -> None:
    queue_members = members("alice", "bob", "carol")
    memory = StrategyMemory()
    memory.remember(Q, by_name(queue_members, "carol"))
    assert plan_of("rrmemory", queue_members, memory) == [["alice"], ["bob"], ["carol"]]


def test_rrmemory_over_successive_callers_goes_round_the_queue() -> None:
    queue_members = members("alice", "bob", "carol")
    memory = StrategyMemory()
    first_rung = []
    for _ in range(4):
        first = choose("rrmemory", queue_members, NOW, memory, random.Random(0), queue=Q)[0][0]
        memory.remember(Q, first)
        first_rung.append(first.agent.name)
    assert first_rung == ["alice", "bob", "carol", "alice"]


def test_rrmemory_skips_an_unavailable_next_member() -> None:
    queue_members = members("alice", "bob", "carol")
    memory = StrategyMemory()
    memory.remember(Q, by_name(queue_members, "alice"))
    by_name(queue_members, "bob").agent.pause("lunch", NOW - 1)
    assert plan_of("rrmemory", queue_members, memory) == [["carol"], ["alice"]]


def test_rrmemory_continues_after_a_member_who_left_the_queue() -> None:
    queue_members = members("alice", "bob", "carol")
    memory = StrategyMemory()
    memory.remember(Q, by_name(queue_members, "bob"))
    without_bob = [m for m in queue_members if m.agent.name != "bob"]
    assert plan_of("rrmemory", without_bob, memory) == [["carol"], ["alice"]]


def test_rrmemory_remembers_each_queue_separately() -> None:
    queue_members = members("alice", "bob", "carol")
    memory = StrategyMemory()
    memory.remember("sales", by_name(queue_members, "bob"))
    assert plan_of("rrmemory", queue_members, memory)[0] == ["alice"]


# -- leastrecent and fewestcalls ----------------------------------------------------------------------

def test_leastrecent_rings_the_agent_idle_the_longest_first() -> None:
    queue_members = members("alice", "bob", "carol")
    complete_call(by_name(queue_members, "alice"), T0 + 300)
    complete_call(by_name(queue_members, "bob"), T0 + 100)
    complete_call(by_name(queue_members, "carol"), T0 + 200)
    assert plan_of("leastrecent", queue_members) == [["bob"], ["carol"], ["alice"]]


def test_leastrecent_rings_an_agent_who_never_had_a_call_first() -> None:
    queue_members = members("alice", "bob")
    complete_call(by_name(queue_members, "alice"), T0 + 100)
    assert plan_of("leastrecent", queue_members) == [["bob"], ["alice"]]


def test_leastrecent_counts_only_calls_from_this_queue() -> None:
    queue_members = members("alice", "bob")
    complete_call(by_name(queue_members, "alice"), T0 + 100, queue=Q)
    complete_call(by_name(queue_members, "bob"), T0 + 200, queue="sales")
    assert plan_of("leastrecent", queue_members)[0] == ["bob"]


def test_fewestcalls_rings_the_agent_with_fewest_completed_calls_first() -> None:
    queue_members = members("alice", "bob", "carol")
    for name, calls in (("alice", 3), ("bob", 1), ("carol", 2)):
        for i in range(calls):
            complete_call(by_name(queue_members, name), T0 + 100 * (i + 1))
    assert plan_of("fewestcalls", queue_members) == [["bob"], ["carol"], ["alice"]]


def test_fewestcalls_breaks_ties_by_member_order() -> None:
    queue_members = members("alice", "bob", "carol")
    complete_call(by_name(queue_members, "alice"), T0 + 100)
    assert plan_of("fewestcalls", queue_members) == [["bob"], ["carol"], ["alice"]]


def test_fewestcalls_ignores_calls_from_other_queues() -> None:
    queue_members = members("alice", "bob")
    complete_call(by_name(queue_members, "alice"), T0 + 100, queue="sales")
    complete_call(by_name(queue_members, "bob"), T0 + 200, queue=Q)
    assert plan_of("fewestcalls", queue_members)[0] == ["alice"]


# -- random ---------------------------------------------------------------------------------------

def test_random_with_the_same_seed_gives_the_same_plan() -> None:
    queue_members = members("alice", "bob", "carol", "dave")
    assert plan_of("random", queue_members, seed=42) == plan_of("random", queue_members, seed=42)


def test_random_gives_every_agent_a_turn_at_being_first() -> None:
    queue_members = members("alice", "bob", "carol", "dave")
    firsts = {plan_of("random", queue_members, seed=seed)[0][0] for seed in range(100)}
    assert firsts == {"alice", "bob", "carol", "dave"}


# -- ringall ----------------------------------------------------------------------------------------

def test_ringall_rings_every_available_agent_at_once() -> None:
    assert plan_of("ringall", members("alice", "bob", "carol")) == [["alice", "bob", "carol"]]


def test_ringall_rings_only_the_lowest_penalty_tier() -> None:
    queue_members = members(("alice", 1), ("bob", 0), ("carol", 0), ("dave", 2))
    assert plan_of("ringall", queue_members) == [["bob", "carol"]]


def test_ringall_rings_the_next_tier_when_no_lower_penalty_agent_is_available() -> None:
    queue_members = members(("alice", 0), ("bob", 1), ("carol", 1), ("dave", 2))
    by_name(queue_members, "alice").agent.pause("lunch", NOW - 1)
    assert plan_of("ringall", queue_members) == [["bob", "carol"]]


# -- penalties ------------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["linear", "rrmemory", "leastrecent", "fewestcalls", "random"])
def test_lower_penalty_agents_are_all_tried_before_higher_penalty_ones(strategy: str) -> None:
    queue_members = members(("alice", 2), ("bob", 0), ("carol", 1), ("dave", 0))
    plan = plan_of(strategy, queue_members, seed=7)
    assert sorted(name for [name] in plan[:2]) == ["bob", "dave"]
    assert plan[2:] == [["carol"], ["alice"]]


def test_rrmemory_goes_round_within_the_lowest_tier() -> None:
    queue_members = members(("alice", 0), ("bob", 1), ("carol", 0), ("dave", 0))
    memory = StrategyMemory()
    memory.remember(Q, by_name(queue_members, "carol"))
    assert plan_of("rrmemory", queue_members, memory) == [["dave"], ["alice"], ["carol"], ["bob"]]


# -- who is never rung ----------------------------------------------------------------------------

def make_unavailable(how: str, a: AgentState) -> None:
    actions: dict[str, Callable[[], object]] = {
        "paused": lambda: a.pause("lunch", NOW - 10),
        "logged out": lambda: a.logout(NOW - 10),
        "busy on the phone": lambda: a.device("INUSE", NOW - 10),
        "on a queue call": lambda: (a.ringing(NOW - 60, Q), a.answered(NOW - 50)),
        "ringing": lambda: a.ringing(NOW - 5, "sales"),
        "in wrap-up": lambda: (a.ringing(NOW - 60, Q), a.answered(NOW - 50), a.call_ended(NOW - 5, 30)),
        "unregistered": lambda: a.device("UNAVAILABLE", NOW - 10),
    }
    actions[how]()


UNAVAILABLE = ["paused", "logged out", "busy on the phone", "on a queue call", "ringing", "in wrap-up",
               "unregistered"]


@pytest.mark.parametrize("how", UNAVAILABLE)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_unavailable_agent_is_skipped(strategy: str, how: str) -> None:
    queue_members = members("alice", "bob", "carol")
    make_unavailable(how, by_name(queue_members, "bob").agent)
    rung = [name for attempt in plan_of(strategy, queue_members) for name in attempt]
    assert sorted(rung) == ["alice", "carol"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_queue_with_no_available_agent_gives_an_empty_plan(strategy: str) -> None:
    queue_members = members("alice", "bob")
    for m in queue_members:
        m.agent.pause("meeting", NOW - 10)
    assert plan_of(strategy, queue_members) == []


def test_agent_in_wrapup_is_rung_again_from_the_instant_wrapup_ends() -> None:
    queue_members = members("alice", "bob")
    alice = by_name(queue_members, "alice").agent
    alice.ringing(NOW - 60, Q)
    alice.answered(NOW - 50)
    alice.call_ended(NOW, wrapup_s=30)
    assert plan_of("linear", queue_members, now=NOW + 29.9) == [["bob"]]
    assert plan_of("linear", queue_members, now=NOW + 30) == [["alice"], ["bob"]]


def test_agent_listed_twice_is_rung_once_at_the_lower_penalty() -> None:
    alice, bob = agent("alice"), agent("bob")
    queue_members = [Member(alice, 2, 0), Member(bob, 1, 1), Member(alice, 0, 2)]
    assert plan_of("linear", queue_members) == [["alice"], ["bob"]]


def test_unknown_strategy_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'roundrobin'"):
        plan_of("roundrobin", members("alice"))


# -- video ----------------------------------------------------------------------------------------

def video_queue() -> list[Member]:
    return [Member(agent("alice"), 0, 0), Member(agent("bob", ("audio", "video")), 0, 1),
            Member(agent("carol"), 0, 2), Member(agent("dave", ("audio", "video")), 1, 3)]


def test_video_caller_gets_video_agents_first_within_a_tier() -> None:
    plan = plan_of("linear", video_queue(), prefer_video=True)
    assert plan == [["bob"], ["alice"], ["carol"], ["dave"]]


def test_video_preference_does_not_jump_penalty_tiers() -> None:
    plan = plan_of("linear", video_queue(), prefer_video=True)
    assert plan.index(["dave"]) == 3


def test_ringall_for_a_video_caller_rings_the_video_agents_before_the_others() -> None:
    assert plan_of("ringall", video_queue(), prefer_video=True) == [["bob"], ["alice", "carol"]]


def test_video_only_rings_only_video_capable_agents() -> None:
    assert plan_of("linear", video_queue(), video_only=True) == [["bob"], ["dave"]]
    assert plan_of("ringall", video_queue(), video_only=True) == [["bob"]]


def test_audio_caller_ignores_video_capability() -> None:
    assert plan_of("ringall", video_queue()) == [["alice", "bob", "carol"]]


# -- properties -------------------------------------------------------------------------------------

SITUATIONS = ["free", "free", "free", *UNAVAILABLE]


@st.composite
def queues(draw: st.DrawFn) -> tuple[list[Member], StrategyMemory]:
    """A queue of agents in any situation, some with call history, sometimes an agent listed
    twice, and rrmemory pointing anywhere (even at a member since removed)."""
    count = draw(st.integers(0, 8))
    pool = []
    for i in range(count):
        a = agent(f"agent{i}", draw(st.sampled_from([("audio",), ("audio", "video")])))
        for ended in draw(st.lists(st.integers(1, 3000), max_size=3, unique=True)):
            complete_call(Member(a, 0, i), T0 + ended)
        situation = draw(st.sampled_from(SITUATIONS))
        if situation != "free":
            make_unavailable(situation, a)
        pool.append(a)
    listed = pool + draw(st.lists(st.sampled_from(pool), max_size=2)) if pool else []
    queue_members = [Member(a, draw(st.integers(0, 3)), order) for order, a in enumerate(listed)]
    memory = StrategyMemory()
    remembered = draw(st.none() | st.integers(0, 10))
    if remembered is not None:
        memory.remember(Q, Member(agent("gone"), 0, remembered))
    return queue_members, memory


Case = tuple[str, list[Member], Plan, bool]  # strategy, members, the plan, video_only


@st.composite
def plans(draw: st.DrawFn) -> Case:
    strategy = draw(st.sampled_from(STRATEGIES))
    queue_members, memory = draw(queues())
    video_only = draw(st.booleans())
    plan = choose(strategy, queue_members, NOW, memory, random.Random(draw(st.integers(0, 2**32))),
                  queue=Q, prefer_video=draw(st.booleans()), video_only=video_only)
    return strategy, queue_members, plan, video_only


def flat(plan: Plan) -> list[Member]:
    return [m for attempt in plan for m in attempt]


def eligible(queue_members: list[Member], video_only: bool) -> list[Member]:
    return [m for m in queue_members if m.agent.available(NOW) and (m.agent.video or not video_only)]


@given(plans())
def test_plan_never_rings_an_unavailable_agent(case: Case) -> None:
    _, _, plan, _ = case
    assert all(m.agent.available(NOW) for m in flat(plan))


@given(plans())
def test_plan_never_rings_the_same_agent_twice(case: Case) -> None:
    _, _, plan, _ = case
    rung = [id(m.agent) for m in flat(plan)]
    assert len(rung) == len(set(rung))


@given(plans())
def test_plan_rings_every_available_agent_of_the_lowest_tier(case: Case) -> None:
    _, queue_members, plan, video_only = case
    candidates = eligible(queue_members, video_only)
    if not candidates:
        assert plan == []
        return
    lowest = min(m.penalty for m in candidates)
    rung = {id(m.agent) for m in flat(plan)}
    assert {id(m.agent) for m in candidates if m.penalty == lowest} <= rung


@given(plans())
def test_higher_penalty_never_precedes_lower_penalty(case: Case) -> None:
    _, _, plan, _ = case
    penalties = [m.penalty for m in flat(plan)]
    assert penalties == sorted(penalties)


@given(plans())
def test_one_at_a_time_strategies_ring_one_agent_per_attempt_and_everyone_in_the_end(case: Case) -> None:
    strategy, queue_members, plan, video_only = case
    if strategy == "ringall":
        return
    assert all(len(attempt) == 1 for attempt in plan)
    assert {id(m.agent) for m in flat(plan)} == {id(m.agent) for m in eligible(queue_members, video_only)}
