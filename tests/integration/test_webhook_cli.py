"""`hotline webhook add|set|list|remove` against the lab's PostgreSQL, as an operator types them:
a generated secret shown once and never again, URLs and names checked, the filters kept."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner, Result

from hotline.cli import main

from support.checks import rows
from support.provisioning import BASE, provision

pytestmark = pytest.mark.lab


def hotline(db_dsn: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, env={"HOTLINE_DSN": db_dsn})


@pytest.fixture
def dsn(db_dsn: str) -> str:
    provision(db_dsn, BASE)
    return db_dsn


def test_add_prints_a_generated_secret_once_and_list_never_shows_it(dsn: str, db: psycopg.Connection) -> None:
    added = hotline(dsn, "webhook", "add", "crm", "https://crm.example/h", "--hotline", "city",
                    "--event", "ended", "--event", "answered")
    assert added.exit_code == 0, added.output
    secret = rows(db, "SELECT secret FROM webhooks")[0]["secret"]
    assert f"secret {secret} (generated; shown only now" in added.output
    listed = hotline(dsn, "webhook", "list")
    assert listed.exit_code == 0 and "crm" in listed.output and "answered,ended" in listed.output
    assert secret not in listed.output
    assert secret not in hotline(dsn, "webhook", "list", "--format", "json").output


def test_a_secret_read_from_stdin_is_kept_and_not_echoed(dsn: str, db: psycopg.Connection) -> None:
    added = hotline(dsn, "webhook", "add", "crm", "http://127.0.0.1:8080/h", "--secret-file", "-",
                    stdin="my-own-secret-of-the-crm\n")
    assert added.exit_code == 0, added.output
    assert "my-own-secret" not in added.output
    assert rows(db, "SELECT secret, hotlines, events FROM webhooks") == [
        {"secret": "my-own-secret-of-the-crm", "hotlines": None, "events": None}]


def test_set_changes_only_what_is_given_and_all_resets_a_filter(dsn: str, db: psycopg.Connection) -> None:
    assert hotline(dsn, "webhook", "add", "crm", "https://crm.example/h", "--event", "ended").exit_code == 0
    before = rows(db, "SELECT secret FROM webhooks")[0]["secret"]
    assert hotline(dsn, "webhook", "set", "crm", "--hotline", "city").exit_code == 0
    assert rows(db, "SELECT url, secret, hotlines, events FROM webhooks") == [
        {"url": "https://crm.example/h", "secret": before, "hotlines": ["city"], "events": ["ended"]}]
    changed = hotline(dsn, "webhook", "set", "crm", "--all-events", "--new-secret")
    assert changed.exit_code == 0, changed.output
    after = rows(db, "SELECT secret, events FROM webhooks")[0]
    assert after["events"] is None and after["secret"] != before and after["secret"] in changed.output


@pytest.mark.parametrize("args, said", [
    (["add", "crm", "ftp://crm.example/h"], "must be http:// or https://"),
    (["add", "crm", "https://crm.example/h", "--hotline", "nowhere"], "no hotline nowhere"),
    (["set", "ghost", "--url", "https://crm.example/h"], "no webhook 'ghost'"),
    (["remove", "ghost"], "no webhook 'ghost'"),
])
def test_refusals_are_one_line_and_change_nothing(dsn: str, db: psycopg.Connection, args: list[str],
                                                  said: str) -> None:
    result = hotline(dsn, "webhook", *args)
    assert result.exit_code == 1 and said in result.output and "Traceback" not in result.output
    assert rows(db, "SELECT count(*) AS n FROM webhooks") == [{"n": 0}]


def test_a_second_add_of_a_name_is_refused_and_remove_removes(dsn: str, db: psycopg.Connection) -> None:
    assert hotline(dsn, "webhook", "add", "crm", "https://crm.example/h").exit_code == 0
    again = hotline(dsn, "webhook", "add", "crm", "https://crm.example/other")
    assert again.exit_code == 1 and "already exists" in again.output
    assert hotline(dsn, "webhook", "remove", "crm").exit_code == 0
    assert rows(db, "SELECT count(*) AS n FROM webhooks") == [{"n": 0}]
