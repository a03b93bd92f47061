"""The libpq `options` the daemon's pool connects with: its own setting added to the DSN's."""

from __future__ import annotations

from hotline.store.db import with_option


def test_a_dsn_without_options_gets_only_the_setting() -> None:
    assert with_option("postgresql://u:pw@db:5432/hotline", "synchronous_commit", "off") == \
        "-c synchronous_commit=off"


def test_the_options_of_a_url_dsn_come_first_so_the_setting_wins() -> None:
    dsn = "postgresql://u:pw@db/hotline?options=-c%20statement_timeout%3D5s%20-c%20synchronous_commit%3Don"
    assert with_option(dsn, "synchronous_commit", "off") == \
        "-c statement_timeout=5s -c synchronous_commit=on -c synchronous_commit=off"


def test_the_options_of_a_keyword_dsn_are_kept() -> None:
    dsn = "host=db dbname=hotline options='-c work_mem=8MB'"
    assert with_option(dsn, "synchronous_commit", "off") == "-c work_mem=8MB -c synchronous_commit=off"


def test_a_malformed_dsn_is_left_to_the_connection_attempt_to_report() -> None:
    assert with_option("host=db port", "synchronous_commit", "off") == "-c synchronous_commit=off"
