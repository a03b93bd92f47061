"""What the callback tests share: the customer's phone behind the carrier (a sipp UAS), the agent's
sipp phone, the SIP they saw, the case's hops and bridge. Every sipp started here is stopped after
the test (the fixture `sipps_stopped_afterwards`, imported by the test modules)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab
from hotline.lab.asterisk_conf import CARRIER_ADDRESS

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import ari_get

CUSTOMER = "+79165551234"  # the sipp caller's number: a +7916 number the trunk may dial
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
STARTED: list[subprocess.Popen[str]] = []  # this test's sipps


@pytest.fixture(autouse=True)
def sipps_stopped_afterwards() -> Iterator[None]:
    """A failed test leaves no sipp behind (a far end would hold the carrier's port for the next)."""
    yield
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    STARTED.clear()


def far_end(tmp_path: Path, *, calls: int = 1, busy: bool = False) -> tuple[subprocess.Popen[str], Path]:
    """The customer's phone behind the carrier: sipp's UAS answering (until the BYE), or busy."""
    messages = tmp_path / f"far-end-{'busy' if busy else 'answers'}.log"
    scenario = ["-sf", str(SCENARIOS / "far_end_busy.xml")] if busy else ["-sn", "uas"]
    proc = subprocess.Popen(
        ["sipp", *scenario, "-i", CARRIER_ADDRESS, "-p", "5060", "-m", str(calls), "-trace_msg",
         "-message_file", str(messages), "-timeout", "90s", "-timeout_error", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    STARTED.append(proc)
    return proc, messages


def invites(messages: Path) -> list[tuple[datetime, str]]:
    """Each INVITE a sipp received, with the time it logged it."""
    return received(messages, "INVITE")


def received(messages: Path, method: str) -> list[tuple[datetime, str]]:
    """Each request `method` a sipp received, with the time it logged it (the machine's clock)."""
    found = []
    log = messages.read_text(errors="replace")
    for block in log.split("----------------------------------------------- "):
        stamp = re.match(r"(\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2}\.\d+)", block)
        if stamp and "received" in block and re.search(f"^{method} sip:", block, re.M):
            found.append((datetime.fromisoformat(f"{stamp[1]} {stamp[2]}"), block))
    return found


def from_of(invite: str) -> str:
    return next(line for line in invite.splitlines() if line.lower().startswith("from:"))


def case_hops(db: psycopg.Connection, case_id: object, count: int = 2) -> list[dict[str, object]] | None:
    """The case's hops once there are `count` and all have ended."""
    hops = rows(db, "SELECT * FROM hops WHERE case_id = %s ORDER BY seq", case_id)
    return hops if len(hops) == count and all(h["ended_at"] for h in hops) else None


def bridge_channels(daemon_env: dict[str, str], request: dict[str, object]) -> list[str]:
    status, body = ari_get(daemon_env, f"bridges/case-{request['case_id']}")
    assert status == 200, body
    return list(json.loads(body)["channels"])

def customer_leg_in(daemon_env: dict[str, str], case_id: object) -> str | None:
    """The customer's outbound leg once it is in the case's bridge ('answered' is written before
    it joins: durable first)."""
    status, body = ari_get(daemon_env, f"bridges/case-{case_id}")
    if status != 200:
        return None
    return next((c for c in json.loads(body)["channels"] if "-customer-" in c), None)


def agent_of_queue(daemon_env: dict[str, str], tmp_path: Path) -> Agent:
    """The agent of the queue `callbacks`, logged in (group `cb`)."""
    return logged_in_agents(daemon_env, tmp_path, "cb", {"callbacks": 0})[0]


def phone(lab: Lab, agent: Agent, tmp_path: Path, *,
          name: str = "first") -> tuple[subprocess.Popen[str], Path]:
    messages = tmp_path / f"agent-{agent.name}-{name}.log"
    proc = sipp.agent_phone(agent.name, agent.password, ring_ms=300, timeout_s=90, messages=messages)
    STARTED.append(proc)
    wait_until(lambda: registered(lab, agent.name) or proc.poll() is not None, what="phone registered")
    assert proc.poll() is None, sipp.finish(proc).output
    return proc, messages
