"""Two Asterisk nodes behind Kamailio (issue 20), on real processes: the lab with nodes
(`hotline lab --instance 5 up --nodes 2`; `make test` runs the `nodes` tests in it, in a phase of
their own: `HOTLINE_LAB_INSTANCE=5 ip netns exec hotline-lab5 pytest -m nodes`), the shipped
deploy/kamailio/kamailio.cfg, and the `nodes` rows that the active daemon would keep. The nodes
answer with the lab's test harness (extension 7000 of extensions_lab.conf) until a daemon serves
every node. Skipped on a lab without nodes (labs 1 and 2 of `make test`)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hotline.errors import LabError
from hotline.lab import Lab
from hotline.lab import sipp as lab_sipp
from hotline.lab.credentials import load_secrets
from hotline.lab.kamailio import DB_ROLE, WS_PORT
from hotline.lab.nodes import node_address, render_behind_proxy
from hotline.lab.ports import PG_PORT
from hotline.lab.postgres import DB_NAME, dsn
from hotline.provision.model import Agent, Provisioning
from hotline.provision.render import PJSIP_FILE
from hotline.provision.sip_auth import ha1

from support import sipp
from support.agents import hotline
from support.cli import hotline_cli
from support.daemon import DaemonProcess, free_tcp_port
from support.sipp import SCENARIOS, free_udp_port
from support.transfer_checks import refer_accepted, sipfrags
from support.ws_sip import WsPhone

pytestmark = [pytest.mark.lab, pytest.mark.nodes]

PROJECT_DIR = Path(__file__).resolve().parents[2]
ANSWERED = "7000"
AGENT = "kamagent"
PROBE_S = 6.0  # a dead node is down after ~3.5 s (OPTIONS every 2 s, 2 s timeout)


@pytest.fixture(scope="module")
def nodes_lab() -> Iterator[Lab]:
    lab = Lab(PROJECT_DIR)
    if lab.node_count() < 2:
        pytest.skip("this lab runs no nodes: `hotline lab --instance N up --nodes 2`")
    lab.up()
    yield lab
    lab.up()  # a node killed by the last test starts again


@pytest.fixture
def nodes_db(nodes_lab: Lab) -> Iterator[psycopg.Connection]:
    """The lab's database (the one Kamailio reads) with nodes a and b served for an hour, both
    running (a test before may have killed one)."""
    nodes_lab.up()
    url = dsn(DB_NAME, load_secrets(nodes_lab.state_dir).db_password)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM nodes")
        for name in ("a", "b"):
            conn.execute("INSERT INTO nodes (name, ari_url, ami_url, sip_uri, serving_until)"
                         " VALUES (%s, %s, %s, %s, now() + interval '1 hour')",
                         (name, f"http://{node_address(name)}:8088",
                          f"ami://{node_address(name)}:5038", f"sip:{node_address(name)}:5060"))
        wait_for(lambda: active_nodes(nodes_lab) == {"a", "b"}, 5, "both nodes active")
        yield conn
        conn.execute("DELETE FROM nodes")


def active_nodes(lab: Lab) -> set[str]:
    """The nodes Kamailio's dispatcher would pick now (set 1, flag A), from `dispatcher.list`."""
    out = lab.kamailio.rpc("dispatcher.list").stdout
    found, setid = set(), None
    for line in out.splitlines():
        words = line.split()
        if words[:1] == ["ID:"]:
            setid = words[1]
        elif words[:1] == ["URI:"]:
            uri = words[1]
        elif words[:1] == ["FLAGS:"] and setid == "1" and words[1].startswith("A"):
            found.add({node_address(n): n for n in "ab"}[uri.split(":")[1]])
    return found


def wait_for(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        time.sleep(0.2)


def dialled_on(lab: Lab, extension: str = ANSWERED) -> dict[str, int]:
    """How many calls to `extension` (in hotline-inbound unless it says `@context`) each node's
    dialplan has taken so far (its Asterisk log)."""
    where = extension if "@" in extension else f"{extension}@hotline-inbound"
    counts = {}
    for name, node in lab.nodes().items():
        text = node.log.read_text(errors="replace") if node.log.exists() else ""
        counts[name] = text.count(f"Executing [{where}:1]")
    return counts


def call_through_kamailio(calls: int, extension: str = ANSWERED, *, node: str = "none",
                          media: str = "none", scenario: str = "caller_through_proxy.xml") -> None:
    """`calls` calls one after the other to Kamailio, each answered and hung up (`scenario`),
    with `X-Hotline-Node: node` (no such node by default) and `X-Hotline-Media: media`."""
    for _ in range(calls):
        done = subprocess.run(
            ["sipp", "127.0.0.1:5060", "-sf", str(SCENARIOS / scenario), "-s", extension,
             "-key", "node", node, "-key", "media", media, "-m", "1", "-i", "127.0.0.1",
             "-p", str(free_udp_port()), "-mp", str(free_udp_port()), "-timeout", "15s",
             "-timeout_error", "-nostdin"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout[-2000:]


def new_calls(lab: Lab, calls: int, extension: str = ANSWERED, *, tries: int = 1,
              **kwargs: str) -> dict[str, int]:
    """Where `calls` new calls landed: node -> how many (`tries`: nodes each call reaches)."""
    before = dialled_on(lab, extension)
    call_through_kamailio(calls, extension, **kwargs)

    def landed() -> dict[str, int]:
        return {n: c - before[n] for n, c in dialled_on(lab, extension).items()}
    # Asterisk's logger thread may write the last line a moment after the caller is done
    wait_for(lambda: sum(landed().values()) >= calls * tries, 3, f"{calls} calls in the logs")
    return landed()


def test_kamailio_accepts_the_shipped_config_and_its_role_reads_only_its_own(
        nodes_lab: Lab) -> None:
    assert "config file ok" in nodes_lab.kamailio.check()
    password = load_secrets(nodes_lab.state_dir).db_password  # the lab's role.sql password
    with psycopg.connect(f"postgresql://{DB_ROLE}:{password}@127.0.0.1:{PG_PORT}/{DB_NAME}",
                         autocommit=True) as kamailio:
        for view in ("dispatcher", "subscriber", "agent_talks", "location", "version"):
            kamailio.execute(f"SELECT * FROM {view}")  # its search_path is the schema kamailio
        for table in ("public.agents", "public.nodes", "public.cases"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                kamailio.execute(f"SELECT * FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            kamailio.execute("UPDATE version SET table_version = 0")


def test_calls_go_round_robin_and_skip_lapsed_draining_and_dead_nodes(
        nodes_lab: Lab, nodes_db: psycopg.Connection) -> None:
    assert new_calls(nodes_lab, 4) == {"a": 2, "b": 2}
    assert new_calls(nodes_lab, 2, node="b") == {"a": 0, "b": 2}  # steered

    # both nodes refuse (no daemon serves their Stasis app: 503): the caller gets 503 after
    # both were tried, and neither is marked down for it
    refused = new_calls(nodes_lab, 1, "5550000", tries=2,
                        scenario="caller_refused_through_proxy.xml")
    assert refused == {"a": 1, "b": 1}
    assert active_nodes(nodes_lab) == {"a", "b"}

    # the active daemon stopped vouching for b: its calls go to a within a reload (1 s)
    nodes_db.execute("UPDATE nodes SET serving_until = now() - interval '1 s' WHERE name = 'b'")
    wait_for(lambda: active_nodes(nodes_lab) == {"a"}, 3, "b left when its serving_until lapsed")
    assert new_calls(nodes_lab, 2) == {"a": 2, "b": 0}

    # b served again, a drains: everything to b
    nodes_db.execute("UPDATE nodes SET serving_until = now() + interval '1 hour'")
    nodes_db.execute("UPDATE nodes SET draining = true WHERE name = 'a'")
    wait_for(lambda: active_nodes(nodes_lab) == {"b"}, 3, "a left when drained")
    assert new_calls(nodes_lab, 2) == {"a": 0, "b": 2}
    assert new_calls(nodes_lab, 1, node="a") == {"a": 0, "b": 1}  # a hint, not an order

    # a back; then b's Asterisk killed: the probe takes it out, new calls go to a
    nodes_db.execute("UPDATE nodes SET draining = false")
    wait_for(lambda: active_nodes(nodes_lab) == {"a", "b"}, 6, "a back after draining")
    b_pid = nodes_lab.nodes()["b"].pid()
    assert b_pid is not None
    killed = time.monotonic()
    os.kill(b_pid, signal.SIGKILL)
    wait_for(lambda: active_nodes(nodes_lab) == {"a"}, PROBE_S, "dead b marked down by the probe")
    down_after = time.monotonic() - killed
    time.sleep(2.5)  # more reloads and probes pass: b stays down (a reload keeps its state)
    assert active_nodes(nodes_lab) == {"a"}
    assert new_calls(nodes_lab, 2) == {"a": 2, "b": 0}
    assert new_calls(nodes_lab, 1, node="b") == {"a": 1, "b": 0}
    assert down_after < PROBE_S


def test_agent_registered_at_kamailio_is_reached_from_both_nodes(
        nodes_lab: Lab, nodes_db: psycopg.Connection) -> None:
    password = "kam-" + os.urandom(6).hex()
    forget_registrations(nodes_lab)
    nodes_db.execute("DELETE FROM agents WHERE endpoint = %s", (AGENT,))
    nodes_db.execute("INSERT INTO agents (name, endpoint, password_ha1) VALUES (%s, %s, md5(%s))",
                     (AGENT, AGENT, f"{AGENT}:asterisk:{password}"))
    agent = Agent(AGENT, AGENT, "Kamailio Agent", ha1(AGENT, password))
    put_rendered(nodes_lab, render_behind_proxy(Provisioning(agents={AGENT: agent})))
    try:
        port = free_udp_port()
        with pytest.raises(LabError):  # the view's ha1 is the check: a wrong password fails
            lab_sipp.register(AGENT, password + "x", port)
        lab_sipp.register(AGENT, password, port)  # at 127.0.0.1:5060, Kamailio here
        contact = nodes_db.execute("SELECT contact FROM kamailio.location WHERE username = %s",
                                   (AGENT,)).fetchone()
        assert contact is not None and f":{port}" in contact[0]  # kept in PostgreSQL
        nodes_lab.kamailio.stop()  # a restart keeps the registration (usrloc db_mode 1)
        nodes_lab.kamailio.start()
        wait_for(lambda: active_nodes(nodes_lab) == {"a", "b"}, 5, "nodes active after restart")
        # the node's rendered AOR: PJSIP/kamagent is Kamailio with the agent's user
        shown = nodes_lab.nodes()["a"].rx(f"pjsip show aor {AGENT}", timeout=10).stdout
        assert f"sip:{AGENT}@127.0.0.1:5060" in shown
        phone = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "agent_behind_proxy.xml"), "-m", "2",
             "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_udp_port()),
             "-timeout", "30s", "-timeout_error", "-nostdin"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        try:
            assert new_calls(nodes_lab, 2, f"77{AGENT}") == {"a": 1, "b": 1}
            out, _ = phone.communicate(timeout=30)
            assert phone.returncode == 0, out[-2000:]  # it answered both calls, got both BYEs
        finally:
            if phone.poll() is None:
                phone.kill()
                phone.wait()
    finally:
        put_rendered(nodes_lab, render_behind_proxy(Provisioning()))
        forget_registrations(nodes_lab)
        nodes_db.execute("DELETE FROM agents WHERE endpoint = %s", (AGENT,))


def forget_registrations(lab: Lab) -> None:
    """The test agent's contacts gone from Kamailio (its memory is the registrar's truth; the
    table follows it)."""
    lab.kamailio.rpc("ul.rm", "location", AGENT)


def put_rendered(lab: Lab, pjsip: str) -> None:
    """What `hotline apply` with sip_proxy writes, on every node, and res_pjsip reloaded."""
    for node in lab.nodes().values():
        (node.conf_dir / PJSIP_FILE).write_text(pjsip)
        assert node.rx("module reload res_pjsip.so", timeout=30).returncode == 0


async def test_websocket_agent_registers_at_kamailio_rings_from_a_node_and_goes_with_its_socket(
        nodes_lab: Lab, nodes_db: psycopg.Connection) -> None:
    password = "kam-" + os.urandom(6).hex()
    forget_registrations(nodes_lab)
    nodes_db.execute("DELETE FROM agents WHERE endpoint = %s", (AGENT,))
    nodes_db.execute("INSERT INTO agents (name, endpoint, password_ha1) VALUES (%s, %s, md5(%s))",
                     (AGENT, AGENT, f"{AGENT}:asterisk:{password}"))
    agent = Agent(AGENT, AGENT, "Kamailio Agent", ha1(AGENT, password),
                  frozenset({"audio", "video", "webrtc"}))
    put_rendered(nodes_lab, render_behind_proxy(Provisioning(agents={AGENT: agent})))
    phone = WsPhone(AGENT, password, f"ws://127.0.0.1:{WS_PORT}", "127.0.0.1")
    try:
        await phone.open()
        assert await phone.register() == "SIP/2.0 200 OK"
        row = nodes_db.execute("SELECT contact FROM kamailio.location WHERE username = %s",
                               (AGENT,)).fetchone()
        assert row is not None and "transport=ws" in row[0]
        caller = asyncio.create_task(asyncio.to_thread(
            call_through_kamailio, 1, f"77{AGENT}", scenario="caller_busy_through_proxy.xml"))
        invite = await phone.receive()
        while invite.startswith("OPTIONS"):
            invite = await phone.receive()
        assert invite.startswith(f"INVITE sip:{AGENT}@"), invite[:200]
        await phone.reply(invite, "486 Busy Here")
        await caller  # the caller heard busy: the node's Dial got the phone's answer
        await phone.close()  # the socket goes: so does the registration (handle_lost_tcp,
        deadline = time.monotonic() + 8  # at usrloc's timer, every 5 s)
        while nodes_db.execute("SELECT 1 FROM kamailio.location WHERE username = %s",
                               (AGENT,)).fetchone():
            assert time.monotonic() < deadline, "WebSocket contact still registered"
            await asyncio.sleep(0.2)
    finally:
        await phone.close()
        put_rendered(nodes_lab, render_behind_proxy(Provisioning()))
        forget_registrations(nodes_lab)
        nodes_db.execute("DELETE FROM agents WHERE endpoint = %s", (AGENT,))


WEBRTC_OFFER = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:kamlab01", "a=ice-pwd:kamlabkamlabkamlabkamlab0",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:0",
    "a=sendrecv", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000",
    "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", ""])


async def test_a_browsers_call_over_websocket_reaches_a_nodes_web_endpoint(
        nodes_lab: Lab, nodes_db: psycopg.Connection) -> None:
    before = dialled_on(nodes_lab, f"{ANSWERED}@hotline-web")
    phone = WsPhone("webcaller", "", f"ws://127.0.0.1:{WS_PORT}", "127.0.0.1")
    try:
        await phone.open()
        answer = await phone.call(ANSWERED, WEBRTC_OFFER)
        assert answer.startswith("SIP/2.0 200"), answer[:300]
        # the node took it as the browsers' endpoint (Kamailio's X-Hotline-Media header), which
        # answers WebRTC: DTLS-SRTP with ICE, over the UDP leg from Kamailio
        assert "UDP/TLS/RTP/SAVPF" in answer and "a=fingerprint:" in answer
        wait_for(lambda: sum(dialled_on(nodes_lab, f"{ANSWERED}@hotline-web").values())
                 == sum(before.values()) + 1, 3, "the web endpoint's call in a node's log")
        assert await phone.ack_and_bye(answer) == "SIP/2.0 200 OK"
    finally:
        await phone.close()
    # a SIP caller claiming to be a browser is not one: Kamailio removed its header
    web_before = sum(dialled_on(nodes_lab, f"{ANSWERED}@hotline-web").values())
    assert sum(new_calls(nodes_lab, 1, media="webrtc").values()) == 1  # in hotline-inbound
    assert sum(dialled_on(nodes_lab, f"{ANSWERED}@hotline-web").values()) == web_before


def test_a_sip_video_phones_call_reaches_a_nodes_video_endpoint_and_an_audio_call_the_trunks(
        nodes_lab: Lab, nodes_db: psycopg.Connection) -> None:
    """Kamailio marks an offer with a video stream (X-Hotline-Media: video): the node takes it on
    its video phones' endpoint, which answers VP8 video (the caller's scenario checks the answer);
    an audio call stays on the audio-only trunk endpoint, and a caller claiming video has no say."""
    put_rendered(nodes_lab, render_behind_proxy(Provisioning()))

    def on_endpoint(endpoint: str) -> int:
        answered = re.compile(re.escape(f'Executing [{ANSWERED}@hotline-inbound:1] Answer("PJSIP/{endpoint}-')
                              + '[0-9a-f]{8}"')
        return sum(len(answered.findall(node.log.read_text(errors="replace")))
                   for node in nodes_lab.nodes().values() if node.log.exists())

    video, audio = on_endpoint("hotline-proxy-video"), on_endpoint("hotline-proxy")
    assert sum(new_calls(nodes_lab, 1, scenario="video_caller_through_proxy.xml").values()) == 1
    assert sum(new_calls(nodes_lab, 1, media="video").values()) == 1  # audio, whatever it claims
    wait_for(lambda: (on_endpoint("hotline-proxy-video"), on_endpoint("hotline-proxy"))
             == (video + 1, audio + 1), 3, "one call on each endpoint")


def test_one_daemon_serves_both_nodes_and_their_calls_reach_the_agent_at_kamailio(
        nodes_lab: Lab, nodes_db: psycopg.Connection, tmp_path: Path) -> None:
    """`hotline run` with both nodes provisioned (the `nodes` rows), on the database Kamailio
    reads, `hotline apply` run for each node (sip_proxy = Kamailio): calls dispatched round robin
    land on both nodes (hops.node), and the queue on either node rings the agent by
    PJSIP/ENDPOINT, which reaches its phone registered at Kamailio."""
    env = {**nodes_lab.env(), "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "HOTLINE_SPOOL_DIR": str(tmp_path / "spool")}
    assert env["HOTLINE_SIP_PROXY"] == "127.0.0.1"
    password = "kam-" + os.urandom(6).hex()
    forget_registrations(nodes_lab)
    nodes_db.execute("DELETE FROM agents WHERE endpoint = %s", (AGENT,))
    setup = tmp_path / "provisioning.toml"
    setup.write_text(daemon_provisioning(AGENT, password))
    hotline(env, "provision", str(setup))
    for name in nodes_lab.nodes():  # as on every node of a deployment
        hotline({**env, **nodes_lab.env(name)}, "apply")
    hotline(env, "agent", "login", AGENT)
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    daemon.start()
    try:
        port = free_udp_port()
        lab_sipp.register(AGENT, password, port)
        phone = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "agent_behind_proxy.xml"), "-m", "2",
             "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_udp_port()),
             "-timeout", "40s", "-timeout_error", "-nostdin"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        opened = nodes_db.execute("SELECT coalesce(max(id), 0) FROM hops").fetchone()[0]
        call_through_kamailio(2, DAEMON_NUMBER)
        out, _ = phone.communicate(timeout=40)
        assert phone.returncode == 0, out[-2000:]  # the agent answered both
        hops = wait_for_rows(nodes_db, "SELECT node, end_reason FROM hops WHERE id > %s"
                             " AND ended_at IS NOT NULL ORDER BY node", (opened,), 2)
        assert hops == [("a", "completed"), ("b", "completed")]
        # five browsers at once (three on one node), all from Kamailio's address as the nodes
        # see it: the web guard (2 calls up per source by default) counts each browser's own
        # WebSocket, not Kamailio
        assert asyncio.run(browsers_at_once(5, VIDEO_ADDRESS)) == ["SIP/2.0 200 OK"] * 5
        webrtc = wait_for_rows(nodes_db, "SELECT node FROM hops WHERE id > %s AND channel_kind = 'webrtc'"
                               " AND ended_at IS NOT NULL", (opened,), 5)
        assert {node for (node,) in webrtc} == {"a", "b"}
        assert "Traceback" not in daemon.log()
    finally:
        daemon.stop()
        hotline(env, "agent", "logout", AGENT)
        put_rendered(nodes_lab, render_behind_proxy(Provisioning()))
        forget_registrations(nodes_lab)


DAEMON_NUMBER = "+74951230001"
VIDEO_ADDRESS = "nodes-video"


async def browsers_at_once(count: int, address: str) -> list[str]:
    """`count` browsers, each on a WebSocket of its own to Kamailio, calling `address` at once:
    each final answer's status line (every call up at the same time, then hung up)."""
    phones = [WsPhone(f"browser{n}", "", f"ws://127.0.0.1:{WS_PORT}", "127.0.0.1") for n in range(count)]
    try:
        for phone in phones:
            await phone.open()
        answers = await asyncio.gather(*(phone.call(address, WEBRTC_OFFER) for phone in phones))
        for phone, answer in zip(phones, answers, strict=True):
            if answer.startswith("SIP/2.0 200"):
                await phone.ack_and_bye(answer)
        return [answer.split("\r\n", 1)[0] for answer in answers]
    finally:
        for phone in phones:
            await phone.close()
def daemon_provisioning(agent: str, password: str, *, number: str = DAEMON_NUMBER,
                        wrapup: int | None = None, capabilities: str = '["audio"]') -> str:
    wrap = f"wrapup = {wrapup}\n" if wrapup is not None else ""
    return (f'[queues.kamailio]\nmax_wait = 60\n{wrap}\n[hotlines.nodes]\nentry = "queue:kamailio"\n\n'
            f'[numbers."{number}"]\nhotline = "nodes"\nlines = 4\n\n'
            f'[numbers.{VIDEO_ADDRESS}]\nhotline = "nodes"\nkind = "video"\n\n'
            f'[agents.{agent}]\npassword = "{password}"\ncapabilities = {capabilities}\n'
            "queues = { kamailio = 0 }\n")


def daemon_env(lab: Lab, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The lab's settings for a daemon of a test's own: its web and health ports, its spool."""
    return {**lab.env(), "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
            "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}",
            "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"), **extra}


def agent_on_both_nodes(lab: Lab, db: psycopg.Connection, env: dict[str, str], tmp_path: Path,
                        **provisioning: Any) -> str:
    """The queue of daemon_provisioning with AGENT (a new password, returned), applied on every
    node behind Kamailio, the agent logged in and registered nowhere yet."""
    password = "kam-" + os.urandom(6).hex()
    forget_registrations(lab)
    db.execute("DELETE FROM agents WHERE endpoint = %s", (AGENT,))
    setup = tmp_path / "provisioning.toml"
    setup.write_text(daemon_provisioning(AGENT, password, **provisioning))
    hotline(env, "provision", str(setup))
    for name in lab.nodes():  # as on every node of a deployment
        hotline({**env, **lab.env(name)}, "apply")
    hotline(env, "agent", "login", AGENT)
    return password


def tidy_up(lab: Lab, env: dict[str, str], daemon: DaemonProcess, procs: list[subprocess.Popen[str]]) -> None:
    """After a test that killed a node: its sipp processes, the daemon, the agent, every node up
    and as `hotline apply` left it without agents, no registration left at Kamailio."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    daemon.stop()
    hotline(env, "agent", "logout", AGENT)
    lab.up()
    put_rendered(lab, render_behind_proxy(Provisioning()))
    forget_registrations(lab)


def wait_for_rows(db: psycopg.Connection, query: str, params: tuple[object, ...],
                  count: int) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []

    def enough() -> bool:
        found[:] = db.execute(query, params).fetchall()
        return len(found) >= count
    wait_for(enough, 10, f"{count} rows of {query}")
    return found


def caller_waiting(number: str, caller: str, hold_ms: int, cwd: Path, *,
                   node: str = "none") -> subprocess.Popen[str]:
    """A caller through Kamailio who stays `hold_ms` after the daemon answers (queue, then talk),
    steered to `node` (X-Hotline-Node) when it names one."""
    return subprocess.Popen(
        ["sipp", "127.0.0.1:5060", "-sf", str(SCENARIOS / "caller_waits_through_proxy.xml"),
         "-s", number, "-key", "node", node, "-key", "media", "none", "-d", str(hold_ms),
         "-key", "caller", caller, "-m", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()),
         "-mp", str(free_udp_port()), "-timeout", "90s", "-timeout_error", "-trace_err", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, cwd=cwd)


def test_one_queue_over_both_nodes_serves_the_longest_waiting_first_through_a_standby_takeover(
        nodes_lab: Lab, nodes_db: psycopg.Connection, tmp_path: Path) -> None:
    """The queues are one for all nodes: three callers dispatched to both nodes wait for the one
    agent, who is unavailable until its phone registers at Kamailio (the nodes' static contacts
    say nothing), then answers them in the order they came, whatever their node. The active
    daemon is SIGKILLed while the first talks and the others wait: the standby takes over within
    5 s on both nodes, the talk goes on, the line keeps its order, every hop is recorded once, and
    `hotline node list` shows both nodes served by the new active daemon's word."""
    env = {**nodes_lab.env(), "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "HOTLINE_SPOOL_DIR": str(tmp_path / "spool")}
    standby_env = {**env, "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
                   "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}"}
    password = "kam-" + os.urandom(6).hex()
    forget_registrations(nodes_lab)
    nodes_db.execute("DELETE FROM agents WHERE endpoint = %s", (AGENT,))
    nodes_db.execute("UPDATE nodes SET serving_until = NULL")  # only the daemon's word from now on
    setup = tmp_path / "provisioning.toml"
    setup.write_text(daemon_provisioning(AGENT, password, number=QUEUE_NUMBER, wrapup=0))
    hotline(env, "provision", str(setup))
    for name in nodes_lab.nodes():
        hotline({**env, **nodes_lab.env(name)}, "apply")
    hotline(env, "agent", "login", AGENT)
    active = DaemonProcess(env, tmp_path / "active.log")
    standby = DaemonProcess(standby_env, tmp_path / "standby.log")
    callers: list[subprocess.Popen[str]] = []
    phone: subprocess.Popen[str] | None = None
    try:
        active.start()
        standby.launch()
        standby.wait_standby()
        wait_for(lambda: {(n["name"], n["serving"]) for n in node_list(env)} == {("a", True), ("b", True)},
                 5, "both nodes served by the active daemon's word")
        opened = nodes_db.execute("SELECT coalesce(max(id), 0) FROM hops").fetchone()[0]
        # each waits, then talks, then leaves; all within the trunk's rtp_timeout (30 s: sipp sends no RTP)
        for n, hold_ms in enumerate((13000, 19000, 25000), 1):
            callers.append(caller_waiting(QUEUE_NUMBER, f"+7916555010{n}", hold_ms, tmp_path))
            wait_for_rows(nodes_db, "SELECT id FROM queue_events WHERE event = 'join' AND hop_id > %s",
                          (opened,), n)
        joined = nodes_db.execute("SELECT caller_num, node FROM hops WHERE id > %s ORDER BY id",
                                  (opened,)).fetchall()
        assert {node for _, node in joined} == {"a", "b"}, joined  # the dispatcher used both
        assert agent_state(env) == "unreachable"  # logged in, but no phone registered at Kamailio
        assert not nodes_db.execute("SELECT 1 FROM queue_events WHERE event = 'ring' AND hop_id > %s",
                                    (opened,)).fetchall()
        port = free_udp_port()
        lab_sipp.register(AGENT, password, port)  # the daemon may ring it before its phone listens:
        phone = subprocess.Popen(  # that ring fails, and the agent is rung again (the queue's retry)
            ["sipp", "-sf", str(SCENARIOS / "agent_behind_proxy.xml"), "-i", "127.0.0.1",
             "-p", str(port), "-mp", str(free_udp_port()), "-trace_err", "-nostdin"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
            cwd=tmp_path)
        first = wait_for_rows(nodes_db, "SELECT caller_num FROM hops WHERE id > %s"
                              " AND answered_at IS NOT NULL", (opened,), 1)
        assert first == [(joined[0][0],)]  # the longest waiting, on whichever node
        killed = time.monotonic()
        active.stop(signal.SIGKILL)
        standby.wait_registered(timeout_s=15)
        assert time.monotonic() - killed < 5.0, standby.log()
        for caller in callers:
            out, _ = caller.communicate(timeout=60)
            assert caller.returncode == 0, out[-2000:]  # nobody was cut off
        hops = wait_for_rows(nodes_db, "SELECT id, caller_num, end_reason FROM hops WHERE id > %s"
                             " AND ended_at IS NOT NULL ORDER BY answered_at", (opened,), 3)
        assert [h[1] for h in hops] == [c for c, _ in joined]  # answered in the order they came
        assert {h[2] for h in hops} == {"completed"}
        assert len(nodes_db.execute("SELECT id FROM hops WHERE id > %s", (opened,)).fetchall()) == 3
        for hop_id, _, _ in hops:
            events = [e for (e,) in nodes_db.execute(
                "SELECT event FROM queue_events WHERE hop_id = %s ORDER BY id", (hop_id,)).fetchall()]
            # once each, through the takeover (a ring before the phone listened went unanswered)
            assert [e for e in events if e not in ("ring", "ring_noanswer")] == ["join", "answer", "complete"]
            assert events.count("ring") == events.count("ring_noanswer") + 1, events
        assert {(n["name"], n["serving"]) for n in node_list(standby_env)} == {("a", True), ("b", True)}
        assert "Traceback" not in active.log() + standby.log()
    finally:
        for proc in [*callers, *([phone] if phone else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        standby.stop()
        active.stop()
        hotline(env, "agent", "logout", AGENT)
        put_rendered(nodes_lab, render_behind_proxy(Provisioning()))
        forget_registrations(nodes_lab)


QUEUE_NUMBER = "+74951230002"


def node_list(env: dict[str, str]) -> list[dict[str, object]]:
    listed = hotline(env, "node", "list", "--format", "json")
    return json.loads(listed.stdout)  # type: ignore[no-any-return]


def agent_state(env: dict[str, str]) -> str:
    """The test agent's state in `hotline stats live` (its live row, as a wallboard shows it)."""
    return agent_states(env)[AGENT]


def agent_states(env: dict[str, str]) -> dict[str, str]:
    """Every agent's state in `hotline stats live`, by name."""
    live = json.loads(hotline(env, "stats", "live", "--format", "json").stdout)
    return {str(a["agent"]): str(a["state"]) for a in live["agents"]}


ONE_LINE_NUMBER = "+74951230003"


def test_two_nodes_racing_for_a_numbers_one_line_give_it_to_one_caller(
        nodes_lab: Lab, nodes_db: psycopg.Connection, tmp_path: Path) -> None:
    """A line of a number is a row of the one database, not a count on a node: two callers of a
    one-line number at the same moment, dispatched to nodes a and b, open their hops in two
    transactions, and the partial unique index on (number_id, line) of live hops lets one of them
    hold line 1; the other hears busy (486, cause 17), whichever node it came through."""
    env = {**nodes_lab.env(), "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "HOTLINE_SPOOL_DIR": str(tmp_path / "spool")}
    setup = tmp_path / "provisioning.toml"
    setup.write_text(f'[queues.line]\nmax_wait = 60\n\n[hotlines.one-line]\nentry = "queue:line"\n\n'
                     f'[numbers."{ONE_LINE_NUMBER}"]\nhotline = "one-line"\nlines = 1\n')
    hotline(env, "provision", str(setup))
    for name in nodes_lab.nodes():
        hotline({**env, **nodes_lab.env(name)}, "apply")
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    daemon.start()
    try:
        opened = nodes_db.execute("SELECT coalesce(max(id), 0) FROM hops").fetchone()[0]
        callers = [caller_waiting(ONE_LINE_NUMBER, f"+7916555020{n}", 3000, tmp_path) for n in (1, 2)]
        for caller in callers:
            caller.communicate(timeout=30)  # the one served hangs up after 3 s; the other was refused
        hops = wait_for_rows(nodes_db, "SELECT node, line, end_reason, hangup_cause FROM hops WHERE id > %s"
                             " AND ended_at IS NOT NULL ORDER BY line NULLS LAST", (opened,), 2)
        assert {h[0] for h in hops} == {"a", "b"}, hops  # one through each node
        (_, line, _, _), (_, no_line, reason, cause) = hops
        assert (line, no_line, reason, cause) == (1, None, "busy", 17), hops
        assert sorted(c.returncode for c in callers) == [0, 1]  # the busy one's scenario wanted an answer
    finally:
        daemon.stop()
        put_rendered(nodes_lab, render_behind_proxy(Provisioning()))


def test_a_killed_nodes_callers_never_hold_the_line_and_their_hops_close_once_it_is_back(
        nodes_lab: Lab, nodes_db: psycopg.Connection, tmp_path: Path) -> None:
    """Node b's Asterisk SIGKILLed with a caller waiting on it: a later caller, dispatched to a,
    is answered by the agent (the dead node's caller keeps its place but is offered no agent while
    b is out of reach), and once b is back the daemon closes the dead caller's hop with why."""
    env = daemon_env(nodes_lab, tmp_path)
    nodes_db.execute("UPDATE nodes SET serving_until = NULL")
    password = agent_on_both_nodes(nodes_lab, nodes_db, env, tmp_path, number=QUEUE_NUMBER, wrapup=0)
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    procs: list[subprocess.Popen[str]] = []
    try:
        daemon.start()
        wait_for(lambda: active_nodes(nodes_lab) == {"a", "b"}, 6, "both nodes served")
        opened = nodes_db.execute("SELECT coalesce(max(id), 0) FROM hops").fetchone()[0]
        on_b: tuple[object, ...] | None = None
        for n in range(1, 3):  # the dispatcher alternates: one of two callers lands on b
            procs.append(caller_waiting(QUEUE_NUMBER, f"+7916555030{n}", 25000, tmp_path))
            wait_for_rows(nodes_db, "SELECT id FROM queue_events WHERE event = 'join' AND hop_id > %s",
                          (opened,), n)
            found = nodes_db.execute("SELECT id, channel_id FROM hops WHERE id > %s AND node = 'b'",
                                     (opened,)).fetchall()
            if found:
                on_b = found[0]
                break
        assert on_b is not None
        for proc in procs[:-1]:  # a caller on a before it: gone, so b's caller is the line's head
            proc.kill()
            proc.communicate()
        b_pid = nodes_lab.nodes()["b"].pid()
        assert b_pid is not None
        os.kill(b_pid, signal.SIGKILL)
        wait_for(lambda: active_nodes(nodes_lab) == {"a"}, PROBE_S, "dead b out of the dispatcher")
        later = caller_waiting(QUEUE_NUMBER, "+79165550309", 8000, tmp_path)
        procs.append(later)
        port = free_udp_port()
        lab_sipp.register(AGENT, password, port)
        phone = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "agent_behind_proxy.xml"), "-i", "127.0.0.1",
             "-p", str(port), "-mp", str(free_udp_port()), "-nostdin"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
            cwd=tmp_path)
        procs.append(phone)
        out, _ = later.communicate(timeout=40)
        assert later.returncode == 0, out[-2000:]
        served = wait_for_rows(nodes_db, "SELECT node, end_reason FROM hops WHERE caller_num = '+79165550309'"
                               " AND id > %s AND ended_at IS NOT NULL", (opened,), 1)
        assert served == [("a", "completed")], served
        # b's caller kept its place but no agent was offered to it while b was out of reach
        assert f"call {on_b[1]}: ringing" not in daemon.log()
        nodes_lab.up()  # b's Asterisk back (empty): the daemon reconnects and finds the channel gone
        closed = wait_for_rows(nodes_db, "SELECT end_reason, hangup_cause_text FROM hops"
                               " WHERE id = %s AND ended_at IS NOT NULL", (on_b[0],), 1)
        assert closed[0][0] in ("failed", "abandoned") and closed[0][1], closed
        assert "Traceback" not in daemon.log()
    finally:
        tidy_up(nodes_lab, env, daemon, procs)


def test_a_node_that_never_comes_back_is_given_up_and_its_agent_answers_the_next_caller(
        nodes_lab: Lab, nodes_db: psycopg.Connection, tmp_path: Path) -> None:
    """node_lost_after = 5: a caller steered to b talks with the agent (registered at Kamailio)
    when b's Asterisk is SIGKILLed for good. `hotline node remove b` refuses while the call is
    live; once b has been out of reach 5 s the daemon gives it up: the talk's hop closes `failed`
    with the loss as its cause and its visit's complete says so, the agent (in use through b
    until then) answers the next caller on a, and `hotline node remove b` takes the node."""
    env = daemon_env(nodes_lab, tmp_path, HOTLINE_NODE_LOST_AFTER="5")
    nodes_db.execute("UPDATE nodes SET serving_until = NULL")
    password = agent_on_both_nodes(nodes_lab, nodes_db, env, tmp_path, number=QUEUE_NUMBER, wrapup=0)
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    procs: list[subprocess.Popen[str]] = []
    try:
        daemon.start()
        wait_for(lambda: active_nodes(nodes_lab) == {"a", "b"}, 6, "both nodes served")
        port = free_udp_port()
        lab_sipp.register(AGENT, password, port)
        procs.append(subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "agent_behind_proxy.xml"), "-i", "127.0.0.1",
             "-p", str(port), "-mp", str(free_udp_port()), "-nostdin"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
            cwd=tmp_path))
        opened = nodes_db.execute("SELECT coalesce(max(id), 0) FROM hops").fetchone()[0]
        procs.append(caller_waiting(QUEUE_NUMBER, "+79165550401", 60000, tmp_path, node="b"))
        [(talk_id, node)] = wait_for_rows(nodes_db, "SELECT id, node FROM hops WHERE id > %s"
                                          " AND answered_at IS NOT NULL", (opened,), 1)
        assert node == "b"
        refused = hotline_cli(env, "node", "remove", "b")
        assert refused.returncode != 0 and "1 live call" in refused.stderr, refused.stderr
        b_pid = nodes_lab.nodes()["b"].pid()
        assert b_pid is not None
        os.kill(b_pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: active_nodes(nodes_lab) == {"a"}, PROBE_S, "dead b out of the dispatcher")
        later = caller_waiting(QUEUE_NUMBER, "+79165550402", 15000, tmp_path)  # waits for b to be given up
        procs.append(later)
        out, _ = later.communicate(timeout=40)
        assert later.returncode == 0, out[-2000:]
        [(lost, cause)] = wait_for_rows(nodes_db, "SELECT end_reason, hangup_cause_text FROM hops"
                                        " WHERE id = %s AND ended_at IS NOT NULL", (talk_id,), 1)
        assert lost == "failed", lost
        assert re.fullmatch(r"node lost: b's Asterisk unreachable for \d+ s", cause), cause
        assert int(cause.split()[-2]) >= 5
        [(detail,)] = nodes_db.execute("SELECT detail FROM queue_events WHERE hop_id = %s"
                                       " AND event = 'complete'", (talk_id,)).fetchall()
        assert detail == cause
        served = wait_for_rows(nodes_db, "SELECT node, end_reason, answered_at IS NOT NULL FROM hops"
                               " WHERE id > %s AND caller_num = '+79165550402' AND ended_at IS NOT NULL",
                               (opened,), 1)
        assert served == [("a", "completed", True)], served
        assert time.monotonic() - killed < 30
        hotline(env, "node", "remove", "b")  # nothing live on it any more
        log = daemon.log()
        assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    finally:
        tidy_up(nodes_lab, env, daemon, procs)


SWITCH_NUMBER = "+74951230004"


def test_a_phone_callers_switch_to_video_in_chromium_lands_on_the_phone_legs_node(
        nodes_lab: Lab, nodes_db: psycopg.Connection, tmp_path: Path) -> None:
    """The pages connect to Kamailio's WebSocket (sip_ws_url). An agent's Chromium page registers
    there and answers a phone caller the round robin sent to one node; the caller's switch link,
    opened in another Chromium, calls with X-Hotline-Node naming that node, so the video leg
    lands there although the round robin's next pick is the other node: it joins the case's
    bridge, the agent sees the customer's camera, and the agent's call is never cut."""
    from support.browser import launch, open_page, playwright_session
    from support.fake_camera import BLUE, RED, write_y4m
    from support.web_calls import answer, poll, sees, state_of, ws_url_of

    env = daemon_env(nodes_lab, tmp_path, HOTLINE_SIP_WS_URL=f"ws://127.0.0.1:{WS_PORT}")
    password = agent_on_both_nodes(nodes_lab, nodes_db, env, tmp_path, number=SWITCH_NUMBER,
                                   capabilities='["audio", "video", "webrtc"]')
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    phone: subprocess.Popen[str] | None = None
    web = f"http://{env['HOTLINE_WEB_LISTEN']}"
    try:
        daemon.start()
        with playwright_session() as pw:
            agent = open_page(launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE)), f"{web}/agent")
            agent.fill("#endpoint", AGENT)
            agent.fill("#password", password)
            agent.click("#login")
            poll(lambda: state_of(agent) == "registered", "the agent page registered")
            assert ws_url_of(agent) == env["HOTLINE_SIP_WS_URL"]
            wait_for(lambda: bool(nodes_db.execute("SELECT 1 FROM kamailio.location WHERE username = %s",
                                                   (AGENT,)).fetchall()), 5, "the page at Kamailio")
            opened = nodes_db.execute("SELECT coalesce(max(id), 0) FROM hops").fetchone()[0]
            caller = f"+7916{int.from_bytes(os.urandom(3)) % 10_000_000:07d}"  # a case of its own
            phone = caller_waiting(SWITCH_NUMBER, caller, 60000, tmp_path)
            answer(agent)
            [phone_hop] = wait_for_rows(nodes_db, "SELECT id, case_id, node, agent_id FROM hops"
                                        " WHERE id > %s AND answered_at IS NOT NULL", (opened,), 1)
            _, case_id, node, agent_id = phone_hop
            link = hotline(env, "case", "switch", str(case_id)).stdout.strip()
            assert link.startswith(f"{web}/switch/"), link

            customer = open_page(launch(pw, write_y4m(tmp_path / "red.y4m", RED)), link)
            customer.click("#call")
            poll(lambda: state_of(customer) == "in call", "the customer's video leg in the call")
            assert ws_url_of(customer) == env["HOTLINE_SIP_WS_URL"]
            hops = wait_for_rows(nodes_db, "SELECT seq, node, channel_kind, media, agent_id FROM hops"
                                 " WHERE case_id = %s AND id > %s AND agent_id IS NOT NULL ORDER BY seq",
                                 (case_id, opened), 2)  # the video leg has the agent once it took the talk
            assert hops == [(1, node, "pstn", "audio", agent_id), (2, node, "webrtc", "video", agent_id)]
            # the round robin sent the phone call to `node`: its next pick was the other node
            other = "b" if node == "a" else "a"
            steered = re.findall(r"steered by X-Hotline-Node to (\w+) \(sip:([\d.]+):\d+; round robin: "
                                 r"sip:([\d.]+):", nodes_lab.kamailio.console_log.read_text(errors="replace"))
            assert steered[-1] == (node, node_address(node), node_address(other)), steered[-3:]
            wait_for_rows(nodes_db, "SELECT id FROM hops WHERE case_id = %s AND seq = 1"
                          " AND end_reason = 'switched'", (case_id,), 1)
            sees(agent, RED, "the agent")
            assert state_of(agent) == "in call"  # the agent's own call was never cut
            events = [e for (e,) in nodes_db.execute("SELECT event FROM queue_events WHERE hop_id = %s"
                                                     " ORDER BY id", (phone_hop[0],)).fetchall()]
            assert events == ["join", "ring", "answer"]  # one talk, going on over the video leg

            customer.click("#hangup")
            ends = wait_for_rows(nodes_db, "SELECT end_reason FROM hops WHERE case_id = %s"
                                 " AND ended_at IS NOT NULL ORDER BY seq", (case_id,), 2)
            assert ends == [("switched",), ("completed",)]
            poll(lambda: state_of(agent) == "ended", "the agent's call ended with the customer's")
        assert "Traceback" not in daemon.log()
    finally:
        if phone is not None and phone.poll() is None:
            phone.kill()
            phone.communicate()
        for running in nodes_lab.nodes().values():  # no call of a failed run left for the next test
            running.rx("channel request hangup all", timeout=10)
        daemon.stop()
        hotline(env, "agent", "logout", AGENT)
        put_rendered(nodes_lab, render_behind_proxy(Provisioning()))
        forget_registrations(nodes_lab)


CONSULT_NUMBER = "+74951230005"
FIRST, COLLEAGUE = "kamfirst", "kamcolleague"  # agents of their own: their rows keep holds
CONSULT_TALK_MS, CONSULT_MS = "1500", "2500"


def consult_provisioning(password: str) -> str:
    """A queue served by FIRST alone; COLLEAGUE is an agent of no queue, reached by a consult.
    Provisioned anew by each run (their rows stay: a hold, a transfer refer to them)."""
    return (f'[queues.kamconsult]\nmax_wait = 60\nwrapup = 0\n\n'
            f'[hotlines.consult]\nentry = "queue:kamconsult"\n\n'
            f'[numbers."{CONSULT_NUMBER}"]\nhotline = "consult"\nlines = 4\n\n'
            f'[agents.{FIRST}]\npassword = "{password}"\ncapabilities = ["audio"]\n'
            "queues = { kamconsult = 0 }\n\n"
            f'[agents.{COLLEAGUE}]\npassword = "{password}"\ncapabilities = ["audio"]\n')


def test_an_agents_consult_and_attended_transfer_through_kamailio_meet_the_customer_on_its_node(
        nodes_lab: Lab, nodes_db: psycopg.Connection, tmp_path: Path) -> None:
    """An agent's phone registered at Kamailio answers a customer steered to node b, then dials a
    colleague (registered at Kamailio too) and completes an attended transfer with REFER/Replaces,
    all through Kamailio: the consult call is taken as the agent's (context hotline-agents, the
    node's challenge answered with the agent's password) on b, where the customer's leg is, while
    the round robin pointed at a; the customer ends talking with the colleague, and nothing of the
    agent's own calls is a customer's call. A feature code for listening in on the colleague goes
    to the colleague's node. A caller forging the agent's From (and a header
    naming the colleague) is challenged and gets nothing."""
    env = {**nodes_lab.env(), "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "HOTLINE_SPOOL_DIR": str(tmp_path / "spool")}
    password = "kam-" + os.urandom(6).hex()
    for endpoint in (FIRST, COLLEAGUE):
        nodes_lab.kamailio.rpc("ul.rm", "location", endpoint)
    setup = tmp_path / "provisioning.toml"
    setup.write_text(consult_provisioning(password))
    hotline(env, "provision", str(setup))
    for name in nodes_lab.nodes():
        hotline({**env, **nodes_lab.env(name)}, "apply")
    hotline(env, "agent", "login", FIRST)
    hotline(env, "agent", "login", COLLEAGUE)
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    messages = tmp_path / "agent-phone.log"
    procs: list[subprocess.Popen[str]] = []
    try:
        daemon.start()
        procs += [sipp.agent_phone(FIRST, password, ring_ms=200, timeout_s=40, messages=messages,
                                   scenario="agent_consults_and_refers_behind_proxy.xml",
                                   more_fields=(CONSULT_TALK_MS, COLLEAGUE, CONSULT_MS),
                                   places_calls=True),
                  sipp.agent_phone(COLLEAGUE, password, scenario="agent_behind_proxy.xml",
                                   timeout_s=40)]
        wait_for(lambda: "unreachable" not in {agent_states(env).get(a) for a in (FIRST, COLLEAGUE)},
                 10, "both phones registered at Kamailio, as the daemon sees it")
        # the round robin pointed at a for the agent's calls: a probe call lands on a, then the
        # customer's call steered to b takes b's turn (STEER selects before it steers)
        while new_calls(nodes_lab, 1) != {"a": 1, "b": 0}:
            pass
        opened = nodes_db.execute("SELECT coalesce(max(id), 0) FROM hops").fetchone()[0]
        consults = dialled_on(nodes_lab, f"{COLLEAGUE}@hotline-agents")
        as_customers = dialled_on(nodes_lab, COLLEAGUE)
        customer = caller_waiting(CONSULT_NUMBER, "+79165550601", 10000, tmp_path, node="b")
        procs.append(customer)
        done = sipp.finish(procs[0], 40)  # answered, consulted, REFER, both of its calls ended
        assert done.ok, done.output[-3000:]
        # the REFER's NOTIFYs: 100 then 200 from the node, in either order here (Kamailio's
        # workers relay two requests sent a moment apart in parallel)
        frags = sipfrags(messages)
        assert refer_accepted(messages) and sorted(frags) == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]
        # while the colleague talks on b, FIRST's feature code for listening in goes to b too (the
        # supervised agent's node), where the daemon refuses it: FIRST is no supervisor (403)
        wait_for(lambda: talk_node(nodes_db, COLLEAGUE) == "sip:127.0.0.3:5060", 3,
                 "the colleague's talk on b in kamailio.agent_talks")
        listens = dialled_on(nodes_lab, f"*51{COLLEAGUE}@hotline-agents")
        for _ in range(3):  # three Call-IDs: not b by chance of a hash
            assert sipp.agent_dials(FIRST, password, f"*51{COLLEAGUE}").ok
        assert {n: c - listens[n] for n, c in dialled_on(
            nodes_lab, f"*51{COLLEAGUE}@hotline-agents").items()} == {"a": 0, "b": 3}
        out, _ = customer.communicate(timeout=30)
        assert customer.returncode == 0, out[-2000:]  # it talked on until its own BYE
        assert sipp.finish(procs[1], 20).ok  # the colleague answered, then got the customer's BYE
        [hop] = wait_for_rows(nodes_db, "SELECT h.id, h.node, h.dialled, h.end_reason, a.name"
                              " FROM hops h LEFT JOIN agents a ON a.id = h.agent_id"
                              " WHERE h.id > %s AND h.ended_at IS NOT NULL", (opened,), 1)
        assert hop[1:] == ("b", CONSULT_NUMBER, "completed", COLLEAGUE), hop
        # the consult leg on b, where the customer was, though the round robin pointed at a
        after_consult = dialled_on(nodes_lab, f"{COLLEAGUE}@hotline-agents")
        assert {n: c - consults[n] for n, c in after_consult.items()} == {"a": 0, "b": 1}
        assert new_calls(nodes_lab, 1) == {"a": 1, "b": 0}  # ... as it still does
        # no customer's call of the agent's own: one hop (the customer's), nothing in hotline-inbound
        assert dialled_on(nodes_lab, COLLEAGUE) == as_customers
        assert nodes_db.execute("SELECT count(*) FROM hops WHERE id > %s", (opened,)).fetchone()[0] == 1
        assert transfers_of(nodes_db, hop[0]) == [
            ("attended", "phone", f"agent:{COLLEAGUE}", "consulting"),
            ("attended", "phone", f"agent:{COLLEAGUE}", "transferred")]
        assert queue_events_of(nodes_db, hop[0]) == [
            ("join", None), ("ring", FIRST), ("answer", FIRST), ("complete", FIRST),
            ("transfer", FIRST), ("join", None), ("ring", COLLEAGUE), ("answer", COLLEAGUE),
            ("complete", COLLEAGUE)]

        # the agent's From without its password (and a header naming the colleague): 401 twice
        forged = subprocess.run(
            ["sipp", "127.0.0.1:5060", "-sf", str(SCENARIOS / "caller_forges_agent_through_proxy.xml"),
             "-s", COLLEAGUE, "-key", "agent", FIRST, "-key", "claims", COLLEAGUE,
             "-au", FIRST, "-ap", "not-" + password, "-m", "1", "-i", "127.0.0.1",
             "-p", str(free_udp_port()), "-mp", str(free_udp_port()), "-timeout", "10s",
             "-timeout_error", "-nostdin"],
            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        assert forged.returncode == 0, forged.stdout[-2000:]
        assert nodes_db.execute("SELECT count(*) FROM hops WHERE id > %s", (opened,)).fetchone()[0] == 1
        assert dialled_on(nodes_lab, f"{COLLEAGUE}@hotline-agents") == after_consult  # no Stasis
        assert dialled_on(nodes_lab, COLLEAGUE) == as_customers
        assert "Traceback" not in daemon.log()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        for node in nodes_lab.nodes().values():  # a failed run leaves no talk to make agents busy
            node.rx("channel request hangup all", timeout=10)
        daemon.stop()
        hotline(env, "agent", "logout", FIRST)
        hotline(env, "agent", "logout", COLLEAGUE)
        put_rendered(nodes_lab, render_behind_proxy(Provisioning()))
        for endpoint in (FIRST, COLLEAGUE):
            nodes_lab.kamailio.rpc("ul.rm", "location", endpoint)


def talk_node(db: psycopg.Connection, endpoint: str) -> str | None:
    """Where Kamailio sends `endpoint`'s own calls: the view it reads (migration 045)."""
    row = db.execute("SELECT talk_node FROM kamailio.agent_talks WHERE endpoint = %s",
                     (endpoint,)).fetchone()
    return row[0] if row else None


def transfers_of(db: psycopg.Connection, hop_id: object) -> list[tuple[object, ...]]:
    return db.execute("SELECT kind, asked_by, target, outcome FROM transfers WHERE hop_id = %s"
                      " ORDER BY id", (hop_id,)).fetchall()


def queue_events_of(db: psycopg.Connection, hop_id: object) -> list[tuple[object, ...]]:
    return db.execute("SELECT e.event, a.name FROM queue_events e LEFT JOIN agents a"
                      " ON a.id = e.agent_id WHERE e.hop_id = %s ORDER BY e.id", (hop_id,)).fetchall()
