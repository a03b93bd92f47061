"""`callback:QUEUE` as a menu key and a hotline's closed action, typed at the CLI against the lab's
real PostgreSQL: the rows it writes, what export gives back, and the one-line refusals."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from hotline.cli import main

from support.checks import rows

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-centre.toml"


@pytest.fixture
def hotline(db_dsn: str):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env={"HOTLINE_DSN": db_dsn}, catch_exceptions=False)
    run("provision", str(EXAMPLE))
    return run


def option_row(db: psycopg.Connection, digit: str) -> list[dict[str, object]]:
    return rows(db, "SELECT o.action, q.name AS queue FROM ivr_options o JOIN ivr_menus m ON m.id = o.menu_id"
                    " LEFT JOIN queues q ON q.id = o.target_queue_id WHERE m.name = 'main' AND o.digit = %s",
                digit)


def closed_row(db: psycopg.Connection) -> list[dict[str, object]]:
    return rows(db, "SELECT h.closed_action, q.name AS queue, h.closed_hotline_id FROM hotlines h"
                    " LEFT JOIN queues q ON q.id = h.closed_queue_id WHERE h.name = 'moscow'")


def test_a_menu_key_and_a_closed_action_callback_queue_are_stored_and_exported(hotline, db,  # type: ignore[no-untyped-def]
                                                                              tmp_path: Path) -> None:
    added = hotline("ivr", "option", "main", "8", "callback:backoffice")
    assert added.exit_code == 0 and added.output.strip() == "~ menu main (options)"
    assert option_row(db, "8") == [{"action": "callback", "queue": "backoffice"}]
    changed = hotline("hotline", "set", "moscow", "--closed", "callback:support")
    assert changed.exit_code == 0 and changed.output.strip() == "~ hotline moscow (closed)"
    assert closed_row(db) == [{"closed_action": "callback", "queue": "support", "closed_hotline_id": None}]
    exported = hotline("export").output
    assert '8 = "callback:backoffice"' in exported and 'closed = "callback:support"' in exported
    assert "8=callback:backoffice" in hotline("ivr", "list").output
    assert "callback:support" in hotline("hotline", "list").output
    (tmp_path / "live.toml").write_text(exported)
    again = hotline("provision", "--prune", str(tmp_path / "live.toml"))
    assert again.exit_code == 0 and again.output.strip() == "nothing to change"
    assert hotline("hotline", "set", "moscow", "--closed", "hangup").exit_code == 0
    assert closed_row(db) == [{"closed_action": "hangup", "queue": None, "closed_hotline_id": None}]


@pytest.mark.parametrize("args, message", [
    (("ivr", "option", "main", "8", "callback"),
     "menus.main.options.8: 'callback' needs the queue whose line the callback joins: 'callback:QUEUE'"),
    (("ivr", "option", "main", "8", "callback:nowhere"), "'callback:nowhere' does not exist"),
    (("ivr", "option", "main", "8", "callback:support", "--priority", "3"), "only keys to a menu, queue"),
    (("hotline", "set", "moscow", "--closed", "callback"),
     "hotlines.moscow.closed: 'callback' needs the queue whose line the callback joins: 'callback:QUEUE'"),
    (("hotline", "set", "moscow", "--closed", "callback:nowhere"), "'callback:nowhere' does not exist"),
])
def test_bad_callback_targets_are_one_clear_error_and_change_nothing(hotline, db, args, message) -> None:  # type: ignore[no-untyped-def]
    before = hotline("export").output
    result = hotline(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert hotline("export").output == before


def test_what_a_callback_target_uses_cannot_be_removed_under_it(hotline, db) -> None:  # type: ignore[no-untyped-def]
    assert hotline("queue", "add", "sales").exit_code == 0
    assert hotline("hotline", "set", "moscow", "--closed", "callback:sales").exit_code == 0
    gone = hotline("trunk", "remove", "carrier")
    assert gone.exit_code != 0
    assert "hotlines.moscow.closed: 'callback:sales': no trunk is provisioned" in gone.output
    removed = hotline("queue", "remove", "sales")
    assert removed.exit_code != 0
    assert "still in use" in removed.output and "'callback:sales' does not exist" in removed.output
    assert rows(db, "SELECT count(*) AS n FROM trunks WHERE retired_at IS NULL") == [{"n": 1}]
    assert closed_row(db) == [{"closed_action": "callback", "queue": "sales", "closed_hotline_id": None}]


def test_a_bare_callback_stored_before_is_refused_by_the_next_change_until_named(hotline, db) -> None:  # type: ignore[no-untyped-def]
    db.execute("INSERT INTO ivr_options (menu_id, digit, action) SELECT id, '8', 'callback' FROM ivr_menus"
               " WHERE name = 'main'")
    assert '8 = "callback"\n' in hotline("export").output  # shown as it was stored
    refused = hotline("queue", "set", "support", "--wrapup", "5")
    assert refused.exit_code != 0 and len(refused.output.strip().splitlines()) == 1
    assert "menus.main.options.8: 'callback' needs the queue" in refused.output
    assert rows(db, "SELECT wrapup_s FROM queues WHERE name = 'support'") == [{"wrapup_s": 10}]
    assert hotline("ivr", "option", "main", "8", "callback:support").exit_code == 0
    assert option_row(db, "8") == [{"action": "callback", "queue": "support"}]
    db.execute("UPDATE hotlines SET closed_action = 'callback', closed_hotline_id = NULL"
               " WHERE name = 'moscow'")
    still = hotline("queue", "set", "support", "--wrapup", "5")
    assert still.exit_code != 0 and "hotlines.moscow.closed: 'callback' needs the queue" in still.output
    assert hotline("hotline", "set", "moscow", "--closed", "callback:support").exit_code == 0
    assert hotline("queue", "set", "support", "--wrapup", "5").exit_code == 0
    assert closed_row(db) == [{"closed_action": "callback", "queue": "support", "closed_hotline_id": None}]
