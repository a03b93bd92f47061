"""`hotline doctor` against the lab, as an operator runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hotline.lab import Lab

from support.cli import hotline_cli
from support.daemon import DaemonProcess

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-centre.toml"
CHECKS = ["database", "ami", "ari", "ari exposure", "asterisk modules", "ari.conf", "sip websocket",
          "dialplan", "included files", "trunks", "nodes", "prompts"]


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotline", "doctor", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def checked(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    """(verdict, check name) of each line doctor printed."""
    return [(line[:4].strip(), line[5:].partition(":")[0]) for line in result.stdout.splitlines()]


def test_doctor_passes_on_the_lab_with_the_daemon_running(daemon_env: dict[str, str], daemon: DaemonProcess,
                                                          rendered_files_removed_afterwards: Path) -> None:
    applied = hotline_cli(daemon_env, "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    result = doctor(daemon_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert checked(result) == [("ok", name) for name in CHECKS]
    lines = result.stdout.splitlines()
    assert "migrated" in lines[0] and "Asterisk 22." in lines[1] and "registered" in lines[2]
    assert lines[3] == ("ok   ari exposure: Asterisk's HTTP server (ARI) listens on loopback only: "
                        "127.0.0.1:8088")
    assert lines[8] == ("ok   included files: Asterisk has read pjsip_hotline.conf, extensions_hotline.conf")
    assert lines[9] == "ok   trunks: none provisioned: nothing is dialled to outside numbers"
    assert lines[10].startswith("ok   nodes: none provisioned: the one Asterisk of ari_url/ami_url, as node ")


def test_doctor_checks_that_asterisk_has_each_trunks_endpoint(daemon_env: dict[str, str]) -> None:
    added = hotline_cli(daemon_env, "provision", str(EXAMPLE))
    assert added.returncode == 0, added.stdout + added.stderr
    assert "ok   trunks: carrier through endpoint sipp-carrier" in doctor(daemon_env).stdout
    moved = hotline_cli(daemon_env, "trunk", "set", "carrier", "--endpoint", "no-such-carrier")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    result = doctor(daemon_env)
    assert result.returncode == 1
    assert ("FAIL trunks: trunk carrier: endpoint 'no-such-carrier' is not loaded in Asterisk"
            in result.stdout), result.stdout


@contextmanager
def lab_file_changed(lab: Lab, name: str, change: Callable[[str], str], reload: str,
                     restored: Callable[[], bool]) -> Iterator[None]:
    """The lab's config file `name` changed and reloaded; put back and reloaded afterwards
    whatever happens, until `restored()` says Asterisk has it again (the next tests need it)."""
    path = lab.conf_dir / name
    original = path.read_bytes()
    try:
        changed = change(original.decode())
        assert changed != original.decode(), f"nothing to remove from {name}"
        path.write_text(changed)
        lab.asterisk_cli(reload)
        yield
    finally:
        path.write_bytes(original)
        lab.asterisk_cli(reload)
        deadline = time.monotonic() + 10
        while not restored():
            if time.monotonic() > deadline:
                lab.restart_asterisk()  # a reload that did not take: start from the files again
                break
            time.sleep(0.2)


def _without_include(text: str) -> str:
    return re.sub(r"^#tryinclude extensions_hotline.conf\n", "", text, flags=re.M)


def _without_ws_transport(text: str) -> str:
    return re.sub(r"^\[transport-ws\]\n(?:(?!\[).*\n)*", "", text, flags=re.M)


@pytest.mark.parametrize(("name", "change", "reload", "probe", "check", "says"), [
    ("extensions.conf", _without_include, "dialplan reload", "dialplan show hotline-agents",
     "included files", "extensions.conf does not include extensions_hotline.conf: add "
                       "`#tryinclude extensions_hotline.conf` at its end"),
    ("pjsip.conf", _without_ws_transport, "module reload res_pjsip.so", "pjsip show transports",
     "sip websocket", "PJSIP transport transport-ws is missing (the browsers' endpoints name it): add "
                      "`[transport-ws]` with `type = transport`, `protocol = ws`, `bind = 127.0.0.1` "
                      "to pjsip.conf and run `module reload res_pjsip.so`"),
], ids=["included-file", "websocket-transport"])
def test_doctor_names_a_missing_prerequisite_and_passes_once_it_is_back(
        lab: Lab, daemon_env: dict[str, str], daemon: DaemonProcess, rendered_files_removed_afterwards: Path,
        name: str, change: Callable[[str], str], reload: str, probe: str, check: str, says: str) -> None:
    applied = hotline_cli(daemon_env, "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    back = {"included files": "hotline-agents", "sip websocket": "transport-ws"}[check]
    with lab_file_changed(lab, name, change, reload, lambda: back in lab.asterisk_cli(probe)):
        result = doctor(daemon_env)
        assert result.returncode == 1, result.stdout + result.stderr
        failed = [line for line in result.stdout.splitlines() if not line.startswith("ok ")]
        assert len(failed) == 1 and failed[0].startswith(f"FAIL {check}: "), result.stdout
        assert failed[0].endswith(says), failed[0]
    result = doctor(daemon_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert checked(result) == [("ok", name) for name in CHECKS]


def test_doctor_fails_clearly_with_a_wrong_ami_secret(daemon_env: dict[str, str]) -> None:
    url = urlsplit(daemon_env["HOTLINE_AMI_URL"])
    wrong = f"ami://{url.username}:not-the-secret@{url.hostname}:{url.port}"
    result = doctor({**daemon_env, "HOTLINE_AMI_URL": wrong})
    assert result.returncode != 0
    ami_line = next(line for line in result.stdout.splitlines() if " ami:" in line)
    assert ami_line.startswith("FAIL") and "secret" in ami_line
    assert "Traceback" not in result.stdout + result.stderr


def test_doctor_fails_when_the_database_is_not_migrated(daemon_env: dict[str, str],
                                                       empty_db_dsn: str) -> None:
    result = doctor({**daemon_env, "HOTLINE_DSN": empty_db_dsn})
    assert result.returncode != 0
    assert "hotline db migrate" in result.stdout.splitlines()[0]
    assert "FAIL trunks: not checked: the database is not migrated" in result.stdout.splitlines()


def test_doctor_says_when_no_daemon_serves_the_stasis_app(daemon_env: dict[str, str]) -> None:
    result = doctor(daemon_env)
    assert result.returncode != 0
    assert "not registered" in result.stdout.splitlines()[2]


def test_doctor_starting_passes_before_the_daemon_runs(daemon_env: dict[str, str]) -> None:
    result = doctor(daemon_env, "--starting")  # systemd's ExecStartPre: no daemon yet
    assert result.returncode == 0, result.stdout + result.stderr
    assert checked(result) == [("ok", name) for name in CHECKS[:4]]
