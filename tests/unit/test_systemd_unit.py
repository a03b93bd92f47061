"""deploy/hotline.service: systemd accepts it as written, and it says what the README promises."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "hotline.service"
INSTALLED = "/opt/hotline/bin/hotline"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_restarts_runs_as_its_own_user_checks_first_and_reads_secrets_from_a_file() -> None:
    s = service()
    assert s["Restart"] == "always"
    assert s["User"] == "hotline" and s["Group"] == "hotline"
    assert s["ExecStartPre"] == f"{INSTALLED} doctor --starting"
    assert s["ExecStart"] == f"{INSTALLED} run"
    assert s["EnvironmentFile"] == "/etc/hotline/hotline.env"
    # the one place it writes, created for it: the daemon refuses to start without its spool
    assert s["StateDirectory"] == "hotline" and s["Environment"] == "HOTLINE_SPOOL_DIR=/var/lib/hotline/spool"
    assert "HOTLINE_DSN" not in UNIT.read_text().split("[Service]")[1]  # no secret in the unit itself
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "CapabilityBoundingSet": ""}.items():
        assert s[key] == value, key


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze on this machine")
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    # verify checks that the commands exist: this checkout's hotline stands in for /opt/hotline's
    hotline = Path(sys.executable).parent / "hotline"
    assert hotline.exists()
    unit = tmp_path / "hotline.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(hotline)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
