"""`hotline stats ...` as a supervisor uses it, on the fixed day of support/stats_scenario.py: the same
figures as the SQL functions in table, JSON and CSV, and one clear line for bad input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import psycopg
import pytest
from click.testing import CliRunner, Result

from hotline.cli import main

from support.stats_scenario import Centre, write_day

pytestmark = pytest.mark.lab

Hotline = Callable[..., Result]
DAY = ["--since", "2026-11-10"]


@pytest.fixture
def centre(db_dsn: str, db: psycopg.Connection) -> Centre:
    return write_day(db_dsn, db)


@pytest.fixture
def hotline(db_dsn: str) -> Hotline:
    runner = CliRunner()

    def run(*args: str, dsn: str = db_dsn) -> Result:
        return runner.invoke(main, ["stats", *args], env={"HOTLINE_DSN": dsn}, catch_exceptions=False)
    return run


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def table(text: str) -> list[list[str]]:
    """The table's lines after the title, split on runs of two spaces or more."""
    import re
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()[1:] if line.strip()]


def test_queues_table_for_a_day_in_the_hotlines_time_zone(centre: Centre, hotline: Hotline) -> None:
    text = ok(hotline("queues", *DAY))
    assert text.splitlines()[0] == "queues, 2026-11-10 00:00 - 2026-11-11 00:00 (Europe/Moscow)"
    header, *body = table(text)
    assert header == ["QUEUE", "OFFERED", "ANSWERED", "ABANDONED", "SHORT", "OVERFLOW", "REFUSED", "BUSY",
                      "CLOSED", "FAILED", "SL%", "SL/ANS%", "SL+AB%", "ABAND%", "ASA", "AHT", "AVG WAIT",
                      "MAX WAIT", "XFER OUT", "XFER IN", "CB ASKED", "CB ANS", "CB FAILED", "TO CB",
                      "SURVEYS", "SURV%", "SCORE", "HOLDS", "HOLD", "AVG HOLD"]
    assert body[1] == ["support", "7", "3", "2", "1", "1", "0", "1", "1", "1", "50.0", "66.7", "60.0", "28.6",
                       "20", "80", "34", "90", "0", "0", "0", "0", "0", "-", "1", "50.0", "4.50",
                       "3", "55", "18"]
    assert body[0][:3] == ["backoffice", "1", "1"]
    assert body[0][-6:] == ["0", "-", "-", "1", "5", "5"]  # no survey; one 5 s hold


def test_queues_json_carries_every_column_with_local_timestamps(centre: Centre, hotline: Hotline) -> None:
    rows = {r["queue"]: r for r in json.loads(ok(hotline("queues", *DAY, "--format", "json")))}
    support = rows["support"]
    assert support["bucket_start"] == "2026-11-10T00:00:00+03:00"
    assert [support[k] for k in ("service_level_pct", "sl_answered_pct", "sl_offered_pct")] \
        == [50.0, 66.7, 60.0]
    assert (support["asa_s"], support["aht_s"], support["short_abandons"]) == (20, 80, 1)


def test_queues_csv_per_hour_with_another_short_abandon_threshold(centre: Centre, hotline: Hotline) -> None:
    text = ok(hotline("queues", *DAY, "--interval", "hour", "--short-abandon", "60", "--format", "csv"))
    rows = list(csv.DictReader(io.StringIO(text)))
    support = [(r["bucket_start"], r["offered"], r["short_abandons"], r["service_level_pct"]) for r in rows
               if r["queue"] == "support"]
    assert support == [("2026-11-10T08:00:00+03:00", "0", "0", ""),
                       ("2026-11-10T10:00:00+03:00", "6", "2", "66.7"),
                       ("2026-11-10T11:00:00+03:00", "1", "0", "")]


def test_another_time_zone_moves_the_day(centre: Centre, hotline: Hotline) -> None:
    # Novosibirsk is 4 hours ahead: its 2026-11-10 starts at 20:00 Moscow time the day before,
    # so P (23:59:50 Moscow, the day before) joins on it
    rows = json.loads(ok(hotline("queues", *DAY, "--tz", "Asia/Novosibirsk", "--format", "json")))
    assert {r["queue"]: r["offered"] for r in rows}["support"] == 8


def test_agents_table_shows_pauses_by_reason(centre: Centre, hotline: Hotline) -> None:
    header, *body = table(ok(hotline("agents", *DAY)))
    assert header == ["AGENT", "RUNG", "ANSWERED", "MISSED", "TALK", "WRAPUP", "AHT", "XFER OUT", "XFER IN",
                      "LOGGED IN", "PAUSED", "OCC%", "SURVEYS", "SURV%", "SCORE", "HOLDS", "HOLD", "AVG HOLD",
                      "PAUSES"]
    assert body == [
        ["ivanov", "4", "2", "1", "90", "20", "55", "0", "0", "14400", "2700", "0.9", "0", "0.0", "-",
         "1", "15", "8", "lunch=1800, training=900"],
        ["petrova", "3", "3", "0", "150", "20", "57", "0", "0", "9000", "600", "2.0", "1", "100.0", "4.50",
         "3", "45", "15", "break=600"]]


@pytest.mark.parametrize(("report", "first_row"), [
    ("hotlines", ["moscow", "8", "4", "2", "1", "1", "0", "0", "1", "0", "50.0", "40", "100"]),
    ("numbers", ["+74951234567", "city", "moscow", "1", "3", "1", "0", "1", "33.3", "1", "0", "1"]),
    ("channels", ["pstn", "audio", "8", "8", "4", "2", "1", "1", "40"]),
    ("cases", ["9", "10", "1.1", "1", "1", "4", "40", "100"]),
])
def test_the_other_reports(centre: Centre, hotline: Hotline, report: str, first_row: list[str]) -> None:
    _, *body = table(ok(hotline(report, *DAY)))
    assert body[0] == first_row


def test_per_day_rows_are_labelled_by_day(centre: Centre, hotline: Hotline) -> None:
    header, *body = table(ok(hotline("cases", "--since", "2026-11-09", "--until", "2026-11-11",
                                     "--interval", "day")))
    assert header[0] == "DAY"
    assert [(r[0], r[1]) for r in body] == [("2026-11-09", "1"), ("2026-11-10", "9")]


def test_a_day_without_calls_says_so(centre: Centre, hotline: Hotline) -> None:
    assert ok(hotline("queues", "--since", "2026-11-01")).splitlines()[1] == "(no activity)"


@pytest.mark.parametrize(("args", "message"), [
    (["queues", "--since", "2026-11-11", "--until", "2026-11-10"],
     "Error: --since 2026-11-11 00:00 is not before --until 2026-11-10 00:00"),
    (["agents", "--interval", "week"], "Error: --interval 'week' is not one of 15m, 30m, hour, day"),
    (["hotlines", "--since", "10/11/2026"], "Error: --since '10/11/2026' is not a date: use YYYY-MM-DD,"),
    (["queues", "--tz", "Moscow"], "Error: --tz 'Moscow' is not a time zone"),
    (["queues", "--format", "xml"], "Error: --format 'xml' is not one of table, json, csv"),
    (["live", "--watch", "--format", "json"], "Error: --watch draws a table: leave out --format"),
])
def test_bad_input_is_one_line_and_exit_1(centre: Centre, hotline: Hotline, args: list[str],
                                         message: str) -> None:
    result = hotline(*args)
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert len(result.output.strip().splitlines()) == 1


def test_an_unreachable_database_is_one_line(hotline: Hotline) -> None:
    result = hotline("queues", dsn="postgresql://hotline:x@127.0.0.1:1/hotline")
    assert result.exit_code == 1
    assert result.output.startswith("Error: database 127.0.0.1:1/hotline unreachable:")
    assert len(result.output.strip().splitlines()) == 1


def test_a_database_without_migration_005_says_what_to_do(empty_db_dsn: str, hotline: Hotline) -> None:
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE hotlines (time_zone text, retired_at timestamptz)")
    result = hotline("queues", dsn=empty_db_dsn)
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: the database has no statistics functions yet:"
                                     " run `hotline db migrate`")
