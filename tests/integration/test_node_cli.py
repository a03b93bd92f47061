"""`hotline node add|set|drain|undrain|remove|list` and the file's [nodes.NAME] against the lab's
PostgreSQL, as an operator types them: what is kept, what a file never changes (draining), a node
with live calls kept, and the word of the active daemon read as `serving`."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner, Result

from hotline.cli import main

from support.checks import rows
from support.provisioning import BASE, provision

pytestmark = pytest.mark.lab

A = ["--ari", "http://127.0.0.2:8088", "--ami", "ami://127.0.0.2:5038", "--sip", "sip:127.0.0.2:5060"]


def hotline(db_dsn: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"HOTLINE_DSN": db_dsn})


@pytest.fixture
def dsn(db_dsn: str) -> str:
    provision(db_dsn, BASE)
    return db_dsn


def listed(dsn: str) -> list[dict[str, object]]:
    out = hotline(dsn, "node", "list", "--format", "json")
    assert out.exit_code == 0, out.output
    return json.loads(out.output)  # type: ignore[no-any-return]


def test_a_node_added_drained_and_set_keeps_its_drain_through_a_file(dsn: str, db: psycopg.Connection,
                                                                     tmp_path: object) -> None:
    added = hotline(dsn, "node", "add", "a", *A)
    assert added.exit_code == 0 and "+ node a" in added.output, added.output
    assert hotline(dsn, "node", "drain", "a").output == "node a draining: no new call; its live calls go on\n"
    assert hotline(dsn, "node", "set", "a", "--sip", "sip:127.0.0.2:5070").output == "~ node a (sip)\n"
    exported = hotline(dsn, "export").output
    assert ('[nodes.a]\nari = "http://127.0.0.2:8088"\nami = "ami://127.0.0.2:5038"\n'
            'sip = "sip:127.0.0.2:5070"') in exported
    [node] = listed(dsn)
    assert (node["name"], node["draining"], node["serving"], node["live_calls"]) == ("a", True, False, 0)
    assert rows(db, "SELECT draining FROM nodes") == [{"draining": True}]  # the file did not undo it
    assert hotline(dsn, "node", "undrain", "a").exit_code == 0
    assert listed(dsn)[0]["draining"] is False


def test_bad_nodes_are_refused_in_one_line_and_nothing_is_written(dsn: str, db: psycopg.Connection) -> None:
    secret = hotline(dsn, "node", "add", "a", "--ari", "http://hotline:pw@127.0.0.2:8088", *A[2:])
    assert secret.exit_code == 1 and "carries a user or secret" in secret.output
    assert "pw@" not in secret.output
    missing = hotline(dsn, "node", "add", "a", *A[:4])
    assert missing.exit_code == 1 and "nodes.a.sip: None is required" in missing.output
    assert hotline(dsn, "node", "add", "a", *A).exit_code == 0
    twin = hotline(dsn, "node", "add", "b", *A)
    assert twin.exit_code == 1 and "is already node 'a''s" in twin.output
    assert hotline(dsn, "node", "drain", "nowhere").output.endswith("node 'nowhere' does not exist "
                                                                     "(`hotline node list`)\n")
    assert [r["name"] for r in rows(db, "SELECT name FROM nodes")] == ["a"]


def test_a_node_with_a_live_call_is_not_removed_and_the_daemons_word_shows(dsn: str,
                                                                            db: psycopg.Connection) -> None:
    assert hotline(dsn, "node", "add", "a", *A).exit_code == 0
    db.execute("INSERT INTO cases (customer_key) VALUES ('+74951234567') RETURNING id")
    case_id = rows(db, "SELECT max(id) AS id FROM cases")[0]["id"]
    db.execute("INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, dialled)"
               " VALUES (%s, 1, 'a', 'a-1.1', 'pstn', '84951234567')", (case_id,))
    db.execute("UPDATE nodes SET serving_until = now() + interval '5 s'")
    db.commit()
    [node] = listed(dsn)
    assert (node["serving"], node["live_calls"]) == (True, 1)
    kept = hotline(dsn, "node", "remove", "a")
    assert kept.exit_code == 1 and "has 1 live call(s): `hotline node drain a`" in kept.output
    db.execute("UPDATE hops SET ended_at = now(), end_reason = 'abandoned'")
    db.commit()
    assert hotline(dsn, "node", "remove", "a").output == "- node a\n"
    assert rows(db, "SELECT * FROM nodes") == []
