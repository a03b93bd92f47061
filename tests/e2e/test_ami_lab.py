"""The AMI session against the lab's real Asterisk."""

from __future__ import annotations

import asyncio

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
    endpoint = load_settings(environ=lab_env).ami
    everything, only_user_events = AmiSession(endpoint), AmiSession(endpoint, only_events=("UserEvent",))
    seen: dict[str, list[str]] = {"everything": [], "filtered": []}
    done = asyncio.Event()

    async def on_filtered(event: object) -> None:
        seen["filtered"].append(getattr(event, "name", ""))
        if getattr(event, "name", "") == "UserEvent":
            done.set()

    async def on_everything(event: object) -> None:
        seen["everything"].append(getattr(event, "name", ""))

    everything.on_event(on_everything)
    only_user_events.on_event(on_filtered)
    await everything.connect()
    await only_user_events.connect()
    try:
        await everything.action("Setvar", {"Variable": "HOTLINE_FILTER_TEST", "Value": "1"})  # a VarSet
        await everything.action("UserEvent", {"UserEvent": "hotline-filter-test"})
        await asyncio.wait_for(done.wait(), 5)  # events arrive in order: any VarSet came before it
        assert "VarSet" in seen["everything"]
        # (what Asterisk sends at login, before the filter, comes through: FullyBooted and the like)
        assert "UserEvent" in seen["filtered"] and "VarSet" not in seen["filtered"]
    finally:
        await everything.close()
        await only_user_events.close()
