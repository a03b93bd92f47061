"""Supervision through the real lab: a sipp caller answered by a sipp agent phone, a sipp
supervisor phone rung by `hotline case listen|whisper|barge`. Each phone streams a tone of its own
(caller 500 Hz, agent 1100 Hz, supervisor 2300 Hz) and a tap on the loopback interface hears what
Asterisk sends each phone's media port: who hears whom is read off the wire."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, hotline, logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE
from support.tones import RtpTap, share, tone_file, with_tone

pytestmark = pytest.mark.lab

NUMBER = "84950002255"
TALK = pytest.mark.provision(BASE + """
[queues.sq]
ring_timeout = 10

[hotlines.sq]
entry = "queue:sq"

[numbers."+74950002255"]
hotline = "sq"
""")
CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 500, 1100, 2300
HEARD = 0.05  # a tone's share of the power a phone is sent, when that phone hears it
SILENT = 0.01  # ... and at most this when it does not
LISTEN_S = 2.5  # how long each phone's incoming audio is sampled


@dataclass
class Talk:
    """A caller talking with an agent, a supervisor's phone registered, each with a tone."""

    caller: subprocess.Popen[str]
    phones: list[subprocess.Popen[str]]
    case_id: int
    customer_channel: str
    agent: Agent
    supervisor: Agent
    ports: dict[str, int]  # caller, agent, supervisor -> the media port Asterisk sends to


@pytest.fixture
def talk(daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
         db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> Iterator[Talk]:
    agent, supervisor = logged_in_agents(daemon_env, tmp_path, "v", {"sq": 0}, {})
    hotline(daemon_env, "agent", "set", supervisor.name, "--supervisor")
    ports = {who: sipp.free_udp_port() for who in ("agent", "supervisor")}
    ports["caller"] = sipp.free_udp_port(sipp.TRUNK)
    scenarios = sipp.SCENARIOS
    answers = {who: with_tone(scenarios / "agent_answers.xml", tone_file(tmp_path / f"{who}.ulaw", hz),
                              tmp_path / f"{who}.xml", after=r'<recv request="ACK"/>')
               for who, hz in (("agent", AGENT_HZ), ("supervisor", SUPERVISOR_HZ))}
    phones = [sipp.agent_phone(a.name, a.password, ring_ms=200, scenario=str(answers[who]),
                               media_port=ports[who], timeout_s=90)
              for who, a in (("agent", agent), ("supervisor", supervisor))]
    try:
        wait_until(lambda: registered(lab, agent.name) and registered(lab, supervisor.name),
                   what="both phones registered")
        calls = with_tone(scenarios / "caller_until_bye.xml", tone_file(tmp_path / "caller.ulaw", CALLER_HZ),
                          tmp_path / "caller.xml", after=r"CSeq: 1 ACK.*?</send>")
        caller = sipp.start_call(NUMBER, str(calls), caller="+79165550101", media_port=ports["caller"],
                                 timeout_s=90)
        try:
            hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                          None), what="the call answered by the agent")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{daemon.log()}") from None
        yield Talk(caller, phones, int(hop["case_id"]), str(hop["channel_id"]), agent, supervisor, ports)
    finally:
        for proc in [*phones, *([caller] if "caller" in locals() else [])]:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def supervise(env: dict[str, str], mode: str, t: Talk) -> subprocess.CompletedProcess[str]:
    return hotline_cli(env, "case", mode, str(t.case_id), t.supervisor.name)


def heard(tap: RtpTap, t: Talk) -> dict[str, dict[str, float]]:
    """Each phone's share of each tone in what it was sent over the next LISTEN_S seconds."""
    start = time.monotonic() + 0.5  # the snoop and the bridge settle
    time.sleep(0.5 + LISTEN_S)
    tones = {"caller": CALLER_HZ, "agent": AGENT_HZ, "supervisor": SUPERVISOR_HZ}
    out = {}
    for phone, port in t.ports.items():
        samples = tap.samples(port, start, start + LISTEN_S)
        assert len(samples) > 8000, f"{phone} was sent {len(samples)} samples; ports seen {tap.ports()}"
        out[phone] = {tone: round(share(samples, hz), 4) for tone, hz in tones.items()}
    return out


def supervision(db: psycopg.Connection) -> dict[str, object]:
    [row] = rows(db, "SELECT s.*, a.name AS supervisor_name FROM supervisions s"
                     " LEFT JOIN agents a ON a.id = s.supervisor_id WHERE outcome <> 'refused'")
    return row


def snoops(env: dict[str, str]) -> list[str]:
    status, body = ari_get(env, "channels")
    assert status == 200
    return [c["name"] for c in json.loads(body) if c["name"].startswith("Snoop/")]


def hang_up(lab: Lab, channel_id: object) -> None:
    lab.asterisk_cli(f"channel request hangup {channel_id}")


@TALK
def test_a_listening_supervisor_hears_both_sides_and_nobody_hears_them(
        talk: Talk, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection) -> None:
    with RtpTap() as tap:
        done = supervise(daemon_env, "listen", talk)
        assert done.returncode == 0, done.stderr
        assert f"case {talk.case_id}: {talk.supervisor.name} listens" in done.stdout
        got = heard(tap, talk)
    assert got["supervisor"]["caller"] > HEARD and got["supervisor"]["agent"] > HEARD, got
    assert got["caller"]["supervisor"] < SILENT and got["agent"]["supervisor"] < SILENT, got
    assert got["caller"]["agent"] > HEARD and got["agent"]["caller"] > HEARD, got  # they still talk
    assert len(snoops(daemon_env)) == 1
    row = supervision(db)
    assert (row["mode"], row["outcome"], row["asked_by"], row["supervisor_name"]) == (
        "listen", "supervising", "cli", talk.supervisor.name)
    assert row["started_at"] is not None and row["ended_at"] is None and row["case_id"] == talk.case_id

    busy = supervise(daemon_env, "barge", talk)  # the supervisor is listening already
    assert busy.returncode != 0 and "is already supervising" in busy.stderr, busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1

    hang_up(lab, row["channel_id"])  # the supervisor's leg goes: the talk goes on
    ended = wait_until(lambda: next(iter(rows(db, "SELECT * FROM supervisions WHERE ended_at IS NOT NULL"
                                                  " AND outcome = 'ended'")), None), what="the listen ended")
    assert ended["detail"] == "the supervisor hung up" and ended["ended_at"] >= ended["started_at"]
    wait_until(lambda: not snoops(daemon_env), what="the snoop hung up")
    shown = hotline(daemon_env, "case", "show", str(talk.case_id)).stdout
    for said in (f"listen of the talk with agent {talk.agent.name} by supervisor {talk.supervisor.name}, "
                 "asked by cli: their phone rang", f"supervisor {talk.supervisor.name} in (listen)",
                 f"supervisor {talk.supervisor.name}: listen ended (the supervisor hung up)",
                 "barge of the talk", "refused (", "is already supervising"):
        assert said in shown, shown
    assert rows(db, "SELECT ended_at FROM hops WHERE case_id = %s", talk.case_id) == [{"ended_at": None}]
    hang_up(lab, talk.customer_channel)
    assert sipp.finish(talk.caller).ok


@TALK
def test_a_whispering_supervisor_is_heard_by_the_agent_and_not_by_the_customer(
        talk: Talk, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection) -> None:
    with RtpTap() as tap:
        done = supervise(daemon_env, "whisper", talk)
        assert done.returncode == 0, done.stderr
        got = heard(tap, talk)
    assert got["agent"]["supervisor"] > HEARD, got
    assert got["caller"]["supervisor"] < SILENT, got
    assert got["supervisor"]["caller"] > HEARD and got["supervisor"]["agent"] > HEARD, got
    hang_up(lab, talk.customer_channel)  # the talk's end ends the whisper and the supervisor's leg
    assert sipp.finish(talk.caller).ok
    assert sipp.finish(talk.phones[1]).ok  # the supervisor's phone got its BYE
    ended = wait_until(lambda: next(iter(rows(db, "SELECT * FROM supervisions WHERE ended_at IS NOT NULL")),
                                    None), what="the whisper ended")
    assert (ended["mode"], ended["outcome"]) == ("whisper", "ended") and ended["started_at"] is not None


@TALK
def test_a_barging_supervisor_joins_the_talks_bridge_and_all_three_hear_each_other(
        talk: Talk, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection) -> None:
    with RtpTap() as tap:
        done = supervise(daemon_env, "barge", talk)
        assert done.returncode == 0, done.stderr
        got = heard(tap, talk)
    row = supervision(db)
    status, body = ari_get(daemon_env, f"bridges/case-{talk.case_id}")
    assert status == 200 and row["channel_id"] in json.loads(body)["channels"]
    assert len(json.loads(body)["channels"]) == 3
    assert got["caller"]["supervisor"] > HEARD and got["agent"]["supervisor"] > HEARD, got
    assert got["supervisor"]["caller"] > HEARD and got["supervisor"]["agent"] > HEARD, got
    hang_up(lab, talk.customer_channel)
    assert sipp.finish(talk.caller).ok
    assert sipp.finish(talk.phones[1]).ok  # released with the talk
    ended = wait_until(lambda: next(iter(rows(db, "SELECT * FROM supervisions WHERE ended_at IS NOT NULL")),
                                    None), what="the barge ended")
    assert (ended["mode"], ended["outcome"], ended["detail"]) == ("barge", "ended", "the talk ended")


@TALK
def test_supervision_is_refused_in_one_line_for_what_cannot_be_supervised(
        talk: Talk, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection) -> None:
    case = str(talk.case_id)
    for args, says in ((("listen", "4242", talk.supervisor.name), "case 4242 does not exist"),
                       (("whisper", case, "nobody"), "there is no agent 'nobody'"),
                       (("barge", case, talk.agent.name), "is not a supervisor")):
        result = hotline_cli(daemon_env, "case", *args)
        assert result.returncode != 0 and says in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    hotline(daemon_env, "agent", "set", talk.agent.name, "--supervisor")
    own = wait_until(lambda: _refused(daemon_env, "listen", case, talk.agent.name,
                                      "is the agent of this talk"), what="the talk's own agent refused")
    assert own.returncode != 0
    [row] = rows(db, "SELECT outcome, detail FROM supervisions WHERE detail LIKE '%%agent of this talk'")
    assert row["outcome"] == "refused"
    hang_up(lab, talk.customer_channel)
    assert sipp.finish(talk.caller).ok
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    over = hotline_cli(daemon_env, "case", "listen", case, talk.supervisor.name)
    assert over.returncode != 0 and f"case {case} has no live talk with an agent" in over.stderr, over.stderr


def _refused(env: dict[str, str], mode: str, case: str, who: str,
             says: str) -> subprocess.CompletedProcess[str] | None:
    """The CLI's answer once the daemon's provisioning has the flag (it follows the database)."""
    result = hotline_cli(env, "case", mode, case, who)
    return result if says in result.stderr else None


TWO_TALKS = pytest.mark.provision(BASE + """
[queues.sq1]
ring_timeout = 10

[queues.sq2]
ring_timeout = 10

[hotlines.sq1]
entry = "queue:sq1"

[hotlines.sq2]
entry = "queue:sq2"

[numbers."+74950002256"]
hotline = "sq1"

[numbers."+74950002257"]
hotline = "sq2"
""")


@TWO_TALKS
def test_a_supervisor_talking_with_a_customer_is_refused_as_busy(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    agent, supervisor = logged_in_agents(daemon_env, tmp_path, "b", {"sq1": 0}, {"sq2": 0})
    hotline(daemon_env, "agent", "set", supervisor.name, "--supervisor")
    phones = [sipp.agent_phone(a.name, a.password, ring_ms=200) for a in (agent, supervisor)]
    callers: list[subprocess.Popen[str]] = []
    try:
        wait_until(lambda: registered(lab, agent.name) and registered(lab, supervisor.name),
                   what="both phones registered")
        callers = [sipp.start_call(number, "caller_until_bye.xml", caller=f"+7916555010{i}")
                   for i, number in enumerate(("84950002256", "84950002257"))]
        talks = wait_until(lambda: _answered(db, 2), what="both calls answered")
        case = next(t["case_id"] for t in talks if t["name"] == agent.name)
        busy = hotline_cli(daemon_env, "case", "listen", str(case), supervisor.name)
        assert busy.returncode != 0 and f"{supervisor.name} is busy in a call" in busy.stderr, busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1
        [row] = rows(db, "SELECT outcome, detail, channel_id FROM supervisions")
        assert row == {"outcome": "refused", "detail": f"{supervisor.name} is busy in a call",
                       "channel_id": None}
        for t in talks:
            hang_up(lab, t["channel_id"])
        assert all(sipp.finish(c).ok for c in callers)
    finally:
        for proc in [*phones, *callers]:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def _answered(db: psycopg.Connection, calls: int) -> list[dict[str, object]] | None:
    """The answered legs with their agents' names, once there are `calls` of them."""
    found = rows(db, "SELECT h.case_id, h.channel_id, a.name FROM hops h JOIN agents a ON a.id = h.agent_id"
                     " WHERE h.answered_at IS NOT NULL")
    return found if len(found) == calls else None
