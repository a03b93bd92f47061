"""Provisioning applied to the lab's real PostgreSQL: what lands in the tables, idempotency, prune,
retired rows, and bad files that change nothing."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection

from hotline.errors import ProvisionError
from hotline.lab import Lab
from hotline.provision import export, parse, sip_auth
from hotline.provision.model import Provisioning
from hotline.provision.plan import merge
from hotline.store import provisioning_changes as changes
from hotline.store.migrations import migrate
from hotline.store.provisioning import PROVISIONING_LOCK

from support.checks import rows

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-centre.toml"
PROVISIONING_TABLES = ("queues", "ivr_menus", "ivr_options", "hotlines", "hotline_hours", "hotline_holidays",
                       "hotline_region_routes", "numbers", "agents", "queue_members", "trunks")
Doc = dict[str, Any]


def example() -> Doc:
    """The example file as a deployment writes one: no agent's password in it (the example gives
    petrova one only for the lab's phone)."""
    with EXAMPLE.open("rb") as f:
        doc = tomllib.load(f)
    for agent in doc["agents"].values():
        agent.pop("password", None)
    return doc


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[AsyncConnection]:
    async with await AsyncConnection.connect(db_dsn, autocommit=True) as c:
        yield c


@pytest.fixture
async def provisioned(conn: AsyncConnection) -> AsyncConnection:
    """A database holding the example contact centre."""
    await changes.apply_document(conn, example())
    return conn


async def dump(conn: AsyncConnection) -> dict[str, list[Any]]:
    """Every provisioning row, as the database holds it (ids, timestamps and all)."""
    out = {}
    for table in PROVISIONING_TABLES:
        cur = await conn.execute(f"SELECT to_jsonb(t) FROM {table} t ORDER BY to_jsonb(t)::text")
        out[table] = [r[0] for r in await cur.fetchall()]
    return out


def without(doc: Doc, *path: str) -> Doc:
    """A copy of `doc` with the object at `path` left out."""
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return doc


def row_id(db: psycopg.Connection, table: str, column: str, value: str) -> int:
    return int(rows(db, f"SELECT id FROM {table} WHERE {column} = %s", value)[0]["id"])


def open_hop(db: psycopg.Connection, **refs: int) -> int:
    """A hop of a call in progress that points at provisioned rows (number_id=..., queue_id=...)."""
    case = rows(db, "INSERT INTO cases (customer_key) VALUES ('+79131234567') RETURNING id")[0]
    columns, values = ", ".join(refs), ", ".join(["%s"] * len(refs))
    hop = rows(db, f"INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, dialled, {columns})"
                   f" VALUES (%s, 1, 'lab-node', 'c-1', 'pstn', '84951234567', {values}) RETURNING id",
               case["id"], *refs.values())[0]
    return int(hop["id"])


# -- the example, as a user checks it -----------------------------------------------------------

async def test_example_creates_its_numbers_in_e164_with_their_line_limits(conn: AsyncConnection,
                                                                         db: psycopg.Connection) -> None:
    plan = await changes.apply_document(conn, example())
    assert "+ number +74951234567" in plan.lines() and "+ hotline moscow" in plan.lines()
    numbers = rows(db, "SELECT n.number, n.kind, n.line_limit, h.name AS hotline FROM numbers n"
                       " JOIN hotlines h ON h.id = n.hotline_id ORDER BY n.number")
    assert numbers == [
        {"number": "+74951234567", "kind": "city", "line_limit": 1, "hotline": "moscow"},
        {"number": "+74957654321", "kind": "city", "line_limit": 4, "hotline": "moscow"},
        {"number": "+78005553535", "kind": "tollfree", "line_limit": None, "hotline": "federal"},
        {"number": "video-support", "kind": "video", "line_limit": 10, "hotline": "federal"},
    ]


async def test_example_creates_queue_memberships_with_their_penalties(conn: AsyncConnection,
                                                                     db: psycopg.Connection) -> None:
    await changes.apply_document(conn, example())
    members = rows(db, "SELECT q.name AS queue, a.name AS agent, m.penalty FROM queue_members m"
                       " JOIN queues q ON q.id = m.queue_id JOIN agents a ON a.id = m.agent_id ORDER BY 1, 2")
    assert members == [{"queue": "backoffice", "agent": "ivanov", "penalty": 5},
                       {"queue": "siberia", "agent": "petrova", "penalty": 0},
                       {"queue": "support", "agent": "ivanov", "penalty": 0},
                       {"queue": "support", "agent": "petrova", "penalty": 1}]
    support = rows(db, "SELECT q.strategy, q.wrapup_s, q.max_wait_s, q.overflow_action, o.name AS overflow"
                       " FROM queues q LEFT JOIN queues o ON o.id = q.overflow_queue_id"
                       " WHERE q.name = 'support'")
    assert support == [{"strategy": "rrmemory", "wrapup_s": 10, "max_wait_s": 300, "overflow_action": "queue",
                        "overflow": "backoffice"}]


async def test_example_creates_menu_options_leading_where_the_file_says(conn: AsyncConnection,
                                                                       db: psycopg.Connection) -> None:
    await changes.apply_document(conn, example())
    options = rows(db, "SELECT m.name AS menu, o.digit, o.action,"
                       " coalesce(tq.name, tm.name, th.name) AS target FROM ivr_options o"
                       " JOIN ivr_menus m ON m.id = o.menu_id"
                       " LEFT JOIN queues tq ON tq.id = o.target_queue_id"
                       " LEFT JOIN ivr_menus tm ON tm.id = o.target_menu_id"
                       " LEFT JOIN hotlines th ON th.id = o.target_hotline_id ORDER BY 1, 2")
    assert options == [
        {"menu": "billing", "digit": "#", "action": "hangup", "target": None},
        {"menu": "billing", "digit": "0", "action": "menu", "target": "main"},
        {"menu": "billing", "digit": "1", "action": "queue", "target": "backoffice"},
        {"menu": "main", "digit": "*", "action": "repeat", "target": None},
        {"menu": "main", "digit": "0", "action": "queue", "target": "support"},
        {"menu": "main", "digit": "1", "action": "queue", "target": "support"},
        {"menu": "main", "digit": "2", "action": "menu", "target": "billing"},
        {"menu": "main", "digit": "9", "action": "video", "target": "support"},
    ]


async def test_example_creates_hotlines_with_hours_holidays_and_region_routes(conn: AsyncConnection,
                                                                             db: psycopg.Connection) -> None:
    await changes.apply_document(conn, example())
    moscow = rows(db, "SELECT h.time_zone, h.closed_action, c.name AS closed_to, m.name AS entry_menu"
                      " FROM hotlines h JOIN hotlines c ON c.id = h.closed_hotline_id"
                      " JOIN ivr_menus m ON m.id = h.entry_menu_id WHERE h.name = 'moscow'")
    assert moscow == [{"time_zone": "Europe/Moscow", "closed_action": "hotline", "closed_to": "federal",
                       "entry_menu": "main"}]
    hours = rows(db, "SELECT weekday, opens::text, closes::text FROM hotline_hours ORDER BY weekday")
    assert [(h["weekday"], h["opens"], h["closes"]) for h in hours] == (
        [(day, "09:00:00", "21:00:00") for day in range(1, 6)] + [(6, "10:00:00", "18:00:00")])
    holidays = rows(db, "SELECT day::text, opens::text, closes::text FROM hotline_holidays ORDER BY day")
    assert holidays == [{"day": "2027-01-01", "opens": None, "closes": None},
                        {"day": "2027-03-08", "opens": "10:00:00", "closes": "16:00:00"}]
    routes = rows(db, "SELECT r.match_kind, r.match, q.name AS queue FROM hotline_region_routes r"
                      " JOIN queues q ON q.id = r.queue_id ORDER BY r.match")
    assert routes == [{"match_kind": "prefix", "match": "+7913", "queue": "siberia"},
                      {"match_kind": "region", "match": "Novosibirsk", "queue": "siberia"}]


async def test_example_applied_twice_changes_nothing_the_second_time(provisioned: AsyncConnection) -> None:
    before = await dump(provisioned)
    plan = await changes.apply_document(provisioned, example())
    assert plan.empty and plan.lines() == []
    assert await dump(provisioned) == before


async def test_what_is_read_back_is_what_the_file_said(provisioned: AsyncConnection) -> None:
    live = await changes.current(provisioned)
    assert tomllib.loads(export.to_toml(live)) == tomllib.loads(export.to_toml(parse.provisioning(example())))


async def test_export_then_provision_with_prune_is_an_empty_plan(provisioned: AsyncConnection) -> None:
    exported = tomllib.loads(export.to_toml(await changes.current(provisioned)))
    before = await dump(provisioned)
    assert (await changes.apply_document(provisioned, exported, prune=True)).empty
    assert await dump(provisioned) == before


@pytest.fixture
async def icu_conn(lab: Lab) -> AsyncIterator[AsyncConnection]:
    """A database of its own that sorts text by language rules (ICU), as many production clusters do."""
    admin = lab.admin_dsn()
    name = f"icu_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und'"
                  " LOCALE 'C.UTF-8'")
    try:
        dsn = psycopg.conninfo.make_conninfo(admin, dbname=name)
        async with await AsyncConnection.connect(dsn, autocommit=True) as c:
            await migrate(c)
            yield c
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_menu_with_star_and_hash_keys_is_unchanged_the_second_time_whatever_the_collation(
        icu_conn: AsyncConnection) -> None:
    doc = example()
    doc["menus"]["main"]["options"].update({"#": "hangup", "*": "repeat"})
    await changes.apply_document(icu_conn, doc)
    assert (await changes.apply_document(icu_conn, doc)).empty


async def test_hours_until_midnight_are_stored_and_read_back_as_24_00(provisioned: AsyncConnection,
                                                                      db: psycopg.Connection) -> None:
    doc = example()
    doc["hotlines"]["moscow"]["hours"] = ["mon-fri 09:00-21:00", "sat 10:00-24:00"]
    doc["hotlines"]["moscow"]["holidays"]["2027-12-31"] = "10:00-24:00"
    assert (await changes.apply_document(provisioned, doc)).lines() == ["~ hotline moscow (hours, holidays)"]
    assert rows(db, "SELECT closes::text FROM hotline_hours WHERE weekday = 6") == [{"closes": "24:00:00"}]
    assert "sat 10:00-24:00" in export.to_toml(await changes.current(provisioned))
    assert (await changes.apply_document(provisioned, doc)).empty


# -- plans --------------------------------------------------------------------------------------

async def test_dry_run_shows_the_plan_and_writes_nothing(conn: AsyncConnection) -> None:
    before = await dump(conn)
    plan = await changes.apply_document(conn, example(), dry_run=True)
    assert "+ agent ivanov" in plan.lines() and "+ trunk carrier" in plan.lines() and len(plan.lines()) == 14
    assert await dump(conn) == before


async def test_dry_run_of_a_change_writes_nothing(provisioned: AsyncConnection) -> None:
    doc = example()
    doc["queues"]["support"]["wrapup"] = 30
    before = await dump(provisioned)
    plan = await changes.apply_document(provisioned, without_siberia(doc), prune=True, dry_run=True)
    assert plan.lines() == ["~ queue support (wrapup)", "- queue siberia", "~ hotline federal (regions)",
                            "~ agent petrova (queues)"]
    assert await dump(provisioned) == before


@pytest.mark.parametrize(("edit", "line"), [
    (lambda d: d["queues"]["support"].update(wrapup=30), "~ queue support (wrapup)"),
    (lambda d: d["queues"]["backoffice"].update(strategy="fewestcalls"), "~ queue backoffice (strategy)"),
    (lambda d: d["numbers"]["+7 495 765-43-21"].update(lines=2), "~ number +74957654321 (lines)"),
    (lambda d: d["numbers"]["8 (495) 123-45-67"].update(hotline="federal"),
     "~ number +74951234567 (hotline)"),
    (lambda d: d["hotlines"]["moscow"].update(time_zone="Europe/Samara"), "~ hotline moscow (time_zone)"),
    (lambda d: d["menus"]["main"]["options"].update({"3": "hangup"}), "~ menu main (options)"),
    (lambda d: d["agents"]["petrova"]["queues"].update(support=3), "~ agent petrova (queues)"),
])
async def test_changing_one_setting_gives_a_plan_line_naming_that_setting(
        provisioned: AsyncConnection, edit: Callable[[Doc], None], line: str) -> None:
    doc = example()
    edit(doc)
    assert (await changes.apply_document(provisioned, doc)).lines() == [line]
    assert (await changes.apply_document(provisioned, doc)).empty


async def test_change_is_written_where_the_user_looks(provisioned: AsyncConnection,
                                                      db: psycopg.Connection) -> None:
    doc = example()
    doc["numbers"]["+7 495 765-43-21"]["lines"] = "unlimited"
    doc["agents"]["petrova"]["queues"] = {"backoffice": 2}
    await changes.apply_document(provisioned, doc)
    assert rows(db, "SELECT line_limit FROM numbers WHERE number = '+74957654321'") == [{"line_limit": None}]
    assert rows(db, "SELECT q.name, m.penalty FROM queue_members m JOIN queues q ON q.id = m.queue_id"
                    " JOIN agents a ON a.id = m.agent_id WHERE a.name = 'petrova'") == [
        {"name": "backoffice", "penalty": 2}]


async def test_applying_a_change_notifies_the_daemon_and_an_empty_plan_does_not(
        provisioned: AsyncConnection, db_dsn: str) -> None:
    async with await AsyncConnection.connect(db_dsn, autocommit=True) as listener:
        await listener.execute(f"LISTEN {changes.NOTIFY_CHANNEL}")
        await changes.apply_document(provisioned, example())
        doc = example()
        doc["queues"]["support"]["wrapup"] = 30
        await changes.apply_document(provisioned, doc)
        got = [n.channel async for n in listener.notifies(timeout=1.0)]
    assert got == [changes.NOTIFY_CHANNEL]


# -- prune and retired rows ---------------------------------------------------------------------

def without_siberia(doc: Doc) -> Doc:
    """The example with queue siberia no longer named anywhere."""
    doc = without(doc, "queues", "siberia")
    del doc["hotlines"]["federal"]["regions"]
    del doc["agents"]["petrova"]["queues"]["siberia"]
    return doc


async def test_queue_left_out_of_the_file_is_kept_without_prune(provisioned: AsyncConnection,
                                                                db: psycopg.Connection) -> None:
    plan = await changes.apply_document(provisioned, without(example(), "queues", "siberia"))
    assert plan.empty
    assert rows(db, "SELECT retired_at FROM queues WHERE name = 'siberia'") == [{"retired_at": None}]


async def test_queue_left_out_of_the_file_is_retired_with_prune_and_history_keeps_pointing_at_it(
        provisioned: AsyncConnection, db: psycopg.Connection) -> None:
    siberia = row_id(db, "queues", "name", "siberia")
    hop = open_hop(db, queue_id=siberia)
    plan = await changes.apply_document(provisioned, without_siberia(example()), prune=True)
    assert "- queue siberia" in plan.lines()
    assert "~ hotline federal (regions)" in plan.lines() and "~ agent petrova (queues)" in plan.lines()
    assert rows(db, "SELECT id, retired_at IS NOT NULL AS retired FROM queues WHERE name = 'siberia'") == [
        {"id": siberia, "retired": True}]
    assert rows(db, "SELECT queue_id FROM hops WHERE id = %s", hop) == [{"queue_id": siberia}]
    assert rows(db, "SELECT 1 FROM queue_members WHERE queue_id = %s", siberia) == []
    assert "siberia" not in (await changes.current(provisioned)).queues


async def test_number_left_out_of_the_file_is_retired_only_with_prune(provisioned: AsyncConnection,
                                                                      db: psycopg.Connection) -> None:
    number = row_id(db, "numbers", "number", "+74957654321")
    hop = open_hop(db, number_id=number)
    doc = without(example(), "numbers", "+7 495 765-43-21")
    assert (await changes.apply_document(provisioned, doc)).empty
    assert (await changes.apply_document(provisioned, doc, prune=True)).lines() == ["- number +74957654321"]
    assert rows(db, "SELECT id, retired_at IS NOT NULL AS retired FROM numbers"
                    " WHERE number = '+74957654321'") == [{"id": number, "retired": True}]
    assert rows(db, "SELECT number_id FROM hops WHERE id = %s", hop) == [{"number_id": number}]


async def test_prune_with_the_same_file_retires_nothing(provisioned: AsyncConnection) -> None:
    assert (await changes.apply_document(provisioned, example(), prune=True)).empty


async def test_re_adding_a_retired_name_brings_the_same_row_back(provisioned: AsyncConnection,
                                                                db: psycopg.Connection) -> None:
    def ids() -> tuple[int, int, int]:
        return (row_id(db, "queues", "name", "siberia"), row_id(db, "agents", "name", "petrova"),
                row_id(db, "numbers", "number", "+74957654321"))
    before = ids()
    digest = password_ha1(db, "petrova")
    smaller = without(without(without_siberia(example()), "agents", "petrova"), "numbers", "+7 495 765-43-21")
    await changes.apply_document(provisioned, smaller, prune=True)
    plan = await changes.apply_document(provisioned, example())
    assert plan.lines() == ["+ queue siberia", "~ hotline federal (regions)", "+ number +74957654321",
                            "+ agent petrova"]
    assert ids() == before
    assert rows(db, "SELECT count(*) AS retired FROM queues WHERE retired_at IS NOT NULL") == [{"retired": 0}]
    # A removed agent's password does not come back with it: a new one, shown once.
    new_digest = sip_auth.ha1("petrova", plan.generated_passwords["petrova"])
    assert password_ha1(db, "petrova") == new_digest != digest
    assert (await changes.apply_document(provisioned, example(), prune=True)).empty


async def test_retired_agents_endpoint_can_be_given_to_a_new_agent(provisioned: AsyncConnection,
                                                                  db: psycopg.Connection) -> None:
    doc = without(example(), "agents", "petrova")
    await changes.apply_document(provisioned, doc, prune=True)
    doc["agents"]["anna"] = {"endpoint": "petrova", "queues": {"support": 1}}
    assert (await changes.apply_document(provisioned, doc, prune=True)).lines() == ["+ agent anna"]
    assert rows(db, "SELECT name FROM agents WHERE endpoint = 'petrova' AND retired_at IS NULL") == [
        {"name": "anna"}]


async def test_two_agents_may_swap_endpoints_in_one_file_with_new_passwords(
        provisioned: AsyncConnection, db: psycopg.Connection) -> None:
    doc = example()
    doc["agents"]["ivanov"]["endpoint"], doc["agents"]["petrova"]["endpoint"] = "petrova", "ivanov"
    before = await dump(provisioned)
    # The stored digests include the old endpoints: kept, neither phone could log in again.
    with pytest.raises(ProvisionError, match="agent 'ivanov': a new endpoint needs a new password"):
        await changes.apply_document(provisioned, doc)
    assert await dump(provisioned) == before
    doc["agents"]["ivanov"]["password"] = doc["agents"]["petrova"]["password"] = "n3w-Passw0rd"
    plan = await changes.apply_document(provisioned, doc)
    assert plan.lines() == ["~ agent ivanov (endpoint, password_ha1)",
                            "~ agent petrova (endpoint, password_ha1)"]
    assert rows(db, "SELECT name, endpoint FROM agents ORDER BY name") == [
        {"name": "ivanov", "endpoint": "petrova"}, {"name": "petrova", "endpoint": "ivanov"}]
    assert password_ha1(db, "ivanov") == sip_auth.ha1("petrova", "n3w-Passw0rd")


async def test_removing_a_queue_a_hotline_still_uses_is_refused(provisioned: AsyncConnection) -> None:
    before = await dump(provisioned)
    doc = without(example(), "queues", "support")
    with pytest.raises(ProvisionError, match=r"hotlines\.federal\.entry: 'queue:support' does not exist"):
        await changes.apply_document(provisioned, doc, prune=True)
    with pytest.raises(ProvisionError, match="'queue:support' does not exist"):
        await changes.change(provisioned, lambda live: dataclasses.replace(
            live, queues={n: q for n, q in live.queues.items() if n != "support"}))
    assert await dump(provisioned) == before


async def test_removing_a_menu_a_queue_breaks_out_to_is_refused(provisioned: AsyncConnection) -> None:
    before = await dump(provisioned)
    doc = example()
    doc["menus"]["main"]["options"]["2"] = "hangup"  # nothing else leads to billing
    del doc["menus"]["billing"]
    with pytest.raises(ProvisionError, match=r"queues\.support\.breakout_menu: menu 'billing' does not"):
        await changes.apply_document(provisioned, doc, prune=True)
    assert await dump(provisioned) == before


# -- passwords: only their HA1 is kept -----------------------------------------------------------

def password_ha1(db: psycopg.Connection, agent: str) -> str:
    return str(rows(db, "SELECT password_ha1 FROM agents WHERE name = %s", agent)[0]["password_ha1"])


def stored_anywhere(db: psycopg.Connection, text: str) -> bool:
    return any(text in str(value) for row in rows(db, "SELECT * FROM agents") for value in row.values())


async def test_agent_password_is_generated_when_the_file_has_none_and_given_once_in_the_plan(
        conn: AsyncConnection, db: psycopg.Connection) -> None:
    plan = await changes.apply_document(conn, example())
    generated = plan.generated_passwords
    assert sorted(generated) == ["ivanov", "petrova"] and generated["ivanov"] != generated["petrova"]
    for name, password in generated.items():
        assert len(password) >= 16
        assert password_ha1(db, name) == sip_auth.ha1(name, password)
        assert not stored_anywhere(db, password)
    assert (await changes.apply_document(conn, example())).generated_passwords == {}


async def test_agent_password_is_kept_when_a_later_file_leaves_it_out(provisioned: AsyncConnection,
                                                                     db: psycopg.Connection) -> None:
    generated = password_ha1(db, "ivanov")
    doc = example()
    doc["agents"]["ivanov"]["display_name"] = "Ivan I. Ivanov"
    assert (await changes.apply_document(provisioned, doc)).lines() == ["~ agent ivanov (display_name)"]
    assert password_ha1(db, "ivanov") == generated
    assert (await changes.apply_document(provisioned, doc, prune=True)).empty
    assert password_ha1(db, "ivanov") == generated


async def test_agent_password_is_changed_when_the_file_gives_one(provisioned: AsyncConnection,
                                                                db: psycopg.Connection) -> None:
    doc = example()
    doc["agents"]["ivanov"]["password"] = "n3w-Passw0rd"
    assert (await changes.apply_document(provisioned, doc)).lines() == ["~ agent ivanov (password_ha1)"]
    assert password_ha1(db, "ivanov") == sip_auth.ha1("ivanov", "n3w-Passw0rd")
    assert not stored_anywhere(db, "n3w-Passw0rd")
    assert (await changes.apply_document(provisioned, doc)).empty  # the same password: the same HA1
    assert (await changes.apply_document(provisioned, example())).empty
    assert password_ha1(db, "ivanov") == sip_auth.ha1("ivanov", "n3w-Passw0rd")


async def test_new_agent_gets_the_password_its_file_gives(conn: AsyncConnection,
                                                          db: psycopg.Connection) -> None:
    doc = example()
    doc["agents"]["ivanov"]["password"] = "given-Passw0rd"
    plan = await changes.apply_document(conn, doc)
    assert password_ha1(db, "ivanov") == sip_auth.ha1("ivanov", "given-Passw0rd")
    assert "ivanov" not in plan.generated_passwords


async def test_an_exported_file_with_secrets_provisions_the_same_digests_again(
        provisioned: AsyncConnection, db: psycopg.Connection) -> None:
    digests = {name: password_ha1(db, name) for name in ("ivanov", "petrova")}
    exported = tomllib.loads(export.to_toml(await changes.current(provisioned), with_secrets=True))
    assert {n: a["password_ha1"] for n, a in exported["agents"].items()} == digests
    db.execute("UPDATE agents SET password_ha1 = md5('other')")
    plan = await changes.apply_document(provisioned, exported)
    assert plan.lines() == ["~ agent ivanov (password_ha1)", "~ agent petrova (password_ha1)"]
    assert {name: password_ha1(db, name) for name in digests} == digests


# -- bad files ----------------------------------------------------------------------------------

def edited(edit: Callable[[Doc], None]) -> Doc:
    doc = example()
    edit(doc)
    return doc


BAD_FILES = {
    "malformed number": (edited(lambda d: d["numbers"].update({"8 (495) 123-45": {"hotline": "moscow"}})),
                         "numbers.8 (495) 123-45"),
    "unknown queue": (edited(lambda d: d["agents"]["ivanov"]["queues"].update(sales=0)),
                      "agents.ivanov.queues: queue 'sales' does not exist"),
    "loop menu": (edited(lambda d: d["menus"]["billing"].update(options={"0": "menu:main"})
                         or d["menus"]["main"].update(options={"2": "menu:billing", "*": "repeat"})),
                  "never leads out"),
    "strategy typo": (edited(lambda d: d["queues"]["support"].update(strategy="round-robin")),
                      "queues.support.strategy: 'round-robin'"),
    "overlapping hours": (edited(lambda d: d["hotlines"]["moscow"].update(
        hours=["mon-fri 09:00-18:00", "fri 17:00-20:00"])), "hotlines.moscow.hours"),
    "line limit 0": (edited(lambda d: d["numbers"]["+7 495 765-43-21"].update(lines=0)),
                     "numbers.+7 495 765-43-21.lines: 0"),
    "duplicate number": (edited(lambda d: d["numbers"].update({"+74951234567": {"hotline": "federal"}})),
                         "+74951234567"),
    "reserved endpoint": (edited(lambda d: d["agents"]["ivanov"].update(endpoint="sipp-trunk")),
                          "agents.ivanov.endpoint: 'sipp-trunk'"),
}


@pytest.mark.parametrize("prune", [False, True], ids=["merge", "prune"])
@pytest.mark.parametrize("bad", sorted(BAD_FILES))
async def test_bad_file_is_refused_and_leaves_the_database_exactly_as_it_was(
        provisioned: AsyncConnection, bad: str, prune: bool) -> None:
    doc, message = BAD_FILES[bad]
    doc = copy.deepcopy(doc)
    doc["queues"]["support"]["wrapup"] = 45  # a good change alongside the bad one is not written either
    before = await dump(provisioned)
    with pytest.raises(ProvisionError) as info:
        await changes.apply_document(provisioned, doc, prune=prune)
    assert message in str(info.value)
    assert await dump(provisioned) == before


async def test_bad_file_on_an_empty_database_writes_nothing(conn: AsyncConnection) -> None:
    with pytest.raises(ProvisionError):
        await changes.apply_document(conn, BAD_FILES["loop menu"][0])
    assert await dump(conn) == {table: [] for table in PROVISIONING_TABLES}


# -- concurrency --------------------------------------------------------------------------------

async def test_two_provisions_at_once_take_turns(provisioned: AsyncConnection, db_dsn: str,
                                                 db: psycopg.Connection) -> None:
    first = example()
    first["queues"]["support"]["wrapup"] = 30
    second = {"queues": {"sales": {"strategy": "linear"}}}  # a file of one queue, applied without prune
    a = await AsyncConnection.connect(db_dsn, autocommit=True)
    b = await AsyncConnection.connect(db_dsn, autocommit=True)
    async with a, b:
        async with provisioned.transaction():  # hold the lock so that both really wait together
            await provisioned.execute("SELECT pg_advisory_xact_lock(%s)", (PROVISIONING_LOCK,))
            both = asyncio.gather(changes.apply_document(a, first), changes.apply_document(b, second))
            await asyncio.sleep(0.5)
            assert not both.done()
        plans = await asyncio.wait_for(both, 30)
    lines = sorted(line for plan in plans for line in plan.lines())
    assert lines == ["+ queue sales", "~ queue support (wrapup)"]
    assert rows(db, "SELECT name, wrapup_s FROM queues WHERE name IN ('support', 'sales') ORDER BY name") == [
        {"name": "sales", "wrapup_s": 0}, {"name": "support", "wrapup_s": 30}]


async def test_the_same_file_applied_twice_at_once_is_written_once(conn: AsyncConnection, db_dsn: str,
                                                                   db: psycopg.Connection) -> None:
    async with await AsyncConnection.connect(db_dsn, autocommit=True) as other:
        plans = await asyncio.gather(changes.apply_document(conn, example()),
                                     changes.apply_document(other, example()))
    assert sorted(len(p.lines()) for p in plans) == [0, 14]
    assert rows(db, "SELECT count(*) AS n FROM numbers") == [{"n": 4}]


# -- random edits -------------------------------------------------------------------------------

# Values for each setting, most of them sound, some not: random edits mostly get written.
CANDIDATES: dict[str, list[Any]] = {
    "strategy": ["ringall", "linear", "fewestcalls", "round-robin"], "ring_timeout": [20, 0],
    "wrapup": [0, 30], "max_wait": [60, "off"], "max_len": [10, "none"], "join_empty": [False, "maybe"],
    "announce_period": [30, "off"], "music": ["jazz"], "service_level": [30], "prefer_video_agents": [False],
    "overflow": ["hangup", "queue:siberia", "hotline:moscow", "menu:billing", "queue:nowhere",
                 "queue:support"],
    "prompt": ["hotline/welcome", "bad prompt"], "timeout": [10], "retries": [0, 2],
    "invalid_prompt": ["option-is-invalid"], "timeout_prompt": ["hotline/timeout"],
    "options": [{"1": "queue:siberia", "#": "hangup"}, {"*": "repeat"}, {"0": "menu:main"},
                {"5": {"action": "callback:siberia", "prompt": "hotline/callback"}}, {"1": "hotline:moscow"},
                {"5": "callback"}],
    "entry": ["menu:billing", "queue:siberia", "queue:nowhere"], "description": ["Город", ""],
    "time_zone": ["Asia/Novosibirsk", "Europe/Moskow"],
    "hours": [["daily 00:00-24:00"], ["mon-fri 08:00-20:00", "sat-sun 10:00-24:00"], [],
              ["mon-fri 22:00-06:00"], ["mon 09:00-12:00", "mon 11:00-13:00"]],
    "holidays": [{}, {"2027-05-09": "closed", "2027-12-31": "10:00-24:00"}, {"2027-02-30": "closed"}],
    "closed": ["hangup", "callback", "callback:support", "hotline:federal", "hotline:moscow"],
    "closed_prompt": ["hotline/closed"],
    "regions": [{}, {"+7383": "siberia", "Omsk": "support"}, {"+7383": "nowhere"}],
    "hotline": ["moscow", "federal", "nowhere"], "kind": ["city", "tollfree"],
    "lines": [1, 3, "unlimited", 0],
    "endpoint": ["ivanov", "petrova", "agent-9", "sipp-trunk"], "display_name": ["Агент"],
    "password": ["s3cret-Passw0rd", "short"], "capabilities": [["audio"], ["audio", "video"], ["webrtc"]],
    "queues": [{}, {"siberia": 2}, {"support": 0, "backoffice": 1}, {"nowhere": 1}],
}
SETTINGS = {
    "queues": ["strategy", "ring_timeout", "wrapup", "max_wait", "max_len", "join_empty", "announce_period",
               "music", "service_level", "prefer_video_agents", "overflow"],
    "menus": ["prompt", "timeout", "retries", "invalid_prompt", "timeout_prompt", "options"],
    "hotlines": ["entry", "description", "time_zone", "hours", "holidays", "closed", "closed_prompt",
                 "regions"],
    "numbers": ["hotline", "kind", "lines"],
    "agents": ["endpoint", "display_name", "password", "capabilities", "queues"],
}
NEW_NAMES = {"queues": "sales", "menus": "night", "hotlines": "spb", "agents": "sidorov",
             "numbers": "8 (812) 123-45-67"}


@st.composite
def random_edits(draw: st.DrawFn) -> Doc:
    """The example with a few edits: a setting changed or dropped, an object dropped or copied."""
    doc = example()
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(NEW_NAMES)))
        if not doc[kind]:
            continue
        name = draw(st.sampled_from(sorted(doc[kind])))
        how = draw(st.sampled_from(["set", "set", "set", "drop setting", "drop object", "copy object"]))
        if how == "set":
            key = draw(st.sampled_from(SETTINGS[kind]))
            doc[kind][name][key] = draw(st.sampled_from(CANDIDATES[key]))
        elif how == "drop setting" and doc[kind][name]:
            doc[kind][name].pop(draw(st.sampled_from(sorted(doc[kind][name]))))
        elif how == "drop object":
            del doc[kind][name]
        elif how == "copy object":
            doc[kind][NEW_NAMES[kind]] = copy.deepcopy(doc[kind][name])
    return doc


def without_passwords(prov: Provisioning) -> Provisioning:
    agents = {n: dataclasses.replace(a, password_ha1=None) for n, a in prov.agents.items()}
    return dataclasses.replace(prov, agents=agents)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=random_edits(), prune=st.booleans())
async def test_randomly_edited_file_is_written_whole_or_refused_with_nothing_written(
        provisioned: AsyncConnection, doc: Doc, prune: bool) -> None:
    async with provisioned.transaction():  # each example starts from the example contact centre
        await provisioned.execute("TRUNCATE " + ", ".join(PROVISIONING_TABLES) + " CASCADE")
    await changes.apply_document(provisioned, example())
    before, live = await dump(provisioned), await changes.current(provisioned)
    try:
        await changes.apply_document(provisioned, doc, prune=prune)
    except ProvisionError as exc:
        event(f"refused: {str(exc).split(':')[0]}")
        assert ": " in str(exc)
        assert await dump(provisioned) == before
        return
    event("written")
    wanted = merge(live, parse.provisioning(doc), prune=prune)
    assert without_passwords(await changes.current(provisioned)) == without_passwords(wanted)
    after = await dump(provisioned)
    assert (await changes.apply_document(provisioned, doc, prune=prune)).empty
    assert await dump(provisioned) == after
    exported = tomllib.loads(export.to_toml(await changes.current(provisioned)))
    assert (await changes.apply_document(provisioned, exported, prune=True)).empty
