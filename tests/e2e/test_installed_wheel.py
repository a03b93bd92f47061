"""hotline as a deployment gets it: the wheel `python -m build` makes from the tracked files alone
(what a clean checkout holds), installed into a virtualenv of its own outside the checkout, and run
from there against the lab: its CLI, the migrations, the daemon, its pages with the bundled SIP
client, and one call answered by an agent."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support.checks import rows
from support.daemon import DaemonProcess, free_tcp_port

# pip needs the machine's network: under xdist on gw0 only (support/two_labs.py ROOT_NETNS_FILES).
pytestmark = pytest.mark.lab

PROJECT_DIR = Path(__file__).resolve().parents[2]
BUNDLE = PROJECT_DIR / "hotline" / "web" / "static" / "jssip.min.js"


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    build_output: str
    workdir: Path  # where its commands run: no checkout anywhere near

    @property
    def hotline(self) -> str:
        return str(self.venv / "bin" / "hotline")


def _outside_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without anything that would put the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, **(extra or {})}


def _tracked_copy(dest: Path) -> Path:
    """The files git tracks (as they are in the working tree), nothing else: a clean checkout,
    so a bundle that is built but not committed cannot slip into the wheel."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = PROJECT_DIR / name
        if src.is_file():  # a tracked file deleted in the working tree is not there
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Built and installed once per session (about a minute, most of it pip)."""
    root = tmp_path_factory.mktemp("deployment")
    source = _tracked_copy(root / "checkout")
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(root / "dist"), str(source)],
                           env=_outside_env(), capture_output=True, text=True, timeout=600)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    [wheel] = (root / "dist").glob("hotline-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], env=_outside_env(),
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    shutil.rmtree(source)  # nothing of the sources is left to import by accident
    workdir = root / "site"
    workdir.mkdir()
    return Installed(venv, wheel, output, workdir)


def test_the_build_warns_of_nothing_deprecated_and_the_metadata_is_current(installed: Installed) -> None:
    assert "Successfully built" in installed.build_output
    assert not re.search(r"deprecat", installed.build_output, re.I), installed.build_output
    meta = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                           "from importlib.metadata import metadata; m = metadata('hotline'); "
                           "print(m['License-Expression']); print(*m.get_all('License-File'), sep='\\n')"],
                          cwd=installed.workdir, env=_outside_env(), capture_output=True, text=True,
                          check=True)
    assert meta.stdout.split() == ["Apache-2.0", "LICENSE", "hotline/web/static/jssip.min.js.LICENSE.txt"]


def test_the_installed_package_runs_from_its_own_virtualenv_only(installed: Installed) -> None:
    done = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                           "import sys, hotline; print(hotline.__file__); print(*sys.path, sep='\\n')"],
                          cwd=installed.workdir, env=_outside_env(), capture_output=True, text=True,
                          check=True)
    module, *path = done.stdout.splitlines()
    assert Path(module).is_relative_to(installed.venv), module
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(PROJECT_DIR)], path
    helped = subprocess.run([installed.hotline, "--help"], cwd=installed.workdir, env=_outside_env(),
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: hotline"), helped.stderr
    for command in ("run", "doctor", "db", "apply", "config", "provision"):
        assert re.search(rf"^  {command}\b", helped.stdout, re.M), helped.stdout


@pytest.fixture
def deployment_env(lab_env: dict[str, str], empty_db_dsn: str, tmp_path: Path) -> dict[str, str]:
    return _outside_env({**lab_env, "HOTLINE_DSN": empty_db_dsn, "HOTLINE_NODE": "installed",
                         "HOTLINE_WEB_LISTEN": f"127.0.0.1:{free_tcp_port()}",
                         "HOTLINE_HEALTH_LISTEN": f"127.0.0.1:{free_tcp_port()}",
                         "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"),
                         "HOTLINE_LAB_PHONES_PIDFILE": str(tmp_path / "phones.pid")})


@pytest.fixture
def lab_phones_stopped_afterwards(installed: Installed, deployment_env: dict[str, str]) -> Iterator[None]:
    yield
    subprocess.run([installed.hotline, "lab", "phones", "--stop"], cwd=installed.workdir,
                   env=deployment_env, capture_output=True, timeout=60)


def test_the_installed_daemon_serves_its_pages_and_a_call_from_an_empty_database(
        installed: Installed, lab: Lab, deployment_env: dict[str, str], empty_db_dsn: str,
        tmp_path: Path, rendered_files_removed_afterwards: Path, lab_phones_stopped_afterwards: None) -> None:
    provisioning = installed.workdir / "contact-centre.toml"  # the operator's own file
    shutil.copy(PROJECT_DIR / "examples" / "contact-centre.toml", provisioning)

    def hotline(*args: str) -> str:
        done = subprocess.run([installed.hotline, *args], cwd=installed.workdir, env=deployment_env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"hotline {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    assert "applied" in hotline("db", "migrate").lower()
    hotline("provision", provisioning.name)
    hotline("apply")
    hotline("lab", "phones", provisioning.name)
    lab.asterisk_cli("channel request hangup all")
    daemon = DaemonProcess(deployment_env, tmp_path / "daemon.log", hotline=[installed.hotline],
                           cwd=installed.workdir)
    try:
        daemon.start()
        web = f"http://{deployment_env['HOTLINE_WEB_LISTEN']}"
        with urllib.request.urlopen(f"{web}/call/video-support", timeout=10) as page:
            html = page.read().decode()
        assert '<script src="/static/jssip.min.js"></script>' in html
        assert "bundle is missing" not in html
        with urllib.request.urlopen(f"{web}/static/jssip.min.js", timeout=10) as bundle:
            served = bundle.read()
        assert hashlib.sha256(served).hexdigest() == hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
        called = hotline("lab", "call", "88005553535", "--seconds", "2")
        checked = hotline("doctor")  # the lab is set up as docs/deploy.md says: every check passes
    finally:
        daemon.stop()
    assert "answered by agent petrova" in called, called + daemon.log()
    checks = [line.split(":")[0][5:] for line in checked.splitlines()]
    assert [line[:4] for line in checked.splitlines()] == ["ok  "] * len(checks), checked
    assert {"database", "ami", "ari", "dialplan", "included files", "trunks"} <= set(checks), checked
    with psycopg.connect(empty_db_dsn, autocommit=True) as db:
        hop = rows(db, "SELECT h.end_reason, a.name AS agent FROM hops h JOIN agents a ON a.id = h.agent_id")
    assert hop == [{"end_reason": "completed", "agent": "petrova"}]
