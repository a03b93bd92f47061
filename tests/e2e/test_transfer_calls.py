"""Transfers through the real lab: `hotline case transfer`, or the first agent's phone by a blind
REFER, passes a caller talking with one agent (sipp phones) to another queue, where the second
agent's phone rings and is bridged with the same caller on the same hop; the first agent's phone
hears the transfer done (NOTIFY, sipfrag 200) and gets its BYE. The rows say it: the first talk's
complete and transfer, the target queue's join and answer, and one row of transfers. A transfer
that cannot be done is refused (one line for the CLI, sipfrag 603 for the phone), the talk
untouched."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE
from support.transfer_checks import (
    bridge_channels,
    channel_name,
    if_two,
    phones,
    refer_accepted,
    sipfrags,
    stop,
)

pytestmark = pytest.mark.lab

NUMBER = "84950002255"
CALLER = "+79165554321"
TWO_QUEUES = pytest.mark.provision(BASE + """
[queues.tf_first]
ring_timeout = 5
wrapup = 0

[queues.tf_sales]
ring_timeout = 5

[hotlines.tf]
entry = "queue:tf_first"

[numbers."+74950002255"]
hotline = "tf"
""")


@TWO_QUEUES
def test_case_transfer_passes_the_caller_to_another_queue_whose_agent_answers_on_the_same_hop(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "t", {"tf_first": 0}, {"tf_sales": 0})
    started = phones(lab, first, second)
    try:
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                      None), what="the call answered by the first agent")
        case_id = hop["case_id"]
        before = wait_until(lambda: if_two(bridge_channels(daemon_env, case_id)),
                            what="caller and first agent bridged")
        assert f"PJSIP/{first.name}-" in channel_name(daemon_env, next(c for c in before
                                                                       if c != hop["channel_id"]))

        done = hotline_cli(daemon_env, "case", "transfer", str(case_id), "tf_sales")
        assert done.returncode == 0, done.stderr + daemon.log()
        assert done.stdout.strip() == f"case {case_id}: transferred to queue:tf_sales"
        assert sipp.finish(started[0]).ok  # the first agent's phone got its BYE

        def with_second_agent() -> list[str] | None:
            now = bridge_channels(daemon_env, case_id)
            return now if len(now) == 2 and hop["channel_id"] in now else None
        after = wait_until(with_second_agent, what="the caller bridged with the second agent")
        agent_leg = next(c for c in after if c != hop["channel_id"])
        assert f"PJSIP/{second.name}-" in channel_name(daemon_env, agent_leg)

        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(started[1]).ok  # the second agent's phone got its BYE too
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop(started)

    assert [h["end_reason"] for h in rows(db, "SELECT end_reason FROM hops")] == ["completed"]  # one hop
    events = rows(db, "SELECT q.name AS queue, e.event, a.name AS agent, e.detail, e.talk_ms"
                      " FROM queue_events e JOIN queues q ON q.id = e.queue_id"
                      " LEFT JOIN agents a ON a.id = e.agent_id ORDER BY e.id")
    assert [(e["queue"], e["event"], e["agent"]) for e in events] == [
        ("tf_first", "join", None), ("tf_first", "ring", first.name), ("tf_first", "answer", first.name),
        ("tf_first", "complete", first.name), ("tf_first", "transfer", first.name),
        ("tf_sales", "join", None), ("tf_sales", "ring", second.name), ("tf_sales", "answer", second.name),
        ("tf_sales", "complete", second.name)]
    assert events[3]["detail"] == "transferred to queue:tf_sales" and events[3]["talk_ms"] > 0
    [row] = rows(db, "SELECT t.kind, t.asked_by, q.name AS from_queue, a.name AS from_agent, t.target,"
                     " t.outcome FROM transfers t JOIN queues q ON q.id = t.from_queue_id"
                     " JOIN agents a ON a.id = t.from_agent_id")
    assert row == {"kind": "blind", "asked_by": "cli", "from_queue": "tf_first", "from_agent": first.name,
                   "target": "queue:tf_sales", "outcome": "transferred"}
    shown = hotline_cli(daemon_env, "case", "show", str(case_id))
    assert (f"blind transfer asked by cli from queue tf_first agent {first.name} to queue:tf_sales: "
            f"transferred") in shown.stdout


@TWO_QUEUES
def test_case_transfer_refuses_in_one_line_and_the_talk_goes_on(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "r", {"tf_first": 0})
    started = phones(lab, agent)
    try:
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                      None), what="the call answered")
        for target, says in (("nowhere", "unknown transfer target 'nowhere'"),
                             ("menu:main", "goes to queue:NAME, hotline:NAME, agent:NAME or number:NUMBER")):
            refused = hotline_cli(daemon_env, "case", "transfer", str(hop["case_id"]), target)
            assert refused.returncode == 1 and says in refused.stderr, refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1
        assert len(bridge_channels(daemon_env, hop["case_id"])) == 2  # still talking
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
        gone = hotline_cli(daemon_env, "case", "transfer", str(hop["case_id"]), "tf_sales")
        assert gone.returncode == 1
        assert f"case {hop['case_id']} has no call in progress" in gone.stderr
    finally:
        stop(started)
    assert rows(db, "SELECT id FROM transfers") == []  # refused before the daemon was asked


@TWO_QUEUES
def test_a_refer_from_the_agents_phone_passes_the_caller_to_another_queue_and_the_phone_hears_200(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "p", {"tf_first": 0}, {"tf_sales": 0})
    seen = tmp_path / "first-phone.msg"
    started = [sipp.agent_phone(first.name, first.password, ring_ms=200, scenario="agent_refers.xml",
                                more_fields=("1500", "tf_sales"), messages=seen),
               sipp.agent_phone(second.name, second.password, ring_ms=200)]
    try:
        wait_until(lambda: registered(lab, first.name) and registered(lab, second.name),
                   what="agent phones registered")
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                      None), what="the call answered by the first agent")
        referring = sipp.finish(started[0])
        assert referring.ok, referring.output + daemon.log()  # REFER 202, NOTIFYs answered, BYE
        assert refer_accepted(seen) and sipfrags(seen)[-1] == "SIP/2.0 200 OK", seen.read_text()

        def with_second_agent() -> list[str] | None:
            now = bridge_channels(daemon_env, hop["case_id"])
            return now if len(now) == 2 and hop["channel_id"] in now else None
        after = wait_until(with_second_agent, what="the caller bridged with the second agent")
        assert f"PJSIP/{second.name}-" in channel_name(daemon_env, next(c for c in after
                                                                        if c != hop["channel_id"]))
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(started[1]).ok
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop(started)
    [row] = rows(db, "SELECT kind, asked_by, target, outcome, request FROM transfers")
    assert row == {"kind": "blind", "asked_by": "phone", "target": "queue:tf_sales", "outcome": "transferred",
                   "request": None}
    events = rows(db, "SELECT q.name AS queue, e.event FROM queue_events e JOIN queues q ON q.id = e.queue_id"
                      " ORDER BY e.id")
    assert [(e["queue"], e["event"]) for e in events][3:6] == [
        ("tf_first", "complete"), ("tf_first", "transfer"), ("tf_sales", "join")]


@TWO_QUEUES
def test_a_refer_to_nothing_provisioned_is_declined_with_603_and_the_talk_goes_on(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "d", {"tf_first": 0})
    seen = tmp_path / "phone.msg"
    started = [sipp.agent_phone(agent.name, agent.password, ring_ms=200, scenario="agent_refers.xml",
                                more_fields=("1000", "5551234"), messages=seen)]
    try:
        wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                      None), what="the call answered")
        [refused] = wait_until(lambda: rows(db, "SELECT asked_by, target, outcome, detail FROM transfers"),
                               what="the refusal recorded")
        assert refused == {"asked_by": "phone", "target": "5551234", "outcome": "refused",
                           "detail": "unknown transfer target '5551234': "
                                     "no queue, hotline or agent has that name"}
        wait_until(lambda: seen.exists() and sipfrags(seen), what="the phone told")
        assert sipfrags(seen)[-1].startswith("SIP/2.0 603"), seen.read_text()
        assert len(bridge_channels(daemon_env, hop["case_id"])) == 2  # still talking
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(started[0]).ok  # the agent's phone got its BYE with the talk's end
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop(started)
    assert [r["end_reason"] for r in rows(db, "SELECT end_reason FROM hops")] == ["completed"]


VIDEO_QUEUES = pytest.mark.provision(BASE + """
[queues.tv_first]
ring_timeout = 5
wrapup = 0
prefer_video_agents = true
video_fallback = "never"

[queues.tv_second]
ring_timeout = 5
prefer_video_agents = true
video_fallback = "never"

[hotlines.tv]
entry = "queue:tv_first"

[numbers.video-transfer]
hotline = "tv"
kind = "video"
""")


@VIDEO_QUEUES
def test_a_video_caller_transferred_talks_on_video_with_the_next_video_agent(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "w", {"tv_first": 0}, {"tv_second": 0},
                                     capabilities=[("audio", "video"), ("audio", "video")])
    started = [sipp.agent_phone(a.name, a.password, ring_ms=200, scenario="agent_answers_video.xml")
               for a in (first, second)]
    try:
        wait_until(lambda: registered(lab, first.name) and registered(lab, second.name),
                   what="agent phones registered")
        caller = sipp.start_call("video-transfer", "video_caller_until_bye.xml", caller="sipp-video",
                                 source=sipp.VIDEO_PHONE, timeout_s=60)
        hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                      None), what="the video call answered by the first agent")
        done = hotline_cli(daemon_env, "case", "transfer", str(hop["case_id"]), "tv_second")
        assert done.returncode == 0, done.stderr + daemon.log()
        assert sipp.finish(started[0]).ok  # the first agent's phone got its BYE

        def video_bridge_with_second() -> dict[str, object] | None:
            status, body = ari_get(daemon_env, f"bridges/case-{hop['case_id']}")
            bridge = json.loads(body) if status == 200 else {"channels": []}
            legs = [c for c in bridge["channels"] if c != hop["channel_id"]]
            return bridge if len(bridge["channels"]) == 2 and legs and \
                f"PJSIP/{second.name}-" in channel_name(daemon_env, legs[0]) else None
        bridge = wait_until(video_bridge_with_second, what="the caller bridged with the second agent")
        assert bridge["video_mode"] == "sfu", bridge
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        run = sipp.finish(caller)
        assert run.ok, run.output[-2000:]
        assert sipp.finish(started[1]).ok  # its INVITE offered VP8 video (the scenario checks it)
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop(started)
    assert rows(db, "SELECT media, end_reason FROM hops") == [{"media": "video", "end_reason": "completed"}]
