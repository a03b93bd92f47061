"""sipp as a real SIP caller against the lab, one subprocess per call (or per batch)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hotline.lab import sipp as lab_sipp
from hotline.lab.asterisk_conf import TRUNK_ADDRESS, VIDEO_PHONE_ADDRESS

SCENARIOS = Path(__file__).parent / "scenarios"
INJECTION_DIR = Path(tempfile.mkdtemp(prefix="hotline-sipp-"))
ASTERISK_SIP = "127.0.0.1:5060"
# Where callers send from: the lab's carrier (and its SIP video phone) are known by address.
TRUNK = TRUNK_ADDRESS
VIDEO_PHONE = VIDEO_PHONE_ADDRESS


@dataclass(frozen=True)
class SippRun:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def free_udp_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def start_call(number: str, scenario: str = "caller_until_bye.xml", *, caller: str = "+74957654321",
               caller_name: str = "Test Caller", hold_ms: int = 300,
               timeout_s: int = 30, source: str = TRUNK,
               more_fields: tuple[str, ...] = (), media_port: int | None = None) -> subprocess.Popen[str]:
    """Place one call in the background, from the lab's carrier (`source`: VIDEO_PHONE for the
    video phone); `finish()` waits for it. caller_hangs_up.xml hangs up `hold_ms` after it is
    answered. `more_fields` follow as field3, field4, ...; `media_port`: its RTP port (default:
    a free one)."""
    inf = INJECTION_DIR / f"caller-{uuid.uuid4().hex[:8]}.csv"
    inf.write_text(f"SEQUENTIAL\n{';'.join((caller, caller_name, str(hold_ms), *more_fields))};\n")
    cmd = ["sipp", ASTERISK_SIP, "-sf", str(SCENARIOS / scenario), "-s", number, "-inf", str(inf),
           "-m", "1", "-i", source, "-p", str(free_udp_port(source)),
           "-mp", str(media_port or free_udp_port(source)),
           "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def start_call_as(number: str, identity: Mapping[str, str], *, hold_ms: int = 300,
                  scenario: str = "caller_with_identity.xml", transport: str = "u1",
                  timeout_s: int = 30, source: str = TRUNK) -> subprocess.Popen[str]:
    """A caller whose identity (the -key values of `scenario`: caller_name, caller_user, customer,
    switch) is raw bytes as the test gives them, over UDP ("u1") or TCP ("t1"); it hangs up
    `hold_ms` after it is answered. Arguments are bytes on the command line, so anything but NUL
    reaches the wire as is."""
    inf = INJECTION_DIR / f"identity-{uuid.uuid4().hex[:8]}.csv"
    inf.write_text(f"SEQUENTIAL\n{hold_ms};\n")
    keys = [arg for name, value in identity.items() for arg in ("-key", name, value)]
    cmd = ["sipp", ASTERISK_SIP, "-sf", str(SCENARIOS / scenario), "-s", number, "-inf", str(inf),
           "-m", "1", "-i", source, "-p", str(free_udp_port(source)), "-mp", str(free_udp_port(source)),
           "-t", transport, *keys, "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", stdin=subprocess.DEVNULL, cwd=INJECTION_DIR)


def start_flooding_keys(number: str, key: str, presses: int, *, first_ms: int = 500, stay_ms: int = 500,
                        caller: str = "+79165550000", timeout_s: int = 120) -> subprocess.Popen[str]:
    """A caller that is answered, presses `key` `presses` times by SIP INFO, each as soon as the
    last one's 200 came, stays `stay_ms` and hangs up (caller_floods_keys.xml)."""
    inf = INJECTION_DIR / f"flood-{uuid.uuid4().hex[:8]}.csv"
    inf.write_text(f"SEQUENTIAL\n{caller};Key Flood;{key};{presses};{first_ms};{stay_ms};\n")
    cmd = ["sipp", ASTERISK_SIP, "-sf", str(SCENARIOS / "caller_floods_keys.xml"), "-s", number,
           "-inf", str(inf), "-m", "1", "-i", TRUNK, "-p", str(free_udp_port(TRUNK)),
           "-mp", str(free_udp_port(TRUNK)), "-base_cseq", "2", "-timeout", f"{timeout_s}s", "-timeout_error",
           "-trace_err", "-error_file", str(inf.with_suffix(".errors")), "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, cwd=INJECTION_DIR)


def finish(proc: subprocess.Popen[str], timeout_s: float = 40) -> SippRun:
    out, _ = proc.communicate(timeout=timeout_s)
    return SippRun(proc.returncode, out)


def call(number: str, scenario: str = "caller_until_bye.xml", **kwargs: object) -> SippRun:
    return finish(start_call(number, scenario, **kwargs))  # type: ignore[arg-type]


def agent_phone(endpoint: str, password: str, *, ring_ms: int = 300, calls: int = 1,
                scenario: str = "agent_answers.xml", timeout_s: int = 60,
                more_fields: tuple[str, ...] = (), messages: Path | None = None,
                places_calls: bool = False, media_port: int | None = None) -> subprocess.Popen[str]:
    """A registered agent phone that answers `calls` calls after `ring_ms` of ringing: one sipp
    registers from a port (answering Asterisk's first qualify) and exits, a sipp UAS then
    listens on that same port. The next qualify comes 30 s later: a phone is for one short test.
    `more_fields` follow as field2, field3, ...; `messages`: a file for every SIP message it
    sent and received (sipp's -trace_msg); `places_calls`: it also dials (a consult call), answering
    Asterisk's challenge with the endpoint and its password (`[authentication]`, -au/-ap);
    `media_port`: its RTP port (default: a free one)."""
    port = free_udp_port()
    inf = INJECTION_DIR / f"agent-{uuid.uuid4().hex[:8]}.csv"
    inf.write_text(f"SEQUENTIAL\n{';'.join((endpoint, str(ring_ms), *more_fields))};\n")
    common = ["-inf", str(inf), "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-timeout_error"]
    if messages is not None:
        common += ["-trace_msg", "-message_file", str(messages)]
    if places_calls:
        common += ["-au", endpoint, "-ap", password]
    lab_sipp.register(endpoint, password, port)
    cmd = ["sipp", "-sf", str(SCENARIOS / scenario), "-aa", "-m", str(calls),
           "-mp", str(media_port or free_udp_port()),
           "-timeout", f"{timeout_s}s", *common]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, cwd=INJECTION_DIR)


def agent_dials(endpoint: str, password: str, extension: str, *,
                scenario: str = "agent_dials_refused.xml", timeout_s: int = 20) -> SippRun:
    """An agent's phone dials `extension` from its own endpoint (digest auth as that endpoint);
    agent_dials_refused.xml passes when the answer is 403 Forbidden."""
    port = free_udp_port()
    cmd = ["sipp", ASTERISK_SIP, "-sf", str(SCENARIOS / scenario), "-s", extension, "-m", "1",
           "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_udp_port()), "-key", "me", endpoint,
           "-au", endpoint, "-ap", password, "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin"]
    return finish(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   stdin=subprocess.DEVNULL, cwd=INJECTION_DIR), timeout_s + 10)


def start_dialling(endpoint: str, password: str, extension: str, scenario: Path, *,
                   media_port: int | None = None, timeout_s: int = 60) -> subprocess.Popen[str]:
    """agent_dials in the background, with `scenario` (a path) and the RTP port Asterisk sends to
    (`media_port`): a supervisor's phone dialling a feature code (supervisor_dials.xml, which
    stays on the line until Asterisk's BYE); `finish()` waits for it."""
    cmd = ["sipp", ASTERISK_SIP, "-sf", str(scenario), "-s", extension, "-m", "1",
           "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(media_port or free_udp_port()),
           "-key", "me", endpoint, "-au", endpoint, "-ap", password,
           "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, cwd=INJECTION_DIR)


def press_keys(number: str, *keys: str, first_ms: int = 1000, gap_ms: int = 1500,
               timeout_s: int = 20) -> SippRun:
    """One caller that is answered, presses `keys` (up to three, by SIP INFO), then waits for BYE.
    The defaults suit menus with short prompts: the first key after ~0.4 s of prompt, inside a
    2 s timeout; the next keys past the following prompt, inside the next timeout."""
    return finish(start_pressing_keys(number, *keys, first_ms=first_ms, gap_ms=gap_ms, timeout_s=timeout_s))


def start_pressing_keys(number: str, *keys: str, first_ms: int = 1000, gap_ms: int = 1500,
                        timeout_s: int = 20, caller: str = "+79165551234") -> subprocess.Popen[str]:
    """press_keys in the background; `finish()` waits for it."""
    fields = [*keys, "-", "-", "-"][:3]
    inf = INJECTION_DIR / f"keys-{uuid.uuid4().hex[:8]}.csv"
    inf.write_text(f"SEQUENTIAL\n{caller};IVR Caller;{';'.join(fields)};{first_ms};{gap_ms};\n")
    cmd = ["sipp", ASTERISK_SIP, "-sf", str(SCENARIOS / "caller_presses_keys.xml"),
           "-s", number, "-inf", str(inf), "-m", "1", "-i", TRUNK,
           "-p", str(free_udp_port(TRUNK)), "-mp", str(free_udp_port(TRUNK)),
           "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, cwd=INJECTION_DIR)
