"""The AMI session against the lab's real Asterisk."""

from __future__ import annotations

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
