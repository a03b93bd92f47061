"""`hotline case note` against the lab's PostgreSQL, as an operator types it: the note kept as
typed (author cli), its `note_added` contact event and a delivery for a webhook that takes it, the
note in `hotline case show` (text and JSON); an unknown case, an empty note and a control
character each refused in one line, exit 1, nothing written. And what the screen pop and the agent
API read: the notes of a customer's cases, newest first and bounded; whose case an agent may note."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg_pool import AsyncConnectionPool

from hotline.cli import main
from hotline.store.case_notes import POP_NOTES, add_note, agent_handled, customer_notes
from hotline.store.contacts import Contacts
from hotline.store.db import open_pool
from hotline.store.hops import Hop, NewHop
from hotline.store.records import QueueEvent, queue_event_record, write_records

from support.checks import rows
from support.provisioning import BASE, provision

pytestmark = pytest.mark.lab

CALLER = "+79161234567"
NOTE = "Перезвонить после 18:00\n\tномер в карточке неверный"


async def hotline(db_dsn: str, *args: str) -> Result:
    """The command in a thread of its own: it runs its own event loop, as from a shell."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env={"HOTLINE_DSN": db_dsn})


@pytest.fixture
def dsn(db_dsn: str) -> str:
    provision(db_dsn, BASE)
    return db_dsn


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    opened: AsyncConnectionPool = await open_pool(dsn, max_size=2)
    async with opened:
        yield opened


async def a_case(pool: AsyncConnectionPool, db: psycopg.Connection, channel: str = "c1",
                 caller: str = CALLER) -> Hop:
    [city] = rows(db, "SELECT id FROM hotlines WHERE name = 'city'")
    return await Contacts(pool).open_case_with_hop(NewHop(
        node="n1", channel_id=channel, channel_name=f"PJSIP/trunk-{channel}", channel_kind="pstn",
        media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num=caller,
        caller_name="", entered_at=datetime.now(UTC), hotline_id=city["id"]), caller)


async def test_a_note_from_the_cli_is_kept_shown_by_case_show_and_sent_as_a_contact_event(
        dsn: str, db: psycopg.Connection, pool: AsyncConnectionPool) -> None:
    added = await hotline(dsn, "webhook", "add", "crm", "https://crm.example/h", "--event", "note_added")
    assert added.exit_code == 0, added.output
    hop = await a_case(pool, db)
    noted = await hotline(dsn, "case", "note", str(hop.case_id), f"  {NOTE}  ")
    assert noted.exit_code == 0, noted.output
    [note] = rows(db, "SELECT id, case_id, author, agent_id, text FROM case_notes")
    assert noted.output == f"case {hop.case_id}: note {note['id']} kept\n"
    assert note == {"id": note["id"], "case_id": hop.case_id, "author": "cli", "agent_id": None, "text": NOTE}
    [event] = rows(db, "SELECT id, kind, hop_id, hotline, agent, data FROM contact_events"
                       " WHERE kind = 'note_added'")
    assert (event["hop_id"], event["hotline"], event["agent"]) == (None, "city", None)
    assert event["data"] == {"note_id": note["id"], "author": "cli", "text": NOTE}
    [delivery] = rows(db, "SELECT event_id FROM webhook_deliveries")  # its filter takes only notes
    assert delivery["event_id"] == event["id"]

    shown = await hotline(dsn, "case", "show", str(hop.case_id))
    assert shown.exit_code == 0, shown.output
    [line] = [line for line in shown.output.splitlines() if "note by" in line]
    assert line.endswith("note by cli: Перезвонить после 18:00 / номер в карточке неверный"), line
    as_json = json.loads((await hotline(dsn, "case", "show", str(hop.case_id), "--format", "json")).output)
    assert [(n["author"], n["text"]) for n in as_json["notes"]] == [("cli", NOTE)]


@pytest.mark.parametrize(("args", "said"), [
    (["999999", "a note"], "Error: case 999999 does not exist"),
    (["{case}", "   "], "Error: the note is empty"),
    (["{case}", "red \x1b[31malert"], "Error: the note has a control character (U+001B) at character 5: "
                                      "only printable text, newlines and tabs are kept"),
    (["{case}", "x" * 2001], "Error: the note is 2001 characters long: at most 2000"),
])
async def test_a_note_that_cannot_be_kept_is_refused_in_one_line_and_nothing_is_written(
        dsn: str, db: psycopg.Connection, pool: AsyncConnectionPool, args: list[str], said: str) -> None:
    hop = await a_case(pool, db)
    refused = await hotline(dsn, "case", "note", *[a.format(case=hop.case_id) for a in args])
    assert (refused.exit_code, refused.output) == (1, said + "\n")
    assert rows(db, "SELECT 1 FROM case_notes") == []
    assert rows(db, "SELECT 1 FROM contact_events WHERE kind = 'note_added'") == []


async def test_the_pop_reads_the_notes_of_the_customers_cases_newest_first_and_no_one_elses(
        dsn: str, db: psycopg.Connection, pool: AsyncConnectionPool) -> None:
    first = await a_case(pool, db, "c1")
    db.execute("UPDATE cases SET status = 'closed', closed_at = now() WHERE id = %s", (first.case_id,))
    other = await a_case(pool, db, "c2", caller="+79169999999")
    second = await a_case(pool, db, "c3")
    async with pool.connection() as conn:
        for n in range(POP_NOTES + 2):
            await add_note(conn, first.case_id, "cli", f"old {n}")
        await add_note(conn, other.case_id, "cli", "someone else's")
        await add_note(conn, second.case_id, "cli", "this call")
        notes = await customer_notes(conn, second.case_id, CALLER)
    assert [n.text for n in notes] == ["this call"] + [f"old {n}" for n in range(POP_NOTES + 1, 2, -1)]
    assert [n.case_id for n in notes[:2]] == [second.case_id, first.case_id]


async def test_an_agent_may_note_a_case_they_answered_and_not_another(
        dsn: str, db: psycopg.Connection, pool: AsyncConnectionPool) -> None:
    [agent] = rows(db, "INSERT INTO agents (name, endpoint) VALUES ('anna', 'anna') RETURNING id")
    [support] = rows(db, "SELECT id FROM queues WHERE name = 'support'")
    answered, unanswered = await a_case(pool, db, "c1"), await a_case(pool, db, "c2", "+79160000000")
    async with pool.connection() as conn:
        await write_records(conn, [queue_event_record(QueueEvent(
            support["id"], answered.case_id, answered.id, "answer", at=datetime.now(UTC),
            agent_id=agent["id"], wait_ms=1000, ring_ms=1000))])
        assert await agent_handled(conn, answered.case_id, agent["id"])
        assert not await agent_handled(conn, unanswered.case_id, agent["id"])
