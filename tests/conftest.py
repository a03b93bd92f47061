"""Fixtures for tests that need the lab: a real Asterisk 22 and PostgreSQL, brought up once."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from xdist.remote import Producer

from hotline.lab import Lab
from hotline.store.migrations import migrate

from support import two_labs
from support.daemon import DaemonProcess, free_tcp_port
from support.database_pool import DatabasePool, drop
from support.provisioning import BASE, provision
from support.two_labs import RootNetnsOnGw0

PROJECT_DIR = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test`: -n 2), worker gwN runs on lab N+1 (support/two_labs.py):
    it enters that lab's network namespace here, before any test opens a socket."""
    two_labs.check_labs_for_workers(config)
    two_labs.enter_lab_of_worker(config)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> RootNetnsOnGw0 | None:
    """Whatever --dist says (but `each`): one test at a time to whichever worker is free, the tests
    that need the machine's network to gw0 only (support/two_labs.py)."""
    return None if config.getvalue("dist") == "each" else RootNetnsOnGw0(config, log)
# Per test session, so two sessions on one lab (a developer and CI, say) never drop each other's.
TEMPLATE_DB = f"hotline_test_template_{os.getpid()}"
RENDERED_FILES = ("pjsip_hotline.conf", "extensions_hotline.conf")


@pytest.fixture(scope="session")
def lab() -> Lab:
    """The lab, up (built on first use, reused after); fails loudly when it cannot start. Which
    lab: $HOTLINE_LAB_INSTANCE, set per xdist worker by pytest_configure (1 without xdist)."""
    the_lab = Lab(PROJECT_DIR)
    the_lab.up()
    _forget_rendered_config(the_lab)
    return the_lab


@pytest.fixture
def rendered_files_removed_afterwards(lab: Lab) -> Iterator[Path]:
    """For tests that run `hotline apply` on the lab: the next test starts from the reference
    config again. Yields the lab's config directory."""
    yield lab.conf_dir
    _forget_rendered_config(lab)


def _forget_rendered_config(lab: Lab) -> None:
    """Tests start from the reference config only: what `hotline apply` rendered into the lab
    earlier (`make run` applies the example) would route their numbers differently."""
    removed = [f for f in RENDERED_FILES if (lab.conf_dir / f).exists()]
    for name in removed:
        (lab.conf_dir / name).unlink()
    if removed:
        lab.asterisk_cli("module reload res_pjsip.so")
        lab.asterisk_cli("dialplan reload")


@pytest.fixture(scope="session")
def lab_env(lab: Lab) -> dict[str, str]:
    return lab.env()


def _dsn_for(admin_dsn: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)


@pytest.fixture(scope="session")
def template_db(lab: Lab) -> Iterator[str]:
    """A migrated database that each test's own database is copied from (fast, isolated)."""
    admin = lab.admin_dsn()
    with psycopg.connect(admin, autocommit=True) as conn:
        _drop_templates_of_dead_sessions(conn)
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")

    async def go() -> None:
        conn = await psycopg.AsyncConnection.connect(_dsn_for(admin, TEMPLATE_DB), autocommit=True)
        async with conn:
            await migrate(conn)

    asyncio.run(go())
    yield TEMPLATE_DB
    drop(admin, TEMPLATE_DB)


@pytest.fixture(scope="session")
def database_pool(lab: Lab, template_db: str) -> Iterator[DatabasePool]:
    """Copies of the template made ahead, and used ones dropped, beside the tests
    (support/database_pool.py)."""
    admin = lab.admin_dsn()
    pool = DatabasePool(admin, template_db, lambda name: _dsn_for(admin, name))
    yield pool
    pool.close()


def _drop_templates_of_dead_sessions(conn: psycopg.Connection) -> None:
    """A session that was killed never dropped its template; its pid names it."""
    rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'hotline_test_template_%'")
    for (name,) in rows.fetchall():
        pid = name.rsplit("_", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def scratch_database(lab: Lab, template: str | None) -> Iterator[str]:
    """A database of one test's own (a copy of `template`, or empty), dropped afterwards."""
    admin = lab.admin_dsn()
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    try:
        yield _dsn_for(admin, name)
    finally:
        drop(admin, name)


@pytest.fixture
def db_dsn(database_pool: DatabasePool) -> Iterator[str]:
    """A database of this test's own, migrated."""
    dsn = database_pool.take()
    yield dsn
    database_pool.give_back(dsn)


@pytest.fixture
def empty_db_dsn(lab: Lab) -> Iterator[str]:
    """A database with nothing in it (for migration tests)."""
    with scratch_database(lab, None) as dsn:
        yield dsn


@pytest.fixture
def daemon_env(lab_env: dict[str, str], db_dsn: str, tmp_path: Path) -> dict[str, str]:
    """The settings `hotline run` gets in this test: the lab, with this test's database."""
    return {**lab_env, "HOTLINE_DSN": db_dsn, "HOTLINE_NODE": "lab-node",
            "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
            "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"),
            "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}"}


@pytest.fixture
def daemon(request: pytest.FixtureRequest, lab: Lab, daemon_env: dict[str, str], db_dsn: str,
           tmp_path: Path) -> Iterator[DaemonProcess]:
    """`hotline run` on this test's database, provisioned first with the test's
    `@pytest.mark.provision(TOML)` or else with the base provisioning (support/provisioning.py)."""
    marker = request.node.get_closest_marker("provision")
    provision(db_dsn, marker.args[0] if marker else BASE)
    # A call an earlier test left in Stasis would be adopted by this daemon and hold its lines.
    lab.asterisk_cli("channel request hangup all")
    proc = DaemonProcess(daemon_env, tmp_path / "daemon.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def db(db_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        yield conn

