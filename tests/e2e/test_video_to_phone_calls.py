"""From video to phone through the real lab: a sipp SIP video phone talks with an agent, and
`hotline case switch CASE --to phone` has the daemon dial the customer's phone through the
provisioned trunk (the far end is a sipp UAS on the lab carrier's address); answered, the phone leg
joins the case's bridge and the video leg is hung up, the agent's channel never leaving the
bridge. The browser version (Chromium's page) is tests/browser/test_video_to_phone.py."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab
from hotline.lab.asterisk_conf import CARRIER_ADDRESS

from support import sipp
from support.agents import logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE

pytestmark = pytest.mark.lab

ADDRESS = "video-desk"
CUSTOMER = "+79161234567"
SCENARIOS = Path(__file__).resolve().parents[1] / "support" / "scenarios"
DESK = pytest.mark.provision(BASE + f"""
[queues.vq]
ring_timeout = 15

[hotlines.videodesk]
entry = "queue:vq"

[numbers.{ADDRESS}]
hotline = "videodesk"
kind = "video"

[numbers."+74950002299"]
hotline = "videodesk"

[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+7 495 000-22-99"
allow = ["+7916"]
ring_timeout = 8
""")


def customers_phone(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """The customer's phone behind the carrier: sipp's built-in UAS answers one call and stays
    until Asterisk sends BYE."""
    messages = tmp_path / "phone-messages.log"
    proc = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", CARRIER_ADDRESS, "-p", "5060", "-m", "1", "-trace_msg",
         "-message_file", str(messages), "-timeout", "60s", "-timeout_error", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    return proc, messages


def bridge_channels(env: dict[str, str], case_id: int) -> set[str]:
    status, body = ari_get(env, f"bridges/case-{case_id}")
    assert status == 200, body
    return set(json.loads(body)["channels"])


@DESK
def test_a_video_call_moves_to_the_customers_phone_and_the_agent_never_leaves_the_bridge(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "p", {"vq": 0})
    desk = sipp.agent_phone(agent.name, agent.password, ring_ms=300, timeout_s=90)
    wait_until(lambda: registered(lab, agent.name), what="the agent's phone registered")
    phone, messages = customers_phone(tmp_path)
    video = sipp.start_call(ADDRESS, "video_caller_audio_agent.xml", caller="sipp-video",
                            source=sipp.VIDEO_PHONE, timeout_s=90)
    try:
        hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                      None), what="the video call answered by the agent")
        before = bridge_channels(daemon_env, hop["case_id"])
        [agent_channel] = before - {hop["channel_id"]}

        refused = hotline_cli(daemon_env, "case", "switch", str(hop["case_id"]), "--to", "phone")
        assert refused.returncode != 0  # a video phone's case has no phone number to call back
        assert "no phone call to take the number from: give --number" in refused.stderr, refused.stderr
        outside = hotline_cli(daemon_env, "case", "switch", str(hop["case_id"]), "--to", "phone",
                              "--number", "+7 495 765-43-21")
        assert outside.returncode != 0 and "outside trunk carrier's allowed prefixes" in outside.stderr

        moved = hotline_cli(daemon_env, "case", "switch", str(hop["case_id"]), "--to", "phone",
                            "--number", "8 916 123-45-67")
        assert moved.returncode == 0, moved.stderr + daemon.log()[-3000:]
        assert f"the customer answered on {CUSTOMER}" in moved.stdout
        run = sipp.finish(video, timeout_s=20)
        assert run.ok, run.output[-3000:]  # the video leg got its BYE
        hops = wait_until(lambda: (found := rows(db, "SELECT * FROM hops WHERE case_id = %s ORDER BY seq",
                                                 hop["case_id"])) and found[0]["ended_at"] and found,
                          what="the video hop closed")
        assert [(h["seq"], h["channel_kind"], h["media"], h["end_reason"]) for h in hops] == [
            (1, "sip", "video", "switched"), (2, "pstn", "audio", None)]
        assert (hops[1]["dialled"], hops[1]["agent_id"]) == (CUSTOMER, hop["agent_id"])
        assert bridge_channels(daemon_env, hop["case_id"]) == {agent_channel, hops[1]["channel_id"]}
        [switch] = rows(db, "SELECT from_hop_id, to_hop_id, requested_by FROM switches")
        assert switch == {"from_hop_id": hop["id"], "to_hop_id": hops[1]["id"], "requested_by": "cli"}

        lab.asterisk_cli(f"channel request hangup {hops[1]['channel_id']}")  # the customer hangs up
        out, _ = phone.communicate(timeout=30)
        assert phone.returncode == 0, out  # INVITE answered, then the BYE, as a call should go
        ended = wait_until(lambda: rows(db, "SELECT end_reason FROM hops WHERE id = %s"
                                            " AND ended_at IS NOT NULL", hops[1]["id"]),
                           what="the phone hop closed")
        assert ended == [{"end_reason": "completed"}]
        events = [e["event"] for e in rows(db, "SELECT event FROM queue_events WHERE hop_id = %s ORDER BY id",
                                           hop["id"])]
        assert events == ["join", "ring", "answer", "complete"]  # one talk across both legs
        invite = next(b for b in messages.read_text().split("\n\n") if "INVITE sip:" in b)
        assert f"INVITE sip:{CUSTOMER}@{CARRIER_ADDRESS}:5060" in invite
        from_line = next(line for line in invite.splitlines() if line.lower().startswith("from:"))
        assert "<sip:+74950002299@" in from_line  # the hotline's number, as the trunk says
        assert "m=video" not in invite  # a carrier is never offered video
        assert "HOTLINE_SWITCH_TOKEN" not in invite and "X-" not in invite  # the token stays inside
    finally:
        for proc in (phone, video, desk):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def refusing_phone(tmp_path: Path, scenario: str) -> tuple[subprocess.Popen[str], Path]:
    """The customer's phone behind the carrier, not taking the call: far_end_busy.xml (180, then
    486 Busy Here) or far_end_no_answer.xml (180, and ringing until cancelled)."""
    messages = tmp_path / f"{scenario}-messages.log"
    proc = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", CARRIER_ADDRESS, "-p", "5060", "-m", "1",
         "-trace_msg", "-message_file", str(messages), "-timeout", "60s", "-timeout_error", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    return proc, messages


@DESK
@pytest.mark.parametrize(("scenario", "outcome", "said"), [
    ("far_end_busy", "busy", "busy (cause 17"), ("far_end_no_answer", "no_answer", "no answer")])
def test_a_phone_that_does_not_answer_is_recorded_and_the_video_talk_goes_on(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path, scenario: str, outcome: str,
        said: str) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "p", {"vq": 0})
    desk = sipp.agent_phone(agent.name, agent.password, ring_ms=300, timeout_s=90)
    wait_until(lambda: registered(lab, agent.name), what="the agent's phone registered")
    phone, messages = refusing_phone(tmp_path, scenario)
    video = sipp.start_call(ADDRESS, "video_caller_audio_agent.xml", caller="sipp-video",
                            source=sipp.VIDEO_PHONE, timeout_s=90)
    try:
        hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                      None), what="the video call answered by the agent")
        before = bridge_channels(daemon_env, hop["case_id"])

        asked = time.monotonic()
        moved = hotline_cli(daemon_env, "case", "switch", str(hop["case_id"]), "--to", "phone",
                            "--number", CUSTOMER)
        assert moved.returncode != 0, moved.stdout
        assert f"{CUSTOMER} did not answer: {said}" in moved.stderr, moved.stderr + daemon.log()[-3000:]
        if outcome == "no_answer":  # rang for the trunk's ring_timeout, 8 s, then was given up
            assert 8 <= time.monotonic() - asked < 8 + 8, time.monotonic() - asked
        out, _ = phone.communicate(timeout=30)
        assert phone.returncode == 0, out  # INVITE, 180, then 486 or the CANCEL: the call not taken
        assert f"INVITE sip:{CUSTOMER}@{CARRIER_ADDRESS}:5060" in messages.read_text()

        [switch] = rows(db, "SELECT from_hop_id, to_hop_id, requested_by, to_number, outcome, hangup_cause"
                            " FROM switches")
        cause = switch.pop("hangup_cause")
        assert switch == {"from_hop_id": hop["id"], "to_hop_id": None, "requested_by": "cli",
                          "to_number": CUSTOMER, "outcome": outcome}
        assert cause == 17 if outcome == "busy" else cause is not None  # what Asterisk gave
        # the video talk as it was: the same two channels in the case's bridge, one live hop
        assert bridge_channels(daemon_env, hop["case_id"]) == before
        assert rows(db, "SELECT seq, ended_at FROM hops WHERE case_id = %s", hop["case_id"]) == [
            {"seq": 1, "ended_at": None}]
        shown = hotline_cli(daemon_env, "case", "show", str(hop["case_id"]))
        assert shown.returncode == 0, shown.stderr
        assert f"move to phone asked by cli: calling {CUSTOMER}" in shown.stdout
        assert f"moved to phone: {said}" in shown.stdout, shown.stdout

        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")  # the video caller's talk ends
        run = sipp.finish(video, timeout_s=20)
        assert run.ok, run.output[-3000:]
    finally:
        for proc in (phone, video, desk):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
