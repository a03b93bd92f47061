"""One active daemon and a hot standby on the same lab (hotline.store.active_lock): the standby
touches no part of Asterisk, takes over a SIGKILLed active within 5 s with the talk going on and
the line kept; a SIGTERMed active hands over too, and one whose lock session is lost is fenced;
every hop is recorded once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess, free_tcp_port
from support.provisioning import BASE
from support.tones import RtpTap, share, tone_file, with_tone

pytestmark = pytest.mark.lab

NUMBER = "84950002211"
CALLER_HZ, AGENT_HZ = 500, 1100
FIRST, SECOND, THIRD = "+79165550101", "+79165550102", "+79165550103"
TAKEOVER_S = 5.0
# The active's word once it looks and finds a standby: from then on a lost lock session fences it.
SEES_A_STANDBY = "a standby waits: a lost lock session makes this daemon let go"


def waiting_callers(env: dict[str, str]) -> list[str]:
    """The callers waiting, in the order their queue serves them, as `hotline stats live` says."""
    shown = hotline_cli(env, "stats", "live", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    return [str(w["caller"]) for w in json.loads(shown.stdout)["waiting"]]


def hop_of(db: psycopg.Connection, caller: str) -> dict[str, object] | None:
    found = rows(db, "SELECT * FROM hops WHERE caller_num = %s", caller)
    return found[0] if found else None


def answered(db: psycopg.Connection, caller: str) -> dict[str, object] | None:
    hop = hop_of(db, caller)
    return hop if hop is not None and hop["answered_at"] is not None else None


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def web_port_closed(env: dict[str, str]) -> bool:
    host, _, port = env["HOTLINE_WEB_LISTEN"].rpartition(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


def takes_over(new: DaemonProcess, old: DaemonProcess, sig: int) -> float:
    """Seconds from signalling the active `old` to `new` reporting its ARI connection."""
    signalled = time.monotonic()
    old.stop(sig)
    new.wait_registered(timeout_s=15)
    return time.monotonic() - signalled


def doctor_database_line(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "hotline", "doctor", "--starting"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    return next(line for line in done.stdout.splitlines() if line.startswith("ok   database:"))


@pytest.mark.provision(BASE + """
[queues.line]
ring_timeout = 5
wrapup = 0

[hotlines.queued]
entry = "queue:line"

[numbers."+74950002211"]
hotline = "queued"
lines = 3
""")
def test_a_hot_standby_takes_over_within_5_s_keeping_the_talk_the_line_and_every_record(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection,
        tmp_path: Path, rendered_files_removed_afterwards: Path) -> None:
    standby_env = {**daemon_env, "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
                   "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}"}
    standby = DaemonProcess(standby_env, tmp_path / "standby.log")
    standby.launch()
    started: list[subprocess.Popen[str]] = []
    try:
        assert daemon.proc is not None and standby.proc is not None
        health = standby.wait_standby()
        assert standby.health_status() == 503 and health["role"] == "standby"
        assert str(health["active"]).startswith(f"{daemon.proc.pid}@")
        assert (health["ari_connected"], health["ari_connections"]) == (False, 0)
        asterisk = {port_of(daemon_env["HOTLINE_ARI_URL"]), port_of(daemon_env["HOTLINE_AMI_URL"])}
        assert asterisk <= daemon.tcp_peer_ports()
        # No ARI WebSocket, no AMI: the app stays the active's.
        assert not asterisk & standby.tcp_peer_ports()
        assert web_port_closed(standby_env) and not web_port_closed(daemon_env)
        assert "hotline_active 0.0" in standby.metrics() and "hotline_active 1.0" in daemon.metrics()
        line = doctor_database_line(daemon_env)
        assert f"active daemon {daemon.proc.pid}@" in line and line.endswith("1 standby"), line
        assert f"standby: {daemon.proc.pid}@" in standby.log()

        [agent] = logged_in_agents(daemon_env, tmp_path, "sb", {"line": 0})
        ports = {"agent": sipp.free_udp_port(), "caller": sipp.free_udp_port(sipp.TRUNK)}
        answers = with_tone(sipp.SCENARIOS / "agent_answers.xml", tone_file(tmp_path / "a.ulaw", AGENT_HZ),
                            tmp_path / "agent.xml", after=r'<recv request="ACK"/>')
        talks = with_tone(sipp.SCENARIOS / "caller_until_bye.xml", tone_file(tmp_path / "c.ulaw", CALLER_HZ),
                          tmp_path / "caller.xml", after=r"CSeq: 1 ACK.*?</send>")
        started.append(sipp.agent_phone(agent.name, agent.password, ring_ms=200, calls=3,
                                        scenario=str(answers), media_port=ports["agent"], timeout_s=90))
        wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
        started.append(sipp.start_call(NUMBER, str(talks), caller=FIRST, media_port=ports["caller"],
                                       timeout_s=90))
        first = wait_until(lambda: answered(db, FIRST), what="the first caller talking to the agent")
        started.append(sipp.start_call(NUMBER, caller=SECOND, timeout_s=90))
        wait_until(lambda: waiting_callers(daemon_env) == [SECOND] or None, what="the second caller waiting")

        with RtpTap() as tap:
            killed = time.monotonic()
            took = takes_over(standby, daemon, signal.SIGKILL)
            assert took < TAKEOVER_S, standby.log()
            started.append(sipp.start_call(NUMBER, caller=THIRD, timeout_s=90))
            wait_until(lambda: waiting_callers(daemon_env) == [SECOND, THIRD] or None,
                       what="the adopted caller still ahead of a new one")
            heard = {who: tap.samples(ports[who], killed) for who in ports}
        assert len(heard["agent"]) > 8000 and len(heard["caller"]) > 8000, tap.ports()
        assert share(heard["agent"], CALLER_HZ) > 0.5 and share(heard["caller"], AGENT_HZ) > 0.5
        assert "hotline_active 1.0" in standby.metrics()

        lab.asterisk_cli(f"channel request hangup {first['channel_id']}")
        second = wait_until(lambda: answered(db, SECOND), what="the adopted waiting caller answered next")
        assert hop_of(db, THIRD)["answered_at"] is None  # type: ignore[index]

        daemon.launch()  # the killed one comes back, as its supervisor restarts it: a standby now
        assert str(daemon.wait_standby()["active"]).startswith(f"{standby.proc.pid}@")
        lab.asterisk_cli(f"channel request hangup {second['channel_id']}")
        third = wait_until(lambda: answered(db, THIRD), what="the third caller answered")
        assert takes_over(daemon, standby, signal.SIGTERM) < TAKEOVER_S, daemon.log()
        assert standby.proc.returncode == 0 and "Traceback" not in standby.log()

        # The active's lock session lost (as when the database restarts): it is fenced, lets go of
        # Asterisk and exits non-zero; the standby serves.
        seen = daemon.log().count(SEES_A_STANDBY)  # the log goes on from its earlier run
        standby.launch()
        standby.wait_standby()
        wait_until(lambda: daemon.log().count(SEES_A_STANDBY) > seen, what="the active saw the standby")
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE datname = current_database() AND application_name LIKE 'hotline active %'")
        assert daemon.proc.wait(10) == 1
        assert "fenced: the active lock's session is lost" in daemon.log()
        standby.wait_registered(timeout_s=TAKEOVER_S)
        lab.asterisk_cli(f"channel request hangup {third['channel_id']}")  # the heir closes the hop
        for proc in started:
            assert sipp.finish(proc, timeout_s=30).ok
    finally:
        standby.stop()
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    hops = wait_until(lambda: h if len(h := rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"
                                                     " ORDER BY id")) == 3 else None,
                      what="three hops closed", timeout_s=20)
    assert len(rows(db, "SELECT id FROM hops")) == 3
    assert [h["caller_num"] for h in hops] == [FIRST, SECOND, THIRD]
    assert {h["end_reason"] for h in hops} == {"completed"}
    for hop in hops:
        events = rows(db, "SELECT event FROM queue_events WHERE hop_id = %s ORDER BY id", hop["id"])
        assert [e["event"] for e in events] == ["join", "ring", "answer", "complete"], hop
