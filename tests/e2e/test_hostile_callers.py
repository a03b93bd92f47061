"""Hostile callers through the real lab: identities no phone would send and floods of keys, from
real sipp INVITEs and INFOs. What a supervisor and an operator check: the rows are clean and
bounded, the log has one line per record, every call ends normally, other callers are still
answered by agents, and the daemon's web pages answer in time all along."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hotline.engine.facts import KEYS_RECORDED_PER_LEG
from hotline.lab import Lab
from hotline.text import NAME_LIMIT, NUMBER_LIMIT

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.latency import PageTimer
from support.provisioning import BASE

pytestmark = pytest.mark.lab

QUEUE_NUMBER = "84950003311"  # a queue with agents
WAIT_NUMBER = "84950003312"  # a queue nobody staffs: callers wait, with music at once
MENU_NUMBER = "84950003322"  # a menu whose "#" plays it again and "1" goes to the agents
VIDEO_ADDRESS = "video-desk"  # its page is what the timer asks for
HOSTILE = BASE + """
[queues.desk]
strategy = "linear"
ring_timeout = 5
retry = 1
ringback = 0

[queues.hold]
ringback = 0

[menus.loop]
prompt = "demo-congrats"
timeout = 10
retries = 1

[menus.loop.options]
"#" = "repeat"
"1" = "queue:desk"

[hotlines.desk]
entry = "queue:desk"

[hotlines.hold]
entry = "queue:hold"

[hotlines.menu]
entry = "menu:loop"

[numbers."+74950003311"]
hotline = "desk"
lines = 20

[numbers."+74950003312"]
hotline = "hold"
lines = 20

[numbers."+74950003322"]
hotline = "menu"
lines = 20

[numbers.video-desk]
hotline = "desk"
kind = "video"
"""
FLOOD = 2000  # key presses, as fast as the INFO round trip allows
P99_BOUND_S = 0.2  # generous: the page answers in a few ms on an idle lab
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")
UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def raw(data: bytes) -> str:
    """Bytes for sipp's command line as they are (surrogate escapes become the bytes again)."""
    return data.decode("utf-8", "surrogateescape")


@pytest.fixture
def agents(daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path, lab: Lab,
           rendered_files_removed_afterwards: Path) -> tuple[Agent, Agent]:
    """Two agents of queue `desk` (linear: the first by name is rung first), logged in."""
    first, second = logged_in_agents(daemon_env, tmp_path, "h", {"desk": 0}, {"desk": 0})
    return first, second


def phone_of(lab: Lab, agent: Agent, calls: int = 1) -> subprocess.Popen[str]:
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=200, calls=calls)
    wait_until(lambda: registered(lab, agent.name) or phone.poll() is not None, what="agent registered")
    assert phone.poll() is None, sipp.finish(phone).output[-2000:]
    return phone


def page_timer(env: dict[str, str]) -> PageTimer:
    # 8 a second: under the pages' own per-client limit (10 a second), which would answer 429
    return PageTimer(f"http://{env['HOTLINE_WEB_LISTEN']}/call/{VIDEO_ADDRESS}", period_s=0.125)


def hops_by_caller(db: psycopg.Connection, count: int) -> dict[str, dict[str, Any]]:
    ended = "SELECT * FROM hops WHERE ended_at IS NOT NULL ORDER BY id"
    hops = wait_until(lambda: h if len(h := rows(db, ended)) == count else None, what=f"{count} ended hop(s)")
    return {h["caller_num"]: h for h in hops}


def events_of(db: psycopg.Connection, hop_id: int) -> list[str]:
    events = rows(db, "SELECT event FROM queue_events WHERE hop_id = %s ORDER BY id", hop_id)
    return [e["event"] for e in events]


def flood_errors(daemon: DaemonProcess) -> str:
    """What the flooding sipp did not expect, and the daemon's log: why a flood failed."""
    errors = "".join(f.read_text(errors="replace")[-3000:] for f in sipp.INJECTION_DIR.glob("flood-*.errors"))
    return f"{errors}\n--- daemon log:\n{daemon.log()}"


def assert_responsive(timer: PageTimer) -> None:
    assert timer.times and set(timer.statuses) == {200}, timer.summary()
    assert timer.percentile(99) < P99_BOUND_S, timer.summary()


def assert_log_one_line_per_record(daemon: DaemonProcess) -> None:
    """Every line of the daemon's log starts a record of its own: nothing a caller sent split one."""
    text = daemon.log_path.read_text(errors="replace")
    strays = [line for line in text.splitlines() if not LOG_LINE.match(line)]
    assert not strays, strays[:5]
    assert "Traceback" not in text and "crashed" not in text


def flood_while_a_caller_is_served(env: dict[str, str], flooder: subprocess.Popen[str]
                                   ) -> tuple[sipp.SippRun, sipp.SippRun, PageTimer]:
    """Time the page until `flooder` is done; meanwhile a normal caller calls the agents' queue
    and talks 1 s."""
    with page_timer(env) as timer:
        normal = sipp.start_call(QUEUE_NUMBER, "caller_hangs_up.xml", caller="+74957770001", hold_ms=1000)
        normal_run = sipp.finish(normal, timeout_s=60)
        flood_run = sipp.finish(flooder, timeout_s=150)
    return flood_run, normal_run, timer


@pytest.mark.serial  # its page p99 must not share the cores with another lab's test
@pytest.mark.provision(HOSTILE)
def test_a_key_flood_in_a_menu_records_the_first_keys_and_another_caller_is_answered_meanwhile(
        agents: tuple[Agent, Agent], lab: Lab, daemon: DaemonProcess, daemon_env: dict[str, str],
        db: psycopg.Connection) -> None:
    phone = phone_of(lab, agents[0])
    flooder = sipp.start_flooding_keys(MENU_NUMBER, "#", FLOOD, caller="+79165550001")
    wait_until(lambda: "menu loop key #: repeat" in daemon.log_path.read_text(), what="keys in the menu")
    flood_run, normal_run, timer = flood_while_a_caller_is_served(daemon_env, flooder)
    assert flood_run.ok, flood_errors(daemon)  # every INFO got its 200, the BYE too
    assert normal_run.ok, normal_run.output[-3000:]
    assert sipp.finish(phone).ok
    hops = hops_by_caller(db, 2)
    flood, normal = hops["+79165550001"], hops["+74957770001"]
    assert flood["ivr_path"] == "#" * KEYS_RECORDED_PER_LEG
    assert (flood["end_reason"], flood["hangup_cause"]) == ("abandoned", 16)
    assert normal["end_reason"] == "completed" and normal["agent_id"] is not None
    assert events_of(db, normal["id"]) == ["join", "ring", "answer", "complete"]
    whole_log = daemon.log_path.read_text()  # daemon.log() is its tail
    assert whole_log.count(f"{KEYS_RECORDED_PER_LEG} keys recorded") == 1
    # Whether the menu fell 16 keys behind depends on the lab's pace; said once at most.
    assert whole_log.count("keys pressed ahead and not read yet") <= 1
    assert_responsive(timer)
    assert_log_one_line_per_record(daemon)
    print(f"flood in a menu: {timer.summary()}")


@pytest.mark.serial  # its page p99 must not share the cores with another lab's test
@pytest.mark.provision(HOSTILE)
def test_a_key_flood_while_waiting_in_a_queue_records_no_keys_and_the_wait_ends_normally(
        agents: tuple[Agent, Agent], lab: Lab, daemon: DaemonProcess, daemon_env: dict[str, str],
        db: psycopg.Connection) -> None:
    phone = phone_of(lab, agents[0])
    flooder = sipp.start_flooding_keys(WAIT_NUMBER, "5", FLOOD, caller="+79165550002")
    wait_until(lambda: "joined queue hold" in daemon.log_path.read_text(), what="the flooder waiting")
    flood_run, normal_run, timer = flood_while_a_caller_is_served(daemon_env, flooder)
    assert flood_run.ok, flood_errors(daemon)
    assert normal_run.ok, normal_run.output[-3000:]
    assert sipp.finish(phone).ok
    hops = hops_by_caller(db, 2)
    flood, normal = hops["+79165550002"], hops["+74957770001"]
    assert flood["ivr_path"] == "" and (flood["end_reason"], flood["hangup_cause"]) == ("abandoned", 16)
    assert events_of(db, flood["id"]) == ["join", "abandon"]
    assert events_of(db, normal["id"]) == ["join", "ring", "answer", "complete"]
    assert_responsive(timer)
    assert_log_one_line_per_record(daemon)
    print(f"flood in a queue: {timer.summary()}")


@pytest.mark.serial  # its page p99 must not share the cores with another lab's test
@pytest.mark.provision(HOSTILE)
def test_a_key_flood_while_talking_to_an_agent_and_the_next_caller_gets_the_other_agent(
        agents: tuple[Agent, Agent], lab: Lab, daemon: DaemonProcess, daemon_env: dict[str, str],
        db: psycopg.Connection) -> None:
    talking, other = phone_of(lab, agents[0]), phone_of(lab, agents[1])
    flooder = sipp.start_flooding_keys(QUEUE_NUMBER, "5", FLOOD, first_ms=1000, caller="+79165550003")
    answered = "SELECT 1 FROM hops WHERE answered_at IS NOT NULL"
    wait_until(lambda: rows(db, answered), what="the flooder talking")
    flood_run, normal_run, timer = flood_while_a_caller_is_served(daemon_env, flooder)
    assert flood_run.ok, flood_errors(daemon)
    assert normal_run.ok, normal_run.output[-3000:]
    assert sipp.finish(talking).ok and sipp.finish(other).ok
    hops = hops_by_caller(db, 2)
    flood, normal = hops["+79165550003"], hops["+74957770001"]
    assert flood["ivr_path"] == "" and flood["end_reason"] == "completed"
    assert events_of(db, flood["id"]) == ["join", "ring", "answer", "complete"]
    assert events_of(db, normal["id"]) == ["join", "ring", "answer", "complete"]
    assert flood["agent_id"] != normal["agent_id"]
    assert_responsive(timer)
    assert_log_one_line_per_record(daemon)
    print(f"flood while talking: {timer.summary()}")


@pytest.mark.provision(HOSTILE)
def test_a_caller_id_with_crlf_bad_bytes_and_a_10_kb_name_is_stored_clean_and_an_agent_answers_it(
        agents: tuple[Agent, Agent], lab: Lab, daemon: DaemonProcess, daemon_env: dict[str, str],
        db: psycopg.Connection) -> None:
    phone = phone_of(lab, agents[0])
    # %0D%0A in the From user is decoded by Asterisk: the daemon got "+7916\r\nX-Evil..." and rang
    # the agent with it as caller id, which put a CR/LF into the agent's INVITE.
    identity = {"caller_name": raw(b"Evil \xff\xfe\x01\x1b[31m\xe2\x80\xae red " + b"N" * 10_000),
                "caller_user": "+7916%0D%0AX-Evil%0D%0A%1B" + "9" * 40,
                "customer": raw(b"\x01\x7f\xff"), "switch": "x" * 10_000}
    caller = sipp.finish(sipp.start_call_as(QUEUE_NUMBER, identity, hold_ms=1500))
    assert caller.ok, caller.output[-3000:] + daemon.log()
    assert sipp.finish(phone).ok  # the agent's phone took the INVITE it got: well formed
    hop = hops_by_caller(db, 1)
    (caller_num, stored), = hop.items()
    assert caller_num.startswith("+7916X-Evil") and len(caller_num) <= NUMBER_LIMIT
    assert stored["caller_name"].startswith("Evil ") and len(stored["caller_name"]) <= NAME_LIMIT
    for column in ("caller_num", "caller_name", "dialled", "channel_name"):
        assert not UNPRINTABLE.search(stored[column]), (column, stored[column])
    assert stored["end_reason"] == "completed" and stored["agent_id"] is not None
    case = rows(db, "SELECT customer_key FROM cases WHERE id = %s", stored["case_id"])[0]
    assert case["customer_key"] == f"sip:{caller_num}"
    shown = hotline_cli(daemon_env, "case", "show", str(stored["case_id"]))
    assert shown.returncode == 0 and f"entered: {caller_num} dialled" in shown.stdout, shown.stderr
    assert not UNPRINTABLE.search(shown.stdout.replace("\n", ""))
    as_json = hotline_cli(daemon_env, "case", "show", str(stored["case_id"]), "--format", "json")
    assert as_json.returncode == 0 and not UNPRINTABLE.search(as_json.stdout.replace("\n", ""))
    assert_log_one_line_per_record(daemon)


@pytest.mark.provision(HOSTILE)
def test_a_dialled_address_with_an_escaped_newline_writes_no_line_of_its_own_into_the_log(
        daemon: DaemonProcess, db: psycopg.Connection) -> None:
    forged = "FORGED%20ERROR%20hotline.daemon%20line"
    run = sipp.call(f"nowhere%0D%0A{forged}", "caller_until_bye.xml", caller="+74957770002")
    assert run.ok, run.output[-3000:]  # answered, "not in service", BYE from Asterisk
    hop = hops_by_caller(db, 1)["+74957770002"]
    assert hop["end_reason"] == "failed" and not UNPRINTABLE.search(hop["dialled"])
    assert_log_one_line_per_record(daemon)
    assert not any(line.startswith("FORGED") for line in daemon.log_path.read_text().splitlines())


@pytest.mark.provision(HOSTILE)
def test_a_browser_endpoints_headers_with_crlf_and_stasis_argument_syntax_reach_the_case_only_as_hex(
        agents: tuple[Agent, Agent], lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    """The web endpoint (no password: anyone may call it) passes X-Hotline-Customer and
    X-Hotline-Switch on to Stasis; a caller folds a CR/LF into one and writes Stasis argument syntax
    (`,token=`) into both."""
    phone = phone_of(lab, agents[0])
    identity = {"caller_user": "hotline-web", "caller_name": "Browser",
                "customer": raw(b"c0ffee,token=ab\r\n\tX-Evil: 1\x01\xff"),
                "switch": "ff,customer=aa" + "0" * 5000}
    caller = sipp.finish(sipp.start_call_as(VIDEO_ADDRESS, identity, hold_ms=1500, source="127.0.0.1",
                                            scenario="web_caller_with_identity.xml"))
    assert caller.ok, caller.output[-3000:] + daemon.log()
    assert sipp.finish(phone).ok
    hop = next(iter(hops_by_caller(db, 1).values()))
    assert hop["channel_kind"] == "webrtc" and hop["end_reason"] == "completed"
    key = rows(db, "SELECT customer_key FROM cases WHERE id = %s", hop["case_id"])[0]["customer_key"]
    assert re.fullmatch(r"web:[0-9a-f]{1,128}|anonymous:hotline-web", key), key
    assert_log_one_line_per_record(daemon)
