"""The queue manager's bookkeeping: who waits in which order and who may ring whom."""

from __future__ import annotations

import pytest

from hotline.engine.queueing.queues import QueueManager
from hotline.engine.queueing.visit import holdtime_media
from hotline.provision.model import Agent, Provisioning, Queue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def manager(strategy: str = "linear", wrapup: int = 0, agents: tuple[str, ...] = ("anna", "boris"),
            ) -> tuple[QueueManager, Clock]:
    clock = Clock()
    m = QueueManager(clock=clock)
    m.provision(Provisioning(
        queues={"q": Queue("q", strategy=strategy, wrapup=wrapup)},
        agents={a: Agent(a, a, queues=(("q", 0),)) for a in agents}))
    m.presence({a: True for a in agents}, {})
    return m, clock


async def test_with_one_agent_free_the_longest_waiting_caller_rings_first() -> None:
    m, clock = manager(agents=("anna",))
    first = m.join("q", "c1")
    clock.now += 1
    second = m.join("q", "c2")
    assert m.next_attempt(second) == []
    assert [a.name for a in m.next_attempt(first)] == ["anna"]


async def test_a_caller_ahead_not_yet_ringing_does_not_hold_up_the_line_while_agents_are_free() -> None:
    m, clock = manager(agents=("anna", "boris", "vera"))
    first, second = m.join("q", "c1"), m.join("q", "c2")
    clock.now += 1
    third = m.join("q", "c3")
    assert len(m.next_attempt(third)) == 1  # two unrung callers ahead, three agents free
    assert len(m.next_attempt(second)) == 1
    assert len(m.next_attempt(first)) == 1  # the last free agent is still there for the first


async def test_a_caller_whose_node_is_out_of_reach_keeps_its_place_but_holds_nobody_up() -> None:
    m, clock = manager(agents=("anna",))
    woken: list[str] = []
    first = m.join("q", "c1")
    clock.now += 1
    second = m.join("q", "c2")
    second.wake = lambda: woken.append("c2")
    assert m.next_attempt(second) == []  # the first's turn
    assert m.set_away({"c1"}, True) == 1
    assert woken == ["c2"]  # told at once: its turn has come
    assert m.next_attempt(first) == []  # nobody rung on a node out of reach
    assert [a.name for a in m.next_attempt(second)] == ["anna"]
    assert m.set_away({"c1"}, True) == 0  # said twice, changes nothing
    assert m.set_away({"c1"}, False) == 1
    assert m.position(first) == 1  # back at its place, ahead of the second


async def test_the_next_caller_rings_another_agent_while_the_first_is_ringing() -> None:
    m, _ = manager()
    first, second = m.join("q", "c1"), m.join("q", "c2")
    assert [a.name for a in m.next_attempt(first)] == ["anna"]
    assert [a.name for a in m.next_attempt(second)] == ["boris"]


async def test_a_caller_restored_with_its_database_join_time_keeps_its_place() -> None:
    m, clock = manager()
    newcomer = m.join("q", "new")
    restored = m.join("q", "old", joined_at=clock.now - 60)
    assert m.position(restored) == 1 and m.position(newcomer) == 2


async def test_an_agent_in_wrapup_is_not_rung_until_it_ends() -> None:
    m, clock = manager(wrapup=10, agents=("anna",))
    caller = m.join("q", "c1")
    anna = m.next_attempt(caller)[0]
    m.ring_ended(caller, anna, answered=True)
    m.call_ended(anna, "q")
    m.leave(caller)
    nxt = m.join("q", "c2")
    assert m.next_attempt(nxt) == []
    clock.now += 10
    assert [a.name for a in m.next_attempt(nxt)] == ["anna"]


async def test_paused_logged_out_and_unregistered_agents_are_skipped() -> None:
    m, _ = manager(agents=("anna", "boris", "clara"))
    m.presence({"anna": True, "boris": False, "clara": True}, {"anna": "lunch"})
    m.device("clara", "UNAVAILABLE")
    caller = m.join("q", "c1")
    assert m.next_attempt(caller) == []
    m.device("clara", "NOT_INUSE")
    assert [a.name for a in m.next_attempt(caller)] == ["clara"]


async def test_an_unanswered_ring_frees_the_agent_for_the_next_attempt() -> None:
    m, _ = manager(agents=("anna",))
    caller = m.join("q", "c1")
    anna = m.next_attempt(caller)[0]
    m.ring_ended(caller, anna, answered=False)
    m.attempt_over(caller)
    assert [a.name for a in m.next_attempt(caller)] == ["anna"]


async def test_linear_goes_down_the_list_before_starting_over() -> None:
    m, _ = manager(strategy="linear", agents=("anna", "boris"))
    caller = m.join("q", "c1")
    anna = m.next_attempt(caller)[0]
    m.ring_ended(caller, anna, answered=False)
    assert m.attempt_over(caller) is False  # boris is still to be tried in this cycle
    boris = m.next_attempt(caller)[0]
    assert boris.name == "boris"
    m.ring_ended(caller, boris, answered=False)
    assert m.attempt_over(caller) is True  # cycle used up: the retry pause, then anna again
    assert [a.name for a in m.next_attempt(caller)] == ["anna"]


async def test_an_agent_who_became_unavailable_since_the_plan_is_skipped() -> None:
    m, _ = manager(strategy="linear", agents=("anna", "boris", "clara"))
    caller = m.join("q", "c1")
    anna = m.next_attempt(caller)[0]
    m.ring_ended(caller, anna, answered=False)
    m.attempt_over(caller)
    m.presence({"anna": True, "boris": True, "clara": True}, {"boris": "lunch"})
    assert [a.name for a in m.next_attempt(caller)] == ["clara"]


async def test_an_agent_paused_when_the_cycle_began_is_rung_when_its_turn_comes_if_back() -> None:
    # The plan is taken attempt by attempt, as app_queue looks at members when it rings them.
    m, _ = manager(strategy="linear", agents=("anna", "boris", "clara"))
    m.presence({"anna": True, "boris": True, "clara": True}, {"boris": "lunch"})
    caller = m.join("q", "c1")
    anna = m.next_attempt(caller)[0]
    m.ring_ended(caller, anna, answered=False)
    m.presence({"anna": True, "boris": True, "clara": True}, {})
    assert m.attempt_over(caller) is False
    assert [a.name for a in m.next_attempt(caller)] == ["boris"]


async def test_a_queue_of_hundreds_rings_in_rrmemory_order_across_callers() -> None:
    names = tuple(f"agent{i:03}" for i in range(300))
    m, _ = manager(strategy="rrmemory", agents=names)
    rung = []
    for n in range(5):
        caller = m.join("q", f"c{n}")
        agent = m.next_attempt(caller)[0]
        rung.append(agent.name)
        m.ring_ended(caller, agent, answered=False)
        m.leave(caller)
    assert rung == ["agent000", "agent001", "agent002", "agent003", "agent004"]


async def test_there_is_no_hold_time_estimate_before_a_caller_was_answered() -> None:
    m, _ = manager()
    assert m.estimated_wait(m.join("q", "c1")) is None


async def test_the_hold_time_estimate_follows_answered_waits_as_app_queue_weighs_them() -> None:
    m, clock = manager(agents=("anna",))
    for waited in (40.0, 80.0):  # 40, then 40 + (80 - 40) / 4 = 50
        caller = m.join("q", f"c{waited}")
        clock.now += waited
        anna = m.next_attempt(caller)[0]
        m.ring_ended(caller, anna, answered=True)
        m.call_ended(anna, "q")
        m.leave(caller)
    assert m.holdtime["q"] == 50.0
    newcomer = m.join("q", "c3")
    clock.now += 20
    assert m.estimated_wait(newcomer) == 30.0  # what is left of the estimate for this caller
    clock.now += 60
    assert m.estimated_wait(newcomer) == 0.0


async def test_unanswered_rings_do_not_move_the_hold_time_estimate() -> None:
    m, clock = manager(agents=("anna",))
    caller = m.join("q", "c1")
    clock.now += 30
    m.ring_ended(caller, m.next_attempt(caller)[0], answered=False)
    assert m.estimated_wait(caller) is None


@pytest.mark.parametrize("seconds, said", [
    (0, ["sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute"]),
    (29, ["sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute"]),
    (30, ["sound:queue-holdtime", "number:1", "sound:queue-minute"]),
    (89, ["sound:queue-holdtime", "number:1", "sound:queue-minute"]),
    (90, ["sound:queue-holdtime", "number:2", "sound:queue-minutes"]),
    (600, ["sound:queue-holdtime", "number:10", "sound:queue-minutes"]),
])
def test_hold_time_is_said_in_minutes_rounded_to_the_nearest(seconds: float, said: list[str]) -> None:
    assert holdtime_media(seconds) == said


async def test_an_agent_whose_answer_could_not_be_bridged_is_free_at_once_with_no_call_counted() -> None:
    # The caller hung up the moment the agent answered: app_queue frees the member, no wrap-up.
    m, _ = manager(strategy="fewestcalls", wrapup=30, agents=("anna",))
    caller = m.join("q", "c1")
    anna = m.next_attempt(caller)[0]
    m.ring_ended(caller, anna, answered=True)
    m.leave(caller)
    m.answer_dropped(anna)
    assert anna.calls_completed("q") == 0
    assert [a.name for a in m.next_attempt(m.join("q", "c2"))] == ["anna"]


def video_manager(fallback: int | None) -> tuple[QueueManager, Clock]:
    """Queue q prefers video agents; "vera" has video, "anna" has not and is first in linear order."""
    clock = Clock()
    m = QueueManager(clock=clock)
    m.provision(Provisioning(
        queues={"q": Queue("q", strategy="linear", prefer_video_agents=True, video_fallback=fallback)},
        agents={"anna": Agent("anna", "anna", queues=(("q", 0),)),
                "vera": Agent("vera", "vera", capabilities=frozenset({"audio", "video"}),
                              queues=(("q", 0),))}))
    m.presence({"anna": True, "vera": True}, {})
    return m, clock


async def test_a_video_caller_rings_only_video_agents_until_the_fallback_then_everyone() -> None:
    m, clock = video_manager(fallback=30)
    caller = m.join("q", "c1", video=True)
    assert [a.name for a in m.next_attempt(caller)] == ["vera"]
    m.ring_ended(caller, m.agents["vera"], answered=False)
    assert m.next_attempt(caller) == []  # vera did not answer: anna is audio-only, not yet
    clock.now += 29
    assert [a.name for a in m.next_attempt(caller)] == ["vera"]  # a new cycle, still video only
    m.ring_ended(caller, m.agents["vera"], answered=False)
    assert m.next_attempt(caller) == []
    clock.now += 1
    assert [a.name for a in m.next_attempt(caller)] == ["vera"]  # video first, then anna
    m.ring_ended(caller, m.agents["vera"], answered=False)
    assert [a.name for a in m.next_attempt(caller)] == ["anna"]


async def test_a_video_caller_never_falls_back_when_the_queue_says_never() -> None:
    m, clock = video_manager(fallback=None)
    caller = m.join("q", "c1", video=True)
    m.agents["vera"].ringing(clock.now, "q")  # busy with someone else
    clock.now += 3600
    assert m.next_attempt(caller) == []


async def test_fallback_zero_and_audio_callers_ring_audio_agents_at_once() -> None:
    m, _ = video_manager(fallback=0)
    video = m.join("q", "c1", video=True)
    assert [a.name for a in m.next_attempt(video)] == ["vera"]  # video agents still first
    m.ring_ended(video, m.agents["vera"], answered=False)
    assert [a.name for a in m.next_attempt(video)] == ["anna"]
    m2, _ = video_manager(fallback=None)
    audio = m2.join("q", "c2")
    assert [a.name for a in m2.next_attempt(audio)] == ["anna"]  # linear order, video ignored


async def test_a_continued_case_rings_its_last_agent_first_once_then_the_strategy() -> None:
    m, _ = manager(agents=("anna", "boris"))  # linear: anna first for anyone else
    caller = m.join("q", "c1", preferred="boris")
    assert [a.name for a in m.next_attempt(caller)] == ["boris"]
    m.ring_ended(caller, m.agents["boris"], answered=False)
    assert [a.name for a in m.next_attempt(caller)] == ["anna"]  # boris had his chance


async def test_a_last_agent_who_is_busy_or_not_in_the_queue_is_passed_over() -> None:
    m, clock = manager(agents=("anna", "boris"))
    m.agents["boris"].ringing(clock.now, "q")
    caller = m.join("q", "c1", preferred="boris")
    assert [a.name for a in m.next_attempt(caller)] == ["anna"]
    stranger = m.join("q", "c2", preferred="vera")  # not a member of q
    assert m.next_attempt(stranger) == []  # anna is ringing, boris busy: nobody free, no error
