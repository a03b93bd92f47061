"""One case per contact across calls, through the real lab: a customer who calls again soon after
their call ended continues that case (its next hop), and is offered first to the agent who talked
with them, whatever the queue's strategy would pick; another customer is not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

NUMBER = "84950002233"
CUSTOMER, OTHER = "+79161230001", "+79161230002"


def phone(lab: Lab, agent: Agent, calls: int) -> subprocess.Popen[str]:
    started = sipp.agent_phone(agent.name, agent.password, ring_ms=200, calls=calls)
    wait_until(lambda: registered(lab, agent.name), what=f"{agent.name}'s phone registered")
    return started


def call(caller: str, ended: int, db: psycopg.Connection) -> dict[str, object]:
    run = sipp.call(NUMBER, "caller_hangs_up.xml", caller=caller, hold_ms=500)
    assert run.ok, run.output[-2000:]
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == ended,
               what=f"{ended} call(s) ended")
    return rows(db, "SELECT h.case_id, h.seq, a.name AS agent FROM hops h JOIN agents a ON a.id = h.agent_id"
                    " ORDER BY h.id DESC LIMIT 1")[0]


@pytest.mark.provision(BASE + """
[queues.cq]
strategy = "linear"
ring_timeout = 4
retry = 1

[hotlines.cq]
entry = "queue:cq"

[numbers."+74950002233"]
hotline = "cq"
""")
def test_a_customer_calling_again_continues_their_case_with_the_agent_they_talked_to(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "c", {"cq": 0}, {"cq": 0})
    phones = [phone(lab, second, calls=2)]  # the first agent's phone is not up yet: the second answers
    try:
        talked = call(CUSTOMER, 1, db)
        assert (talked["seq"], talked["agent"]) == (1, second.name)
        phones.append(phone(lab, first, calls=1))

        again = call(CUSTOMER, 2, db)  # linear would pick the first agent; the customer's own is free
        assert (again["case_id"], again["seq"], again["agent"]) == (talked["case_id"], 2, second.name)
        other = call(OTHER, 3, db)
        assert other["case_id"] != talked["case_id"] and (other["seq"], other["agent"]) == (1, first.name)
        assert rows(db, "SELECT customer_key, status FROM cases ORDER BY id") == [
            {"customer_key": CUSTOMER, "status": "closed"}, {"customer_key": OTHER, "status": "closed"}]
    finally:
        for started in phones:
            if started.poll() is None:
                started.kill()
            started.communicate()
