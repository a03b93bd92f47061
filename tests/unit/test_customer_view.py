"""What a customer's own page learns of its call (engine.customer_view): its place in line and the
queue's estimate while it waits, the agent's shown name once it talks, nothing of other callers;
and what a rating may hold (store.customer_ratings.check_rating)."""

from __future__ import annotations

import pytest

from hotline.engine.call_state import CallState
from hotline.engine.customer_view import CustomerView, view_of
from hotline.engine.queueing.queues import QueueManager
from hotline.errors import RatingRefused
from hotline.provision.model import Agent, Provisioning, Queue
from hotline.store.customer_ratings import check_rating

AGENTS = (Agent("anna", "anna-ep", display_name="Анна Смирнова", queues=(("support", 0),)),
          Agent("boris", "boris-ep", queues=(("support", 0),)))


def manager(now: list[float]) -> QueueManager:
    queues = QueueManager(clock=lambda: now[0])
    queues.provision(Provisioning(queues={"support": Queue("support")}, agents={a.name: a for a in AGENTS}))
    return queues


def test_a_waiting_caller_sees_its_own_place_and_the_estimate_shrinking_as_it_waits() -> None:
    now = [1_800_000_000.0]
    queues = manager(now)
    queues.join("support", "ahead", joined_at=now[0] - 30)
    mine = queues.join("support", "mine", joined_at=now[0] - 5)
    waiting = view_of(CallState.WAITING, "mine", None, 11, 7, queues, AGENTS)
    assert waiting == CustomerView("waiting", 11, 7, position=2, wait_s=None)  # nobody answered yet
    queues.holdtime["support"] = 125.0  # what the queue's answered callers waited
    now[0] += 20
    queues.leave(queues.waiting["support"][0])  # the caller ahead is served
    assert view_of(CallState.RINGING, "mine", None, 11, 7, queues, AGENTS).as_json() == {
        "stage": "waiting", "hop": 11, "position": 1, "wait_s": 100, "agent": ""}
    assert mine in queues.waiting["support"]


def test_a_talking_caller_sees_the_agents_display_name_or_their_name_and_a_routed_one_connecting() -> None:
    queues = manager([1_800_000_000.0])
    assert view_of(CallState.TALKING, "mine", "anna-ep", 11, 7, queues, AGENTS).agent == "Анна Смирнова"
    assert view_of(CallState.TALKING, "mine", "boris-ep", 11, 7, queues, AGENTS).agent == "boris"
    assert view_of(CallState.IN_MENU, "mine", None, 11, 7, queues, AGENTS).stage == "connecting"
    assert view_of(CallState.WAITING, "not-in-line", None, None, None, queues, AGENTS).stage == "connecting"


def test_a_rating_is_a_score_from_1_to_5_and_a_short_printable_comment() -> None:
    assert check_rating(5, "  Спасибо!\nБыстро  ") == (5, "Спасибо!\nБыстро")
    assert check_rating(1, "   ") == (1, None) and check_rating(3, None) == (3, None)
    for score in (0, 6, True, "5", 4.5, None):
        with pytest.raises(RatingRefused, match="1 to 5"):
            check_rating(score, None)
    for comment, said in (("x" * 501, "at most 500"), ("bell\x07", "control character"), (5, "is text")):
        with pytest.raises(RatingRefused, match=said):
            check_rating(4, comment)
