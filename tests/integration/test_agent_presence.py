"""Agent presence as a supervisor uses it, `hotline agent login|logout|pause|unpause|status`, against
the lab's real PostgreSQL: the intervals statistics will add up, the refusals, the NOTIFY a running
daemon follows, and logins racing each other."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import AsyncConnection

from hotline.cli import main
from hotline.errors import AgentStateError
from hotline.store import agent_sessions
from hotline.store.db import connect

from support.checks import rows

pytestmark = pytest.mark.lab

Hotline = Callable[..., Result]
TIME = r"\d\d:\d\d"


@pytest.fixture
def agents(db: psycopg.Connection) -> None:
    db.execute("INSERT INTO agents (name, endpoint) VALUES ('ivanov', 'ivanov'), ('petrova', 'petrova'),"
               " ('smirnov', 'smirnov')")
    db.execute("INSERT INTO agents (name, endpoint, retired_at) VALUES ('sidorov', 'sidorov', now())")


@pytest.fixture
def hotline(db_dsn: str, agents: None) -> Hotline:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, ["agent", *args], env={"HOTLINE_DSN": db_dsn}, catch_exceptions=False)
    return run


@pytest.fixture
async def conn(db_dsn: str, agents: None) -> AsyncIterator[AsyncConnection]:
    connection = await connect(db_dsn)
    async with connection:
        yield connection


def sessions(db: psycopg.Connection, agent: str = "ivanov") -> list[dict[str, Any]]:
    return rows(db, "SELECT logged_in_at, logged_out_at FROM agent_sessions s JOIN agents a"
                    " ON a.id = s.agent_id WHERE a.name = %s ORDER BY s.id", agent)


def pauses(db: psycopg.Connection, agent: str = "ivanov") -> list[dict[str, Any]]:
    return rows(db, "SELECT reason, started_at, ended_at FROM agent_pauses p JOIN agents a"
                    " ON a.id = p.agent_id WHERE a.name = %s ORDER BY p.id", agent)


def presence_rows(db: psycopg.Connection) -> list[Any]:
    return rows(db, "SELECT to_jsonb(s) AS row FROM agent_sessions s ORDER BY id") + \
        rows(db, "SELECT to_jsonb(p) AS row FROM agent_pauses p ORDER BY id")


def say(hotline: Hotline, *args: str) -> str:
    result = hotline(*args)
    assert result.exit_code == 0, result.output
    return result.output.strip()


# -- a supervisor's day -------------------------------------------------------------------------

def test_a_shift_leaves_one_session_and_back_to_back_pauses_by_reason(hotline: Hotline,
                                                                      db: psycopg.Connection) -> None:
    assert say(hotline, "login", "ivanov") == "ivanov logged in"
    assert say(hotline, "pause", "ivanov", "lunch") == "ivanov paused: lunch"
    assert re.fullmatch(rf"ivanov paused: training \(was: lunch \(since {TIME}\)\)",
                        say(hotline, "pause", "ivanov", "training"))
    assert re.fullmatch(rf"ivanov unpaused \(was: training \(since {TIME}\)\)",
                        say(hotline, "unpause", "ivanov"))
    assert say(hotline, "logout", "ivanov") == "ivanov logged out"
    [session] = sessions(db)
    lunch, training = pauses(db)
    assert (lunch["reason"], training["reason"]) == ("lunch", "training")
    # No gap and no overlap: time by reason adds up to the time paused.
    assert lunch["ended_at"] == training["started_at"]
    assert (session["logged_in_at"] <= lunch["started_at"] < lunch["ended_at"]
            < training["ended_at"] <= session["logged_out_at"])


def test_once_pause_reasons_are_provisioned_a_pause_takes_one_of_them(hotline: Hotline,
                                                                       db: psycopg.Connection) -> None:
    assert say(hotline, "pause-reasons") == "any reason (no list is provisioned)"
    # (The agents here were inserted without passwords: the first edit gives them theirs.)
    listed = say(hotline, "pause-reasons", "lunch", "training").splitlines()
    assert "~ pause reasons lunch, training" in listed
    assert say(hotline, "pause-reasons").splitlines() == ["lunch", "training"]
    say(hotline, "login", "ivanov")
    refused = hotline("pause", "ivanov", "coffee")
    assert refused.exit_code == 1
    assert refused.output.strip().endswith(
        "pause reason 'coffee' is not one of the provisioned reasons: lunch, training"), refused.output
    assert pauses(db) == []
    assert say(hotline, "pause", "ivanov", " training ") == "ivanov paused: training"
    bad = hotline("pause-reasons", "lunch", "lunch")
    assert bad.exit_code == 1 and "pause_reasons[1]: 'lunch' is listed twice" in bad.output
    assert say(hotline, "pause-reasons", "--any") == "~ pause reasons (any reason)"
    assert re.fullmatch(rf"ivanov paused: coffee \(was: training \(since {TIME}\)\)",
                        say(hotline, "pause", "ivanov", "coffee"))
    assert rows(db, "SELECT count(*) AS n FROM pause_reasons") == [{"n": 0}]


def test_logout_ends_the_open_pause_at_the_same_moment(hotline: Hotline, db: psycopg.Connection) -> None:
    say(hotline, "login", "ivanov")
    say(hotline, "pause", "ivanov", "lunch")
    assert re.fullmatch(rf"ivanov logged out \(pause ended: lunch \(since {TIME}\)\)",
                        say(hotline, "logout", "ivanov"))
    [session], [pause] = sessions(db), pauses(db)
    assert pause["ended_at"] == session["logged_out_at"] is not None


def test_second_login_is_a_no_op_that_says_since_when(hotline: Hotline, db: psycopg.Connection) -> None:
    say(hotline, "login", "ivanov")
    assert re.fullmatch(rf"ivanov is already logged in \(since {TIME}\)", say(hotline, "login", "ivanov"))
    assert len(sessions(db)) == 1


def test_same_pause_reason_again_is_a_no_op_and_logout_when_logged_out_too(hotline: Hotline,
                                                                           db: psycopg.Connection) -> None:
    say(hotline, "login", "ivanov")
    say(hotline, "pause", "ivanov", "lunch")
    assert re.fullmatch(rf"ivanov is already paused: lunch \(since {TIME}\)",
                        say(hotline, "pause", "ivanov", "  lunch "))
    assert len(pauses(db)) == 1
    assert say(hotline, "logout", "petrova") == "petrova is not logged in"
    assert sessions(db, "petrova") == []


def test_a_new_session_after_logout_is_a_second_interval(hotline: Hotline, db: psycopg.Connection) -> None:
    for verb in ("login", "logout", "login"):
        say(hotline, verb, "ivanov")
    first, second = sessions(db)
    assert first["logged_out_at"] <= second["logged_in_at"] and second["logged_out_at"] is None


@pytest.mark.parametrize("logged_in, args, message", [
    (False, ("pause", "ivanov", "lunch"), "agent 'ivanov' is not logged in"),
    (True, ("unpause", "ivanov"), "agent 'ivanov' is not paused"),
    (False, ("unpause", "ivanov"), "agent 'ivanov' is not paused"),
    (False, ("login", "nobody"), "agent 'nobody' does not exist"),
    (False, ("logout", "nobody"), "agent 'nobody' does not exist"),
    (False, ("pause", "nobody", "lunch"), "agent 'nobody' does not exist"),
    (False, ("login", "sidorov"), "agent 'sidorov' was removed"),
    (False, ("unpause", "sidorov"), "agent 'sidorov' was removed"),
    (True, ("pause", "ivanov", "x" * 101), "101 characters long, at most 100"),
    (True, ("pause", "ivanov", "lunch\x1b[2J"), r"control character '\x1b'"),
    (True, ("pause", "ivanov", "lunch\nbreak"), r"control character '\n'"),
    (True, ("pause", "ivanov", "lunch\u202e"), r"control character '\u202e'"),
    (True, ("pause", "ivanov", "  "), "a pause needs a reason"),
])
def test_refusals_are_one_clear_line_and_write_nothing(hotline: Hotline, db: psycopg.Connection,
                                                       logged_in: bool, args: tuple[str, ...],
                                                       message: str) -> None:
    if logged_in:
        say(hotline, "login", "ivanov")
    before = presence_rows(db)
    result = hotline(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert presence_rows(db) == before


def test_a_reason_of_100_characters_with_quotes_is_kept_whole(hotline: Hotline,
                                                              db: psycopg.Connection) -> None:
    reason = ("обед 'с' \"коллегой\"; DROP TABLE agents; --" + "x" * 100)[:100]
    say(hotline, "login", "ivanov")
    say(hotline, "pause", "ivanov", reason)
    assert [p["reason"] for p in pauses(db)] == [reason]


def test_status_lists_every_live_agent_with_state_and_since(hotline: Hotline) -> None:
    say(hotline, "login", "ivanov")
    say(hotline, "pause", "ivanov", "lunch", "break")
    say(hotline, "login", "petrova")
    header, *lines = say(hotline, "status").splitlines()
    assert header.split() == ["AGENT", "STATE", "SINCE"]
    assert [re.split(r"\s{2,}", line) for line in lines] == [
        ["ivanov", "paused: lunch break", lines[0][-5:]], ["petrova", "free", lines[1][-5:]],
        ["smirnov", "logged out", "-"]]
    assert re.fullmatch(TIME, lines[0][-5:]) and re.fullmatch(TIME, lines[1][-5:])
    listed = json.loads(say(hotline, "status", "--format", "json"))
    assert [(a["agent"], a["state"], a["reason"]) for a in listed] == [
        ("ivanov", "paused", "lunch break"), ("petrova", "free", None), ("smirnov", "logged out", None)]
    assert listed[0]["paused_since"] >= listed[0]["logged_in_since"]
    assert listed[2]["logged_in_since"] is None and listed[2]["paused_since"] is None


# -- the daemon's view --------------------------------------------------------------------------

def test_every_change_notifies_hotline_agents_with_a_json_payload(hotline: Hotline, db_dsn: str) -> None:
    reason = 'say "hi"; it\'s \\ обед'
    with psycopg.connect(db_dsn, autocommit=True) as listener:
        listener.execute("LISTEN hotline_agents")
        say(hotline, "login", "ivanov")
        say(hotline, "login", "ivanov")  # a no-op: nothing to notify
        say(hotline, "pause", "ivanov", reason)
        say(hotline, "unpause", "ivanov")
        say(hotline, "logout", "ivanov")
        got = list(listener.notifies(timeout=10, stop_after=4))
    assert {n.channel for n in got} == {"hotline_agents"}
    assert [json.loads(n.payload) for n in got] == [
        {"agent": "ivanov", "event": "login", "reason": None},
        {"agent": "ivanov", "event": "pause", "reason": reason},
        {"agent": "ivanov", "event": "unpause", "reason": reason},
        {"agent": "ivanov", "event": "logout", "reason": None}]


async def test_states_report_each_live_agent(conn: AsyncConnection) -> None:
    await agent_sessions.login(conn, "ivanov")
    await agent_sessions.pause(conn, "ivanov", "lunch")
    await agent_sessions.login(conn, "petrova")
    states = await agent_sessions.states(conn)
    assert list(states) == ["ivanov", "petrova", "smirnov"]
    assert [s.state for s in states.values()] == ["paused", "free", "logged out"]
    assert states["ivanov"].reason == "lunch" and states["smirnov"].logged_in_since is None


# -- login times and races ----------------------------------------------------------------------

async def test_login_at_a_given_time_is_kept_and_may_not_overlap_the_last_session(
        conn: AsyncConnection) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    change = await agent_sessions.login(conn, "ivanov", at=an_hour_ago)
    assert change.changed and change.after.logged_in_since == an_hour_ago
    await agent_sessions.logout(conn, "ivanov")
    with pytest.raises(AgentStateError, match="before the agent's last logout"):
        await agent_sessions.login(conn, "ivanov", at=an_hour_ago)
    with pytest.raises(AgentStateError, match="in the future"):
        await agent_sessions.login(conn, "ivanov", at=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(AgentStateError, match="has no time zone"):
        await agent_sessions.login(conn, "ivanov", at=datetime.now())


async def test_concurrent_logins_open_exactly_one_session(db_dsn: str, agents: None,
                                                          db: psycopg.Connection) -> None:
    conns = [await connect(db_dsn) for _ in range(8)]
    try:
        changes = await asyncio.gather(*(agent_sessions.login(c, "ivanov") for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sum(c.changed for c in changes) == 1
    [winner] = [c for c in changes if c.changed]
    assert {c.before.logged_in_since for c in changes if not c.changed} == {winner.after.logged_in_since}
    assert len(sessions(db)) == 1


async def test_login_racing_a_session_opened_outside_hotline_reports_already_logged_in(
        db_dsn: str, agents: None, db: psycopg.Connection) -> None:
    """A session inserted by some other writer, not yet committed: the login waits on the unique
    index, gets UniqueViolation once it commits, and reports the agent as logged in."""
    with psycopg.connect(db_dsn) as other:
        other.execute("INSERT INTO agent_sessions (agent_id) SELECT id FROM agents WHERE name = 'ivanov'")
        async with await connect(db_dsn) as conn:
            login = asyncio.create_task(agent_sessions.login(conn, "ivanov"))
            await _until_a_lock_is_awaited(db)
            other.commit()
            change = await asyncio.wait_for(login, timeout=10)
    assert not change.changed and change.before.logged_in_since is not None
    assert len(sessions(db)) == 1


async def _until_a_lock_is_awaited(db: psycopg.Connection, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not rows(db, "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                       " WHERE NOT l.granted AND a.datname = current_database()"):
        assert asyncio.get_running_loop().time() < deadline, "the login never waited on the lock"
        await asyncio.sleep(0.05)


def test_removing_a_logged_in_agent_logs_them_out_and_ends_their_pause(
        hotline: Hotline, db: psycopg.Connection) -> None:
    say(hotline, "login", "ivanov")
    say(hotline, "pause", "ivanov", "lunch")
    assert "- agent ivanov" in say(hotline, "remove", "ivanov")
    assert sessions(db)[0]["logged_out_at"] is not None
    assert pauses(db)[0]["ended_at"] is not None
