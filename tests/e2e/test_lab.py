"""The lab for real: Asterisk 22 and PostgreSQL 18 up on 127.0.0.1, with hotline's config."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from hotline.lab import Lab
from hotline.lab.asterisk_conf import TRUNK_ADDRESS
from hotline.lab.ports import AMI_PORT, HTTP_PORT, PG_PORT, SIP_PORT

PROJECT_DIR = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def running_lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab(PROJECT_DIR, progress=lambda line: None)
    if not lab.status().built and not shutil.which("mmdebstrap"):
        pytest.skip("the lab is not built and mmdebstrap is missing (`make setup`)")
    lab.up()
    yield lab  # left running: other e2e tests and the developer reuse it


def ami_login(url: str, secret: str | None = None) -> str:
    """Log in over raw AMI and return Asterisk's response block."""
    parts = urlsplit(url)
    password = unquote(parts.password or "") if secret is None else secret
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"Action: Login\r\nUsername: {parts.username}\r\nSecret: {password}\r\n\r\n"
                     .encode())
        received = b""
        while b"Response:" not in received or not received.endswith(b"\r\n\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.decode()


def ari_get(url: str, path: str, password: str | None = None) -> int:
    parts = urlsplit(url)
    secret = unquote(parts.password or "") if password is None else password
    request = urllib.request.Request(f"http://{parts.hostname}:{parts.port}{path}")
    token = base64.b64encode(f"{parts.username}:{secret}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_up_again_reuses_the_running_asterisk_and_postgresql(running_lab: Lab) -> None:
    before = running_lab.status()
    again = running_lab.up()
    assert again.running()
    assert (again.asterisk_pid, again.postgres_pid) == (before.asterisk_pid, before.postgres_pid)


def test_status_describes_both_daemons_on_the_documented_ports(running_lab: Lab) -> None:
    status = running_lab.status()
    assert status.built and status.running()
    assert status.ports == {"ami": AMI_PORT, "http": HTTP_PORT, "sip": SIP_PORT,
                            "postgres": PG_PORT}
    text = status.describe()
    for port in (AMI_PORT, HTTP_PORT, SIP_PORT, PG_PORT):
        assert f"127.0.0.1:{port}" in text


def test_env_points_everything_at_the_lab(running_lab: Lab) -> None:
    env = running_lab.env()
    assert env["HOTLINE_DSN"].startswith("postgresql://hotline:")
    assert env["HOTLINE_DSN"].endswith(f"@127.0.0.1:{PG_PORT}/hotline")
    assert env["HOTLINE_AMI_URL"].startswith("ami://hotline:")
    assert env["HOTLINE_ARI_URL"].startswith("http://hotline:")
    assert env["HOTLINE_ARI_APP"] == "hotline"
    assert Path(env["HOTLINE_ASTERISK_CONF_DIR"]) == running_lab.conf_dir


def test_the_generated_secrets_are_private_and_stable(running_lab: Lab) -> None:
    secrets_file = running_lab.state_dir / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert running_lab.env() == running_lab.env()
    for name in ("manager_users.conf", "ari_users.conf"):
        assert stat.S_IMODE((running_lab.conf_dir / name).stat().st_mode) == 0o600


def test_the_dsn_connects_as_the_hotline_role(running_lab: Lab) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(running_lab.env()["HOTLINE_DSN"], connect_timeout=10) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == ("hotline", "hotline")
        assert conn.info.server_version >= 180000


def test_the_admin_dsn_can_create_and_drop_a_database(running_lab: Lab) -> None:
    psycopg = pytest.importorskip("psycopg")
    name = f"lab_test_{secrets.token_hex(4)}"
    with psycopg.connect(running_lab.admin_dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"DROP DATABASE {name}")


def test_ami_accepts_the_generated_secret_and_refuses_another(running_lab: Lab) -> None:
    url = running_lab.env()["HOTLINE_AMI_URL"]
    assert "Authentication accepted" in ami_login(url)
    assert "Authentication failed" in ami_login(url, secret="not-the-secret")


def test_ari_answers_with_the_generated_password_and_refuses_another(running_lab: Lab) -> None:
    url = running_lab.env()["HOTLINE_ARI_URL"]
    assert ari_get(url, "/ari/asterisk/info") == 200
    assert ari_get(url, "/ari/asterisk/info", password="not-the-password") == 401


def test_the_ari_password_is_stored_only_as_a_crypt_hash(running_lab: Lab) -> None:
    password = unquote(urlsplit(running_lab.env()["HOTLINE_ARI_URL"]).password or "")
    text = (running_lab.conf_dir / "ari_users.conf").read_text()
    assert password not in text
    assert "password_format = crypt" in text and "password = $6$" in text


def test_the_ami_user_may_do_what_the_daemon_needs_and_not_more(running_lab: Lab) -> None:
    url = running_lab.env()["HOTLINE_AMI_URL"]
    assert "Asterisk 22." in ami_exchange(url, "Action: Command\r\nCommand: core show version")
    assert "AsteriskVersion: 22." in ami_exchange(url, "Action: CoreSettings")
    for refused in ("Action: Originate\r\nChannel: Local/1@hotline-inbound\r\nApplication: Wait",
                    "Action: Setvar\r\nVariable: X\r\nValue: 1", "Action: Redirect\r\nChannel: x"):
        assert "Permission denied" in ami_exchange(url, refused), refused


def ami_exchange(url: str, action: str) -> str:
    """Log in over raw AMI, send one action and return Asterisk's reply to it."""
    parts = urlsplit(url)
    secret = unquote(parts.password or "")
    login = f"Action: Login\r\nUsername: {parts.username}\r\nSecret: {secret}\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"{login}Events: off\r\n\r\n{action}\r\nActionID: probe\r\n\r\n".encode())
        received = b""
        while b"ActionID: probe" not in received or not received.endswith(b"\r\n\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.decode()


def test_asterisk_runs_the_reference_config(running_lab: Lab) -> None:
    cli = running_lab.asterisk_cli
    assert "sipp-trunk" in cli("pjsip show endpoints")
    transports = cli("pjsip show transports")
    assert "transport-udp" in transports and "transport-tcp" in transports
    assert "transport-ws" in transports
    inbound = cli("dialplan show hotline-inbound")
    assert "Stasis(hotline,inbound,${FILTER(--.0-9a-zA-Z_+,${EXTEN})},video=${CHANNEL(videonativeformat)})" \
        in inbound
    stasis = cli("module show like stasis")
    assert "app_stasis.so" in stasis and "Running" in stasis
    assert "res_ari_channels.so" in cli("module show like res_ari")


def test_asterisk_booted_without_errors(running_lab: Lab) -> None:
    log = running_lab.log_paths()["asterisk"].read_text(errors="replace")
    last_boot = log[log.rfind("Asterisk Dynamic Loader Starting"):]
    boot = last_boot[:last_boot.find("Asterisk Ready.")]
    assert " ERROR[" not in boot


def test_up_restores_a_reference_file_removed_from_the_root(running_lab: Lab) -> None:
    target = running_lab.conf_dir / "extensions.conf"
    target.unlink()
    running_lab.up()
    assert target.read_bytes() == (PROJECT_DIR / "dialplan" / "extensions.conf").read_bytes()


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
def test_a_sipp_call_from_the_trunk_enters_the_stasis_application(
        running_lab: Lab, tmp_path: Path) -> None:
    number = f"7{secrets.randbelow(10**9):09d}"
    log = running_lab.log_paths()["asterisk"]
    start = log.stat().st_size if log.exists() else 0  # a long-lived lab's log is large: read what is new
    subprocess.run(["sipp", "-sn", "uac", "-m", "1", "-s", number, "-timeout", "15",
                    "-i", TRUNK_ADDRESS, "-nostdin", f"127.0.0.1:{SIP_PORT}"],
                   cwd=tmp_path, capture_output=True, timeout=30, check=False)
    # An audio call: the dialplan passes the number and its (absent) video codecs.
    wanted = f'"hotline,inbound,{number},video=(nothing)"'

    def new_lines() -> str:
        with log.open("rb") as fh:
            fh.seek(start)
            return fh.read().decode(errors="replace")
    deadline = time.monotonic() + 10
    while wanted not in new_lines() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Stasis(\"PJSIP/sipp-trunk-" in new_lines()
    assert wanted in new_lines()


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
def test_a_dialled_number_cannot_add_stasis_arguments(running_lab: Lab, tmp_path: Path) -> None:
    log = running_lab.log_paths()["asterisk"]
    start = log.stat().st_size if log.exists() else 0
    tag = secrets.token_hex(4)
    subprocess.run(["sipp", "-sn", "uac", "-m", "1", "-s", f"x{tag},customer=c0ffee", "-timeout", "15",
                    "-i", TRUNK_ADDRESS, "-nostdin", f"127.0.0.1:{SIP_PORT}"],
                   cwd=tmp_path, capture_output=True, timeout=30, check=False)
    wanted = f'"hotline,inbound,x{tag}customerc0ffee,video=(nothing)"'
    deadline = time.monotonic() + 10
    while wanted not in new_log_lines(log, start) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert wanted in new_log_lines(log, start)


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
def test_a_from_header_naming_the_video_phone_does_not_make_a_call_the_video_phones(
        running_lab: Lab, tmp_path: Path) -> None:
    # Once any host could claim `From: sipp-video` and hold a line; the video phone is known by its
    # address now, and an unknown host matches no endpoint (there is no anonymous one).
    log = running_lab.log_paths()["asterisk"]
    start = log.stat().st_size if log.exists() else 0
    inf = tmp_path / "caller.csv"
    inf.write_text("SEQUENTIAL\nsipp-video;Forger;300;\n")
    scenario = PROJECT_DIR / "tests/support/scenarios/caller_until_bye.xml"
    run = subprocess.run(["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(scenario), "-s", "video-desk",
                          "-inf", str(inf), "-m", "1", "-i", "127.0.0.1", "-timeout", "10s",
                          "-timeout_error", "-nostdin"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode != 0  # no 200 OK
    deadline = time.monotonic() + 5
    while "No matching endpoint found" not in new_log_lines(log, start) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "No matching endpoint found" in new_log_lines(log, start)
    assert "PJSIP/sipp-video-" not in new_log_lines(log, start)


def new_log_lines(log: Path, start: int) -> str:
    with log.open("rb") as fh:
        fh.seek(start)
        return fh.read().decode(errors="replace")


def test_restart_asterisk_brings_up_a_new_daemon(running_lab: Lab) -> None:
    before = running_lab.status()
    running_lab.restart_asterisk()
    after = running_lab.status()
    assert after.running()
    assert after.asterisk_pid != before.asterisk_pid
    assert after.postgres_pid == before.postgres_pid
    assert "Asterisk has fully booted" in running_lab.asterisk_cli("core waitfullybooted")
