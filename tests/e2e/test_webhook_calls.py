"""Contact events to a webhook through the real lab: a sipp caller answered by a sipp agent
phone, a CRM receiver (an aiohttp server in the test) checking each POST's signature as the
README tells it to; then the receiver down for a while: every event arrives once it is back, in
order per case, none twice."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, hotline, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess, free_tcp_port
from support.provisioning import BASE

pytestmark = pytest.mark.lab

SECRET = "crm-shared-secret-0123456789"
QUEUE_NUMBER = "+74950002211"
PROVISIONING = BASE + """
[queues.line]
ring_timeout = 5
retry = 1
ringback = 1

[hotlines.queued]
entry = "queue:line"

[numbers."+74950002211"]
hotline = "queued"
lines = 3
"""


class Receiver:
    """A CRM's endpoint: takes a POST whose signature is right (204), or answers 503 while down."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.up = True
        self.got: list[dict[str, Any]] = []  # each POST taken: its event and whether it verified
        self.refused = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._take)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _take(self, request: web.Request) -> web.Response:
        raw = await request.read()
        with self._lock:
            if not self.up:
                self.refused += 1
                return web.Response(status=503)
            self.got.append({"verified": signature_ok(request.headers, raw),
                             "header_id": request.headers.get("X-Hotline-Event-Id"),
                             "event": json.loads(raw)})
        return web.Response(status=204)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.got)


def signature_ok(headers: Any, body: bytes) -> bool:
    """The README's receiver check, written out here independently of hotline's code."""
    timestamp = headers["X-Hotline-Timestamp"]
    expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) < 300
    return hmac.compare_digest(expected, headers["X-Hotline-Signature"]) and fresh


@pytest.fixture
def daemon_env(daemon_env: dict[str, str]) -> dict[str, str]:
    """Short waits: a tenth of a second between looks, retries from 0.2 s doubling to 1 s."""
    return {**daemon_env, "HOTLINE_WEBHOOK_POLL": "0.1", "HOTLINE_WEBHOOK_RETRY_FIRST": "0.2",
            "HOTLINE_WEBHOOK_RETRY_MAX": "1", "HOTLINE_WEBHOOK_ATTEMPTS": "100",
            "HOTLINE_WEBHOOK_TIMEOUT": "3"}


@pytest.fixture
def receiver(daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path) -> Any:
    crm = Receiver()
    crm.start()
    secret_file = tmp_path / "crm.secret"
    secret_file.write_text(SECRET + "\n")
    added = hotline(daemon_env, "webhook", "add", "crm", f"http://127.0.0.1:{crm.port}/hook",
                    "--secret-file", str(secret_file))
    assert SECRET not in added.stdout  # a secret is never printed back
    yield crm
    crm.stop()


@pytest.fixture
def agent(daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path,
          rendered_files_removed_afterwards: Path) -> Agent:
    return logged_in_agents(daemon_env, tmp_path, "w", {"line": 0})[0]


def answered_call(agent: Agent, lab: Lab, db: psycopg.Connection, caller: str) -> int:
    """A caller answered by the agent's phone, talking 2 s, then hanging up; the case's id."""
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=300)
    wait_until(lambda: registered(lab, agent.name) or phone.poll() is not None,
               what="agent phone registered")
    assert phone.poll() is None, sipp.finish(phone).output
    before = {r["id"] for r in rows(db, "SELECT id FROM cases")}
    caller_run = sipp.call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=2000, caller=caller)
    assert caller_run.ok, caller_run.output[:2500]
    assert sipp.finish(phone).ok
    closed = wait_until(lambda: rows(db, "SELECT id FROM cases WHERE status = 'closed' AND id <> ALL(%s)",
                                     list(before)), what="the call's case closed")
    return int(closed[0]["id"])


def stream_of(db: psycopg.Connection, case_id: int) -> list[dict[str, Any]]:
    return rows(db, "SELECT id, kind, hop_id, queue, agent FROM contact_events"
                    " WHERE case_id = %s ORDER BY id", case_id)


def received_for(crm: Receiver, case_id: int) -> list[dict[str, Any]]:
    return [g["event"] for g in crm.events() if g["event"]["case"] == case_id]


def delivered_all(crm: Receiver, db: psycopg.Connection, case_id: int) -> bool:
    return len(received_for(crm, case_id)) == len(stream_of(db, case_id)) > 0 and any(
        e["kind"] == "case_closed" for e in received_for(crm, case_id))


def pending_metric(daemon: DaemonProcess) -> float | None:
    """hotline_webhook_deliveries_pending of the webhook `crm` in a scrape, if above 0."""
    for family in text_string_to_metric_families(daemon.metrics()):
        for sample in family.samples:
            if sample.name == "hotline_webhook_deliveries_pending" and sample.labels == {"webhook": "crm"}:
                return sample.value or None
    return None


@pytest.mark.provision(PROVISIONING)
def test_a_crm_gets_every_event_of_an_answered_call_in_order_signed_and_again_after_an_outage(
        agent: Agent, receiver: Receiver, lab: Lab, daemon_env: dict[str, str], daemon: DaemonProcess,
        db: psycopg.Connection) -> None:
    crm = receiver
    first = answered_call(agent, lab, db, "+79161110001")
    wait_until(lambda: delivered_all(crm, db, first), timeout_s=15, what="every event of the first call")
    stored = stream_of(db, first)
    got = received_for(crm, first)
    assert [e["id"] for e in got] == [s["id"] for s in stored]  # each once, in the case's order
    kinds = [e["kind"] for e in got]
    assert kinds[:3] == ["case_opened", "entered_hotline", "queued"]
    assert kinds[-2:] == ["ended", "case_closed"]
    for step in ("ringing_agent", "answered", "talk_ended"):
        assert step in kinds
    assert kinds.index("queued") < kinds.index("ringing_agent") < kinds.index("answered") \
        < kinds.index("talk_ended")
    answered = got[kinds.index("answered")]
    assert (answered["hotline"], answered["queue"], answered["agent"]) == ("queued", "line", agent.name)
    assert answered["data"]["wait_ms"] >= 300
    assert got[-2]["data"]["reason"] == "completed"
    assert all(g["verified"] and g["header_id"] == str(g["event"]["id"]) for g in crm.events())

    # The CRM goes down: the next call's events wait in PostgreSQL, retried; none is lost.
    crm.up = False
    second = answered_call(agent, lab, db, "+79161110002")
    wait_until(lambda: crm.refused >= 3, timeout_s=10, what="the daemon retrying the CRM")
    listed = json.loads(hotline(daemon_env, "webhook", "list", "--format", "json").stdout)[0]
    assert listed["pending"] >= 1 and listed["last_error"] == "HTTP 503 Service Unavailable"
    backlog = wait_until(lambda: pending_metric(daemon), what="the backlog in /metrics")  # read every 5 s
    assert backlog >= 1
    assert "secret" not in listed and SECRET not in json.dumps(listed)
    assert received_for(crm, second) == []
    # ... and through a daemon restart: the backlog is rows, not memory.
    assert daemon.stop(signal.SIGTERM) == 0
    daemon.start()
    refused_before = crm.refused
    wait_until(lambda: crm.refused > refused_before, timeout_s=10, what="the new daemon retrying the CRM")
    crm.up = True
    wait_until(lambda: delivered_all(crm, db, second), timeout_s=15, what="every event of the second call")
    assert [e["id"] for e in received_for(crm, second)] == [s["id"] for s in stream_of(db, second)]
    ids = [g["event"]["id"] for g in crm.events()]
    assert len(ids) == len(set(ids))  # none twice
    assert all(g["verified"] for g in crm.events())
    assert rows(db, "SELECT count(*) AS n FROM webhook_deliveries WHERE status <> 'delivered'") == [{"n": 0}]
    assert "Traceback" not in daemon.log()
