"""Transfers as the database keeps them (migration 019), against the lab's real PostgreSQL: the
records a blind transfer submits, applied in one batch; the target queue counting the caller like
any other; the row the CLI waits for; `case show` listing each transfer; the CLI's refusals that
need no daemon."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from psycopg_pool import AsyncConnectionPool

from hotline.cli import main
from hotline.store.case_timeline import case_timeline
from hotline.store.contacts import Contacts
from hotline.store.db import connect, open_pool
from hotline.store.hops import Hop, NewHop
from hotline.store.records import QueueEvent, TransferRow, queue_event_record, transfer_record, write_records
from hotline.store.transfers import OpenConsult, transfer_outcome

from support.checks import rows

pytestmark = pytest.mark.lab

# Two hours ago, not a fixed day: what is "older than N days" (retention, purges) must not change
# with the day the suite runs.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@pytest.fixture
def ids(db: psycopg.Connection) -> dict[str, int]:
    db.execute("INSERT INTO queues (name) VALUES ('support'), ('sales')")
    db.execute("INSERT INTO agents (name, endpoint) VALUES ('anna', 'anna'), ('boris', 'boris')")
    db.execute("INSERT INTO hotlines (name, entry_queue_id)"
               " SELECT 'city', id FROM queues WHERE name = 'support'")
    db.execute("INSERT INTO numbers (number, kind, hotline_id)"
               " SELECT '+74951234567', 'city', id FROM hotlines")
    found = rows(db, "SELECT name, id FROM queues UNION ALL SELECT name, id FROM agents")
    return {r["name"]: r["id"] for r in found}


@pytest.fixture
async def contacts(db_dsn: str) -> AsyncIterator[Contacts]:
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=2)
    async with pool:
        yield Contacts(pool)


async def live_hop(contacts: Contacts, channel: str = "c1") -> Hop:
    return await contacts.open_case_with_hop(NewHop(
        node="n1", channel_id=channel, channel_name=f"PJSIP/trunk-{channel}", channel_kind="pstn",
        media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num="+79161234567",
        caller_name="", entered_at=T0), "+79161234567")


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def transferred_from_support_to_sales(hop: Hop, ids: dict[str, int]) -> list[dict[str, object]]:
    """What the engine submits: a talk with anna in support, passed to sales, answered by boris."""
    def event(queue: str, kind: str, second: int, agent: str | None = None,
              **more: object) -> dict[str, object]:
        return queue_event_record(QueueEvent(ids[queue], hop.case_id, hop.id, kind,
                                             agent_id=ids[agent] if agent else None, at=at(second),
                                             **more))  # type: ignore[arg-type]
    return [event("support", "join", 0, position=1), event("support", "ring", 1, "anna"),
            event("support", "answer", 4, "anna", wait_ms=4000),
            event("support", "complete", 64, "anna", talk_ms=60_000, detail="transferred to queue:sales"),
            event("support", "transfer", 64, "anna", detail="queue:sales"),
            transfer_record(TransferRow(hop.id, hop.case_id, "req-1", "blind", "cli", ids["support"],
                                        ids["anna"], "queue:sales", "transferred", at=at(64))),
            event("sales", "join", 64, position=1), event("sales", "ring", 70, "boris"),
            event("sales", "answer", 73, "boris", wait_ms=9000),
            event("sales", "complete", 133, "boris", talk_ms=60_000, detail="caller hung up")]


async def test_a_blind_transfer_is_one_hop_two_visits_and_one_row(
        contacts: Contacts, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    hop = await live_hop(contacts)
    async with await connect(db_dsn) as conn:
        await write_records(conn, transferred_from_support_to_sales(hop, ids))
        await conn.commit()
        outcome = await transfer_outcome(conn, "req-1", 0)
        timeline = await case_timeline(conn, hop.case_id)
    assert outcome is not None and (outcome.outcome, outcome.detail) == ("transferred", "")
    assert rows(db, "SELECT kind, asked_by, from_queue_id, from_agent_id, target, outcome"
                    " FROM transfers") == [
        {"kind": "blind", "asked_by": "cli", "from_queue_id": ids["support"], "from_agent_id": ids["anna"],
         "target": "queue:sales", "outcome": "transferred"}]
    # The hop: its last visit's queue and agent, answered when anna first answered.
    assert rows(db, "SELECT queue_id, agent_id, answered_at FROM hops") == [
        {"queue_id": ids["sales"], "agent_id": ids["boris"], "answered_at": at(4)}]
    stats = {r["queue"]: r for r in rows(db, "SELECT * FROM stats_queue(%s, %s)", T0, at(3600))}
    assert [(q, stats[q]["offered"], stats[q]["answered"], stats[q]["asa_s"], stats[q]["avg_talk_s"],
             stats[q]["transferred_out"], stats[q]["transferred_in"]) for q in ("sales", "support")] \
        == [("sales", 1, 1, 9, 60, 0, 1), ("support", 1, 1, 4, 60, 1, 0)]
    agents = {r["agent"]: r for r in rows(db, "SELECT * FROM stats_agent(%s, %s)", T0, at(3600))}
    assert [(a, agents[a]["answered"], agents[a]["transferred_out"], agents[a]["transferred_in"])
            for a in ("anna", "boris")] == [("anna", 1, 1, 0), ("boris", 1, 0, 1)]
    said = [m.what for m in timeline.moments()]
    assert "blind transfer asked by cli from queue support agent anna to queue:sales: transferred" in said
    assert said.index("queue support: transfer anna (queue:sales)") \
        < said.index("queue sales: join (position 1)")


async def test_between_a_transfer_and_the_next_answer_the_hop_has_no_agent(
        contacts: Contacts, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    hop = await live_hop(contacts)
    async with await connect(db_dsn) as conn:
        await write_records(conn, transferred_from_support_to_sales(hop, ids)[:7])  # waiting in sales
    assert rows(db, "SELECT queue_id, agent_id, answered_at, queued_at FROM hops") == [
        {"queue_id": ids["sales"], "agent_id": None, "answered_at": at(4), "queued_at": at(64)}]


async def test_a_refused_transfer_is_recorded_once_per_request_and_found_by_it(
        contacts: Contacts, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    hop = await live_hop(contacts)
    refused = transfer_record(TransferRow(hop.id, hop.case_id, "req-2", "blind", "cli", None, None,
                                          "queue:sales", "refused", "no live talk (the call is waiting)"))
    async with await connect(db_dsn) as conn:
        await write_records(conn, [refused, refused])  # a batch retried: still one row
        await conn.commit()
        outcome = await transfer_outcome(conn, "req-2", 0)
        assert await transfer_outcome(conn, "req-unknown", 0.2) is None
    assert outcome is not None and (outcome.outcome, outcome.detail) == (
        "refused", "no live talk (the call is waiting)")
    assert len(rows(db, "SELECT id FROM transfers")) == 1


def transfer_cli(db_dsn: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["case", "transfer", *args], catch_exceptions=False,
                                env={"HOTLINE_DSN": db_dsn, "HOTLINE_ARI_URL": "http://u:p@127.0.0.1:9"})
    return result.exit_code, result.output.strip()


def test_the_cli_refuses_an_unknown_target_and_a_case_without_a_live_talk_in_one_line(
        ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    case_id = db.execute("INSERT INTO cases (customer_key, opened_at, status) VALUES ('k', %s, 'open')"
                         " RETURNING id", (T0,)).fetchone()[0]
    db.execute("INSERT INTO hops (case_id, seq, node, channel_id, channel_name, channel_kind, media, dialled,"
               " caller_num, caller_name, entered_at) VALUES (%s, 1, 'n1', 'c1', 'PJSIP/trunk-c1', 'pstn',"
               " 'audio', '84951234567', '+79161234567', '', %s)", (case_id, T0))
    hop = Hop(0, case_id, 1, "n1", "c1", "pstn", "84951234567", None, "", T0, None, None, None)
    code, said = transfer_cli(db_dsn, str(hop.case_id), "billing")
    assert (code, said) == (1, "Error: unknown transfer target 'billing': "
                               "no queue, hotline or agent has that name")
    code, said = transfer_cli(db_dsn, str(hop.case_id), "queue:sales")
    assert (code, said) == (1, f"Error: case {hop.case_id}'s call is not talking with an agent: "
                               f"only a live talk can be transferred")
    code, said = transfer_cli(db_dsn, "999", "sales")
    assert (code, said) == (1, "Error: case 999 has no call in progress (or does not exist)")
    # Talking, but Asterisk unreachable: the request cannot reach the daemon, and it says so.
    db.execute("UPDATE hops SET agent_id = %s, answered_at = %s", (ids["anna"], at(4)))  # talking now
    code, said = transfer_cli(db_dsn, str(hop.case_id), "sales")
    assert code == 1 and said.startswith(f"Error: case {hop.case_id}: the transfer request did not reach "
                                         f"the daemon (ARI POST events/user/hotline-transfer: Asterisk at")
    assert len(said.splitlines()) == 1


def test_the_cli_checks_the_shape_of_an_attended_transfer_and_its_target_before_asking(
        ids: dict[str, int], db_dsn: str) -> None:
    code, said = transfer_cli(db_dsn, "1", "agent:boris", "--complete")
    assert code == 2 and "--complete takes no TARGET and no --attended" in said
    code, said = transfer_cli(db_dsn, "1")
    assert code == 2 and "give a TARGET (or --complete / --cancel for an attended transfer)" in said
    code, said = transfer_cli(db_dsn, "1", "queue:sales", "--attended")
    assert (code, said) == (1, "Error: an attended transfer goes to an agent (agent:NAME), "
                               "not to queue:sales")
    code, said = transfer_cli(db_dsn, "1", "+79161234567")  # no trunk provisioned
    assert (code, said) == (1, "Error: transfer to +79161234567 refused: no trunk may dial '+79161234567': "
                               "no trunk is provisioned")


async def test_an_attended_transfers_steps_are_rows_with_their_outcomes(
        ids: dict[str, int], contacts: Contacts, db: psycopg.Connection, db_dsn: str) -> None:
    hop = await live_hop(contacts)
    steps = [("r1", "consulting"), ("r2", "cancelled"), (None, "unanswered"), ("r3", "transferred")]
    await contacts.write([transfer_record(TransferRow(
        hop_id=hop.id, case_id=hop.case_id, request=request, kind="attended", asked_by="cli",
        from_queue_id=ids["support"], from_agent_id=ids["anna"], target="agent:boris", outcome=outcome,
        detail="", at=at(10 + i))) for i, (request, outcome) in enumerate(steps)])
    written = rows(db, "SELECT request, outcome FROM transfers ORDER BY id")
    assert [(r["request"], r["outcome"]) for r in written] == steps
    async with await connect(db_dsn) as conn:
        said = await transfer_outcome(conn, "r2", 1.0)
    assert said is not None and (said.outcome, said.target) == ("cancelled", "agent:boris")


async def test_a_consult_under_way_is_the_hops_last_attended_step_consulting_refusals_aside(
        ids: dict[str, int], contacts: Contacts) -> None:
    hop, other = await live_hop(contacts), await live_hop(contacts, "c2")

    async def step(outcome: str, second: int, on: Hop = hop, target: str = "agent:boris") -> None:
        await contacts.write([transfer_record(TransferRow(
            hop_id=on.id, case_id=on.case_id, request=None, kind="attended", asked_by="page",
            from_queue_id=ids["support"], from_agent_id=ids["anna"], target=target, outcome=outcome,
            detail="", at=at(second)))])

    assert await contacts.open_consult(hop) is None  # no transfer at all
    await step("consulting", 10)
    await step("refused", 11, target="(none)")  # a --complete too early: the consult goes on
    await step("consulting", 12, on=other)
    assert await contacts.open_consult(hop) == OpenConsult("agent:boris", "page", ids["support"], ids["anna"])
    await step("unanswered", 13)
    assert await contacts.open_consult(hop) is None
    assert await contacts.open_consult(other) is not None


async def test_a_leg_the_daemon_places_is_the_next_hop_of_the_case_once_per_channel(
        ids: dict[str, int], contacts: Contacts) -> None:
    hop = await live_hop(contacts)
    outbound = NewHop(node="n1", channel_id="c1-out-1", channel_name="PJSIP/sipp-carrier",
                      channel_kind="pstn",
                      media="audio", dialled="+79161234567", dialled_e164="+79161234567",
                      caller_num="+74951234567", caller_name="", entered_at=at(30))
    added = await contacts.add_hop(hop.case_id, outbound)
    assert (added.case_id, added.seq, added.dialled, added.caller_num) == (
        hop.case_id, 2, "+79161234567", "+74951234567")
    assert await contacts.add_hop(hop.case_id, outbound) == added  # a retry adds nothing
