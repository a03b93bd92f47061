"""Asking for a switch to video: a token for the live call, a link, and the link sent on.

The agent (CLI or agent page) or the caller (a key during the talk) asks; the link goes to the
customer by the operator's own means: a command (an SMS gateway's client) and/or a webhook. A
failed delivery is reported, and the link is still returned, so the agent can read it out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from collections.abc import Awaitable
from dataclasses import dataclass, field

import aiohttp

from hotline.config import Settings
from hotline.store.switches import IssuedSwitch, Switches

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SwitchLink:
    issued: IssuedSwitch
    link: str
    delivered: list[str] = field(default_factory=list)  # how it went out: "command", "webhook"
    failures: list[str] = field(default_factory=list)


def link_for(settings: Settings, token: str) -> str:
    return f"{settings.web_base_url}/switch/{token}"


async def request_switch(switches: Switches, settings: Settings, hop_id: int, requested_by: str
                         ) -> SwitchLink:
    """Issue a token for leg `hop_id` and send its link on (SwitchNotPossible: no such live call)."""
    issued = await switches.issue(hop_id, requested_by, settings.switch_link_ttl_s)
    result = SwitchLink(issued, link_for(settings, issued.token))
    log.info("switch to video for case %s (hop %s) asked by %s; link valid until %s",
             issued.case_id, hop_id, requested_by, issued.expires_at.isoformat(timespec="seconds"))
    await deliver(settings, result)
    return result


async def deliver(settings: Settings, switch: SwitchLink) -> None:
    """Send the link by every means configured; what worked and what failed go into `switch`."""
    payload = {"HOTLINE_SWITCH_LINK": switch.link, "HOTLINE_CALLER": switch.issued.caller_num,
               "HOTLINE_CASE": str(switch.issued.case_id),
               "HOTLINE_EXPIRES": switch.issued.expires_at.isoformat(timespec="seconds")}
    if settings.switch_link_command:
        await _attempt(switch, "command", _run_command(settings.switch_link_command, payload))
    if settings.switch_link_webhook:
        await _attempt(switch, "webhook", _post_webhook(settings.switch_link_webhook, payload))


async def _attempt(switch: SwitchLink, how: str, sending: Awaitable[None]) -> None:
    try:
        async with asyncio.timeout(DELIVERY_TIMEOUT_S):
            await sending
    except Exception as exc:  # noqa: BLE001 (whatever the gateway does, the link is still given out)
        reason = str(exc) or type(exc).__name__
        switch.failures.append(f"{how}: {reason}")
        log.error("switch link for case %s not sent by %s: %s", switch.issued.case_id, how, reason)
        return
    switch.delivered.append(how)


async def _run_command(command: str, payload: dict[str, str]) -> None:
    """The command gets the link in its environment, never on a shell command line (a caller id
    is the network's, and must not reach a shell)."""
    proc = await asyncio.create_subprocess_exec(
        *shlex.split(command), env={**os.environ, **payload}, stdin=asyncio.subprocess.DEVNULL,
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
