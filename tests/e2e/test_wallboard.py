"""The live snapshot a wallboard reads, kept current by the running daemon while real calls wait
and agents change state (`queue_live_now`, `agent_live_now`, `hotline stats live`)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from support import sipp
from support.agents import hotline, logged_in_agents
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

WAITING = BASE + """
[queues.wall]
max_wait = 6
overflow = "hangup"

[hotlines.wall]
entry = "queue:wall"

[numbers."+74950002219"]
hotline = "wall"
lines = 3
"""


def live_queue(db: psycopg.Connection) -> dict[str, object] | None:
    found = rows(db, "SELECT * FROM queue_live_now WHERE queue = 'wall'")
    return found[0] if found else None


@pytest.mark.provision(WAITING)
def test_the_wallboard_shows_callers_waiting_and_agents_by_state_as_they_change(
        daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path) -> None:
    anna, boris = logged_in_agents(daemon_env, tmp_path, "w", {"wall": 0}, {"wall": 0})
    hotline(daemon_env, "agent", "pause", boris.name, "training")
    # Neither phone is registered: anna is logged in but unreachable, boris paused.
    caller = sipp.start_call("84950002219")
    board = wait_until(lambda: (q := live_queue(db)) and q["waiting"] == 1 and q["longest_wait_s"] >= 1
                       and q, what="one caller waiting on the board")
    assert (board["agents_paused"], board["agents_logged_out"]) == (1, 1)  # unreachable counts as out
    states = {r["agent"]: r["state"] for r in rows(db, "SELECT agent, state FROM agent_live_now")}
    assert states == {anna.name: "unreachable", boris.name: "paused"}
    shown = json.loads(hotline(daemon_env, "stats", "live", "--format", "json").stdout)
    wall = next(q for q in shown["queues"] if q["queue"] == "wall")
    assert wall["waiting"] == 1
    assert sipp.finish(caller).ok  # overflowed at 6 s, hung up
    wait_until(lambda: (q := live_queue(db)) and q["waiting"] == 0, what="nobody waiting on the board")
