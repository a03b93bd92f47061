"""The pure parts of the active daemon's lock (hotline.store.active_lock); the lock itself runs
against the lab's PostgreSQL in tests/integration/test_active_lock.py and tests/e2e/test_standby.py."""

from __future__ import annotations

from datetime import UTC, datetime

from hotline.store.active_lock import (
    ACTIVE,
    KEEPALIVES,
    NAME_LIMIT,
    STANDBY,
    Holder,
    connect_options,
    lock_key,
    session_name,
    this_process,
)


def test_one_app_one_key_and_other_apps_other_keys_all_fitting_int4() -> None:
    assert lock_key("hotline") == lock_key("hotline")
    assert lock_key("hotline")[1] != lock_key("hotline-b")[1]
    assert lock_key("hotline")[0] == lock_key("other")[0]  # hotline's namespace, whatever the app
    for key in (*lock_key("hotline"), *lock_key("x" * 200)):
        assert 0 <= key < 2**31


def test_a_session_name_says_the_role_and_fits_postgresqls_63_bytes() -> None:
    assert session_name(STANDBY, "123@host") == "hotline standby 123@host"
    assert len(session_name(ACTIVE, "123@" + "h" * 100)) == NAME_LIMIT
    pid, _, host = this_process().partition("@")
    assert pid.isdigit() and host


def test_the_lock_connection_adds_keepalives_the_dsn_does_not_set_itself() -> None:
    assert connect_options("host=db dbname=hotline") == KEEPALIVES
    own = connect_options("postgresql://h@db/hotline?keepalives_idle=30&tcp_user_timeout=40000")
    assert "keepalives_idle" not in own and "tcp_user_timeout" not in own
    assert own["keepalives_count"] == KEEPALIVES["keepalives_count"]


def test_the_holder_is_described_by_its_process_host_address_and_since_when() -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    holder = Holder(77, "hotline active 4242@node-a", "10.0.0.5", since)
    assert holder.describe() == "4242@node-a from 10.0.0.5 since 2026-01-02 03:04:05 UTC"
    assert Holder(77, "", None, None).describe() == "backend 77"
