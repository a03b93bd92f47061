"""Supervision dialled from the supervisor's own phone through the real lab: a sipp caller answered
by a sipp agent phone (the talk of tests/e2e/test_supervision_calls.py, each phone with a tone of
its own), and the supervisor's phone placing `*51AGENT` (listen), `*52AGENT` (whisper) or
`*53AGENT` (barge) from its endpoint, as the consult tests' agent phones place their calls. Who
hears whom is read off the wire; the supervisor's registered desk phone is never rung (their own
call is their leg); refusals are SIP answers sipp checks."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import psycopg
import pytest
from test_supervision_calls import (
    HEARD,
    SILENT,
    SUPERVISOR_HZ,
    TALK,
    Talk,
    hang_up,
    heard,
    snoops,
    supervision,
)
from test_supervision_calls import talk as supervised_talk  # noqa: F401 - the fixture phone_talk takes

from hotline.lab import Lab

from support import sipp
from support.agents import hotline
from support.checks import rows, wait_until
from support.daemon import DaemonProcess, ari_get
from support.tones import RtpTap, tone_file, with_tone

pytestmark = pytest.mark.lab

CODES = {"listen": "*51", "whisper": "*52", "barge": "*53"}


@pytest.fixture
def phone_talk(request: pytest.FixtureRequest) -> Talk:
    """A caller talking with an agent, each phone with its tone: test_supervision_calls's `talk`."""
    found: Talk = request.getfixturevalue("supervised_talk")
    return found


def dial_in(t: Talk, mode: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Talk]:
    """The supervisor's phone dials the feature code and the agent, streaming its tone once
    answered; the talk as seen with that call's media port as the supervisor's."""
    port = sipp.free_udp_port()
    tone = tone_file(tmp_path / "sup.ulaw", SUPERVISOR_HZ)
    scenario = with_tone(sipp.SCENARIOS / "supervisor_dials.xml", tone, tmp_path / "supervisor_dials.xml",
                         after=r"CSeq: 2 ACK.*?</send>")
    phone = sipp.start_dialling(t.supervisor.name, t.supervisor.password, CODES[mode] + t.agent.name,
                                scenario, media_port=port, timeout_s=90)
    return phone, dataclasses.replace(t, ports={**t.ports, "supervisor": port})


def supervising(db: psycopg.Connection, phone: subprocess.Popen[str]) -> dict[str, object]:
    def found() -> dict[str, object] | None:
        if phone.poll() is not None:
            raise AssertionError(f"the supervisor's call ended: {phone.communicate()[0]}")
        return next(iter(rows(db, "SELECT * FROM supervisions WHERE outcome = 'supervising'")), None)
    return wait_until(found, what="the supervisor in")


def refused(t: Talk, who: str, password: str, extension: str, code: int, tmp_path: Path) -> sipp.SippRun:
    """`who`'s phone dials `extension`; the run passes only when the answer is `code`."""
    text = (sipp.SCENARIOS / "agent_dials_refused.xml").read_text()
    scenario = tmp_path / f"refused_{code}.xml"
    scenario.write_text(text.replace('<recv response="403"/>', f'<recv response="{code}"/>'))
    return sipp.agent_dials(who, password, extension, scenario=str(scenario))


def not_rung(env: dict[str, str], t: Talk, leg: object) -> None:
    """The supervisor's endpoint has one channel: the call their phone placed (nothing rang them)."""
    status, body = ari_get(env, "channels")
    assert status == 200
    theirs = [c["id"] for c in json.loads(body) if c["name"].startswith(f"PJSIP/{t.supervisor.name}-")]
    assert theirs == [leg], theirs


@TALK
def test_a_supervisor_dialling_listen_hears_both_sides_and_nobody_hears_them(
        phone_talk: Talk, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection,
        tmp_path: Path) -> None:
    with RtpTap() as tap:
        phone, t = dial_in(phone_talk, "listen", tmp_path)
        try:
            row = supervising(db, phone)
            got = heard(tap, t)
            assert got["supervisor"]["caller"] > HEARD and got["supervisor"]["agent"] > HEARD, got
            assert got["caller"]["supervisor"] < SILENT and got["agent"]["supervisor"] < SILENT, got
            assert got["caller"]["agent"] > HEARD and got["agent"]["caller"] > HEARD, got
            assert len(snoops(daemon_env)) == 1
            assert (row["mode"], row["asked_by"], row["supervisor"], row["case_id"]) == (
                "listen", f"phone:{t.supervisor.name}", t.supervisor.name, t.case_id)
            assert "-sup-" not in str(row["channel_id"])  # their own call, not a leg the daemon placed
            assert row["asked_at"] <= row["started_at"] and row["ended_at"] is None
            not_rung(daemon_env, t, row["channel_id"])
            # A second code while listening: busy, before answer.
            busy = refused(t, t.supervisor.name, t.supervisor.password, "*53" + t.agent.name, 486, tmp_path)
            assert busy.ok, busy.output
            hang_up(lab, row["channel_id"])  # the supervisor's leg goes: the talk goes on
            assert sipp.finish(phone).ok
        finally:
            if phone.poll() is None:
                phone.kill()
    ended = wait_until(lambda: next(iter(rows(db, "SELECT * FROM supervisions WHERE outcome = 'ended'")),
                                    None), what="the listen ended")
    assert ended["detail"] == "the supervisor hung up" and ended["ended_at"] >= ended["started_at"]
    [busy_row] = rows(db, "SELECT mode, detail FROM supervisions WHERE outcome = 'refused'")
    assert busy_row == {"mode": "barge", "detail": f"{t.supervisor.name} is already supervising a talk"}
    wait_until(lambda: not snoops(daemon_env), what="the snoop hung up")
    shown = hotline(daemon_env, "case", "show", str(t.case_id)).stdout
    assert f"asked by phone:{t.supervisor.name}: they dialled in" in shown, shown
    assert rows(db, "SELECT ended_at FROM hops WHERE case_id = %s", t.case_id) == [{"ended_at": None}]
    hang_up(lab, t.customer_channel)
    assert sipp.finish(t.caller).ok


@TALK
def test_a_supervisor_dialling_whisper_is_heard_by_the_agent_only_and_the_talks_end_hangs_them_up(
        phone_talk: Talk, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection,
        tmp_path: Path) -> None:
    with RtpTap() as tap:
        phone, t = dial_in(phone_talk, "whisper", tmp_path)
        try:
            row = supervising(db, phone)
            got = heard(tap, t)
        finally:
            if phone.poll() is None and "got" not in locals():
                phone.kill()
    not_rung(daemon_env, t, row["channel_id"])
    assert got["agent"]["supervisor"] > HEARD, got
    assert got["caller"]["supervisor"] < SILENT, got
    assert got["supervisor"]["caller"] > HEARD and got["supervisor"]["agent"] > HEARD, got
    hang_up(lab, t.customer_channel)
    assert sipp.finish(t.caller).ok
    assert sipp.finish(phone).ok  # the supervisor's call got its BYE
    ended = wait_until(lambda: next(iter(rows(db, "SELECT * FROM supervisions WHERE ended_at IS NOT NULL")),
                                    None), what="the whisper ended")
    assert (ended["mode"], ended["outcome"], ended["detail"]) == ("whisper", "ended", "the talk ended")


@TALK
def test_a_supervisor_dialling_barge_joins_the_talks_bridge_and_all_three_hear_each_other(
        phone_talk: Talk, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection,
        tmp_path: Path) -> None:
    with RtpTap() as tap:
        phone, t = dial_in(phone_talk, "barge", tmp_path)
        try:
            row = supervising(db, phone)
            got = heard(tap, t)
        finally:
            if phone.poll() is None and "got" not in locals():
                phone.kill()
    status, body = ari_get(daemon_env, f"bridges/case-{t.case_id}")
    assert status == 200 and row["channel_id"] in json.loads(body)["channels"]
    assert len(json.loads(body)["channels"]) == 3
    assert got["caller"]["supervisor"] > HEARD and got["agent"]["supervisor"] > HEARD, got
    assert got["supervisor"]["caller"] > HEARD and got["supervisor"]["agent"] > HEARD, got
    hang_up(lab, t.customer_channel)
    assert sipp.finish(t.caller).ok
    assert sipp.finish(phone).ok
    ended = supervision(db)
    assert (ended["mode"], ended["outcome"], ended["detail"]) == ("barge", "ended", "the talk ended")


@TALK
def test_what_cannot_be_supervised_from_a_phone_is_refused_with_a_sip_answer_before_answer(
        phone_talk: Talk, daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab,
        db: psycopg.Connection, tmp_path: Path) -> None:
    t, sup = phone_talk, phone_talk.supervisor
    asterisk_log = lab.log_paths()["asterisk"]
    log_start = asterisk_log.stat().st_size if asterisk_log.exists() else 0
    # The agent (no supervisor) dialling listen on their own talk: 403, and a row that says so.
    run = refused(t, t.agent.name, t.agent.password, "*51" + t.agent.name, 403, tmp_path)
    assert run.ok, run.output
    # The row follows the SIP answer (the phone is not kept waiting on the database).
    [row] = wait_until(lambda: rows(db, "SELECT outcome, detail, asked_by, supervisor FROM supervisions"),
                       what="the refusal's row")
    assert row == {"outcome": "refused", "detail": f"agent '{t.agent.name}' is not a supervisor",
                   "asked_by": f"phone:{t.agent.name}", "supervisor": t.agent.name}
    for extension, code in (("*51nobody", 404),  # no agent is dialled so: the dialplan's 404
                            ("*52" + sup.name, 403)):  # their own (no) talk
        run = refused(t, sup.name, sup.password, extension, code, tmp_path)
        assert run.ok, (extension, run.output)
    hang_up(lab, t.customer_channel)
    assert sipp.finish(t.caller).ok
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    over = refused(t, sup.name, sup.password, "*53" + t.agent.name, 480, tmp_path)  # no live talk
    assert over.ok, over.output
    assert not snoops(daemon_env)
    assert rows(db, "SELECT count(*) AS n FROM supervisions") == [{"n": 1}]
    # Each refusal is a log line: the daemon's, and Asterisk's for what no agent is dialled as.
    said = daemon.log_path.read_text(errors="replace")
    for line in (f"refused (rejected): agent '{t.agent.name}' is not a supervisor",
                 f"refused (rejected): {sup.name} cannot whisper their own talk",
                 f"refused (no_answer): agent {t.agent.name} is in no live talk here"):
        assert line in said, line
    with asterisk_log.open("rb") as fh:
        fh.seek(log_start)
        assert f"listen from {sup.name} refused: no agent is dialled as nobody" in fh.read().decode(
            errors="replace")
