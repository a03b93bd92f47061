"""`hotline lab phones`: a sipp phone for each agent of a provisioning file that has a SIP password
there, registered with the lab's Asterisk and answering every call, in the background. Their pids
are kept in a pidfile, and only processes that are still such phones are ever stopped."""

from __future__ import annotations

import os
import signal
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hotline.errors import ProvisionError
from hotline.lab.sipp import SCENARIOS, answer, free_udp_port, register, work_dir
from hotline.provision import parse

EXPIRES_S = 3600  # how long a registration lasts: run `hotline lab phones` again after an hour
CALLS = 10_000_000  # as many calls as a phone answers before it exits: in effect, all


@dataclass(frozen=True)
class PhoneSpec:
    agent: str
    endpoint: str
    password: str


def default_pidfile() -> Path:
    return Path(os.environ.get("HOTLINE_LAB_PHONES_PIDFILE") or work_dir() / "phones.pid")


def phones_in(file: Path, region: str) -> tuple[list[PhoneSpec], list[str]]:
    """The agents of `file` a sipp phone can stand in for, and one line per agent it cannot."""
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"{file}: not a valid TOML file: {exc}") from None
    phones, skipped = [], []
    # The clear password, as the file gives it: provisioning keeps only its digest (HA1).
    raw = doc.get("agents", {}) if isinstance(doc.get("agents"), dict) else {}
    for agent in parse.provisioning(doc, region).agents.values():
        password = raw.get(agent.name, {}).get("password") if isinstance(raw.get(agent.name), dict) else None
        if "webrtc" in agent.capabilities:
            skipped.append(f"{agent.name}: a WebRTC agent, who answers in the browser (/agent)")
        elif not isinstance(password, str) or not password:
            skipped.append(f"{agent.name}: no password in {file} (a generated one is not readable back)")
        else:
            phones.append(PhoneSpec(agent.name, agent.endpoint, password))
    return phones, skipped


def start(phones: list[PhoneSpec], pidfile: Path, ring_ms: int) -> None:
    """Register and start every phone (after stopping those of `pidfile`); LabError when one
    cannot register, with the phones started so far left running and recorded."""
    stop(pidfile)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with pidfile.open("w") as out:
        for phone in phones:
            port = free_udp_port()
            register(phone.endpoint, phone.password, port, EXPIRES_S)
            proc = answer(phone.endpoint, port, ring_ms=ring_ms, calls=CALLS, detached=True)
            out.write(f"{proc.pid} {phone.endpoint}\n")
            out.flush()


def stop(pidfile: Path) -> list[str]:
    """Stop the phones `pidfile` names; the endpoints stopped."""
    if not pidfile.exists():
        return []
    stopped = []
    for line in pidfile.read_text().splitlines():
        pid, _, endpoint = line.partition(" ")
        if pid.isdigit() and _is_phone(int(pid)):
            os.kill(int(pid), signal.SIGTERM)
            _reap(int(pid))
            stopped.append(endpoint)
    pidfile.unlink()
    return stopped


def _is_phone(pid: int) -> bool:
    """Is `pid` still one of our sipp phones (and not a process that reused the number)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(SCENARIOS / "phone_answers.xml").encode() in cmdline


def _reap(pid: int) -> None:
    """A phone this process started is its child: wait for it, so no zombie is left."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # started by an earlier `hotline lab phones`: its init reaps it

