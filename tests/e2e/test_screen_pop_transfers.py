"""The screen pop of rings that are not a queue's own, through the real lab: a sipp caller talks
with a first agent (sipp phone); the CLI passes the talk to a second agent, attended (a consult)
or blind, or invites them into it (a conference). The second agent's live stream
(`GET /api/agent/events`, read here as the agent page reads it) pops the ring: its kind, who
passes the caller on, the case, the caller, the queue, and the case's notes (one written by
`hotline case note` during the first talk); then `answered` for the same ring when the second
phone answers."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.transfer_checks import stop

pytestmark = pytest.mark.lab

NUMBER = "84950002271"
CALLER = "+79165554371"
ONE_QUEUE = pytest.mark.provision(BASE + """
[queues.xp_desk]
ring_timeout = 8
wrapup = 0

[hotlines.xp]
entry = "queue:xp_desk"

[numbers."+74950002271"]
hotline = "xp"
""")
NOTE = "VIP: говорит только по-английски"


class PopStream(threading.Thread):
    """An agent's screen pop stream, read as the agent page reads it (the login sent each time,
    event blocks parsed); every event kept in `events` as (kind, data)."""

    def __init__(self, listen: str, agent: Agent) -> None:
        super().__init__(daemon=True)
        host, port = listen.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        login = base64.b64encode(f"{agent.name}:{agent.password}".encode()).decode()
        self.conn.request("GET", "/api/agent/events", headers={"Authorization": f"Basic {login}",
                                                              "Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        self.events: list[tuple[str, dict[str, object]]] = []
        self.start()

    def run(self) -> None:
        kind, data = "message", ""
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and data:
                    self.events.append((kind, json.loads(data)))
                    kind, data = "message", ""
        except (OSError, ValueError):
            return  # closed by the test

    def pops(self, state: str) -> list[dict[str, object]]:
        return [data for kind, data in self.events if kind == "screenpop" and data["state"] == state]

    def close(self) -> None:
        """The page goes: its socket shut (the reader sees the end of the stream), then closed."""
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.join(5)
        self.conn.close()


def start(lab: Lab, first: Agent, second: Agent, second_scenario: str = "agent_answers.xml",
          ) -> tuple[list[subprocess.Popen[str]], subprocess.Popen[str]]:
    """Both phones (the second answers 1.5 s after it rings, unless `second_scenario` says
    otherwise), then the caller."""
    phones = [sipp.agent_phone(first.name, first.password, ring_ms=200),
              sipp.agent_phone(second.name, second.password, ring_ms=1500, scenario=second_scenario)]
    wait_until(lambda: all(registered(lab, a.name) for a in (first, second)), what="agent phones registered")
    return phones, sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)


def cli(env: dict[str, str], *args: str) -> str:
    done = hotline_cli(env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def first_talk(db: psycopg.Connection, env: dict[str, str], first: Agent) -> dict[str, object]:
    """The first agent's talk, answered, with a note on its case written meanwhile."""
    hop = wait_until(lambda: next(iter(rows(
        db, "SELECT h.* FROM hops h JOIN queue_events e ON e.hop_id = h.id AND e.event = 'answer'")), None),
        what="the call answered by the first agent")
    cli(env, "case", "note", str(hop["case_id"]), NOTE)
    return hop


def ringing_pop(stream: PopStream) -> dict[str, object]:
    return wait_until(lambda: next(iter(stream.pops("ringing")), None), timeout_s=15,
                      what="the second agent's page popping the ring")


def answered_pop(stream: PopStream) -> dict[str, object]:
    return wait_until(lambda: next(iter(stream.pops("answered")), None), what="the pop saying answered")


def check_pop(pop: dict[str, object], hop: dict[str, object], kind: str, first: Agent, second: Agent) -> None:
    assert (pop["kind"], pop["passed_by"], pop["agent"]) == (kind, first.name, second.name)
    assert (pop["case"], pop["hop"], pop["caller"], pop["queue"]) == (hop["case_id"], hop["id"], CALLER,
                                                                      "xp_desk")
    assert (pop["customer"], pop["hotline"]) == (CALLER, "xp")
    [note] = pop["notes"]  # type: ignore[misc]
    assert (note["case_id"], note["author"], note["text"]) == (hop["case_id"], "cli", NOTE)


@ONE_QUEUE
def test_a_consult_ring_pops_on_the_target_agents_page_with_who_passes_the_caller_on(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "xc", {"xp_desk": 0}, {})
    stream = PopStream(daemon_env["HOTLINE_WEB_LISTEN"], second)
    wait_until(lambda: any(kind == "hello" for kind, _ in stream.events), what="the stream open")
    phones, caller = start(lab, first, second)
    try:
        hop = first_talk(db, daemon_env, first)
        assert stream.pops("ringing") == []  # the queue rang the first agent only
        cli(daemon_env, "case", "transfer", str(hop["case_id"]), f"agent:{second.name}", "--attended")
        pop = ringing_pop(stream)
        check_pop(pop, hop, "consult", first, second)
        answered = answered_pop(stream)
        assert (answered["ring"], answered["kind"]) == (pop["ring"], "consult")
        cli(daemon_env, "case", "transfer", str(hop["case_id"]), "--complete")
        assert sipp.finish(phones[0]).ok  # the first agent's phone got its BYE
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
    finally:
        stream.close()
        stop([*phones, caller])
    assert [p["ring"] for p in stream.pops("ringing")] == [pop["ring"]]  # popped once


@ONE_QUEUE
def test_a_blind_transfer_to_an_agent_pops_on_their_page_as_a_transfer(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "xb", {"xp_desk": 0}, {})
    stream = PopStream(daemon_env["HOTLINE_WEB_LISTEN"], second)
    wait_until(lambda: any(kind == "hello" for kind, _ in stream.events), what="the stream open")
    phones, caller = start(lab, first, second)
    try:
        hop = first_talk(db, daemon_env, first)
        cli(daemon_env, "case", "transfer", str(hop["case_id"]), f"agent:{second.name}")
        pop = ringing_pop(stream)
        check_pop(pop, hop, "transfer", first, second)
        answered = answered_pop(stream)
        assert answered["ring"] == pop["ring"]
        assert sipp.finish(phones[0]).ok
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
    finally:
        stream.close()
        stop([*phones, caller])


@ONE_QUEUE
def test_a_conference_invitation_pops_on_the_invited_agents_page(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "xi", {"xp_desk": 0}, {})
    stream = PopStream(daemon_env["HOTLINE_WEB_LISTEN"], second)
    wait_until(lambda: any(kind == "hello" for kind, _ in stream.events), what="the stream open")
    phones, caller = start(lab, first, second)
    try:
        hop = first_talk(db, daemon_env, first)
        cli(daemon_env, "case", "invite", str(hop["case_id"]), second.name)
        pop = ringing_pop(stream)
        assert (pop["kind"], pop["passed_by"], pop["agent"]) == ("conference", "cli", second.name)
        assert (pop["case"], pop["hop"], pop["caller"], pop["queue"]) == (hop["case_id"], hop["id"], CALLER,
                                                                          "xp_desk")
        assert [n["text"] for n in pop["notes"]] == [NOTE]  # type: ignore[attr-defined]
        assert answered_pop(stream)["ring"] == pop["ring"]
        wait_until(lambda: rows(db, "SELECT 1 FROM case_participants WHERE left_at IS NULL"),
                   what="the invited agent in the conference")
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
    finally:
        stream.close()
        stop([*phones, caller])


@ONE_QUEUE
def test_an_invitation_the_invited_phone_refuses_pops_and_then_says_gone(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "xg", {"xp_desk": 0}, {})
    stream = PopStream(daemon_env["HOTLINE_WEB_LISTEN"], second)
    wait_until(lambda: any(kind == "hello" for kind, _ in stream.events), what="the stream open")
    phones, caller = start(lab, first, second, "far_end_busy.xml")  # 180, then 486 after 0.5 s
    try:
        hop = first_talk(db, daemon_env, first)
        cli(daemon_env, "case", "invite", str(hop["case_id"]), second.name)
        pop = ringing_pop(stream)
        assert (pop["kind"], pop["case"]) == ("conference", hop["case_id"])
        gone = wait_until(lambda: next(iter(stream.pops("gone")), None), what="the pop saying gone")
        assert gone["ring"] == pop["ring"] and gone["detail"], gone
        assert stream.pops("answered") == []
        assert sipp.finish(phones[1]).ok
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
    finally:
        stream.close()
        stop([*phones, caller])
    assert rows(db, "SELECT 1 FROM case_participants") == []
