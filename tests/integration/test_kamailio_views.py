"""Migrations 044 and 045 against the lab's PostgreSQL: what Kamailio's dispatcher, auth_db and
its steering of agents' own calls read from the views over hotline's own tables (nodes, agents,
hops)."""

from __future__ import annotations

import psycopg
import pytest

from hotline.provision.sip_auth import ha1

pytestmark = pytest.mark.lab


def add_node(db: psycopg.Connection, name: str, serving_for_s: float | None,
             draining: bool = False) -> None:
    db.execute("INSERT INTO nodes (name, ari_url, ami_url, sip_uri, draining, serving_until)"
               " VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
               (name, f"http://{name}.example:8088", f"ami://{name}.example:5038",
                f"sip:{name}.example:5060", draining, serving_for_s))


def test_dispatcher_offers_only_nodes_that_are_served_and_not_draining(
        db: psycopg.Connection) -> None:
    add_node(db, "a", 5)
    add_node(db, "b", -1)            # the active daemon stopped vouching for it
    add_node(db, "c", 5, draining=True)
    add_node(db, "d", None)          # never served
    rows = db.execute("SELECT setid, destination, flags, attrs FROM kamailio.dispatcher"
                      " ORDER BY setid, destination").fetchall()
    assert rows == [(1, "sip:a.example:5060", 0, "duid=a"),
                    # set 2: every node, disabled (never selected, never probed): who may call
                    # agents through Kamailio, a draining node too
                    (2, "sip:a.example:5060", 4, "duid=a"), (2, "sip:b.example:5060", 4, "duid=b"),
                    (2, "sip:c.example:5060", 4, "duid=c"), (2, "sip:d.example:5060", 4, "duid=d")]
    ids = [r[0] for r in db.execute("SELECT id FROM kamailio.dispatcher").fetchall()]
    assert len(set(ids)) == len(ids)


def test_subscriber_has_each_live_agents_digest_in_realm_asterisk(db: psycopg.Connection) -> None:
    db.execute("INSERT INTO agents (name, endpoint, password_ha1) VALUES"
               " ('anna', 'anna', %s), ('gone', 'gone', %s), ('nopw', 'nopw', NULL)",
               (ha1("anna", "pw-anna-1"), ha1("gone", "pw-gone-1")))
    db.execute("UPDATE agents SET retired_at = now() WHERE name = 'gone'")
    rows = db.execute("SELECT username, domain, ha1 FROM kamailio.subscriber").fetchall()
    # what Kamailio checks a digest with: md5(endpoint:asterisk:password), as Asterisk does
    assert rows == [("anna", "", ha1("anna", "pw-anna-1"))]
    assert ha1("anna", "pw-anna-1") == db.execute(
        "SELECT md5('anna:asterisk:pw-anna-1')").fetchone()[0]


def test_kamailios_own_tables_carry_the_versions_kamailio_56_checks(db: psycopg.Connection) -> None:
    versions = dict(db.execute("SELECT table_name, table_version FROM kamailio.version").fetchall())
    assert versions == {"version": 1, "location": 9, "location_attrs": 1, "dispatcher": 4,
                        "subscriber": 7}


def test_a_registration_written_or_removed_by_kamailio_notifies_the_daemon(
        db: psycopg.Connection, db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as listener:
        listener.execute("LISTEN hotline_registrations")
        db.execute("INSERT INTO kamailio.location (ruid, username, contact)"
                   " VALUES ('r1', 'anna', 'sip:anna@192.0.2.7:5060')")
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == \
            ["hotline_registrations"]
        db.execute("UPDATE kamailio.location SET expires = now() + interval '1 hour'")
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []  # a refresh: no news
        db.execute("DELETE FROM kamailio.location WHERE ruid = 'r1'")
        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1


def test_agent_talks_names_the_node_of_each_agents_live_talk_while_it_is_served(
        db: psycopg.Connection) -> None:
    """What Kamailio steers an agent's own call by (migration 045): the node of an open hop the
    agent answered, if the active daemon serves that node; NULL for an agent in no talk."""
    add_node(db, "a", 5)
    add_node(db, "b", 5)
    add_node(db, "c", -1)  # not served now: no leg of its could be taken there
    db.execute("INSERT INTO agents (name, endpoint, password_ha1) VALUES ('anna', 'anna-desk', %s),"
               " ('boris', 'boris', %s), ('vera', 'vera', %s), ('gone', 'gone', %s)",
               tuple(ha1(n, "pw-" + n) for n in ("anna-desk", "boris", "vera", "gone")))
    db.execute("UPDATE agents SET retired_at = now() WHERE name = 'gone'")
    case = db.execute("INSERT INTO cases (customer_key) VALUES ('+79161234567') RETURNING id").fetchone()[0]

    def hop(seq: int, node: str, agent: str, ended: bool) -> None:
        db.execute("INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, dialled, agent_id,"
                   " answered_at, ended_at, end_reason) SELECT %s, %s, %s, %s, 'sip', '+74951230001',"
                   " id, now(), CASE WHEN %s THEN now() END, CASE WHEN %s THEN 'completed' END"
                   " FROM agents WHERE name = %s", (case, seq, node, f"{node}-{seq}", ended, ended, agent))
    hop(1, "a", "anna", ended=True)   # a talk that ended on a
    hop(2, "b", "anna", ended=False)  # ... and the one going on, on b
    hop(3, "c", "vera", ended=False)  # on a node nobody serves now
    rows = db.execute("SELECT endpoint, name, talk_node FROM kamailio.agent_talks"
                      " ORDER BY endpoint").fetchall()
    assert rows == [("anna-desk", "anna", "sip:b.example:5060"), ("boris", "boris", None),
                    ("vera", "vera", None)]
