"""The Kamailio configuration the project ships (deploy/kamailio/): Debian's kamailio accepts it
with the operator's sample of kamailio-local.cfg, as an operator starts from. (The nodes lab runs
it with the lab's own addresses: tests/e2e/test_kamailio_nodes.py.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kamailio"

pytestmark = pytest.mark.skipif(shutil.which("kamailio") is None,
                                reason="kamailio is not installed (make test-packages)")


def test_kamailio_accepts_the_shipped_config_with_the_sample_local_file(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "kamailio.cfg", tmp_path / "kamailio.cfg")
    shutil.copy(DEPLOY / "kamailio-local.cfg.sample", tmp_path / "kamailio-local.cfg")
    done = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "kamailio.cfg")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "config file ok" in done.stderr, done.stderr[-3000:]


def test_without_its_local_file_the_config_is_refused(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "kamailio.cfg", tmp_path / "kamailio.cfg")
    done = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "kamailio.cfg")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
