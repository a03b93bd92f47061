"""An agent's status as a supervisor would read it: login, pause, ringing, talking, wrap-up, phone."""

from __future__ import annotations

import pytest

from hotline.engine.queueing.agent_state import AgentState, AgentStatus, Transition
from hotline.errors import HotlineError, IllegalTransition, InvalidEvent
from hotline.provision.model import Agent

S = AgentStatus
T0 = 1_700_000_000.0  # a plausible epoch time; the engine uses the database's clock


def free_agent(name: str = "alice") -> AgentState:
    agent = AgentState(name, f"{name}-phone", {"audio"})
    agent.login(T0)
    agent.device("NOT_INUSE", T0)
    return agent


def after_call(agent: AgentState, ended: float, wrapup_s: float, queue: str = "support") -> None:
    agent.ringing(ended - 30, queue)
    agent.answered(ended - 25)
    agent.call_ended(ended, wrapup_s)


def moves(transitions: list[Transition]) -> list[tuple[AgentStatus, AgentStatus]]:
    return [(t.old, t.new) for t in transitions]


# -- presence and pause ---------------------------------------------------------------------------

def test_new_agent_is_logged_out_and_not_available() -> None:
    agent = AgentState("alice", "alice-phone", {"audio"})
    assert agent.status(T0) is S.LOGGED_OUT
    assert not agent.available(T0)


def test_login_makes_agent_free_and_returns_the_transition() -> None:
    agent = AgentState("alice", "alice-phone", {"audio"})
    assert agent.login(T0) == [Transition("alice", S.LOGGED_OUT, S.FREE, T0, "login")]
    assert agent.available(T0)


def test_agent_state_is_built_from_the_provisioned_agent() -> None:
    provisioned = Agent("bob", "bob-phone", capabilities=frozenset({"audio", "video"}))
    agent = AgentState.from_agent(provisioned)
    assert (agent.name, agent.endpoint, agent.video) == ("bob", "bob-phone", True)


def test_paused_agent_is_not_available_and_keeps_the_reason() -> None:
    agent = free_agent()
    assert moves(agent.pause("lunch", T0 + 1)) == [(S.FREE, S.PAUSED)]
    assert agent.pause_reason == "lunch"
    assert not agent.available(T0 + 2)


def test_unpause_makes_agent_free_again() -> None:
    agent = free_agent()
    agent.pause("lunch", T0 + 1)
    assert moves(agent.unpause(T0 + 60)) == [(S.PAUSED, S.FREE)]
    assert agent.pause_reason is None


def test_logout_forgets_the_pause_so_next_login_starts_free() -> None:
    agent = free_agent()
    agent.pause("lunch", T0 + 1)
    assert moves(agent.logout(T0 + 2)) == [(S.PAUSED, S.LOGGED_OUT)]
    agent.login(T0 + 3)
    assert agent.status(T0 + 3) is S.FREE


@pytest.mark.parametrize("action", ["login twice", "pause twice", "unpause unpaused",
                                    "logout logged out", "pause logged out"])
def test_presence_actions_that_make_no_sense_raise_a_clear_error(action: str) -> None:
    agent = AgentState("alice", "alice-phone")
    steps = {
        "login twice": [agent.login, agent.login],
        "pause twice": [agent.login, lambda now: agent.pause("a", now), lambda now: agent.pause("b", now)],
        "unpause unpaused": [agent.login, agent.unpause],
        "logout logged out": [agent.logout],
        "pause logged out": [lambda now: agent.pause("a", now)],
    }[action]
    for step in steps[:-1]:
        step(T0)
    with pytest.raises(IllegalTransition, match="agent alice: cannot") as info:
        steps[-1](T0)
    assert isinstance(info.value, HotlineError)


# -- ringing and calls ----------------------------------------------------------------------------

def test_a_call_goes_ringing_busy_wrapup_free() -> None:
    agent = free_agent()
    seen = agent.ringing(T0 + 10, "support")
    seen += agent.answered(T0 + 15)
    seen += agent.call_ended(T0 + 75, wrapup_s=30)
    seen += agent.settle(T0 + 200)
    assert moves(seen) == [(S.FREE, S.RINGING), (S.RINGING, S.BUSY), (S.BUSY, S.WRAPUP),
                           (S.WRAPUP, S.FREE)]
    assert [t.at for t in seen] == [T0 + 10, T0 + 15, T0 + 75, T0 + 105]


def test_unanswered_ring_makes_agent_free_again() -> None:
    agent = free_agent()
    agent.ringing(T0 + 10, "support")
    assert moves(agent.ring_ended_unanswered(T0 + 25)) == [(S.RINGING, S.FREE)]
    assert agent.queue is None


def test_ringing_agent_is_not_offered_a_second_caller() -> None:
    agent = free_agent()
    agent.ringing(T0 + 10, "support")
    assert not agent.available(T0 + 11)
    with pytest.raises(IllegalTransition, match="cannot ring while ringing"):
        agent.ringing(T0 + 11, "sales")


@pytest.mark.parametrize("busy_with", ["paused", "logged out", "on a call", "in wrap-up", "unregistered"])
def test_ringing_an_unavailable_agent_is_refused(busy_with: str) -> None:
    agent = free_agent()
    {
        "paused": lambda: agent.pause("lunch", T0),
        "logged out": lambda: agent.logout(T0),
        "on a call": lambda: (agent.ringing(T0, "q"), agent.answered(T0)),
        "in wrap-up": lambda: after_call(agent, T0, wrapup_s=60),
        "unregistered": lambda: agent.device("UNAVAILABLE", T0),
    }[busy_with]()
    with pytest.raises(IllegalTransition, match="not available"):
        agent.ringing(T0 + 1, "support")


@pytest.mark.parametrize("step", ["answered", "ring_ended_unanswered"])
def test_answer_or_ring_end_without_a_ring_is_refused(step: str) -> None:
    agent = free_agent()
    with pytest.raises(IllegalTransition, match="not ringing"):
        getattr(agent, step)(T0 + 1)


def test_call_end_without_a_call_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="not on a call"):
        free_agent().call_ended(T0 + 1, wrapup_s=0)


def test_completed_calls_and_last_call_end_are_counted_per_queue() -> None:
    agent = free_agent()
    after_call(agent, T0 + 100, wrapup_s=0, queue="support")
    after_call(agent, T0 + 200, wrapup_s=0, queue="support")
    after_call(agent, T0 + 300, wrapup_s=0, queue="sales")
    assert (agent.calls_completed("support"), agent.calls_completed("sales")) == (2, 1)
    assert agent.last_call_ended_at("support") == T0 + 200
    assert agent.last_call_ended_at("billing") is None


def test_unanswered_rings_are_not_counted_as_calls() -> None:
    agent = free_agent()
    agent.ringing(T0 + 10, "support")
    agent.ring_ended_unanswered(T0 + 25)
    assert agent.calls_completed("support") == 0
    assert agent.last_call_ended_at("support") is None


# -- wrap-up ends by itself -----------------------------------------------------------------------

def test_wrapup_ends_by_itself_at_the_exact_instant() -> None:
    agent = free_agent()
    after_call(agent, T0 + 100, wrapup_s=30)
    assert agent.status(T0 + 129.999) is S.WRAPUP
    assert not agent.available(T0 + 129.999)
    assert agent.status(T0 + 130) is S.FREE
    assert agent.available(T0 + 130)


def test_wrapup_of_zero_seconds_frees_the_agent_at_once() -> None:
    agent = free_agent()
    agent.ringing(T0, "support")
    agent.answered(T0 + 5)
    assert moves(agent.call_ended(T0 + 60, wrapup_s=0)) == [(S.BUSY, S.FREE)]


def test_end_of_wrapup_is_recorded_at_its_own_time_by_the_next_change() -> None:
    agent = free_agent()
    after_call(agent, T0 + 100, wrapup_s=30)
    seen = agent.pause("coffee", T0 + 500)
    assert [(t.old, t.new, t.at, t.cause) for t in seen] == [
        (S.WRAPUP, S.FREE, T0 + 130, "wrapup_ended"),
        (S.FREE, S.PAUSED, T0 + 500, "pause"),
    ]


def test_settle_before_the_end_of_wrapup_records_nothing() -> None:
    agent = free_agent()
    after_call(agent, T0 + 100, wrapup_s=30)
    assert agent.settle(T0 + 110) == []
    assert moves(agent.settle(T0 + 131)) == [(S.WRAPUP, S.FREE)]
    assert agent.settle(T0 + 132) == []


def test_pause_during_a_call_leaves_agent_paused_not_in_wrapup_when_it_ends() -> None:
    agent = free_agent()
    agent.ringing(T0, "support")
    agent.answered(T0 + 5)
    assert agent.pause("training", T0 + 10) == []  # still busy: nothing to record yet
    assert moves(agent.call_ended(T0 + 60, wrapup_s=30)) == [(S.BUSY, S.PAUSED)]
    assert moves(agent.unpause(T0 + 70)) == [(S.PAUSED, S.WRAPUP)]
    assert agent.status(T0 + 90) is S.FREE


def test_logout_during_a_call_lets_the_call_end_normally() -> None:
    agent = free_agent()
    agent.ringing(T0, "support")
    agent.answered(T0 + 5)
    assert moves(agent.logout(T0 + 10)) == [(S.BUSY, S.LOGGED_OUT)]
    assert agent.call_ended(T0 + 60, wrapup_s=30) == []
    assert agent.calls_completed("support") == 1


# -- the phone, as Asterisk reports it --------------------------------------------------------------

@pytest.mark.parametrize("state", ["INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"])
def test_phone_in_use_makes_agent_busy_even_for_a_call_we_did_not_place(state: str) -> None:
    agent = free_agent()
    assert [(t.old, t.new, t.cause) for t in agent.device(state, T0 + 1)] == [
        (S.FREE, S.BUSY, f"device:{state}")]
    assert not agent.available(T0 + 1)
    assert moves(agent.device("NOT_INUSE", T0 + 90)) == [(S.BUSY, S.FREE)]


@pytest.mark.parametrize("state", ["UNAVAILABLE", "INVALID"])
def test_unregistered_phone_takes_agent_out_until_it_registers_again(state: str) -> None:
    agent = free_agent()
    assert moves(agent.device(state, T0 + 1)) == [(S.FREE, S.UNAVAILABLE)]
    assert not agent.available(T0 + 2)
    assert moves(agent.device("NOT_INUSE", T0 + 3)) == [(S.UNAVAILABLE, S.FREE)]


def test_unknown_device_state_counts_as_free_as_in_app_queue() -> None:
    agent = AgentState("alice", "alice-phone")
    agent.login(T0)
    assert agent.device_state == "UNKNOWN"
    assert agent.available(T0)


def test_login_with_an_unregistered_phone_is_not_available() -> None:
    agent = AgentState("alice", "alice-phone")
    agent.device("UNAVAILABLE", T0)
    assert moves(agent.login(T0 + 1)) == [(S.LOGGED_OUT, S.UNAVAILABLE)]


def test_device_state_is_read_case_insensitively() -> None:
    agent = free_agent()
    agent.device("inuse", T0 + 1)
    assert agent.device_state == "INUSE"


def test_nonsense_device_state_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEvent, match="FROBNICATED"):
        free_agent().device("FROBNICATED", T0 + 1)


def test_our_own_call_showing_in_use_on_the_phone_records_no_extra_transition() -> None:
    agent = free_agent()
    agent.ringing(T0, "support")
    assert agent.device("RINGING", T0 + 0.1) == []
    agent.answered(T0 + 5)
    assert agent.device("INUSE", T0 + 5.1) == []
    assert moves(agent.call_ended(T0 + 60, wrapup_s=10)) == [(S.BUSY, S.WRAPUP)]
    assert agent.device("NOT_INUSE", T0 + 60.2) == []  # still in wrap-up
    assert agent.status(T0 + 70) is S.FREE


def test_phone_still_in_use_after_wrapup_keeps_agent_busy() -> None:
    agent = free_agent()
    after_call(agent, T0 + 100, wrapup_s=10)
    agent.device("INUSE", T0 + 101)  # the agent dialled out during wrap-up
    assert agent.status(T0 + 105) is S.WRAPUP
    assert agent.status(T0 + 111) is S.BUSY
    assert moves(agent.settle(T0 + 120)) == [(S.WRAPUP, S.BUSY)]
