"""Blind transfers to an outside number through the real lab: the agent's phone (sipp) sends a
REFER naming a number, or `hotline case transfer`; the number is dialled through the provisioned
trunk (the lab's `sipp-carrier`, a sipp UAS on 127.0.0.4) with the hotline's number as caller id,
and the far end is bridged with the customer in the case's bridge, on a hop of the case of its
own. A number outside the trunk's prefixes is never dialled: the phone hears 603, the CLI exits
1, and the talk goes on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab
from hotline.lab.asterisk_conf import CARRIER_ADDRESS, CARRIER_ENDPOINT

from support import sipp
from support.agents import logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.transfer_checks import bridge_channels, channel_name, refer_accepted, sipfrags, stop

pytestmark = pytest.mark.lab

NUMBER = "84950002257"
HOTLINE_NUMBER = "+74950002257"
CALLER = "+79165554323"
WITH_TRUNK = pytest.mark.provision(BASE + f"""
[queues.to_first]
ring_timeout = 5
wrapup = 0

[hotlines.to]
entry = "queue:to_first"

[numbers."{HOTLINE_NUMBER}"]
hotline = "to"

[trunks.carrier]
endpoint = "{CARRIER_ENDPOINT}"
caller_id = "{HOTLINE_NUMBER}"
allow = ["+7916"]
""")


def start_far_end(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """sipp's built-in UAS on the carrier's address: answers one call, waits for the BYE."""
    messages = tmp_path / "far-end-messages.log"
    proc = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", CARRIER_ADDRESS, "-p", "5060", "-m", "1", "-trace_msg",
         "-message_file", str(messages), "-timeout", "40s", "-timeout_error", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    return proc, messages


def answered_hop(db: psycopg.Connection) -> dict[str, object]:
    return wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None),
                      what="the call answered by the agent")


@WITH_TRUNK
def test_a_refer_to_a_number_dials_it_through_the_trunk_and_bridges_the_far_end_with_the_customer(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "on", {"to_first": 0})
    seen = tmp_path / "phone.msg"
    far_end, far_messages = start_far_end(tmp_path)
    started = [sipp.agent_phone(agent.name, agent.password, ring_ms=200, scenario="agent_refers.xml",
                                more_fields=("1500", "89161234567"), messages=seen)]
    try:
        wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        referring = sipp.finish(started[0])
        assert referring.ok, referring.output + daemon.log()  # REFER 202, NOTIFYs answered, BYE
        assert refer_accepted(seen) and sipfrags(seen)[-1] == "SIP/2.0 200 OK", seen.read_text()

        def with_far_end() -> list[str] | None:
            legs = bridge_channels(daemon_env, hop["case_id"])
            others = [c for c in legs if c != hop["channel_id"]]
            return legs if len(legs) == 2 and others and \
                f"PJSIP/{CARRIER_ENDPOINT}-" in channel_name(daemon_env, others[0]) else None
        wait_until(with_far_end, what="the customer bridged with the far end")
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        far = sipp.finish(far_end)
        assert far.ok, far.output  # answered, then its BYE with the customer's hangup
        wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2,
                   what="both hops closed")
    finally:
        stop([*started, far_end])
    invite = next(block for block in far_messages.read_text().split("\n\n") if "INVITE sip:" in block)
    assert f"INVITE sip:+79161234567@{CARRIER_ADDRESS}:5060" in invite
    from_line = next(line for line in invite.splitlines() if line.lower().startswith("from:"))
    assert f"<sip:{HOTLINE_NUMBER}@" in from_line  # the hotline's number as caller id
    assert "m=video" not in invite
    hops = rows(db, "SELECT case_id, seq, channel_kind, dialled, caller_num, end_reason FROM hops"
                    " ORDER BY seq")
    assert [(h["case_id"], h["seq"], h["end_reason"]) for h in hops] == [
        (hop["case_id"], 1, "completed"), (hop["case_id"], 2, "completed")]  # one case, two legs
    assert (hops[1]["channel_kind"], hops[1]["dialled"], hops[1]["caller_num"]) == (
        "pstn", "+79161234567", HOTLINE_NUMBER)
    [row] = rows(db, "SELECT kind, asked_by, target, outcome FROM transfers")
    assert row == {"kind": "blind", "asked_by": "phone", "target": "number:+79161234567",
                   "outcome": "transferred"}
    events = [e["event"] for e in rows(db, "SELECT event FROM queue_events ORDER BY id")]
    assert events == ["join", "ring", "answer", "complete", "transfer"]
    shown = hotline_cli(daemon_env, "case", "show", str(hop["case_id"])).stdout
    assert f"entered: {HOTLINE_NUMBER} dialled +79161234567 (hotline to)" in shown, shown  # hop 2
    assert (f"blind transfer asked by phone from queue to_first agent {agent.name} to "
            f"number:+79161234567: transferred") in shown


@WITH_TRUNK
def test_a_number_outside_the_trunks_prefixes_is_refused_to_the_phone_and_the_cli_and_never_dialled(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "of", {"to_first": 0})
    seen = tmp_path / "phone.msg"
    far_end, far_messages = start_far_end(tmp_path)
    started = [sipp.agent_phone(agent.name, agent.password, ring_ms=200, scenario="agent_refers.xml",
                                more_fields=("1000", "+78095551234"), messages=seen)]
    try:
        wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        wait_until(lambda: seen.exists() and sipfrags(seen), what="the phone told")
        assert sipfrags(seen)[-1].startswith("SIP/2.0 603"), seen.read_text()
        refused = hotline_cli(daemon_env, "case", "transfer", str(hop["case_id"]), "number:+78095551234")
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            "Error: transfer to +78095551234 refused: no trunk may dial '+78095551234': +78095551234 is "
            "outside trunk carrier's allowed prefixes (+7916)")
        assert len(bridge_channels(daemon_env, hop["case_id"])) == 2  # still talking
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(started[0]).ok
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop([*started, far_end])
    assert "INVITE" not in (far_messages.read_text() if far_messages.exists() else "")
    [row] = rows(db, "SELECT asked_by, target, outcome, detail FROM transfers")
    assert (row["asked_by"], row["target"], row["outcome"]) == ("phone", "+78095551234", "refused")
    assert "outside trunk carrier's allowed prefixes" in row["detail"]
    assert [h["end_reason"] for h in rows(db, "SELECT end_reason FROM hops")] == ["completed"]
