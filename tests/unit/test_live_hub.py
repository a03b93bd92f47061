"""The pages' live hub: what a call publishes reaches the subscribers of its topic only, a slow
page loses its oldest events and never blocks the publisher, and closing ends every stream."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

from hotline.engine.live_hub import (
    ANSWERED,
    GONE,
    RINGING,
    WALLBOARD,
    LiveHub,
    RingNews,
    agent_topic,
    ring_event,
    sse_frame,
)

NEWS = RingNews(agent="ivanov", leg="ch-1-agent-ab12cd34", case_id=7, hop_id=9, queue="support",
                caller="+79161234567", caller_name="Petr", waiting_since=1_796_000_000.25,
                keys="12")


async def test_an_event_reaches_the_subscribers_of_its_topic_only() -> None:
    hub = LiveHub()
    ivanov, petrov, board = (hub.subscribe(agent_topic("ivanov")), hub.subscribe(agent_topic("petrov")),
                             hub.subscribe(WALLBOARD))
    hub.publish(agent_topic("ivanov"), {"n": 1})
    assert await ivanov.get(0.1) == {"n": 1}
    assert await petrov.get(0.05) is None and await board.get(0.05) is None


async def test_a_full_queue_drops_its_oldest_events_and_counts_them() -> None:
    hub = LiveHub(size=3)
    page = hub.subscribe(WALLBOARD)
    for n in range(5):
        hub.publish(WALLBOARD, {"n": n})  # returns at once: nobody reads
    assert page.dropped == 2
    assert [await page.get(0.1) for _ in range(3)] == [{"n": 2}, {"n": 3}, {"n": 4}]


async def test_a_slow_page_never_holds_the_publisher_nor_the_other_pages() -> None:
    hub = LiveHub(size=2)
    slow, quick = hub.subscribe(WALLBOARD), hub.subscribe(WALLBOARD)
    for n in range(1000):
        hub.publish(WALLBOARD, {"n": n})
        assert await quick.get(0.1) == {"n": n}
    assert len(slow.events) == 2 and slow.dropped == 998


async def test_a_waiting_get_wakes_with_the_next_event() -> None:
    hub = LiveHub()
    page = hub.subscribe(WALLBOARD)
    waiting = asyncio.create_task(page.get(5))
    await asyncio.sleep(0.01)
    hub.publish(WALLBOARD, {"n": 1})
    assert await asyncio.wait_for(waiting, 1) == {"n": 1}


async def test_an_unsubscribed_page_gets_nothing_more_and_the_hub_forgets_it() -> None:
    hub = LiveHub()
    page = hub.subscribe(agent_topic("ivanov"))
    assert hub.subscribers(agent_topic("ivanov")) == 1
    page.close()
    page.close()  # idempotent
    hub.publish(agent_topic("ivanov"), {"n": 1})
    assert hub.subscribers(agent_topic("ivanov")) == 0
    assert await page.get(0.05) is None and not page.events


async def test_closing_the_hub_ends_every_waiting_stream_and_refuses_new_ones() -> None:
    hub = LiveHub()
    pages = [hub.subscribe(WALLBOARD), hub.subscribe(agent_topic("ivanov"))]
    waiting = [asyncio.create_task(p.get(30)) for p in pages]
    await asyncio.sleep(0.01)
    hub.close()
    assert await asyncio.wait_for(asyncio.gather(*waiting), 1) == [None, None]
    assert all(p.closed for p in pages)
    late = hub.subscribe(WALLBOARD)
    assert late.closed and await late.get(0.05) is None and hub.subscribers(WALLBOARD) == 0


def test_a_ring_event_names_the_state_the_agent_the_case_and_the_caller() -> None:
    event = ring_event(NEWS, RINGING)
    at = event.pop("at")
    assert event == {"state": "ringing", "agent": "ivanov", "ring": "ch-1-agent-ab12cd34", "case": 7,
                     "hop": 9,
                     "queue": "support", "caller": "+79161234567", "caller_name": "Petr", "keys": "12",
                     "kind": "queue",
                     "waiting_since": "2026-11-30T00:53:20.250000+00:00"}
    assert abs((datetime.fromisoformat(str(at)) - datetime.now(UTC)).total_seconds()) < 5


def test_answered_and_gone_name_the_same_ring_and_gone_says_why() -> None:
    answered, gone = ring_event(NEWS, ANSWERED), ring_event(NEWS, GONE, "ring timeout")
    assert (answered["state"], answered["ring"], "detail" in answered) == ("answered", NEWS.leg, False)
    assert (gone["state"], gone["ring"], gone["detail"]) == ("gone", NEWS.leg, "ring timeout")


def test_an_sse_frame_is_one_event_line_and_one_json_data_line() -> None:
    frame = sse_frame("screenpop", {"caller": "+7 916\nx", "at": datetime(2026, 12, 3, tzinfo=UTC),
                                    "sl": Decimal("87.5")})
    kind, data, end = frame.decode().split("\n", 2)
    assert kind == "event: screenpop" and end == "\n"
    assert json.loads(data.removeprefix("data: ")) == {"caller": "+7 916\nx", "sl": 87.5,
                                                       "at": "2026-12-03T00:00:00+00:00"}
