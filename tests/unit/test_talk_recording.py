"""Recording of talks in the call's state machine, against the recording fake ARI client: which
bridge is recorded when, the records each segment makes in order (a transfer gives a second
segment with the next agent), a switch to video (the video leg records on its own hop), pause and
resume asked by a user event, a queue that records nothing, and one that records on demand (from the
start asked, to the talk's end or the stop asked). The lab tests
(tests/e2e/test_recording_calls.py) prove the files on Asterisk."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from test_handover import TOKEN, phone_talking_with_anna, video_centre, video_leg_enters
from test_transfers import CITY, talking_with_anna, two_queues

from hotline.asterisk.ari_events import ChannelUserevent
from hotline.engine.facts import RecordingStarted
from hotline.engine.messages import RecordingAsked
from hotline.engine.recording import (
    ENDED_UNWATCHED,
    NOT_ADOPTED,
    RECORDING_EVENT,
    TalkRecorder,
    announcement_of,
    record_mode,
    recording_asked,
    recording_name,
)
from hotline.engine.transfer import TRANSFER_EVENT
from hotline.provision.model import Hotline, Provisioning, Queue, Target
from hotline.store.hops import Hop
from hotline.store.recordings import OpenRecording

from support.engine import APP, NOW, Engine, StandInSwitches, channel, every_move_allowed  # noqa: F401


def user_event(channel_id: str, name: str, **variables: str) -> ChannelUserevent:
    return ChannelUserevent("ChannelUserevent", APP, NOW, channel=channel(channel_id, state="Up"),
                            eventname=name, variables=variables)


def recordings(engine: Engine) -> list[tuple[object, ...]]:
    """(kind, name, hop, agent, queue) of every recording record, in order."""
    return [(r["k"], r["name"], r.get("hop"), r.get("agent"), r.get("queue"))
            for r in engine.records.records if str(r["k"]).startswith("rec_")]


async def test_a_talk_of_a_recorded_queue_is_recorded_from_the_answer_to_its_end() -> None:
    engine = Engine(two_queues(record="always"), logged_in=("anna",))
    await talking_with_anna(engine)
    start = await engine.ari.wait_for("record_bridge")
    bridge, name, fmt = start.args
    assert (bridge, fmt) == ("case-101", "wav")
    assert engine.ari.names().index("record_bridge") > engine.ari.names().index("add_to_bridge")
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert recordings(engine) == [("rec_start", name, 1, 1, 2), ("rec_end", name, None, None, None)]
    started = next(r for r in engine.records.records if r["k"] == "rec_start")
    assert started["path"] == f"/var/spool/asterisk/recording/{name}.wav"
    kinds = [r["k"] if r["k"] != "event" else r["event"] for r in engine.records.records]
    assert kinds.index("rec_start") > kinds.index("answer")
    assert kinds.index("rec_end") > kinds.index("complete")


async def test_a_queue_that_records_never_asks_asterisk_for_nothing() -> None:
    engine = Engine(two_queues(), logged_in=("anna",))
    await talking_with_anna(engine)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert "record_bridge" not in engine.ari.names() and recordings(engine) == []


async def test_a_transfer_ends_the_first_segment_and_the_next_agents_talk_is_a_second() -> None:
    engine = Engine(two_queues(record="always"), logged_in=("anna", "boris"))
    await talking_with_anna(engine)
    first = (await engine.ari.wait_for("record_bridge")).args[1]
    engine.ari.send(user_event("c1", TRANSFER_EVENT, target="agent:boris", asked_by="cli", request="r1"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    engine.ari.answer_leg(boris_leg, "c1")
    second = (await engine.ari.wait_for("record_bridge", 2)).args[1]
    await engine.settle()
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert first != second
    # anna (1), then boris (2), both in the talk's queue, support (2): a transfer to an agent is a
    # visit of that queue
    assert recordings(engine) == [("rec_start", first, 1, 1, 2), ("rec_end", first, None, None, None),
                                  ("rec_start", second, 1, 2, 2), ("rec_end", second, None, None, None)]


async def test_pause_and_resume_asked_by_user_events_reach_asterisk_and_the_records() -> None:
    engine = Engine(two_queues(record="always"), logged_in=("anna",))
    await talking_with_anna(engine)
    name = (await engine.ari.wait_for("record_bridge")).args[1]
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="pause", asked_by="cli"))
    assert (await engine.ari.wait_for("pause_recording")).args == (name,)
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="pause", asked_by="cli"))  # paused already
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="resume", asked_by="agent:anna"))
    assert (await engine.ari.wait_for("resume_recording")).args == (name,)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.ari.names().count("pause_recording") == 1
    assert [k for k, *_ in recordings(engine)] == ["rec_start", "rec_pause", "rec_resume", "rec_end"]
    paused = next(r for r in engine.records.records if r["k"] == "rec_pause")
    assert paused["asked_by"] == "cli"


async def test_an_on_demand_queue_records_nothing_until_asked_then_to_the_talks_end() -> None:
    engine = Engine(two_queues(record="on_demand"), logged_in=("anna",))
    await talking_with_anna(engine)
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="pause", asked_by="cli"))  # nothing to pause
    await engine.settle()
    assert "record_bridge" not in engine.ari.names() and recordings(engine) == []
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="start", asked_by="agent:anna"))
    bridge, name, _ = (await engine.ari.wait_for("record_bridge")).args
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="start", asked_by="cli"))  # recording already
    await engine.settle()
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert bridge == "case-101" and engine.ari.names().count("record_bridge") == 1
    assert recordings(engine) == [("rec_start", name, 1, 1, 2), ("rec_end", name, None, None, None)]
    kinds = [r["k"] if r["k"] != "event" else r["event"] for r in engine.records.records]
    assert kinds.index("rec_end") > kinds.index("complete")


async def test_a_stop_asked_ends_the_recording_and_a_start_begins_a_new_one() -> None:
    engine = Engine(two_queues(record="on_demand"), logged_in=("anna",))
    await talking_with_anna(engine)
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="start", asked_by="cli"))
    first = (await engine.ari.wait_for("record_bridge")).args[1]
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="stop", asked_by="cli"))
    assert (await engine.ari.wait_for("stop_recording")).args == (first,)
    await engine.settle()
    assert [k for k, *_ in recordings(engine)] == ["rec_start", "rec_end"]
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="start", asked_by="cli"))
    second = (await engine.ari.wait_for("record_bridge", 2)).args[1]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert first != second
    assert [(k, n) for k, n, *_ in recordings(engine)] == [("rec_start", first), ("rec_end", first),
                                                          ("rec_start", second), ("rec_end", second)]


async def test_a_start_asked_of_a_queue_that_records_never_records_nothing() -> None:
    engine = Engine(two_queues(), logged_in=("anna",))
    await talking_with_anna(engine)
    engine.ari.send(user_event("c1", RECORDING_EVENT, action="start", asked_by="cli"))
    await engine.settle()
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert "record_bridge" not in engine.ari.names() and recordings(engine) == []


async def test_an_on_demand_recording_started_goes_on_in_the_next_segment_of_the_visit() -> None:
    ari = RecordsOnly()
    ctx = SimpleNamespace(ari=ari, recording_format="wav", recording_dir="/rec",
                          recording_finished=None)
    recorder, call = TalkRecorder(ctx, "on_demand", 3), MovingCall()  # type: ignore[arg-type]
    await recorder.start(call, 5)  # type: ignore[arg-type]
    assert ari.asked == []
    await recorder.ask(call, RecordingAsked("start", "cli"))  # type: ignore[arg-type]
    await recorder.end(call)  # type: ignore[arg-type]
    await recorder.ask(call, RecordingAsked("start", "cli"))  # type: ignore[arg-type]  # no talk now
    await recorder.start(call, 6)  # type: ignore[arg-type]  # an attended transfer completed
    assert [a[0] for a in ari.asked] == ["record", "stop", "record"]
    started = [f for f in call.facts if isinstance(f, RecordingStarted)]
    assert [f.agent_id for f in started] == [5, 6]


async def test_a_recording_queues_announcement_plays_before_the_caller_joins() -> None:
    engine = Engine(two_queues(record="on_demand", record_announcement="hotline/recorded"),
                    logged_in=("anna",))
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("originate")
    names = engine.ari.names()
    plays = [r.args for r in engine.ari.of("play")]
    assert plays[0] == ("c1", "sound:hotline/recorded")
    assert names.index("answer") < names.index("play") < names.index("originate")
    await engine.settle()
    events = [r["event"] for r in engine.records.records if r["k"] == "event"]
    assert events[0] == "join"


async def test_a_queue_that_records_never_announces_nothing() -> None:
    engine = Engine(two_queues(record_announcement="hotline/recorded"), logged_in=("anna",))
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("originate")
    assert all("hotline/recorded" not in str(r.args) for r in engine.ari.of("play"))


async def test_a_recording_asterisk_refuses_is_a_failed_row_and_the_talk_goes_on() -> None:
    engine = Engine(two_queues(record="always"), logged_in=("anna",))

    async def refused(bridge_id: str, name: str, fmt: str) -> None:
        from hotline.errors import AriError
        raise AriError("Internal Server Error", 500)
    engine.ari.record_bridge = refused  # type: ignore[method-assign]
    await talking_with_anna(engine)
    await engine.settle()
    assert engine.call("c1").state == "talking"
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    ended = [r for r in engine.records.records if r["k"] == "rec_end"]
    assert len(ended) == 1 and "Asterisk refused" in str(ended[0]["failed"])


def test_a_recording_request_is_start_stop_pause_or_resume_and_anything_else_is_none() -> None:
    asked = recording_asked(user_event("c1", RECORDING_EVENT, action="pause", asked_by="cli"))
    assert asked is not None and (asked.action, asked.asked_by) == ("pause", "cli")
    started = recording_asked(user_event("c1", RECORDING_EVENT, action="start", asked_by="agent:anna"))
    assert started is not None and started.action == "start"
    assert recording_asked(user_event("c1", RECORDING_EVENT, action="delete")) is None
    assert recording_asked(user_event("c1", TRANSFER_EVENT, action="pause")) is None


def test_a_recording_name_says_its_case_and_time_and_is_unique() -> None:
    a, b = recording_name(7, 0.0), recording_name(7, 0.0)
    assert a.startswith("case7-19700101-000000-") and a != b


async def test_a_switch_to_video_ends_the_phone_legs_recording_and_the_video_leg_records_on_its_own_hop(
) -> None:
    switches = StandInSwitches(TOKEN)
    prov = video_centre()
    prov = dataclasses.replace(prov, queues={"support": Queue("support", record="always")})
    engine = Engine(prov, logged_in=("anna",), switches=switches)
    agent_leg = await phone_talking_with_anna(engine)
    phone_recording = (await engine.ari.wait_for("record_bridge")).args[1]
    switches.replaces(engine.hops.opened[0], queue_id=1, agent_id=1)
    video_leg_enters(engine, TOKEN)
    video_recording = (await engine.ari.wait_for("record_bridge", 2)).args[1]
    await engine.settle()
    assert engine.ari.of("record_bridge")[1].args[0] == "case-101"  # the same bridge, the agent in it
    assert engine.ari.bridge_members["case-101"] == [agent_leg, "v1"]
    engine.ari.caller_hangs_up("v1")
    await engine.ended()
    assert [(k, name, hop, agent) for k, name, hop, agent, _ in recordings(engine)] == [
        ("rec_start", phone_recording, 1, 1), ("rec_end", phone_recording, None, None),
        ("rec_start", video_recording, 900, 1), ("rec_end", video_recording, None, None)]
    assert [r.args[0] for r in engine.ari.of("stop_recording")][0] == phone_recording


class MovingCall:
    """A call whose talk moves bridges (engine.camera's SFU move), as the recorder sees it."""

    def __init__(self) -> None:
        self.state = "talking"
        self.channel_id, self.case_id, self.bridge_id = "c1", 7, "case-7"
        self.facts: list[object] = []

    def note_facts(self, *facts: object) -> None:
        self.facts += facts


class RecordsOnly:
    def __init__(self) -> None:
        self.asked: list[tuple[str, ...]] = []

    async def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None:
        self.asked.append(("record", bridge_id, fmt))

    async def stop_recording(self, name: str) -> None:
        self.asked.append(("stop", name))

    async def pause_recording(self, name: str) -> None:
        self.asked.append(("pause", name))


async def test_a_talk_moved_to_an_sfu_bridge_is_recorded_anew_there_in_the_format_set() -> None:
    ari = RecordsOnly()
    ctx = SimpleNamespace(ari=ari, recording_format="gsm", recording_dir="/rec",
                          recording_finished=None)
    recorder, call = TalkRecorder(ctx, "always", 3), MovingCall()  # type: ignore[arg-type]
    await recorder.start(call, 5)  # type: ignore[arg-type]
    first = recorder.live.name if recorder.live else ""
    call.bridge_id = "case-7-video"
    await recorder.moved(call, 5)  # type: ignore[arg-type]
    assert ari.asked == [("record", "case-7", "gsm"), ("stop", first), ("record", "case-7-video", "gsm")]
    started = [f for f in call.facts if isinstance(f, RecordingStarted)]
    assert [(f.path.startswith("/rec/case7-"), f.path.endswith(".gsm"), f.queue_id, f.agent_id)
            for f in started] == [(True, True, 3, 5)] * 2
    assert [type(f).__name__ for f in call.facts] == ["RecordingStarted", "RecordingEnded",
                                                      "RecordingStarted"]


async def test_a_paused_recording_moved_to_an_sfu_bridge_stays_paused_there() -> None:
    ari = RecordsOnly()
    ctx = SimpleNamespace(ari=ari, recording_format="wav", recording_dir="/rec",
                          recording_finished=None)
    recorder, call = TalkRecorder(ctx, "always", 3), MovingCall()  # type: ignore[arg-type]
    await recorder.start(call, 5)  # type: ignore[arg-type]
    await recorder.ask(call, RecordingAsked("pause", "cli"))  # type: ignore[arg-type]
    call.bridge_id = "case-7-video"
    await recorder.moved(call, 5)  # type: ignore[arg-type]
    second = recorder.live.name if recorder.live else ""
    assert ari.asked[-2:] == [("record", "case-7-video", "wav"), ("pause", second)]
    assert recorder.live is not None and recorder.live.paused


def hotline_records(mode: str, announcement: str | None = None, **support: object) -> Provisioning:
    """two_queues() with hotline `city` recording `record` (its queues setting none follow it), and
    hotline `recorded` (entry: queue sales) recording always."""
    prov = two_queues(**support)
    hotlines = {**prov.hotlines,
                "city": dataclasses.replace(prov.hotlines["city"], record=mode,
                                            record_announcement=announcement),
                "recorded": Hotline("recorded", entry=Target("queue", "sales"), record="always")}
    return dataclasses.replace(prov, hotlines=hotlines)


def test_a_queues_own_record_wins_and_a_queue_without_one_has_its_hotlines() -> None:
    always = Hotline("city", Target("queue", "support"), record="always", record_announcement="h/rec")
    assert record_mode(Queue("support"), always) == "always"
    assert record_mode(Queue("support", record="never"), always) == "never"
    never = Hotline("x", Target("queue", "s"))
    assert record_mode(Queue("support", record="on_demand"), never) == "on_demand"
    assert record_mode(Queue("support"), None) == "never"
    assert announcement_of(Queue("support"), always, "always") == "h/rec"
    assert announcement_of(Queue("support", record_announcement="q/rec"), always, "always") == "q/rec"
    assert announcement_of(Queue("support", record="never"), always, "never") is None


async def test_a_hotline_that_records_always_records_the_talks_of_its_queues_without_a_record() -> None:
    engine = Engine(hotline_records("always"), logged_in=("anna",))
    await talking_with_anna(engine)
    name = (await engine.ari.wait_for("record_bridge")).args[1]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert recordings(engine) == [("rec_start", name, 1, 1, 2), ("rec_end", name, None, None, None)]


async def test_a_queue_that_records_never_under_a_hotline_that_records_always_records_nothing() -> None:
    engine = Engine(hotline_records("always", record="never"), logged_in=("anna",))
    await talking_with_anna(engine)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert "record_bridge" not in engine.ari.names() and recordings(engine) == []


async def test_a_talk_reached_by_a_transfer_to_another_hotline_follows_that_hotlines_record() -> None:
    engine = Engine(hotline_records("never"), logged_in=("anna", "boris"))
    await talking_with_anna(engine)
    engine.ari.send(user_event("c1", TRANSFER_EVENT, target="hotline:recorded", asked_by="cli", request="r1"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    engine.ari.answer_leg(boris_leg, "c1")
    name = (await engine.ari.wait_for("record_bridge")).args[1]
    await engine.settle()
    assert len(engine.ari.of("record_bridge")) == 1  # anna's talk (city: never) was not recorded
    assert recordings(engine) == [("rec_start", name, 1, 2, 1)]  # boris (2), in sales (1)


async def test_the_hotlines_announcement_is_played_once_per_call_before_the_first_recording_queue() -> None:
    engine = Engine(hotline_records("always", "hotline/recorded"), logged_in=("anna", "boris"))
    engine.call_in("c1", CITY)
    anna_leg = str((await engine.ari.wait_for("originate")).args[2])
    assert [r.args for r in engine.ari.of("play")][0] == ("c1", "sound:hotline/recorded")
    engine.ari.answer_leg(anna_leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    # sales records too (city's always) and would play city's announcement: not a second time
    engine.ari.send(user_event("c1", TRANSFER_EVENT, target="queue:sales", asked_by="cli", request="r1"))
    await engine.ari.wait_for("originate", 2)
    await engine.settle()
    assert [r.args for r in engine.ari.of("play")].count(("c1", "sound:hotline/recorded")) == 1


def talk_left_by_the_last_daemon(engine: Engine, *left: OpenRecording) -> Hop:
    """Caller c5 talking with anna in support when the daemon stopped, its recordings `left`
    open in the database."""
    answered = datetime.now(UTC) - timedelta(seconds=60)
    hop = engine.hops.leave_open(71, "c5", queue_id=2, agent_id=1, answered_at=answered, queued_at=answered)
    engine.ari.left_by_last_daemon("c5")
    engine.ari.left_by_last_daemon("c5-agent-1", "agent,c5", name="PJSIP/anna-00000001")
    engine.ari.bridge_members[f"case-{hop.case_id}"] = ["c5", "c5-agent-1"]
    engine.hops.recordings[71] = list(left)
    return hop


async def test_a_talk_adopted_after_a_restart_adopts_the_recording_asterisk_still_makes() -> None:
    engine = Engine(two_queues(record="always"), logged_in=("anna",))
    talk_left_by_the_last_daemon(engine, OpenRecording("rec-old", "wav", "recording"))
    engine.ari.recordings["rec-old"] = "recording"
    await engine.router.reconcile()
    await engine.settle()
    assert "record_bridge" not in engine.ari.names()  # no second recording of the same talk
    engine.ari.caller_hangs_up("c5")
    await engine.ended()
    assert recordings(engine) == [("rec_end", "rec-old", None, None, None)]
    assert [r.args for r in engine.ari.of("stop_recording")] == [("rec-old",)]
    kinds = [r["k"] if r["k"] != "event" else r["event"] for r in engine.records.records]
    assert kinds.index("rec_end") > kinds.index("complete")
    assert next(r for r in engine.records.records if r["k"] == "rec_end").get("failed") is None


async def test_a_recording_asterisk_no_longer_has_is_closed_failed_when_its_talk_is_adopted() -> None:
    engine = Engine(two_queues(record="always"), logged_in=("anna",))
    talk_left_by_the_last_daemon(engine, OpenRecording("rec-gone", "wav", "recording"))
    await engine.router.reconcile()
    await engine.settle()
    [ended] = [r for r in engine.records.records if r["k"] == "rec_end"]
    assert (ended["name"], ended["failed"]) == ("rec-gone", NOT_ADOPTED)
    assert "record_bridge" not in engine.ari.names()
    engine.ari.caller_hangs_up("c5")
    await engine.ended()
    assert engine.ari.of("stop_recording") == []


async def test_an_adopted_recording_paused_stays_paused_and_its_resume_reaches_asterisk() -> None:
    engine = Engine(two_queues(record="on_demand"), logged_in=("anna",))
    talk_left_by_the_last_daemon(engine, OpenRecording("rec-p", "wav", "paused"))
    engine.ari.recordings["rec-p"] = "paused"
    await engine.router.reconcile()
    await engine.settle()
    engine.ari.send(user_event("c5", RECORDING_EVENT, action="resume", asked_by="cli"))
    await engine.ari.wait_for("resume_recording")
    await engine.settle()
    assert recordings(engine) == [("rec_resume", "rec-p", None, None, None)]


async def test_a_daemon_stopping_during_a_recorded_talk_leaves_its_recording_to_the_next_one() -> None:
    engine = Engine(two_queues(record="always"), logged_in=("anna",))
    await talking_with_anna(engine)
    name = (await engine.ari.wait_for("record_bridge")).args[1]
    await engine.settle()
    await engine.router.close()  # SIGTERM: the calls' tasks cancelled, their channels left in Stasis
    assert [r[0] for r in recordings(engine)] == ["rec_start"]  # no end: the next daemon adopts it
    assert engine.ari.of("stop_recording") == [] and name


async def test_a_recorded_talk_ended_while_no_daemon_ran_has_its_recordings_stopped_and_closed() -> None:
    engine = Engine(two_queues(record="always"), logged_in=("anna",))
    answered = datetime.now(UTC) - timedelta(seconds=60)
    engine.hops.leave_open(71, "c5", queue_id=2, agent_id=1, answered_at=answered, queued_at=answered)
    engine.hops.recordings[71] = [OpenRecording("rec-a", "wav", "recording"), OpenRecording("rec-b", "wav",
                                                                                         "paused")]
    await engine.router.reconcile()  # its channel is not in Asterisk any more
    await engine.settle()
    assert [r.args for r in engine.ari.of("stop_recording")] == [("rec-a",), ("rec-b",)]
    ended = [(r["name"], r.get("failed")) for r in engine.records.records if r["k"] == "rec_end"]
    assert ended == [("rec-a", ENDED_UNWATCHED), ("rec-b", ENDED_UNWATCHED)]
    kinds = [(r["k"], r.get("hop") or r.get("name")) for r in engine.records.records]
    assert kinds.index(("rec_end", "rec-a")) > kinds.index(("close", 71))
