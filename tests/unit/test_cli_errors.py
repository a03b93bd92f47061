"""The root group maps errors once: whatever group a command sits in, a HotlineError or an outage
of the database or of Asterisk is one line on stderr and exit 1, never a traceback."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg_pool import PoolTimeout

from hotline.cli import agents, main, provision, stats
from hotline.errors import ProvisionError

DSN = "postgresql://hotline:secret@db.example:5433/hotline"

# (what a command raises, the line the user gets)
FAILURES: list[tuple[BaseException, str]] = [
    (ProvisionError("queue 'nosuch' does not exist"), "Error: queue 'nosuch' does not exist"),
    (psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly\n"
                              "\tThis probably means the server terminated abnormally"),
     "Error: database db.example:5433/hotline went away: consuming input failed: "
     "server closed the connection unexpectedly"),
    (psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
     "Error: database db.example:5433/hotline: terminating connection due to administrator command"),
    (psycopg.errors.UndefinedTable('relation "queues" does not exist'),
     'Error: database db.example:5433/hotline: relation "queues" does not exist'),
    (PoolTimeout("couldn't get a connection after 10.00 sec"),
     "Error: database db.example:5433/hotline unreachable: couldn't get a connection after 10.00 sec"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5038)"),
     "Error: connection failed: [Errno 111] Connect call failed ('127.0.0.1', 5038)"),
    (PermissionError(errno.EACCES, "Permission denied", "/etc/asterisk/pjsip_hotline.conf"),
     "Error: /etc/asterisk/pjsip_hotline.conf: Permission denied"),
]


def failing(exc: BaseException) -> click.Command:
    def fail() -> None:
        raise exc
    return click.Command("fail", callback=fail)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Callable[[click.Group, BaseException], None]:
    """Put a command that raises into one of the real groups, for this test only."""
    def put(group: click.Group, exc: BaseException) -> None:
        monkeypatch.setitem(group.commands, "fail", failing(exc))
    return put


def invoke(*args: str) -> Result:
    # catch_exceptions=False: an exception the root group lets through fails the test as it is.
    return CliRunner().invoke(main, list(args), env={"HOTLINE_DSN": DSN}, catch_exceptions=False)


def assert_one_line(result: Result, line: str) -> None:
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""


# Where the failing command is put: the root group itself, and sub-groups of three modules.
GROUPS = {"root": ([], main), "queue": (["queue"], provision.queue), "agent": (["agent"], agents.agent),
          "stats": (["stats"], stats.stats_group)}


@pytest.mark.parametrize(("exc", "line"), [pytest.param(e, t, id=type(e).__name__) for e, t in FAILURES])
@pytest.mark.parametrize("group", GROUPS)
def test_every_failure_is_one_line_and_exit_1_in_every_group(
        install: Callable[[click.Group, BaseException], None], exc: BaseException, line: str,
        group: str) -> None:
    path, where = GROUPS[group]
    install(where, exc)
    assert_one_line(invoke(*path, "fail"), line)


def test_a_broken_pipe_is_left_to_click_which_ends_quietly(
        install: Callable[[click.Group, BaseException], None]) -> None:
    install(provision.queue, BrokenPipeError(errno.EPIPE, "Broken pipe"))
    result = invoke("queue", "fail")
    assert result.exit_code == 1
    assert result.stderr == ""


def test_a_settings_file_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "hotline.toml"
    result = CliRunner().invoke(main, ["--config", str(missing), "queue", "list"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: config file {missing} does not exist"]


def test_a_missing_dsn_names_the_setting() -> None:
    result = CliRunner().invoke(main, ["agent", "status"], env={"HOTLINE_DSN": ""},
                                catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("Error: dsn is not set: set HOTLINE_DSN")


@pytest.mark.parametrize(("args", "line"), [
    (["--dsn", "postgresql://hotline:s3cret@db.example/hotline"],
     "Error: --dsn carries a password, which any user sees in `ps`: give it in HOTLINE_DSN, as dsn in "
     "the TOML file, or in a PGPASSFILE (~/.pgpass)"),
    (["--dsn", "host=db.example password=s3cret dbname=hotline"],
     "Error: --dsn carries a password, which any user sees in `ps`: give it in HOTLINE_DSN, as dsn in "
     "the TOML file, or in a PGPASSFILE (~/.pgpass)"),
    (["--ami-url", "ami://hotline:s3cret@127.0.0.1:5038"],
     "Error: --ami-url is not taken on the command line (its secret would show in `ps`): set "
     "HOTLINE_AMI_URL or ami_url in the TOML file"),
    (["--ari-url", "http://hotline:s3cret@127.0.0.1:8088"],
     "Error: --ari-url is not taken on the command line (its secret would show in `ps`): set "
     "HOTLINE_ARI_URL or ari_url in the TOML file"),
])
def test_a_secret_on_the_command_line_is_refused(args: list[str], line: str) -> None:
    result = CliRunner().invoke(main, [*args, "agent", "list"], catch_exceptions=False)
    assert_one_line(result, line)
    assert "s3cret" not in result.output


def test_a_dsn_without_a_password_is_taken_on_the_command_line() -> None:
    result = CliRunner().invoke(main, ["--dsn", "postgresql://hotline@127.0.0.1:1/nosuch", "agent", "list"],
                                catch_exceptions=False)
    assert result.exit_code == 1
    assert "database 127.0.0.1:1/nosuch unreachable" in result.output  # it was used, and it is down
