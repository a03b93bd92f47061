"""`hotline ...` as an operator types it: a subprocess with the test's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def hotline_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotline", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
