"""Call recording through the real lab: a sipp caller answered by a sipp agent phone in a queue
with `record = "always"` leaves a WAV file in Asterisk's recording directory as long as the talk
(read from its header with `wave`) and a row of recordings; a queue that records never leaves
neither; a pause (`hotline recording pause|resume`) is cut out of the file; a transfer gives a
second recording with the second agent, in the same case, and a video talk moved to the phone a
second one on the phone leg's hop. The files are then found, exported and
purged with the CLI, a file gone before the purge reported."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest
from test_video_to_phone_calls import customers_phone

from hotline.lab import Lab

from support import sipp
from support.agents import logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.recordings import answered_hop, file_of, finished_recordings, hang_up_and_wait, seconds_of
from support.transfer_checks import bridge_channels, if_two, phones, stop

pytestmark = pytest.mark.lab

RECORDED, UNRECORDED = "84950003366", "84950003377"
VIDEO_ADDRESS = "video-desk"
CALLER = "+79165557788"
QUEUES = pytest.mark.provision(BASE + """
[queues.rec_on]
ring_timeout = 5
record = "always"

[queues.rec_next]
ring_timeout = 5
record = "always"

[queues.rec_off]
ring_timeout = 5

[hotlines.rec]
entry = "queue:rec_on"

[hotlines.norec]
entry = "queue:rec_off"

[numbers."+74950003366"]
hotline = "rec"

[numbers."+74950003377"]
hotline = "norec"
""")
WAV_BYTES_PER_HOUR = 8000 * 2 * 3600  # 8 kHz, 16-bit, mono: 57.6 MB


@QUEUES
def test_a_recorded_queues_talk_leaves_a_file_as_long_as_the_talk_and_a_row(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "rc", {"rec_on": 0})
    started = phones(lab, agent)
    try:
        caller = sipp.start_call(RECORDED, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        wait_until(lambda: if_two(bridge_channels(daemon_env, hop["case_id"])),
                   what="caller and agent bridged")
        time.sleep(4)
        hang_up_and_wait(lab, db, hop, caller)
    finally:
        stop(started)
    [rec] = finished_recordings(db, 1)
    assert (rec["case_id"], rec["hop_id"], rec["agent"], rec["queue"]) == (hop["case_id"], hop["id"],
                                                                        agent.name, "rec_on")
    assert (rec["state"], rec["format"], rec["detail"]) == ("done", "wav", None)
    path = file_of(daemon_env, rec)
    assert rec["path"] == str(path)
    [talk] = rows(db, "SELECT extract(epoch FROM ended_at - answered_at)::float AS s FROM hops")
    seconds = seconds_of(path)
    assert 3.5 <= seconds <= talk["s"] + 0.5, (seconds, talk)
    assert abs(seconds - rec["duration_ms"] / 1000) < 1.0, (seconds, rec["duration_ms"])
    # the README's disk cost, measured: bytes per hour of this real file
    per_hour = path.stat().st_size / seconds * 3600
    assert abs(per_hour - WAV_BYTES_PER_HOUR) / WAV_BYTES_PER_HOUR < 0.01, per_hour
    print(f"wav: {per_hour / 1e6:.1f} MB per hour")  # noqa: T201 - the figure the README quotes

    shown = hotline_cli(daemon_env, "case", "show", str(hop["case_id"]))
    assert f"#{rec['id']} hop 1 agent {agent.name} queue rec_on done" in shown.stdout, shown.stdout
    said = hotline_cli(daemon_env, "recording", "path", str(rec["id"]))
    assert (said.returncode, said.stdout.strip()) == (0, str(path)), said.stderr
    copied = hotline_cli(daemon_env, "recording", "export", str(rec["name"]), str(tmp_path))
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / path.name).read_bytes() == path.read_bytes()


@QUEUES
def test_a_queue_that_records_never_leaves_no_row_and_no_file(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "rn", {"rec_off": 0})
    started = phones(lab, agent)
    before = set(os.listdir(daemon_env["HOTLINE_RECORDING_DIR"]))
    try:
        caller = sipp.start_call(UNRECORDED, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        wait_until(lambda: if_two(bridge_channels(daemon_env, hop["case_id"])),
                   what="caller and agent bridged")
        time.sleep(2)
        hang_up_and_wait(lab, db, hop, caller)
    finally:
        stop(started)
    assert rows(db, "SELECT * FROM recordings") == []
    made = {n for n in set(os.listdir(daemon_env["HOTLINE_RECORDING_DIR"])) - before
            if n.startswith(f"case{hop['case_id']}-")}
    assert made == set()


@QUEUES
def test_a_pause_is_cut_out_of_the_file_and_is_a_row_of_the_timeline(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "rp", {"rec_on": 0})
    started = phones(lab, agent)
    try:
        caller = sipp.start_call(RECORDED, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        case = str(hop["case_id"])
        wait_until(lambda: rows(db, "SELECT id FROM recordings"), what="the recording started")
        time.sleep(2)
        asked = time.monotonic()
        paused = hotline_cli(daemon_env, "recording", "pause", case)
        assert paused.returncode == 0 and "paused" in paused.stdout, paused.stderr + daemon.log()
        again = hotline_cli(daemon_env, "recording", "pause", case)
        assert "paused already" in again.stdout, again.stderr
        time.sleep(4)
        resumed = hotline_cli(daemon_env, "recording", "resume", case)
        at_most = time.monotonic() - asked  # from the pause asked to the resume written
        assert resumed.returncode == 0 and "resumed" in resumed.stdout, resumed.stderr
        time.sleep(2)
        hang_up_and_wait(lab, db, hop, caller)
    finally:
        stop(started)
    [rec] = finished_recordings(db, 1)
    [pause] = rows(db, "SELECT asked_by, extract(epoch FROM resumed_at - paused_at)::float AS s"
                       " FROM recording_pauses")
    assert pause["asked_by"] == "cli" and 4 <= pause["s"] <= at_most, (pause, at_most)
    [talk] = rows(db, "SELECT extract(epoch FROM g.ended_at - g.started_at)::float AS s FROM recordings g")
    seconds = seconds_of(file_of(daemon_env, rec))
    # the file holds the talk less the pause (give or take the CLI's round trips)
    assert abs(seconds - (talk["s"] - pause["s"])) < 1.0, (seconds, talk, pause)
    assert seconds < talk["s"] - 3, (seconds, talk)
    assert abs(seconds - rec["duration_ms"] / 1000) < 1.0, (seconds, rec)
    shown = hotline_cli(daemon_env, "case", "show", case).stdout
    assert f"recording #{rec['id']} paused by cli" in shown and f"recording #{rec['id']} resumed" in shown


@QUEUES
def test_a_transfer_gives_a_second_recording_with_the_second_agent_in_the_same_case(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "rt", {"rec_on": 0}, {"rec_next": 0})
    started = phones(lab, first, second)
    try:
        caller = sipp.start_call(RECORDED, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        case_id = hop["case_id"]
        wait_until(lambda: rows(db, "SELECT id FROM recordings"), what="the first recording started")
        time.sleep(2)
        done = hotline_cli(daemon_env, "case", "transfer", str(case_id), "rec_next")
        assert done.returncode == 0, done.stderr + daemon.log()
        assert sipp.finish(started[0]).ok
        wait_until(lambda: len(rows(db, "SELECT id FROM recordings")) == 2,
                   what="the second recording started")
        time.sleep(2)
        hang_up_and_wait(lab, db, hop, caller)
        assert sipp.finish(started[1]).ok
    finally:
        stop(started)
    recs = finished_recordings(db, 2)
    assert [(r["case_id"], r["hop_id"], r["agent"], r["queue"], r["state"]) for r in recs] == [
        (case_id, hop["id"], first.name, "rec_on", "done"),
        (case_id, hop["id"], second.name, "rec_next", "done")]
    assert recs[0]["ended_at"] <= recs[1]["started_at"]  # type: ignore[operator]
    for r in recs:
        assert 1.5 <= seconds_of(file_of(daemon_env, r)) <= 4.5, r

    # purge: both are made 31 days old; a dry run lists them, --yes deletes them and marks the rows;
    # the second one's file taken away first is reported missing (exit status 1)
    db.execute("UPDATE recordings SET started_at = started_at - interval '31 days',"
               " ended_at = ended_at - interval '31 days'")
    file_of(daemon_env, recs[1]).unlink()
    dry = hotline_cli(daemon_env, "recording", "purge", "--older-than", "30")
    assert dry.returncode == 1 and "would purge 1 recording(s), 1 missing" in dry.stdout, dry.stdout
    assert f"MISSING #{recs[1]['id']}" in dry.stderr
    assert file_of(daemon_env, recs[0]).is_file()
    purged = hotline_cli(daemon_env, "recording", "purge", "--older-than", "30", "--yes")
    assert purged.returncode == 1 and "purged 1 recording(s), 1 missing" in purged.stdout, purged.stdout
    assert not file_of(daemon_env, recs[0]).exists()
    assert [r["state"] for r in rows(db, "SELECT state FROM recordings ORDER BY started_at")] == [
        "purged", "missing"]
    gone = hotline_cli(daemon_env, "recording", "path", str(recs[0]["id"]))
    assert gone.returncode == 1 and "was purged" in gone.stderr


VIDEO_DESK = pytest.mark.provision(BASE + f"""
[queues.vq]
ring_timeout = 15
record = "always"

[hotlines.videodesk]
entry = "queue:vq"

[numbers.{VIDEO_ADDRESS}]
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


@VIDEO_DESK
def test_a_video_talk_moved_to_the_phone_keeps_being_recorded_on_the_phone_legs_hop(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "rv", {"vq": 0})
    desk = sipp.agent_phone(agent.name, agent.password, ring_ms=300, timeout_s=90)
    wait_until(lambda: registered(lab, agent.name), what="the agent's phone registered")
    phone, _ = customers_phone(tmp_path)
    video = sipp.start_call(VIDEO_ADDRESS, "video_caller_audio_agent.xml", caller="sipp-video",
                            source=sipp.VIDEO_PHONE, timeout_s=90)
    try:
        hop = answered_hop(db)
        wait_until(lambda: rows(db, "SELECT id FROM recordings"), what="the video talk's recording started")
        time.sleep(2)
        moved = hotline_cli(daemon_env, "case", "switch", str(hop["case_id"]), "--to", "phone",
                            "--number", "8 916 123-45-67")
        assert moved.returncode == 0, moved.stderr + daemon.log()[-3000:]
        assert sipp.finish(video, timeout_s=20).ok  # the video leg got its BYE
        [phone_hop] = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE seq = 2"), what="the phone leg")
        wait_until(lambda: len(rows(db, "SELECT id FROM recordings")) == 2,
                   what="the phone leg's recording started")
        time.sleep(2)
        lab.asterisk_cli(f"channel request hangup {phone_hop['channel_id']}")  # the customer hangs up
        phone.communicate(timeout=30)
    finally:
        for proc in (phone, video, desk):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    recs = finished_recordings(db, 2)
    assert [(r["case_id"], r["hop_id"], r["agent"], r["state"]) for r in recs] == [
        (hop["case_id"], hop["id"], agent.name, "done"),
        (hop["case_id"], phone_hop["id"], agent.name, "done")]
    for r in recs:  # the video leg's talk: its sound (a bridge recording has no pictures)
        assert 1.5 <= seconds_of(file_of(daemon_env, r)) <= 5, r
