"""Callbacks asked outside a queue's line, on the lab: a sipp caller in a menu presses the key
`callback:QUEUE`, and a caller of a closed hotline whose closed action is `callback:QUEUE` leaves
a request placed only once its hours open (changed with the CLI). The agent's phone is a sipp,
the customer's far end a sipp behind the carrier (sipp-carrier); each test checks the SIP the
parties saw, the bridge and the rows."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab
from hotline.lab.asterisk_conf import CARRIER_ADDRESS

from support import sipp
from support.callbacks import (
    CUSTOMER,
    agent_of_queue,
    case_hops,
    far_end,
    from_of,
    invites,
    phone,
    sipps_stopped_afterwards,  # noqa: F401 (autouse: the sipps stopped after each test)
)
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE

pytestmark = pytest.mark.lab

MENU_NUMBER, NIGHT_NUMBER = "+74950003311", "+74950003312"
# The day the module was imported: the holidays and the opening the test expects from them are
# counted from the same day even when a run crosses midnight.
TODAY = date.today()
HOLIDAYS = ", ".join(f'"{TODAY + timedelta(days=d)}" = "closed"' for d in (-1, 0, 1))
CENTRE = BASE + f"""
[queues.callbacks]
ring_timeout = 8
retry = 1
ringback = 0

[menus.callme]
prompt = "hello-world"
[menus.callme.options]
"3" = "callback:callbacks"
"1" = "queue:callbacks"

[hotlines.callbacks]
entry = "menu:callme"

[hotlines.night]
entry = "queue:callbacks"
hours = ["daily 00:00-24:00"]
holidays = {{ {HOLIDAYS} }}
closed = "callback:callbacks"
closed_prompt = "vm-goodbye"

[numbers."{MENU_NUMBER}"]
hotline = "callbacks"
lines = 2

[numbers."{NIGHT_NUMBER}"]
hotline = "night"
lines = 2

[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+74951234567"
allow = ["+7916"]
"""


def the_request(db: psycopg.Connection) -> dict[str, object]:
    return wait_until(lambda: rows(db, "SELECT c.*, q.name AS queue FROM callbacks c"
                                       " JOIN queues q ON q.id = c.queue_id"),
                      what="callback request stored")[0]


def asked_hop(db: psycopg.Connection) -> dict[str, object]:
    return wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="hop closed")[0]


def visit_events(db: psycopg.Connection) -> list[dict[str, object]]:
    return rows(db, "SELECT e.event, q.name AS queue, e.at, e.wait_ms FROM queue_events e"
                    " JOIN queues q ON q.id = e.queue_id ORDER BY e.id")


def hang_up_the_customer(lab: Lab, daemon_env: dict[str, str], case_id: object) -> list[str]:
    """The customer's leg in the case's bridge hangs up; the channels the bridge had. The placer
    writes `answered` before it adds the customer's leg to the bridge (durable first): wait for it."""
    def customer_bridged() -> list[str] | None:
        status, body = ari_get(daemon_env, f"bridges/case-{case_id}")
        channels: list[str] = json.loads(body)["channels"] if status == 200 else []
        return channels if any("-customer-" in c for c in channels) else None
    bridged = wait_until(customer_bridged, timeout_s=10, what="the customer's leg in the case's bridge")
    customer_leg = next(c for c in bridged if "-customer-" in c)
    name = json.loads(ari_get(daemon_env, f"channels/{customer_leg}")[1])["name"]
    assert name.startswith("PJSIP/sipp-carrier-")
    lab.asterisk_cli(f"channel request hangup {name}")
    return list(bridged)


@pytest.mark.provision(CENTRE)
def test_a_menu_key_callback_queue_stores_a_request_and_it_is_placed_agent_first(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    # 3 in the menu, then 1 while their number is read back; Asterisk hangs up after the thanks.
    run = sipp.finish(sipp.start_pressing_keys(MENU_NUMBER, "3", "1", first_ms=1500, gap_ms=2500,
                                               timeout_s=30, caller=CUSTOMER))
    assert run.ok, run.output[-2500:]
    request = the_request(db)
    assert (request["number"], request["queue"]) == (CUSTOMER, "callbacks")
    assert request["status"] in ("pending", "placing")
    asked = asked_hop(db)
    assert asked["end_reason"] == "callback" and asked["case_id"] == request["case_id"]
    assert asked["ivr_path"] == "3"
    events = visit_events(db)
    assert [(e["event"], e["queue"], e["wait_ms"]) for e in events] == [
        ("join", "callbacks", None), ("callback", "callbacks", 0)]
    assert request["joined_at"] == events[0]["at"]  # joined the line when they asked
    assert request["due_at"] <= request["requested_at"] + timedelta(seconds=1)

    customer, customer_sip = far_end(tmp_path)
    agent = agent_of_queue(daemon_env, tmp_path)
    agent_phone, agent_sip = phone(lab, agent, tmp_path)
    wait_until(lambda: rows(db, "SELECT 1 FROM callbacks WHERE status = 'answered'"), timeout_s=40,
               what="callback answered")
    bridged = hang_up_the_customer(lab, daemon_env, request["case_id"])
    assert len(bridged) == 2 and any("-agent-" in c for c in bridged)
    assert sipp.finish(customer).ok and sipp.finish(agent_phone).ok
    [(agent_at, agent_invite)] = invites(agent_sip)
    [(customer_at, customer_invite)] = invites(customer_sip)
    assert agent_at < customer_at  # the agent first
    assert '"callback callbacks"' in from_of(agent_invite) and "79165551234" in from_of(agent_invite)
    assert f"INVITE sip:{CUSTOMER}@{CARRIER_ADDRESS}" in customer_invite
    assert "<sip:+74951234567@" in from_of(customer_invite)
    hops = wait_until(lambda: case_hops(db, request["case_id"]), what="callback hop closed")
    assert hops[1]["dialled_e164"] == CUSTOMER and hops[1]["end_reason"] == "completed"
    assert rows(db, "SELECT status, attempts FROM callbacks") == [{"status": "answered", "attempts": 1}]
    stats = hotline_cli(daemon_env, "stats", "queues", "--format", "json")
    assert stats.returncode == 0, stats.stderr
    [today] = [r for r in json.loads(stats.stdout) if r["queue"] == "callbacks"]
    assert (today["callbacks_requested"], today["callbacks_answered"], today["abandoned"]) == (1, 1, 0)


@pytest.mark.provision(CENTRE)
def test_a_closed_hotlines_callback_is_placed_only_once_its_hours_open(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    # The closed prompt (vm-goodbye), then 1 while their number is read back.
    run = sipp.finish(sipp.start_pressing_keys(NIGHT_NUMBER, "1", first_ms=3500, timeout_s=30,
                                               caller=CUSTOMER))
    assert run.ok, run.output[-2500:]
    request = the_request(db)
    assert (request["number"], request["queue"]) == (CUSTOMER, "callbacks")
    asked = asked_hop(db)
    assert asked["end_reason"] == "callback"
    assert [(e["event"], e["queue"]) for e in visit_events(db)] == [("join", "callbacks"),
                                                                     ("callback", "callbacks")]
    opening = TODAY + timedelta(days=2)  # the day after the last holiday, in Moscow
    assert request["expires_at"] is not None and request["expires_at"].date() >= opening - timedelta(days=1)
    # The placer takes it and puts it back until the opening (the day after the holidays).
    held = wait_until(lambda: rows(db, "SELECT due_at FROM callbacks WHERE status = 'pending'"
                                       " AND waits_for_opening"), what="held while closed")
    assert held[0]["due_at"].date() >= opening - timedelta(days=1)  # UTC of Moscow's midnight
    assert "its hotline is closed: waits for its opening" in daemon.log()
    # An agent free and the customer's phone up change nothing while it is closed.
    customer, customer_sip = far_end(tmp_path)
    agent = agent_of_queue(daemon_env, tmp_path)
    agent_phone, agent_sip = phone(lab, agent, tmp_path)
    time.sleep(3)
    assert rows(db, "SELECT status, attempts FROM callbacks") == [{"status": "pending", "attempts": 0}]
    assert invites(agent_sip) == []
    # The hours change (the holidays replaced): placed at once, not at the old opening.
    opened = hotline_cli(daemon_env, "hotline", "set", "night", "--holiday", "2030-01-01=closed")
    assert opened.returncode == 0, opened.stderr
    wait_until(lambda: rows(db, "SELECT 1 FROM callbacks WHERE status = 'answered'"), timeout_s=40,
               what="callback answered once open")
    assert "their hotlines' hours changed: looked at again" in daemon.log()
    hang_up_the_customer(lab, daemon_env, request["case_id"])
    assert sipp.finish(customer).ok and sipp.finish(agent_phone).ok
    [(agent_at, _)] = invites(agent_sip)
    [(customer_at, customer_invite)] = invites(customer_sip)
    assert agent_at < customer_at and f"INVITE sip:{CUSTOMER}@{CARRIER_ADDRESS}" in customer_invite
    hops = wait_until(lambda: case_hops(db, request["case_id"]), what="callback hop closed")
    assert hops[1]["end_reason"] == "completed" and hops[1]["answered_at"] is not None
