"""sipp as a real SIP caller against the lab, one subprocess per call (or per batch)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"
INJECTION_DIR = Path(tempfile.mkdtemp(prefix="hotline-sipp-"))
ASTERISK_SIP = "127.0.0.1:5060"


@dataclass(frozen=True)
class SippRun:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_call(number: str, scenario: str = "caller_until_bye.xml", *, caller: str = "+74957654321",
               caller_name: str = "Test Caller", timeout_s: int = 30) -> subprocess.Popen[str]:
    """Place one call in the background; `finish()` waits for it."""
    inf = INJECTION_DIR / f"caller-{uuid.uuid4().hex[:8]}.csv"
    inf.write_text(f"SEQUENTIAL\n{caller};{caller_name};\n")
    cmd = ["sipp", ASTERISK_SIP, "-sf", str(SCENARIOS / scenario), "-s", number, "-inf", str(inf),
           "-m", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port()),
           "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen[str], timeout_s: float = 40) -> SippRun:
    out, _ = proc.communicate(timeout=timeout_s)
    return SippRun(proc.returncode, out)


def call(number: str, scenario: str = "caller_until_bye.xml", **kwargs: object) -> SippRun:
    return finish(start_call(number, scenario, **kwargs))  # type: ignore[arg-type]
