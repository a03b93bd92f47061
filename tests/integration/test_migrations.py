"""Migrations against the lab's real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from hotline.provision import sip_auth
from hotline.store import migrations

from support.checks import rows

pytestmark = pytest.mark.lab


async def test_migrations_applied_twice_change_nothing_the_second_time(empty_db_dsn: str) -> None:
    conn = await psycopg.AsyncConnection.connect(empty_db_dsn, autocommit=True)
    async with conn:
        first = await migrations.migrate(conn)
        second = await migrations.migrate(conn)
        assert [m.version for m in first] == [m.version for m in migrations.available()]
        assert second == []
        assert await migrations.pending(conn) == []


def test_first_migration_creates_the_whole_data_model(db: psycopg.Connection) -> None:
    tables = {r["table_name"] for r in rows(
        db, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert {"hotlines", "numbers", "queues", "agents", "queue_members", "ivr_menus", "ivr_options",
            "hotline_hours", "hotline_holidays", "hotline_region_routes", "agent_sessions",
            "agent_pauses", "cases", "hops", "queue_events", "schema_migrations"} <= tables


def test_a_hop_cannot_end_without_a_reason(db: psycopg.Connection) -> None:
    case_id = db.execute("INSERT INTO cases (customer_key) VALUES ('x') RETURNING id").fetchone()[0]
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, dialled, ended_at)"
                   " VALUES (%s, 1, 'n', 'c1', 'pstn', '1', now())", (case_id,))


def test_one_line_of_a_number_is_held_by_one_live_leg_only(db: psycopg.Connection) -> None:
    db.execute("INSERT INTO queues (name) VALUES ('support')")
    db.execute("INSERT INTO hotlines (name, entry_queue_id) SELECT 'city', id FROM queues")
    number_id = db.execute("INSERT INTO numbers (number, kind, hotline_id, line_limit)"
                           " SELECT '+74951234567', 'city', id, 1 FROM hotlines RETURNING id").fetchone()[0]
    case_id = db.execute("INSERT INTO cases (customer_key) VALUES ('x') RETURNING id").fetchone()[0]
    insert = ("INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, dialled, number_id, line)"
              " VALUES (%s, %s, 'n', %s, 'pstn', '1', %s, 1)")
    db.execute(insert, (case_id, 1, "c1", number_id))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(insert, (case_id, 2, "c2", number_id))


@pytest.mark.parametrize("sql", [
    "INSERT INTO numbers (number, kind, hotline_id) VALUES ('84951234567', 'city', 1)",
    "INSERT INTO queues (name, strategy) VALUES ('q', 'round-robin')",
    "INSERT INTO queues (name) VALUES ('Bad Name')",
])
def test_the_schema_refuses_malformed_provisioning(db: psycopg.Connection, sql: str) -> None:
    with pytest.raises(psycopg.errors.IntegrityError):
        db.execute(sql)


async def test_agents_clear_passwords_become_their_ha1_and_are_gone(empty_db_dsn: str) -> None:
    """A database from before the HA1 migration: every password is replaced by the digest Asterisk
    checks (md5 of endpoint:asterisk:password), and the column that held them is dropped."""
    conn = await psycopg.AsyncConnection.connect(empty_db_dsn, autocommit=True)
    async with conn:
        await migrations.applied(conn)  # the bookkeeping table
        for m in migrations.available():
            if m.name == "agent_password_ha1":
                break
            await conn.execute(m.sql.encode())
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                               (m.version, m.name))
        await conn.execute("INSERT INTO agents (name, endpoint, password) VALUES"
                           " ('ivanov', 'ivan-7', 's3cret-Passw0rd'), ('petrova', 'petrova', NULL)")
        applied = await migrations.migrate(conn)
        assert "agent_password_ha1" in [m.name for m in applied]
        cur = await conn.execute("SELECT name, password_ha1 FROM agents ORDER BY name")
        expected = sip_auth.ha1("ivan-7", "s3cret-Passw0rd")
        assert await cur.fetchall() == [("ivanov", expected), ("petrova", None)]
        cur = await conn.execute("SELECT column_name FROM information_schema.columns"
                                 " WHERE table_name = 'agents' AND column_name LIKE 'password%'")
        assert await cur.fetchall() == [("password_ha1",)]


def test_the_schema_refuses_a_password_digest_that_is_not_32_hex_digits(db: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("INSERT INTO agents (name, endpoint, password_ha1) VALUES ('a', 'a', 's3cret-Passw0rd')")
