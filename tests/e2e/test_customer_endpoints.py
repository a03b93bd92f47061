"""What a hostile caller can do on the endpoints customers reach, through the real lab: a REFER is
refused and makes no channel; a dialled number cannot pass itself off as a browser's customer id
and continue that customer's case; a flood of web calls that never send media is refused per
source or hung up by Asterisk's RTP timeout, never rings an agent, and real callers are served."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
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

CITY = "84950004455"
WEB_DESK = "web-desk"
CUSTOMER = "c0ffee00c0ffee00"  # a browser's own id, as the pages send it in X-Hotline-Customer

PROVISIONING = BASE + f"""
[queues.eq]
strategy = "linear"
ring_timeout = 6
retry = 1

[hotlines.eq]
entry = "queue:eq"

[numbers."+74950004455"]
hotline = "eq"
lines = 5

[numbers.{WEB_DESK}]
hotline = "eq"
kind = "video"
lines = 10
"""


def phone(lab: Lab, agent: Agent, calls: int) -> subprocess.Popen[str]:
    started = sipp.agent_phone(agent.name, agent.password, ring_ms=200, calls=calls)
    wait_until(lambda: registered(lab, agent.name), what=f"{agent.name}'s phone registered")
    return started


def stop(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def web_calls(number: str, calls: int, *, customer: str = CUSTOMER, rate: int = 20,
              port: int | None = None) -> subprocess.Popen[str]:
    """`calls` calls as a browser's from one source (127.0.0.1 and one port), over UDP."""
    inf = sipp.INJECTION_DIR / f"web-{uuid.uuid4().hex[:8]}.csv"
    inf.write_text(f"SEQUENTIAL\n{customer};\n")
    cmd = ["sipp", sipp.ASTERISK_SIP, "-sf", str(sipp.SCENARIOS / "web_caller.xml"), "-s", number,
           "-inf", str(inf), "-m", str(calls), "-r", str(rate), "-l", str(calls), "-i", "127.0.0.1",
           "-p", str(port or sipp.free_udp_port()), "-mp", str(sipp.free_udp_port()),
           "-timeout", "40s", "-timeout_error", "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, cwd=sipp.INJECTION_DIR)


def answered_hops(db: psycopg.Connection) -> list[dict[str, object]]:
    return rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL ORDER BY id")


def ended_hops(db: psycopg.Connection, count: int) -> list[dict[str, object]]:
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) >= count,
               what=f"{count} hop(s) ended", timeout_s=30)
    return rows(db, "SELECT * FROM hops ORDER BY id")


def channel_ids(env: dict[str, str]) -> set[str]:
    status, body = ari_get(env, "channels")
    assert status == 200, body
    return {c["id"] for c in json.loads(body)}


def log_since(lab: Lab, start: int) -> str:
    with lab.log_paths()["asterisk"].open("rb") as fh:
        fh.seek(start)
        return fh.read().decode(errors="replace")


def log_size(lab: Lab) -> int:
    log = lab.log_paths()["asterisk"]
    return log.stat().st_size if log.exists() else 0


@pytest.mark.provision(PROVISIONING)
def test_a_callers_refer_is_refused_and_asterisk_makes_no_channel_of_it(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "r", {"eq": 0})
    agent_phone = phone(lab, agent, calls=1)
    try:
        # The caller, talking with the agent, asks Asterisk to transfer it to another number.
        caller = sipp.start_call(CITY, "caller_refers.xml", hold_ms=1500, more_fields=("84951234567",))
        [hop] = wait_until(lambda: answered_hops(db), what="the caller answered by the agent")
        talking = channel_ids(daemon_env)
        assert len(talking) == 2 and hop["channel_id"] in talking  # the caller and the agent's leg
        time.sleep(2.5)  # the REFER goes 1.5 s after the answer; its refusal is checked by the scenario
        assert channel_ids(daemon_env) == talking  # nothing dialled, nobody gone: the talk goes on
        assert rows(db, "SELECT ended_at FROM hops") == [{"ended_at": None}]
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        run = sipp.finish(caller)
        assert run.ok, run.output[-2000:]  # 403, 405 or 603 to the REFER, then the BYE
        [ended] = ended_hops(db, 1)
        assert ended["end_reason"] == "completed"
    finally:
        stop(agent_phone)


@pytest.mark.provision(PROVISIONING)
def test_a_dialled_number_carrying_a_customer_id_does_not_continue_that_customers_case(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "w", {"eq": 0})
    agent_phone = phone(lab, agent, calls=1)
    try:
        # The customer's browser calls: its id comes from its X-Hotline-Customer header.
        browser = web_calls(WEB_DESK, 1)
        [hop] = wait_until(lambda: answered_hops(db), what="the web call answered by the agent")
        # Hung up as the page's button does (else the agent would wait web_rejoin_grace for it).
        assert hanging_up(daemon_env, CUSTOMER) == 202
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(browser).returncode == 0
        ended_hops(db, 1)
        # Then someone dials the video address with the customer's id after a comma, from the trunk.
        forger = sipp.start_call(f"{WEB_DESK},customer={CUSTOMER}", "caller_until_bye.xml",
                                 caller="+79161239999")
        assert sipp.finish(forger).ok  # told the number is not in service, then hung up
        web, forged = ended_hops(db, 2)
        assert web["channel_kind"] == "webrtc"
        assert forged["dialled"] == f"{WEB_DESK}customer{CUSTOMER}"  # one argument, commas and = gone
        assert forged["case_id"] != web["case_id"] and forged["seq"] == 1
        assert rows(db, "SELECT customer_key FROM cases ORDER BY id") == [
            {"customer_key": f"web:{CUSTOMER}"}, {"customer_key": "+79161239999"}]
    finally:
        stop(agent_phone)


def hanging_up(env: dict[str, str], customer: str) -> int:
    """What the customer page says before its BYE (POST /api/call/hangup): the HTTP status."""
    url = f"http://{env['HOTLINE_WEB_LISTEN']}/api/call/hangup"
    request = urllib.request.Request(url, data=json.dumps({"customer": customer}).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Origin": f"http://{env['HOTLINE_WEB_LISTEN']}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


WEB_LIMITS = {"HOTLINE_WEB_RTP_TIMEOUT": "2", "HOTLINE_WEB_CALLS_PER_SOURCE": "2",
              "HOTLINE_WEB_NEW_CALLS_PER_MINUTE": "4"}


@pytest.mark.provision(PROVISIONING)
def test_a_flood_of_silent_web_calls_never_rings_an_agent_and_real_callers_are_served(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    env = {**daemon_env, **WEB_LIMITS}  # what `hotline apply` renders the web endpoint with
    [agent] = logged_in_agents(env, tmp_path, "f", {"eq": 0})
    agent_phone = phone(lab, agent, calls=2)
    start = log_size(lab)
    try:
        first = sipp.start_call(CITY, "caller_hangs_up.xml", caller="+79161230011", hold_ms=8000)
        wait_until(lambda: answered_hops(db), what="the first real caller talking with the agent")
        while time.time() % 60 > 55:  # the per-minute count starts afresh when the minute turns
            time.sleep(0.5)
        port = sipp.free_udp_port()
        flood = web_calls(WEB_DESK, 8, port=port)
        # A second real caller during the flood: it waits for the agent, who is talking.
        second = sipp.start_call(CITY, "caller_until_bye.xml", caller="+79161230022")
        run = sipp.finish(flood, timeout_s=60)
        # Every flood call ended cleanly: refused with 486, or answered and hung up by Asterisk.
        assert run.returncode == 0, run.output[-3000:]
        assert sipp.finish(first).ok
        [_, waited] = wait_until(lambda: len(answered_hops(db)) == 2 and answered_hops(db),
                                 what="the second real caller answered by the agent", timeout_s=30)
        lab.asterisk_cli(f"channel request hangup {waited['channel_id']}")
        assert sipp.finish(second).ok
        hops = ended_hops(db, 4)
        web = [h for h in hops if h["channel_kind"] == "webrtc"]
        phones = [h for h in hops if h["channel_kind"] == "pstn"]
        # Two calls were let in (the source's limit of calls up), the other six refused at once.
        assert len(web) == 2 and len(phones) == 2
        refused = [line for line in log_since(lab, start).splitlines()
                   if " NOTICE[" in line and f"hotline-web: call from 127.0.0.1:{port} refused" in line]
        assert len(refused) == 6, refused
        assert sum("calls up (limit 2)" in line for line in refused) == 2
        assert sum("calls started this minute (limit 4)" in line for line in refused) == 4
        # The two let in never sent media: Asterisk hung them up while they waited for the agent.
        assert all(h["answered_at"] is None and h["agent_id"] is None for h in web)
        assert "for lack of audio RTP activity in 2 seconds" in log_since(lab, start)
        events = rows(db, "SELECT hop_id, event FROM queue_events ORDER BY id")
        rung = {e["hop_id"] for e in events if e["event"] == "ring"}
        assert rung and not rung & {h["id"] for h in web}, events  # never rung for a silent call
        assert all(h["answered_at"] is not None and h["agent_id"] is not None for h in phones)
        assert sipp.finish(agent_phone).ok  # it answered two calls, both real
    finally:
        stop(agent_phone)
