"""Language in the lab's PostgreSQL (migration 038): languages and `language:` keys are stored and
read back as the file said, and a leg's records set its hop's language (a language key's also in
its menu_key contact event)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from hotline.cli import main
from hotline.engine.facts import KeyPressed, LanguageSet
from hotline.provision import parse
from hotline.store import provisioning
from hotline.store import provisioning_changes as changes
from hotline.store.contacts import Contacts
from hotline.store.db import open_pool
from hotline.store.hops import NewHop
from hotline.store.records import write_records

from support.checks import rows

pytestmark = pytest.mark.lab

DOC = """
[queues.support]
[queues.english]

[menus.main]
prompt = "beep"
[menus.main.options]
"1" = "queue:support"

[menus.choose]
prompt = "beep"
[menus.choose.options]
"1" = "queue:support"
"7" = "language:ru"
"8" = {action = "language:en_GB", then = "menu:main", prompt = "beep"}
"9" = {action = "language:en", then = "queue:english", priority = 4}
"0" = {action = "language:en", then = "hangup"}

[hotlines.moscow]
entry = "menu:choose"
language = "ru"

[hotlines.plain]
entry = "queue:english"

[numbers."+74951234567"]
hotline = "moscow"
language = "en"

[numbers."+74951234568"]
hotline = "plain"
"""


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[AsyncConnection]:
    async with await AsyncConnection.connect(db_dsn, autocommit=True) as c:
        yield c


async def test_languages_and_language_keys_are_read_back_as_the_file_said(conn: AsyncConnection) -> None:
    doc = tomllib.loads(DOC)
    await changes.apply_document(conn, doc)
    assert await provisioning.load(conn) == parse.provisioning(doc)
    again = await changes.apply_document(conn, doc)
    assert again.empty
    unset = tomllib.loads(DOC.replace('language = "ru"\n', 'language = "none"\n'))
    plan = await changes.apply_document(conn, unset)
    assert plan.lines() == ["~ hotline moscow (language)"]
    assert (await provisioning.load(conn)).hotlines["moscow"].language is None


async def test_the_database_refuses_a_language_that_is_no_sounds_directory(conn: AsyncConnection) -> None:
    await changes.apply_document(conn, tomllib.loads(DOC))
    with pytest.raises(psycopg.errors.CheckViolation):
        await conn.execute("UPDATE hotlines SET language = 'Russian' WHERE name = 'moscow'")


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    opened: AsyncConnectionPool = await open_pool(db_dsn, max_size=2)
    async with opened:
        yield opened


async def test_a_legs_language_and_a_language_key_are_recorded_on_its_hop(
        pool: AsyncConnectionPool, db: psycopg.Connection) -> None:
    hop = await Contacts(pool).open_case_with_hop(NewHop(
        node="n1", channel_id="c1", channel_name="PJSIP/trunk-c1", channel_kind="pstn", media="audio",
        dialled="84951234567", dialled_e164="+74951234567", caller_num="+79161234567", caller_name="",
        entered_at=datetime.now(UTC) - timedelta(seconds=5)), "+79161234567")
    async with pool.connection() as conn:
        await write_records(conn, [LanguageSet("ru").record(hop), KeyPressed("1").record(hop)])
    assert rows(db, "SELECT language, ivr_path FROM hops WHERE id = %s", hop.id) == [
        {"language": "ru", "ivr_path": "1"}]
    async with pool.connection() as conn:
        await write_records(conn, [KeyPressed("9", "en").record(hop)])
    assert rows(db, "SELECT language, ivr_path FROM hops WHERE id = %s", hop.id) == [
        {"language": "en", "ivr_path": "19"}]
    keys = rows(db, "SELECT data FROM contact_events WHERE kind = 'menu_key' ORDER BY id")
    assert [k["data"] for k in keys] == [{"key": "1", "path": "1"},
                                         {"key": "9", "path": "19", "language": "en"}]


def test_the_verbs_set_list_and_unset_languages(db_dsn: str, tmp_path: Path) -> None:
    def hotline(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env={"HOTLINE_DSN": db_dsn}, catch_exceptions=False)
    (tmp_path / "language.toml").write_text(DOC)
    assert hotline("provision", str(tmp_path / "language.toml")).exit_code == 0
    bad = hotline("hotline", "set", "plain", "--language", "English")
    assert bad.exit_code == 1 and "hotlines.plain.language: 'English' is not a language" in bad.output
    assert hotline("hotline", "set", "plain", "--language", "en_GB").output == "~ hotline plain (language)\n"
    assert hotline("number", "set", "8 (495) 123-45-68", "--language", "ru").output == (
        "~ number +74951234568 (language)\n")
    assert hotline("number", "set", "+74951234567", "--language", "none").output == (
        "~ number +74951234567 (language)\n")
    listed = {r["number"]: r for r in json.loads(hotline("number", "list", "--format", "json").output)}
    assert listed["+74951234568"]["language"] == "ru" and listed["+74951234567"].get("language") is None
    hotlines = {r["name"]: r for r in json.loads(hotline("hotline", "list", "--format", "json").output)}
    assert (hotlines["plain"]["language"], hotlines["moscow"]["language"]) == ("en_GB", "ru")
    key = hotline("ivr", "option", "main", "9", "language:en", "--then", "menu:choose")
    assert key.exit_code == 0, key.output
    assert 'then = "menu:choose"' in hotline("export").output
    no_then = hotline("ivr", "option", "main", "1", "queue:support", "--then", "menu:choose")
    assert no_then.exit_code == 1 and "only a 'language:LANG' key has a next step" in no_then.output
