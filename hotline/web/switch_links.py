"""Asking for a switch to video: a token for the live call, a link, and the link sent on.

The agent (CLI or agent page) or the caller (a key during the talk) asks; the link goes to the
customer by the operator's own means: a command (an SMS gateway's client) and/or a webhook. A
failed delivery is reported, and the link is still returned, so the agent can read it out.

A waiting caller's video key (a queue's `video_key`, a menu's `video:QUEUE`) asks the same way,
with the same limits; its leg needs no agent yet.

Every send may cost the operator money, and the caller's key is in anonymous hands, so: one live
link per leg (a caller's repeat press within the cooldown sends nothing), at most
switch_links_per_case links sent per case (beyond it a caller is refused, once per leg, and an
agent still gets a link to read out, unsent), and at most DELIVERIES_AT_ONCE deliveries running.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from hotline.config import Settings
from hotline.errors import SwitchNotPossible
from hotline.store.db import STORE_DOWN
from hotline.store.switches import IssuedSwitch, SwitchDenied, Switches, SwitchHeld

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 10.0
DELIVERIES_AT_ONCE = 4  # commands and webhooks running together; the rest wait their turn
# The command's whole environment besides its payload: never the daemon's (the DSN, ARI and AMI
# passwords are there).
COMMAND_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class SwitchLink:
    issued: IssuedSwitch
    link: str
    delivered: list[str] = field(default_factory=list)  # how it went out: "command", "webhook"
    failures: list[str] = field(default_factory=list)
    held_back: str = ""  # why it was not sent at all (the case's links are used up)


def link_for(settings: Settings, token: str) -> str:
    return f"{settings.web_base_url}/switch/{token}"


class Courier:
    """Sends links by every means configured, a few at a time."""

    def __init__(self, settings: Settings, at_once: int = DELIVERIES_AT_ONCE) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(at_once)

    async def deliver(self, switch: SwitchLink) -> None:
        """What worked and what failed go into `switch`."""
        payload = {"HOTLINE_SWITCH_LINK": switch.link, "HOTLINE_CALLER": switch.issued.caller_num,
                   "HOTLINE_CASE": str(switch.issued.case_id),
                   "HOTLINE_EXPIRES": switch.issued.expires_at.isoformat(timespec="seconds")}
        if self.settings.switch_link_command:
            await self._attempt(switch, "command", lambda: _run_command(self.settings.switch_link_command,
                                                                        payload))
        if self.settings.switch_link_webhook:
            await self._attempt(switch, "webhook", lambda: _post_webhook(self.settings.switch_link_webhook,
                                                                         payload))

    async def _attempt(self, switch: SwitchLink, how: str, send: Callable[[], Awaitable[None]]) -> None:
        try:
            async with self._slots, asyncio.timeout(DELIVERY_TIMEOUT_S):  # the wait for a slot is free
                await send()
        except Exception as exc:  # noqa: BLE001 (whatever the gateway does, the link is still given out)
            reason = str(exc) or type(exc).__name__
            switch.failures.append(f"{how}: {reason}")
            log.error("switch link for case %s not sent by %s: %s", switch.issued.case_id, how, reason)
            return
        switch.delivered.append(how)


class SwitchLinks:
    """Links asked for by agents, the CLI and callers, issued by the store and sent by the courier."""

    def __init__(self, switches: Switches, settings: Settings, courier: Courier | None = None) -> None:
        self.switches = switches
        self.settings = settings
        self.courier = courier or Courier(settings)

    async def request(self, hop_id: int, requested_by: str) -> SwitchLink:
        """An agent or the CLI asks: always a new link for leg `hop_id` (the one before stops
        working), sent unless the case has had its switch_links_per_case. SwitchNotPossible: no
        such live, answered leg."""
        issued = await self.switches.issue(hop_id, requested_by, self.settings.switch_link_ttl_s)
        log.info("switch to video for case %s (hop %s) asked by %s; link valid until %s",
                 issued.case_id, hop_id, requested_by, issued.expires_at.isoformat(timespec="seconds"))
        cap = self.settings.switch_links_per_case_n
        if issued.links_before >= cap:
            held = (f"the case has had its {cap} switch links sent (switch_links_per_case): "
                    f"give this one yourself")
            log.warning("switch link for case %s not sent: %s", issued.case_id, held)
            return SwitchLink(issued, link_for(self.settings, issued.token), held_back=held)
        return await self._send(issued)

    async def caller_asks(self, hop_id: int, *, waiting: bool = False) -> float:
        """The caller of leg `hop_id` pressed the switch key (`waiting`: a queue's or menu's
        video key, before any agent answered): a link sent, or nothing (the leg's link is fresh),
        or a refusal logged once per leg. Returns how long further presses of this leg can change
        nothing (math.inf once refused). SwitchNotPossible as request()."""
        s = self.settings
        asked = await self.switches.issue_for_caller(hop_id, s.switch_link_ttl_s, s.switch_link_cooldown_s,
                                                     s.switch_links_per_case_n, waiting=waiting)
        if isinstance(asked, SwitchHeld):
            log.debug("switch key of hop %s: its link is still fresh, nothing sent", hop_id)
            return asked.for_s
        if isinstance(asked, SwitchDenied):
            if asked.first:
                log.warning("switch to video asked by the caller of hop %s (case %s) refused: %s",
                            hop_id, asked.case_id, asked.reason)
            return math.inf
        log.info("switch to video for case %s (hop %s) asked by the caller; link valid until %s",
                 asked.case_id, hop_id, asked.expires_at.isoformat(timespec="seconds"))
        await self._send(asked)
        return float(min(s.switch_link_cooldown_s, s.switch_link_ttl_s))

    async def _send(self, issued: IssuedSwitch) -> SwitchLink:
        link = SwitchLink(issued, link_for(self.settings, issued.token))
        await self.courier.deliver(link)
        return link


class SwitchKey:
    """The caller's switch key as the daemon takes it: one request per leg at a time, and the
    presses the last answer said would change nothing dropped here, with no query. A key held
    down costs one query, not one per press."""

    QUIET_AFTER_FAILURE_S = 10.0  # a leg whose request failed (database away): one log line per this
    REMEMBERED_LEGS = 10_000  # the oldest are forgotten; the store still refuses them, once

    def __init__(self, links: SwitchLinks) -> None:
        self.links = links
        self._quiet_until: dict[int, float] = {}  # hop id -> time.monotonic(), oldest first
        self._asking: dict[int, asyncio.Task[None]] = {}

    def press(self, hop_id: int, *, waiting: bool = False) -> None:
        """Asked in the background: a gateway may take seconds, and the talk (or the wait, for a
        `waiting` caller's video key) is not held up."""
        if hop_id in self._asking or self._quiet_until.get(hop_id, 0.0) > time.monotonic():
            return
        task = asyncio.create_task(self._ask(hop_id, waiting), name=f"switch-link-{hop_id}")
        self._asking[hop_id] = task
        task.add_done_callback(lambda _: self._asking.pop(hop_id, None))

    async def _ask(self, hop_id: int, waiting: bool) -> None:
        try:
            quiet_s = await self.links.caller_asks(hop_id, waiting=waiting)
        except (SwitchNotPossible, *STORE_DOWN) as exc:
            log.warning("switch to video asked by the caller of hop %s: not possible: %s", hop_id, exc)
            quiet_s = self.QUIET_AFTER_FAILURE_S
        self._quiet_until.pop(hop_id, None)
        self._quiet_until[hop_id] = time.monotonic() + quiet_s
        while len(self._quiet_until) > self.REMEMBERED_LEGS:
            del self._quiet_until[next(iter(self._quiet_until))]

    async def close(self) -> None:
        """Idempotent: requests under way are cancelled (a command being run is killed)."""
        tasks = list(self._asking.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _run_command(command: str, payload: dict[str, str]) -> None:
    """The command gets the link in its environment, never on a shell command line (a caller id
    is the network's, and must not reach a shell), and nothing else of the daemon's."""
    proc = await asyncio.create_subprocess_exec(
        *shlex.split(command), env={**COMMAND_ENV, **payload}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        raise
    if proc.returncode != 0:
        tail = out.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"exited with {proc.returncode}: {tail[0]}".rstrip(": "))


async def _post_webhook(url: str, payload: dict[str, str]) -> None:
    body = {key.removeprefix("HOTLINE_").lower(): value for key, value in payload.items()}
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"HTTP {response.status}")
