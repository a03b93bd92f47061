"""Agents for e2e tests: provisioned with `hotline provision`, rendered into the lab with
`hotline apply`, as an operator would, and logged in as `hotline agent login` does it."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hotline.lab import Lab
from hotline.store import agent_sessions
from hotline.store.db import connect

from support.cli import hotline_cli


@dataclass(frozen=True)
class Agent:
    name: str
    password: str


def hotline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`hotline ARGS`, which must succeed."""
    result = hotline_cli(env, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def logged_in_agents(env: dict[str, str], tmp_path: Path, prefix: str,
                     *memberships: dict[str, int],
                     capabilities: Sequence[Sequence[str]] = ()) -> tuple[Agent, ...]:
    """One agent per `memberships` ({queue: penalty}), named so that they sort in that order
    (the queues' member order), provisioned, applied and logged in. `capabilities`: per agent,
    in the same order (default: audio)."""
    tag = uuid.uuid4().hex[:6]
    agents = tuple(Agent(f"{prefix}{i}-{tag}", secrets.token_urlsafe(12))
                   for i in range(1, len(memberships) + 1))
    caps = [*capabilities] + [("audio",)] * (len(agents) - len(capabilities))
    file = tmp_path / f"agents-{tag}.toml"
    file.write_text("".join(
        f'[agents.{a.name}]\npassword = "{a.password}"\ncapabilities = {list(c)!r}\nqueues = {{ '
        + ", ".join(f"{queue} = {penalty}" for queue, penalty in queues.items()) + " }\n"
        for a, queues, c in zip(agents, memberships, caps, strict=True)))
    hotline(env, "provision", str(file))
    hotline(env, "apply")
    log_in(env["HOTLINE_DSN"], [a.name for a in agents])
    return agents


def log_in(dsn: str, names: Sequence[str]) -> None:
    """What `hotline agent login NAME` runs (agent_sessions.login), for each of `names` on one
    connection of this process: a `hotline` process per agent cost a second of start-up each, and
    the command itself has its own tests (tests/integration/test_agent_presence.py). In a thread of
    its own: a browser test's Playwright holds an event loop in this one."""
    async def go() -> None:
        async with await connect(dsn) as conn:
            for name in names:
                change = await agent_sessions.login(conn, name)
                assert change.after.logged_in_since is not None, change
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, go()).result()


def registered(lab: Lab, endpoint: str) -> bool:
    return f"{endpoint}/sip:" in lab.asterisk_cli(f"pjsip show contacts like {endpoint}")
