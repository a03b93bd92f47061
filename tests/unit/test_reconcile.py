"""What a restarted (or reconnected) daemon does with the hops the last one left open: a call it
runs keeps its hop; a hop whose channel ended while no daemon watched, or between the channel list
and its adoption, is closed as its party left it (an abandon in line, a completed talk), or failed
when Asterisk restarted meanwhile, through the write-behind, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hotline.engine.call_state import CallState
from hotline.provision.model import Agent, Hotline, Number, Provisioning, Queue, Target

from support.engine import Engine, every_move_allowed  # noqa: F401


def centre() -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support")},
        hotlines={"city": Hotline("city", entry=Target("queue", "support"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={"anna": Agent("anna", "anna", queues=(("support", 0),))})


def closes(engine: Engine) -> list[tuple[object, ...]]:
    return [(r["hop"], r["reason"], r["cause_text"]) for r in engine.records.records if r["k"] == "close"]


async def test_hops_no_call_runs_after_adoption_close_as_their_party_left_and_a_live_call_keeps_its_own(
        ) -> None:
    engine = Engine(centre(), logged_in=("anna",))
    engine.call_in("c1", "84951234567")  # this daemon runs it: an ARI reconnect, not a restart
    await engine.ari.wait_for("originate")
    since = datetime.now(UTC) - timedelta(seconds=30)
    engine.hops.leave_open(50, "old-waiting", queue_id=1, queued_at=since)  # hung up while no daemon ran
    engine.hops.leave_open(51, "old-talking", queue_id=1, agent_id=7, queued_at=since, answered_at=since)
    engine.ari.listed_but_gone.add("old-talking")  # listed in Stasis, gone when fetched for adoption
    engine.hops.leave_open(52, "old-in-menu")
    engine.hops.leave_open(53, "callback-4-customer-1f")  # a callback's customer, never answered

    await engine.router.reconcile()

    unwatched = "ended while no daemon watched"
    assert closes(engine) == [(50, "abandoned", unwatched), (51, "completed", unwatched),
                              (52, "abandoned", unwatched), (53, "failed", f"not answered; {unwatched}")]
    steps = [(r["hop"], r["event"], r["agent"]) for r in engine.records.records
             if r["k"] == "event" and r["hop"] != 1]  # not c1's own join
    assert steps == [(50, "abandon", None), (51, "complete", 7)]  # each visit's outcome, for the statistics
    assert "old-talking" not in engine.router.calls
    assert engine.call("c1").state is CallState.RINGING
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert [c[:2] for c in closes(engine)][-1] == (1, "abandoned")


async def test_hops_of_calls_asterisk_cut_by_restarting_while_no_daemon_watched_are_failed() -> None:
    engine = Engine(centre(), logged_in=())
    engine.hops.leave_open(54, "before-the-restart", queue_id=1, queued_at=datetime.now(UTC))
    engine.ari.started_at = datetime.now(UTC) + timedelta(days=1)  # Asterisk started after the hop began

    await engine.router.reconcile()

    assert closes(engine) == [(54, "failed", "Asterisk restarted while no daemon watched")]
    assert [r for r in engine.records.records if r["k"] == "event"] == []  # no abandon: nobody left


async def test_a_caller_bridged_before_the_kill_but_recorded_waiting_talks_on_and_its_answer_is_recorded_once(
        ) -> None:
    """The daemon died between the bridge and the write-behind's next batch: the hop says waiting
    (no answer written), Asterisk says the caller talks with anna."""
    engine = Engine(centre(), logged_in=("anna",))
    hop = engine.hops.leave_open(60, "c9", queue_id=1, queued_at=datetime.now(UTC))
    engine.ari.left_by_last_daemon("c9")
    engine.ari.left_by_last_daemon("c9-agent-1", "agent,c9", name="PJSIP/anna-00000001")
    engine.ari.bridge_members[f"case-{hop.case_id}"] = ["c9", "c9-agent-1"]

    await engine.router.reconcile()
    await engine.settle()

    assert engine.call("c9").state is CallState.TALKING
    assert engine.ari.of("originate") == [] and engine.ari.of("start_moh") == []  # nobody else rung
    assert engine.queues.agents["anna"].queue == "support"  # busy with it, rung for nobody else
    engine.ari.caller_hangs_up("c9")
    await engine.ended()
    assert engine.records.summary() == [("event", 60, "answer"), ("event", 60, "complete"),
                                        ("close", 60, "completed")]
    assert [r.args[0] for r in engine.ari.of("hangup")] == ["c9-agent-1"]


async def test_a_caller_recorded_waiting_and_alone_is_back_in_line() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    engine.hops.leave_open(61, "c8", queue_id=1, queued_at=datetime.now(UTC))
    engine.ari.left_by_last_daemon("c8")

    await engine.router.reconcile()
    await engine.ari.wait_for("originate")  # anna is rung for it
    assert engine.call("c8").state is CallState.RINGING
    assert engine.records.summary() == [("event", 61, "ring")]  # no second join


async def test_a_waiting_caller_who_hangs_up_during_adoption_is_an_abandon_not_a_failure() -> None:
    """Listed by the reconcile, gone when the call subscribes to its channel (Asterisk: 422), its
    StasisEnd and ChannelDestroyed right behind: the caller left by themselves."""
    engine = Engine(centre(), logged_in=("anna",))
    engine.ari.all_channels = False  # the call subscribes to its own channel
    engine.hops.leave_open(62, "c7", queue_id=1, queued_at=datetime.now(UTC))
    engine.ari.left_by_last_daemon("c7")
    real_subscribe = engine.ari.subscribe

    async def caller_leaves_first(app: str, event_source: str) -> None:
        engine.ari.caller_hangs_up("c7")  # the BYE, a moment before the subscription
        await real_subscribe(app, event_source)

    engine.ari.subscribe = caller_leaves_first  # type: ignore[method-assign]
    await engine.router.reconcile()
    await engine.ended()
    assert engine.records.summary()[-2:] == [("event", 62, "abandon"), ("close", 62, "abandoned")]


async def test_an_adopted_channel_gone_with_no_end_event_counts_as_vanished() -> None:
    engine = Engine(centre(), logged_in=())
    engine.ari.all_channels = False
    engine.hops.leave_open(63, "c6", queue_id=1, queued_at=datetime.now(UTC))
    engine.ari.left_by_last_daemon("c6")
    real_subscribe = engine.ari.subscribe

    async def gone_silently(app: str, event_source: str) -> None:
        engine.ari.live.discard("c6")  # no StasisEnd, no ChannelDestroyed will come
        await real_subscribe(app, event_source)

    engine.ari.subscribe = gone_silently  # type: ignore[method-assign]
    await engine.router.reconcile()
    await engine.ended(timeout=5)
    assert closes(engine)[-1] == (63, "failed", "channel gone while the daemon was away")


async def test_a_caller_a_transfer_not_answered_put_first_in_line_is_back_first_not_by_join_time() -> None:
    """c2 joined after c1, but its visit began first in line (a transfer to one agent nobody
    answered, as the hop's queue events say): after the restart it is still ahead of c1."""
    engine = Engine(centre(), logged_in=("anna",))
    engine.queues.device("anna", "INUSE")  # busy while both are adopted
    earlier = datetime.now(UTC)
    engine.hops.leave_open(61, "c1", queue_id=1, queued_at=earlier)
    engine.hops.leave_open(62, "c2", queue_id=1, queued_at=earlier + timedelta(seconds=5))
    engine.hops.first_in_line.add(62)
    engine.ari.left_by_last_daemon("c1")
    engine.ari.left_by_last_daemon("c2")

    await engine.router.reconcile()
    await engine.settle()
    engine.queues.device("anna", "NOT_INUSE")  # free: the first in line is rung
    ring = await engine.ari.wait_for("originate")
    assert ring.args[1] == "agent,c2"
    assert engine.call("c1").state is CallState.WAITING


async def test_a_caller_first_in_line_is_adopted_first_and_so_takes_the_agent_free_at_the_restart() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    earlier = datetime.now(UTC)
    engine.hops.leave_open(61, "c1", queue_id=1, queued_at=earlier)
    engine.hops.leave_open(62, "c2", queue_id=1, queued_at=earlier + timedelta(seconds=5))
    engine.hops.first_in_line.add(62)
    engine.ari.left_by_last_daemon("c1")
    engine.ari.left_by_last_daemon("c2")

    await engine.router.reconcile()
    ring = await engine.ari.wait_for("originate")
    assert ring.args[1] == "agent,c2"


async def test_a_lost_nodes_talk_ends_failed_with_the_loss_once_and_a_hop_no_call_owned_closes_too() -> None:
    """The node given up (hotline.engine.node_loss): the talk's task ends with the loss as its
    cause and writes its visit's complete; it may be over before the open hops are read, its close
    still in the write-behind, and is then not closed a second time as a hop nobody owned."""
    engine = Engine(centre(), logged_in=("anna",))
    engine.call_in("c1", "84951234567")
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    engine.hops.leave_open(70, "left-waiting", queue_id=1, queued_at=datetime.now(UTC))
    why = "node lost: test's Asterisk unreachable for 5 s"

    await engine.router.give_up(why)
    await engine.ended()

    assert closes(engine) == [(1, "failed", why), (70, "failed", why)]
    steps = [(r["hop"], r["event"]) for r in engine.records.records
             if r["k"] == "event" and r["event"] in ("complete", "abandon")]
    assert steps == [(1, "complete"), (70, "abandon")]
