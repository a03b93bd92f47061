"""Supervisions as the database keeps them (migration 031), against the lab's real PostgreSQL:
the supervisor flag provisioned and read back; a supervision's row through its steps, the row the
CLI waits on, and the rows a stopped daemon left open."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from hotline.store import provisioning
from hotline.store import provisioning_changes as changes
from hotline.store.db import open_pool
from hotline.store.supervisions import Supervisions, supervision_outcome

from support.checks import rows

pytestmark = pytest.mark.lab


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[AsyncConnection]:
    async with await AsyncConnection.connect(db_dsn, autocommit=True) as c:
        yield c


@pytest.fixture
async def store(db_dsn: str) -> AsyncIterator[Supervisions]:
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=2)
    async with pool:
        yield Supervisions(pool)


@pytest.fixture
def case_id(db: psycopg.Connection) -> int:
    row = db.execute("INSERT INTO cases (customer_key) VALUES ('+79161234567') RETURNING id").fetchone()
    assert row is not None
    return int(row[0])


def ids(case_id: int, request: str, node: str = "n1") -> dict[str, object]:
    return {"request": request, "case_id": case_id, "hop_id": None, "agent_id": None, "supervisor_id": None,
            "supervisor": "sara", "mode": "listen", "asked_by": "cli", "node": node}


async def test_the_supervisor_flag_is_stored_and_read_back(conn: AsyncConnection) -> None:
    await changes.apply_document(conn, {"agents": {"sara": {"supervisor": True, "password": "x" * 12},
                                                   "anna": {"password": "y" * 12}}})
    agents = (await provisioning.load(conn)).agents
    assert agents["sara"].supervisor and not agents["anna"].supervisor
    await changes.apply_document(conn, {"agents": {"sara": {"supervisor": False}}})
    assert not (await provisioning.load(conn)).agents["sara"].supervisor


async def test_a_supervision_row_goes_ringing_supervising_ended_with_its_times(
        store: Supervisions, db: psycopg.Connection, conn: AsyncConnection, case_id: int) -> None:
    await store.ringing(ids(case_id, "r1"), "case-1-sup-x")
    taken = await supervision_outcome(conn, "r1", 1.0)
    assert taken is not None and taken.outcome == "ringing"
    await store.started("r1")
    answered = await supervision_outcome(conn, "r1", 1.0, past=("ringing",))
    assert answered is not None and answered.outcome == "supervising"
    await store.ended("r1", "ended", "the supervisor hung up")
    await store.ended("r1", "ended", "twice")  # a second end changes nothing
    [row] = rows(db, "SELECT outcome, detail, asked_at, started_at, ended_at FROM supervisions")
    assert (row["outcome"], row["detail"]) == ("ended", "the supervisor hung up")
    assert row["asked_at"] <= row["started_at"] <= row["ended_at"]
    assert await supervision_outcome(conn, "nobody", 0.2) is None


async def test_rows_a_stopped_daemon_left_open_end_and_a_running_ones_stay(
        store: Supervisions, db: psycopg.Connection, case_id: int) -> None:
    await store.ringing(ids(case_id, "rang"), "a")
    await store.ringing(ids(case_id, "mine"), "b")
    await store.ringing(ids(case_id, "other-node", node="n2"), "c")
    await store.started("mine")
    await store.refused(ids(case_id, "no"), "sara is busy in a call")
    assert await store.close_unowned("n1", ["mine"]) == 1
    found = {r["request"]: (r["outcome"], r["detail"]) for r in rows(db, "SELECT * FROM supervisions")}
    assert found == {"rang": ("unanswered", "the daemon restarted"), "mine": ("supervising", ""),
                     "other-node": ("ringing", ""), "no": ("refused", "sara is busy in a call")}
