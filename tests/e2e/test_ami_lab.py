"""The AMI session against the lab's real Asterisk."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import pytest

from hotline.asterisk.ami import AmiSession
from hotline.config import load_settings
from hotline.errors import AmiAuthError, UnsafeAmiValue

pytestmark = pytest.mark.lab


async def test_ami_value_with_cr_or_lf_is_refused_and_the_session_stays_usable(
        lab_env: dict[str, str]) -> None:
    ami = AmiSession(load_settings(environ=lab_env).ami)
    await ami.connect()
    try:
        with pytest.raises(UnsafeAmiValue, match="Command"):
            await ami.action("Command", {"Command": "core show version\r\nAction: Logoff"})
        with pytest.raises(UnsafeAmiValue):
            await ami.action("Originate", {"Channel": "Local/1@default",
                                           "Variable": {"X": "1\nAction: Logoff"}})
        assert ami.connected
        assert "Asterisk 22." in await ami.command("core show version")
    finally:
        await ami.close()


async def test_ami_login_with_a_wrong_secret_is_refused_clearly(lab_env: dict[str, str]) -> None:
    endpoint = load_settings(environ=lab_env).ami
    url = f"ami://{endpoint.user}:wrong@{endpoint.host}:{endpoint.port}"
    ami = AmiSession(load_settings(environ={"HOTLINE_AMI_URL": url}).ami)
    with pytest.raises(AmiAuthError, match="check the secret"):
        await ami.connect()
    await ami.close()


async def test_a_session_asked_for_some_events_gets_only_those(lab_env: dict[str, str]) -> None:
    # Events the daemon's AMI user may read (classes system and call): a Reload, then a device
    # state change, both caused through actions it may send.
    endpoint = load_settings(environ=lab_env).ami
    everything = AmiSession(endpoint)
    only_device_states = AmiSession(endpoint, only_events=("DeviceStateChange",))
    seen: dict[str, list[str]] = {"everything": [], "filtered": []}
    done = {"everything": asyncio.Event(), "filtered": asyncio.Event()}
    device = f"Custom:hotline-filter-test-{secrets.token_hex(4)}"

    def handler(name: str) -> Callable[[object], Awaitable[None]]:
        async def on_event(event: object) -> None:
            seen[name].append(getattr(event, "name", ""))
            if getattr(event, "name", "") == "DeviceStateChange" and device in str(event):
                done[name].set()
        return on_event

    everything.on_event(handler("everything"))
    only_device_states.on_event(handler("filtered"))
    await everything.connect()
    await only_device_states.connect()
    try:
        await everything.action("Reload", {"Module": "res_musiconhold.so"})
        await everything.command(f"devstate change {device} INUSE")
        # events arrive in order: the Reload came before the device state change
        await asyncio.wait_for(asyncio.gather(*(d.wait() for d in done.values())), 5)
        assert "Reload" in seen["everything"]
        # (what Asterisk sends at login, before the filter, comes through: FullyBooted and the like)
        assert "DeviceStateChange" in seen["filtered"] and "Reload" not in seen["filtered"]
    finally:
        await everything.close()
        await only_device_states.close()
