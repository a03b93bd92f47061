"""The provisioning verbs as an engineer types them, against the lab's real PostgreSQL."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from hotline.cli import main
from hotline.provision import sip_auth

from support.checks import rows

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-centre.toml"
PROVISIONING_TABLES = ("queues", "ivr_menus", "ivr_options", "hotlines", "hotline_hours",
                       "hotline_holidays", "hotline_region_routes", "numbers", "agents", "queue_members",
                       "trunks")


@pytest.fixture
def hotline(db_dsn: str):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env={"HOTLINE_DSN": db_dsn}, catch_exceptions=False)
    return run


def snapshot(db: psycopg.Connection) -> dict[str, list[object]]:
    return {t: [r["row"] for r in rows(db, f"SELECT to_jsonb(t) AS row FROM {t} t ORDER BY 1")]
            for t in PROVISIONING_TABLES}


def test_provision_example_then_again_changes_nothing_the_second_time(hotline, db) -> None:  # type: ignore[no-untyped-def]
    first = hotline("provision", str(EXAMPLE))
    assert first.exit_code == 0 and "+ hotline moscow" in first.output
    second = hotline("provision", str(EXAMPLE))
    assert second.exit_code == 0 and second.output.strip() == "nothing to change"


def test_dry_run_prints_the_plan_and_writes_nothing(hotline, db) -> None:  # type: ignore[no-untyped-def]
    result = hotline("provision", "--dry-run", str(EXAMPLE))
    assert result.exit_code == 0
    assert "+ number +78005553535" in result.output and "dry run" in result.output
    assert rows(db, "SELECT * FROM numbers") == []


def test_export_round_trips_through_provision_with_prune(hotline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    exported = tmp_path / "live.toml"
    exported.write_text(hotline("export").output)
    result = hotline("provision", "--prune", str(exported))
    assert result.exit_code == 0 and result.output.strip() == "nothing to change"


def test_number_add_normalises_what_people_type_and_lists_it(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    assert hotline("number", "add", "8 (495) 111-22-33", "--hotline", "moscow", "--lines", "2",
                   "--priority", "3").exit_code == 0
    listed = json.loads(hotline("number", "list", "--format", "json").output)
    assert {"number": "+74951112233", "kind": "city", "hotline": "moscow", "lines": 2,
            "priority": 3} in listed
    assert rows(db, "SELECT line_limit, priority FROM numbers WHERE number = '+74951112233'") == [
        {"line_limit": 2, "priority": 3}]


@pytest.mark.parametrize("args, message", [
    (("number", "add", "8 (495) 12", "--hotline", "moscow"), "not a valid number"),
    (("number", "add", "8 (495) 123-45-67", "--hotline", "federal"), "already serves hotline 'moscow'"),
    (("number", "add", "+7 495 111-22-33", "--hotline", "moscow", "--lines", "0"), "lines: '0'"),
    (("number", "add", "+7 495 111-22-33", "--hotline", "nowhere"), "'nowhere' does not exist"),
    (("queue", "set", "support", "--overflow", "queue:nosuch"), "'queue:nosuch' does not exist"),
    (("queue", "set", "nosuch", "--wrapup", "5"), "queue 'nosuch' does not exist"),
    (("queue", "remove", "backoffice"), "still in use"),
    (("member", "add", "support", "nobody"), "agent 'nobody' does not exist"),
    (("hotline", "set", "moscow", "--hours", "mon-fri 09:00-18:00", "--hours", "fri 17:00-20:00"),
     "overlap"),
    (("hotline", "set", "moscow", "--hours", "mon-fri 9-18"), "'mon-fri 9-18' has '9'"),
    (("hotline", "set", "moscow", "--time-zone", "Europe/Moskow"), "'Europe/Moskow' is not a time zone"),
    (("hotline", "add", "spb"), "needs a route"),
    (("ivr", "option", "main", "1", "queue:nosuch"), "'queue:nosuch' does not exist"),
    (("ivr", "add", "maze", "--prompt", "hello-world", "--option", "1=repeat"), "never leads out"),
    (("agent", "add", "trunk", "--endpoint", "sipp-trunk"), "reserved"),
    (("queue", "set", "support", "--video-key", "99"), "video_key: '99' is not a key"),
    (("queue", "set", "support", "--video-key", "1"), "also a key of its breakout menu 'billing'"),
    (("ivr", "option", "main", "8", "video"), "'video:QUEUE'"),
    (("ivr", "option", "main", "8", "video:nosuch"), "'video:nosuch' does not exist"),
])
def test_bad_input_is_one_clear_error_and_changes_nothing(hotline, db, args, message) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    before = snapshot(db)
    result = hotline(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert snapshot(db) == before


def test_queue_set_changes_only_what_is_given(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    result = hotline("queue", "set", "support", "--wrapup", "30")
    assert result.output.strip() == "~ queue support (wrapup)"
    queue = rows(db, "SELECT strategy, wrapup_s, max_wait_s FROM queues WHERE name = 'support'")[0]
    assert queue == {"strategy": "rrmemory", "wrapup_s": 30, "max_wait_s": 300}


def test_a_queues_video_key_is_set_cleared_and_exported(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    assert rows(db, "SELECT video_key FROM queues WHERE name = 'support'") == [{"video_key": "9"}]
    changed = hotline("queue", "set", "support", "--video-key", "*")
    assert changed.output.strip() == "~ queue support (video_key)"
    assert 'video_key = "*"' in hotline("export").output
    assert hotline("queue", "set", "support", "--video-key", "none").exit_code == 0
    assert rows(db, "SELECT video_key FROM queues WHERE name = 'support'") == [{"video_key": None}]
    assert "video_key" not in hotline("export").output


def test_queue_set_transfer_no_answer_is_stored_and_exported(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    result = hotline("queue", "set", "support", "--transfer-no-answer", "agent")
    assert result.output.strip() == "~ queue support (transfer_no_answer)"
    assert rows(db, "SELECT transfer_no_answer FROM queues WHERE name = 'support'") == [
        {"transfer_no_answer": "agent"}]
    assert 'transfer_no_answer = "agent"' in hotline("export").output
    refused = hotline("queue", "set", "support", "--transfer-no-answer", "hotline")
    assert refused.exit_code != 0 and "'hotline' is not one of 'queue', 'agent'" in refused.output


def test_queue_set_record_is_stored_and_exported(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    assert rows(db, "SELECT name, record FROM queues WHERE name IN ('support', 'backoffice')"
                    " ORDER BY name") == [
        {"name": "backoffice", "record": "always"}, {"name": "support", "record": None}]  # its hotline's
    result = hotline("queue", "set", "support", "--record", "always")
    assert result.output.strip() == "~ queue support (record)"
    assert rows(db, "SELECT record FROM queues WHERE name = 'support'") == [{"record": "always"}]
    assert 'record = "always"' in hotline("export").output
    refused = hotline("queue", "set", "support", "--record", "sometimes")
    assert refused.exit_code != 0 and "'sometimes' is not one of" in refused.output


def test_hotline_record_and_announcement_are_stored_listed_and_exported_and_a_queue_may_inherit(  # type: ignore[no-untyped-def]
        hotline, db) -> None:
    hotline("provision", str(EXAMPLE))
    result = hotline("hotline", "set", "moscow", "--record", "always", "--record-announcement", "hello-world")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "~ hotline moscow (record, record_announcement)"
    assert rows(db, "SELECT record, record_announcement FROM hotlines WHERE name = 'moscow'") == [
        {"record": "always", "record_announcement": "hello-world"}]
    exported = hotline("export").output
    assert 'record = "always"\nrecord_announcement = "hello-world"' in exported
    assert re.search(r"moscow .* always", hotline("hotline", "list").output)
    refused = hotline("hotline", "set", "moscow", "--record", "inherit")
    assert refused.exit_code != 0 and "'inherit' is not one of" in refused.output
    hotline("queue", "set", "backoffice", "--record", "inherit")
    assert rows(db, "SELECT record FROM queues WHERE name = 'backoffice'") == [{"record": None}]
    assert re.search(r"backoffice .* inherit", hotline("queue", "list").output)
    silent = hotline("hotline", "set", "moscow", "--record", "never")  # no queue records of its own now
    assert silent.exit_code != 0 and "hotlines.moscow.record_announcement" in silent.output
    assert rows(db, "SELECT record FROM hotlines WHERE name = 'moscow'") == [{"record": "always"}]


def test_a_queue_stored_with_no_record_inherits_and_a_hotline_records_never_by_default(db) -> None:  # type: ignore[no-untyped-def]
    db.execute("INSERT INTO queues (name, record) VALUES ('kept', 'never'), ('rec', 'always')")
    db.execute("INSERT INTO queues (name) VALUES ('fresh')")
    db.execute("INSERT INTO hotlines (name, entry_queue_id)"
               " SELECT 'city', id FROM queues WHERE name = 'fresh'")
    assert rows(db, "SELECT name, record FROM queues ORDER BY name") == [
        {"name": "fresh", "record": None}, {"name": "kept", "record": "never"},
        {"name": "rec", "record": "always"}]
    assert rows(db, "SELECT record, record_announcement FROM hotlines") == [
        {"record": "never", "record_announcement": None}]


def test_queue_set_on_demand_and_a_record_announcement_are_stored_and_exported(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    silent = hotline("queue", "set", "support", "--record-announcement", "hello-world")
    assert silent.exit_code != 0 and "queues.support.record_announcement" in silent.output  # records never
    result = hotline("queue", "set", "support", "--record", "on_demand",
                     "--record-announcement", "hello-world")
    assert result.exit_code == 0, result.output
    assert rows(db, "SELECT record, record_announcement FROM queues WHERE name = 'support'") == [
        {"record": "on_demand", "record_announcement": "hello-world"}]
    exported = hotline("export").output
    assert 'record = "on_demand"' in exported and 'record_announcement = "hello-world"' in exported
    bad = hotline("queue", "set", "support", "--record-announcement", "../secret")
    assert bad.exit_code != 0 and "is not an Asterisk sound name" in bad.output
    hotline("queue", "set", "support", "--record-announcement", "none")
    assert rows(db, "SELECT record_announcement FROM queues WHERE name = 'support'") == [
        {"record_announcement": None}]


def test_a_queues_survey_is_set_listed_exported_planned_refused_when_wrong_and_switched_off(  # type: ignore[no-untyped-def]
        hotline, db, tmp_path: Path) -> None:
    hotline("provision", str(EXAMPLE))
    result = hotline("queue", "set", "support", "--survey", "hotline/q1", "--survey", "hotline/q2",
                     "--survey-thanks", "auth-thankyou")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "~ queue support (survey, survey_thanks)"
    assert rows(db, "SELECT survey, survey_thanks FROM queues WHERE name = 'support'") == [
        {"survey": ["hotline/q1", "hotline/q2"], "survey_thanks": "auth-thankyou"}]
    listed = json.loads(hotline("queue", "list", "--format", "json").output)
    assert next(q for q in listed if q["name"] == "support")["survey"] == ["hotline/q1", "hotline/q2"]
    assert "hotline/q1, hotline/q2" in hotline("queue", "list").output
    exported = hotline("export").output
    assert 'survey = [\n    "hotline/q1",\n    "hotline/q2",\n]\nsurvey_thanks = "auth-thankyou"' in exported
    live = tmp_path / "live.toml"
    live.write_text(exported)
    assert hotline("provision", "--prune", str(live)).output.strip() == "nothing to change"
    live.write_text(exported.replace('"hotline/q2"', '"hotline/q3"'))
    planned = hotline("provision", "--dry-run", str(live)).output
    assert "~ queue support (survey)" in planned and "dry run" in planned
    before = snapshot(db)
    for args, message in (
            (("--survey", "a", "--survey", "b", "--survey", "c"), "queues.support.survey: ['a', 'b', 'c'] "
                                                                  "must hold 1 to 2 questions"),
            (("--survey", "../x"), "queues.support.survey[1]: '../x' is not an Asterisk sound name"),
            (("--survey", ""), "queues.support.survey[1]: '' is not an Asterisk sound name"),
            (("--survey", "none"), "queues.support.survey_thanks: the queue has no survey")):
        bad = hotline("queue", "set", "support", *args)
        assert bad.exit_code == 1 and message in bad.output, bad.output
    assert snapshot(db) == before  # nothing lost
    hotline("queue", "set", "support", "--survey", "none", "--survey-thanks", "none")
    assert rows(db, "SELECT survey, survey_thanks FROM queues WHERE name = 'support'") == [
        {"survey": None, "survey_thanks": None}]
    support = tomllib.loads(hotline("export").output)["queues"]["support"]
    assert "survey" not in support and "survey_thanks" not in support


def test_removing_a_queue_takes_its_members_out_and_keeps_the_row_for_history(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    hotline("hotline", "set", "federal", "--region", "+7913=support")
    result = hotline("queue", "remove", "siberia")
    assert result.exit_code == 0, result.output
    assert "- queue siberia" in result.output and "~ agent petrova (queues)" in result.output
    assert rows(db, "SELECT retired_at IS NOT NULL AS retired FROM queues WHERE name = 'siberia'") == [
        {"retired": True}]
    assert "siberia" not in hotline("queue", "list").output


def test_members_and_ivr_options_are_edited_one_by_one(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    assert hotline("member", "add", "backoffice", "petrova", "--penalty", "2").exit_code == 0
    assert hotline("member", "remove", "support", "ivanov").exit_code == 0
    assert hotline("ivr", "option", "main", "3", "hotline:federal").exit_code == 0
    assert hotline("ivr", "option", "main", "*", "--remove").exit_code == 0
    members = rows(db, "SELECT a.name, q.name AS queue, m.penalty FROM queue_members m"
                       " JOIN agents a ON a.id = m.agent_id JOIN queues q ON q.id = m.queue_id ORDER BY 1, 2")
    assert members == [{"name": "ivanov", "queue": "backoffice", "penalty": 5},
                       {"name": "petrova", "queue": "backoffice", "penalty": 2},
                       {"name": "petrova", "queue": "siberia", "penalty": 0},
                       {"name": "petrova", "queue": "support", "penalty": 1}]
    keys = [r["digit"] for r in rows(db, "SELECT digit FROM ivr_options o JOIN ivr_menus m"
                                         " ON m.id = o.menu_id WHERE m.name = 'main' ORDER BY digit")]
    assert keys == ["0", "1", "2", "3", "9"]


def test_agent_list_never_shows_passwords_and_export_only_their_digest_when_asked(hotline) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    hotline("agent", "set", "ivanov", "--password", "s3cret-pass-123")
    digest = sip_auth.ha1("ivanov", "s3cret-pass-123")
    for output in (hotline("agent", "list", "--format", "json").output, hotline("export").output):
        assert "s3cret-pass-123" not in output and digest not in output
    with_secrets = hotline("export", "--with-secrets").output
    assert f'password_ha1 = "{digest}"' in with_secrets and "s3cret-pass-123" not in with_secrets


def test_a_generated_password_is_printed_once_and_lets_the_agent_log_in(hotline, db) -> None:  # type: ignore[no-untyped-def]
    first = hotline("provision", str(EXAMPLE))
    printed = dict(re.findall(r"^agent (\S+): SIP password (\S+) \(generated; shown only now", first.output,
                              re.M))
    assert sorted(printed) == ["ivanov"]  # petrova's is in the file (for the lab's phone): kept as its HA1
    printed["petrova"] = "lab-only-petrova-5k2q"
    for name, password in printed.items():
        [row] = rows(db, "SELECT endpoint, password_ha1 FROM agents WHERE name = %s", name)
        assert sip_auth.matches(row["endpoint"], password, row["password_ha1"])
    assert "SIP password" not in hotline("provision", str(EXAMPLE)).output
    added = hotline("agent", "add", "sidorov")
    assert re.search(r"^agent sidorov: SIP password \S{20,} \(generated", added.output, re.M), added.output
    assert "SIP password" not in hotline("agent", "add", "kozlov", "--password", "k0zlov-pass").output
    assert "SIP password" not in hotline("provision", "--dry-run", str(EXAMPLE)).output


def test_a_new_endpoint_needs_a_new_password(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    refused = hotline("agent", "set", "ivanov", "--endpoint", "ivan-7")
    assert refused.exit_code != 0
    assert "agent 'ivanov': a new endpoint needs a new password" in refused.output
    assert rows(db, "SELECT endpoint FROM agents WHERE name = 'ivanov'") == [{"endpoint": "ivanov"}]
    moved = hotline("agent", "set", "ivanov", "--endpoint", "ivan-7", "--password", "n3w-pass-123")
    assert moved.exit_code == 0 and "~ agent ivanov (endpoint, password_ha1)" in moved.output
    [row] = rows(db, "SELECT endpoint, password_ha1 FROM agents WHERE name = 'ivanov'")
    assert row == {"endpoint": "ivan-7", "password_ha1": sip_auth.ha1("ivan-7", "n3w-pass-123")}


def test_trunk_verbs_add_list_set_and_remove_a_trunk(hotline, db) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    added = hotline("trunk", "add", "backup", "--endpoint", "carrier-2", "--caller-id", "+7 495 765-43-21",
                    "--allow", "+7 499", "--allow", "+7495")
    assert added.exit_code == 0 and added.output.strip() == "+ trunk backup"
    listed = json.loads(hotline("trunk", "list", "--format", "json").output)
    assert {"name": "backup", "endpoint": "carrier-2", "caller_id": "+74957654321",
            "allow": ["+7495", "+7499"], "ring_timeout": 30} in listed
    changed = hotline("trunk", "set", "backup", "--allow", "+7916", "--ring-timeout", "20")
    assert changed.exit_code == 0 and changed.output.strip() == "~ trunk backup (allow, ring_timeout)"
    assert rows(db, "SELECT endpoint, caller_id, allow, ring_timeout FROM trunks WHERE name = 'backup'") == [
        {"endpoint": "carrier-2", "caller_id": "+74957654321", "allow": ["+7916"], "ring_timeout": 20}]
    assert hotline("trunk", "remove", "backup").output.strip() == "- trunk backup"
    assert rows(db, "SELECT retired_at IS NOT NULL AS retired FROM trunks WHERE name = 'backup'") == [
        {"retired": True}]
    assert "backup" not in hotline("trunk", "list").output


@pytest.mark.parametrize("args, message", [
    (("trunk", "add", "t", "--endpoint", "x", "--caller-id", "+74951234567", "--allow", "+7"),
     "trunks.t.allow: '+7' is a whole country code"),
    (("trunk", "add", "t", "--endpoint", "x", "--caller-id", "+74991112233", "--allow", "+7495"),
     "trunks.t.caller_id: '+74991112233' is not one of the hotlines' telephone numbers"),
    (("trunk", "add", "t", "--endpoint", "x", "--caller-id", "+74951234567"),
     "trunks.t.allow: None is required"),
    (("trunk", "add", "carrier", "--endpoint", "x", "--caller-id", "+74951234567", "--allow", "+7495"),
     "trunk 'carrier' already exists"),
    (("trunk", "set", "nosuch", "--allow", "+7495"), "trunk 'nosuch' does not exist"),
    (("trunk", "set", "carrier", "--ring-timeout", "400"),
     "trunks.carrier.ring_timeout: 400 must be from 5 to 300"),
    (("trunk", "set", "carrier", "--endpoint", "ivanov"), "is the phone of agent 'ivanov'"),
    (("number", "remove", "8 (495) 123-45-67"), "trunks.carrier.caller_id"),
])
def test_bad_trunk_input_is_one_clear_error_and_changes_nothing(hotline, db, args, message) -> None:  # type: ignore[no-untyped-def]
    hotline("provision", str(EXAMPLE))
    before = rows(db, "SELECT to_jsonb(t) AS row FROM trunks t ORDER BY 1")
    result = hotline(*args)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and message in result.output, result.output
    assert rows(db, "SELECT to_jsonb(t) AS row FROM trunks t ORDER BY 1") == before


def test_a_hotlines_customer_page_is_set_listed_exported_and_cleared_and_bad_values_change_nothing(  # type: ignore[no-untyped-def]
        hotline, db) -> None:
    hotline("provision", str(EXAMPLE))
    result = hotline("hotline", "set", "moscow", "--page-title", "Поддержка «Пример»", "--page-text",
                     "С 9 до 21", "--page-logo", "https://cdn.example.ru/logo.svg", "--page-color", "#0A7D3E")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "~ hotline moscow (page_title, page_text, page_logo, page_color)"
    stored = "SELECT page_title, page_text, page_logo, page_color FROM hotlines WHERE name = 'moscow'"
    page = {"page_title": "Поддержка «Пример»", "page_text": "С 9 до 21",
            "page_logo": "https://cdn.example.ru/logo.svg", "page_color": "#0a7d3e"}
    assert rows(db, stored) == [page]
    exported = hotline("export").output
    assert ('page_title = "Поддержка «Пример»"\npage_text = "С 9 до 21"\n'
            'page_logo = "https://cdn.example.ru/logo.svg"\npage_color = "#0a7d3e"') in exported
    listed = json.loads(hotline("hotline", "list", "--format", "json").output)
    assert [(h["page_title"], h["page_color"]) for h in listed if h["name"] == "moscow"] == [
        ("Поддержка «Пример»", "#0a7d3e")]
    for option, value, said in [("--page-color", "red", "#RRGGBB"),
                                ("--page-logo", "http://x.ru/a.png", "https"),
                                ("--page-title", "x" * 81, "1 to 80 characters")]:
        refused = hotline("hotline", "set", "moscow", option, value)
        assert refused.exit_code != 0 and said in refused.output, refused.output
    assert rows(db, stored) == [page]  # nothing lost
    cleared = hotline("hotline", "set", "moscow", "--page-logo", "none")
    assert cleared.output.strip() == "~ hotline moscow (page_logo)"
    assert rows(db, stored) == [{**page, "page_logo": None}]
