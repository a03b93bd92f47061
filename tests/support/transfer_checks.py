"""What the transfer lab tests look at: agent phones started and stopped, who is in a case's
bridge (ARI), and the NOTIFYs an agent's phone got for its REFER (sipp's message trace)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, registered
from support.checks import wait_until
from support.daemon import ari_get


def phones(lab: Lab, *agents: Agent) -> list[subprocess.Popen[str]]:
    started = [sipp.agent_phone(a.name, a.password, ring_ms=200) for a in agents]
    wait_until(lambda: all(registered(lab, a.name) for a in agents), what="agent phones registered")
    return started


def stop(started: list[subprocess.Popen[str]]) -> None:
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def bridge_channels(env: dict[str, str], case_id: object) -> list[str]:
    status, body = ari_get(env, f"bridges/case-{case_id}")
    return list(json.loads(body)["channels"]) if status == 200 else []


def if_two(channels: list[str]) -> list[str] | None:
    return channels if len(channels) == 2 else None


def channel_name(env: dict[str, str], channel_id: str) -> str:
    status, body = ari_get(env, f"channels/{channel_id}")
    return str(json.loads(body)["name"]) if status == 200 else ""


def sipfrags(messages: Path) -> list[str]:
    """The status line of every NOTIFY the phone received (its REFER's progress), in order."""
    frags = []
    for message in messages.read_text(errors="replace").replace("\r\n", "\n").split("-" * 35):
        if "message received" in message and re.search(r"^\s*NOTIFY sip:", message, re.MULTILINE):
            frag = re.search(r"^\s*(SIP/2\.0 \d{3}[^\r\n]*)", message.split("\n\n", 2)[-1], re.MULTILINE)
            frags.append(frag.group(1).strip() if frag else "(no sipfrag)")
    return frags


def refer_accepted(messages: Path) -> bool:
    return bool(re.search(r"^\s*SIP/2\.0 202 ", messages.read_text(errors="replace"), re.MULTILINE))
