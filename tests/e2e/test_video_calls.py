"""SIP video through the real lab: a sipp video phone (audio PCMU + video VP8) calls a video hotline,
waits in a queue that prefers video agents, and is bridged with a sipp video agent in the case's
SFU bridge; audio-only agents get video callers only after the queue's fallback wait."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE

pytestmark = pytest.mark.lab

ADDRESS = "video-desk"  # what the SIP video phone dials: a video hotline's address
VIDEO = ("audio", "video")


def video_queue(fallback: str) -> pytest.MarkDecorator:
    return pytest.mark.provision(BASE + f"""
[queues.vq]
strategy = "linear"
ring_timeout = 4
retry = 1
prefer_video_agents = true
video_fallback = {fallback}

[hotlines.videodesk]
entry = "queue:vq"

[numbers.{ADDRESS}]
hotline = "videodesk"
kind = "video"
""")


def start_phones(lab: Lab, *phones: tuple[Agent, str]) -> list[subprocess.Popen[str]]:
    started = [sipp.agent_phone(a.name, a.password, ring_ms=300, scenario=scenario) for a, scenario in phones]
    wait_until(lambda: all(registered(lab, a.name) for a, _ in phones), what="agent phones registered")
    return started


def stop(started: list[subprocess.Popen[str]]) -> None:
    for phone in started:
        if phone.poll() is None:
            phone.kill()
        phone.communicate()


def case_bridge(env: dict[str, str], case_id: int) -> dict[str, object]:
    status, body = ari_get(env, f"bridges/case-{case_id}")
    assert status == 200, body
    return dict(json.loads(body))


def answered_hop(db: psycopg.Connection) -> dict[str, object] | None:
    return next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None)


def ended_hops(db: psycopg.Connection, count: int) -> list[dict[str, object]]:
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == count,
               what=f"{count} hop(s) ended")
    return rows(db, "SELECT * FROM hops ORDER BY id")


@video_queue(fallback='"never"')
def test_a_sip_video_call_is_bridged_with_a_video_agent_in_an_sfu_bridge_with_video_both_ways(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    # The audio-only agent is first in linear order: a video caller must skip it.
    audio, video = logged_in_agents(daemon_env, tmp_path, "v", {"vq": 0}, {"vq": 0},
                                    capabilities=[("audio",), VIDEO])
    phones = start_phones(lab, (audio, "agent_answers.xml"), (video, "agent_answers_video.xml"))
    try:
        caller = sipp.start_call(ADDRESS, "video_caller_until_bye.xml", caller="sipp-video",
                                 source=sipp.VIDEO_PHONE)
        hop = wait_until(lambda: answered_hop(db), what="the video call answered by an agent")
        bridge = wait_until(lambda: case_bridge(daemon_env, hop["case_id"]), what="the case's bridge")
        assert bridge["video_mode"] == "sfu", bridge
        assert len(bridge["channels"]) == 2  # type: ignore[arg-type]
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        run = sipp.finish(caller)
        # The caller's scenario checked the 200 OK: a video stream accepted, VP8.
        assert run.ok, run.output[-2000:]
        [ended] = ended_hops(db, 1)
        assert (ended["media"], ended["channel_kind"], ended["dialled"]) == ("video", "sip", ADDRESS)
        ids = {r["name"]: r["id"] for r in rows(db, "SELECT name, id FROM agents")}
        assert ended["agent_id"] == ids[video.name]
        events = [(e["event"], e["agent_id"]) for e in rows(
            db, "SELECT event, agent_id FROM queue_events ORDER BY id")]
        assert events == [("join", None), ("ring", ids[video.name]), ("answer", ids[video.name]),
                          ("complete", ids[video.name])]
        # The video agent's scenario checked the INVITE: it offered VP8 video.
        assert sipp.finish(phones[1]).ok
    finally:
        stop(phones)


@video_queue(fallback="2")
def test_a_video_caller_falls_back_to_an_audio_agent_after_the_queues_wait(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [audio] = logged_in_agents(daemon_env, tmp_path, "f", {"vq": 0})
    phones = start_phones(lab, (audio, "agent_answers.xml"))
    try:
        caller = sipp.start_call(ADDRESS, "video_caller_audio_agent.xml", caller="sipp-video",
                                 source=sipp.VIDEO_PHONE)
        hop = wait_until(lambda: answered_hop(db), what="the video caller answered by the audio agent")
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        ended_hops(db, 1)
        events = {e["event"]: e["at"] for e in rows(db, "SELECT event, at FROM queue_events ORDER BY id")}
        waited = (events["ring"] - events["join"]).total_seconds()
        assert 2.0 <= waited < 4.0, f"the audio agent was rung {waited:.1f} s after the join"
        assert "answer" in events
    finally:
        stop(phones)
