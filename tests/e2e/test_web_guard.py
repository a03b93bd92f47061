"""The daemon's web pages as a stranger, an agent and a wallboard meet them, through `hotline run`
on the lab: switch links checked by shape before the database, a pool of their own, a rate per
address, 503 while the database is away, and the agent API's login guarded."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
import pytest

from hotline.lab import Lab

from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

SUPERVISOR_TOKEN = "wallboard-0123456789abcdef"
PASSWORD = "guard-Passw0rd-1"
WITH_AGENT = pytest.mark.provision(BASE + f"""
[agents.guard-agent]
password = "{PASSWORD}"
queues = {{ support = 0 }}
""")
WEB_POOL = "hotline-web"  # the application_name of the pages' own pool
WELL_FORMED_UNKNOWN = "ab" * 32


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: str

    def json(self) -> object:
        return json.loads(self.body)


@pytest.fixture
def daemon_env(daemon_env: dict[str, str]) -> dict[str, str]:
    return {**daemon_env, "HOTLINE_SUPERVISOR_TOKEN": SUPERVISOR_TOKEN}


def request(env: Mapping[str, str], path: str, *, body: bytes | None = None,
            headers: Mapping[str, str] | None = None) -> Answer:
    req = urllib.request.Request(f"http://{env['HOTLINE_WEB_LISTEN']}{path}", data=body,
                                 headers=dict(headers or {}), method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return Answer(resp.status, dict(resp.headers), resp.read().decode())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, dict(exc.headers), exc.read().decode())


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def switch_api(env: Mapping[str, str], user: str, password: str, **extra: str) -> Answer:
    return request(env, "/api/agent/switch", body=b"{}",
                   headers={**basic(user, password), "Content-Type": "application/json", **extra})


def web_sessions(db: psycopg.Connection) -> int:
    row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND application_name = %s", (WEB_POOL,)).fetchone()
    assert row is not None
    return int(row[0])



def test_switch_links_use_a_pool_of_their_own_of_two_connections_at_most(
        daemon: DaemonProcess, daemon_env: dict[str, str], db: psycopg.Connection) -> None:
    for _ in range(30):
        assert request(daemon_env, f"/switch/{WELL_FORMED_UNKNOWN}").status == 404
    assert 1 <= web_sessions(db) <= 2


def test_with_the_database_away_a_link_gets_a_plain_503_and_a_malformed_one_404_at_once(
        lab: Lab, daemon: DaemonProcess, daemon_env: dict[str, str], db: psycopg.Connection) -> None:
    with lab.database_cut_off(db.info.dbname, WEB_POOL):
        away = request(daemon_env, f"/switch/{WELL_FORMED_UNKNOWN}")
        assert away.status == 503 and away.headers["Retry-After"] == "5"
        assert "The service is unavailable for a moment" in away.body
        assert "Traceback" not in away.body and "psycopg" not in away.body
        for forged in ("AB" * 32, "ab" * 31, "ab" * 33, "ab" * 31 + "%2F", "ab" * 31 + "zz"):
            started = time.monotonic()
            refused = request(daemon_env, f"/switch/{forged}")
            # Never asked of the database: refused at once, as when the database is there.
            assert (refused.status, time.monotonic() - started < 1) == (404, True), forged
            assert "This link is not valid" in refused.body
    assert request(daemon_env, f"/switch/{WELL_FORMED_UNKNOWN}").status == 404  # back: asked again
    assert "Traceback" not in daemon.log()


def test_a_burst_of_requests_from_one_address_gets_429_with_retry_after(
        daemon: DaemonProcess, daemon_env: dict[str, str]) -> None:
    statuses = [request(daemon_env, f"/switch/{WELL_FORMED_UNKNOWN}").status for _ in range(60)]
    assert statuses[:20] == [404] * 20 and statuses[-1] == 429
    refused = request(daemon_env, "/")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    time.sleep(1.5)
    assert request(daemon_env, "/").status == 200  # the bucket refills


@WITH_AGENT
def test_failed_agent_logins_are_logged_with_their_source_then_throttled_without_a_challenge(
        daemon: DaemonProcess, daemon_env: dict[str, str]) -> None:
    answers = [switch_api(daemon_env, "guard-agent", "not-the-password") for _ in range(5)]
    assert [a.status for a in answers] == [401] * 5
    assert all("WWW-Authenticate" not in a.headers for a in answers)
    logged = [line for line in daemon.log().splitlines() if "agent login failed:" in line]
    assert len(logged) == 5
    assert logged[0].endswith("WARNING hotline.web.guard: agent login failed: source=127.0.0.1 "
                              "endpoint=guard-agent api=/api/agent/switch")
    locked = switch_api(daemon_env, "guard-agent", PASSWORD)  # the right password, unchecked now
    assert locked.status == 429 and 290 <= int(locked.headers["Retry-After"]) <= 300
    assert "WWW-Authenticate" not in locked.headers


@WITH_AGENT
def test_the_agents_sip_password_logs_in_against_its_ha1(
        daemon: DaemonProcess, daemon_env: dict[str, str]) -> None:
    answer = switch_api(daemon_env, "guard-agent", PASSWORD)
    assert (answer.status, answer.json()) == (409, {"error": "You have no call in progress to move to video",
                                                 "code": "switch_no_call", "fields": {}})


@WITH_AGENT
@pytest.mark.parametrize(("headers", "status"), [
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "application/json", "Origin": "https://evil.example"}, 403),
    ({"Content-Type": "application/json", "Origin": "null"}, 403),
])
def test_the_agent_api_takes_json_from_its_own_origin_only(
        daemon: DaemonProcess, daemon_env: dict[str, str], headers: dict[str, str], status: int) -> None:
    answer = request(daemon_env, "/api/agent/invite", body=b'{"agent": "guard-agent"}',
                     headers={**basic("guard-agent", PASSWORD), **headers})
    assert answer.status == status and "error" in answer.json()  # type: ignore[operator]
    own = f"http://{daemon_env['HOTLINE_WEB_LISTEN']}"
    assert switch_api(daemon_env, "guard-agent", PASSWORD, Origin=own).status == 409  # past the guard


@WITH_AGENT
def test_the_live_queues_need_an_agents_login_or_the_supervisor_token(
        daemon: DaemonProcess, daemon_env: dict[str, str]) -> None:
    nobody = request(daemon_env, "/api/queues")
    assert nobody.status == 401 and "WWW-Authenticate" not in nobody.headers
    assert request(daemon_env, "/api/queues", headers={"Authorization": "Bearer not-the-token"}).status == 401
    for headers in ({"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}, basic("guard-agent", PASSWORD)):
        answer = request(daemon_env, "/api/queues", headers=headers)
        assert answer.status == 200
        assert [q["queue"] for q in answer.json()] == ["support"]  # type: ignore[attr-defined,index]
    assert "supervisor token refused: source=127.0.0.1" in daemon.log()
