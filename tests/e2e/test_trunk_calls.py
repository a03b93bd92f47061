"""Calls to outside numbers through a provisioned trunk, on the lab: the far end is a sipp
answering on the lab carrier's address (127.0.0.4), and it shows what the outside world saw."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest

from hotline.asterisk.ari import AriClient
from hotline.config import load_settings
from hotline.engine.dial_out import dial_out
from hotline.errors import DialRefused
from hotline.lab import Lab
from hotline.lab.asterisk_conf import CARRIER_ADDRESS, CARRIER_ENDPOINT
from hotline.provision.model import Trunk

pytestmark = pytest.mark.lab

APP = "hotline-trunk-test"  # not the daemon's app: this test answers the dialled leg itself
TRUNK = Trunk("carrier", CARRIER_ENDPOINT, "+74951234567", ("+7495", "+7916"))


def start_far_end(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """sipp's built-in UAS on the carrier's address: answers one call, waits for the BYE."""
    messages = tmp_path / "far-end-messages.log"
    proc = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", CARRIER_ADDRESS, "-p", "5060", "-m", "1", "-trace_msg",
         "-message_file", str(messages), "-timeout", "30s", "-timeout_error", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    return proc, messages


async def dial_and_hang_up(env: dict[str, str], number: str) -> list[str]:
    """Dial `number` through TRUNK into APP, hang the answered leg up after a second; the ARI
    event types seen for it."""
    client = AriClient(load_settings(environ=env).ari)
    seen: list[str] = []
    try:
        async with client.http.ws_connect(client.url("events"), params={"app": APP}) as ws:
            channel_id = f"trunk-test-{uuid.uuid4().hex[:8]}"
            await dial_out(client, [TRUNK], number, app=APP, app_args="outbound", channel_id=channel_id)
            async with asyncio.timeout(20):
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    event = json.loads(msg.data)
                    seen.append(event["type"])
                    if event["type"] == "StasisStart":
                        await asyncio.sleep(1)
                        await client.hangup(channel_id)
                    elif event["type"] == "StasisEnd":
                        break
    finally:
        await client.close()
    return seen


def test_a_number_in_the_trunks_range_reaches_the_far_end_with_the_hotlines_number(
        lab: Lab, lab_env: dict[str, str], tmp_path: Path) -> None:
    far_end, messages = start_far_end(tmp_path)
    try:
        seen = asyncio.run(dial_and_hang_up(lab_env, "+79161234567"))
        out, _ = far_end.communicate(timeout=30)
    finally:
        far_end.kill()
    assert far_end.returncode == 0, out  # INVITE answered, ACK and BYE as a call should
    assert "StasisStart" in seen and "StasisEnd" in seen  # answered into the app, then hung up
    sip = messages.read_text()
    invite = next(block for block in sip.split("\n\n") if "INVITE sip:" in block)
    assert f"INVITE sip:+79161234567@{CARRIER_ADDRESS}:5060" in invite
    from_line = next(line for line in invite.splitlines() if line.lower().startswith("from:"))
    assert "<sip:+74951234567@" in from_line  # the hotline's number, as the trunk says
    assert "m=video" not in invite  # a carrier is never offered video


def test_a_number_outside_the_trunks_range_is_never_dialled(
        lab: Lab, lab_env: dict[str, str], tmp_path: Path) -> None:
    far_end, messages = start_far_end(tmp_path)
    try:
        with pytest.raises(DialRefused, match="outside trunk carrier's allowed prefixes"):
            asyncio.run(dial_and_hang_up(lab_env, "+78095551234"))
        with pytest.raises(subprocess.TimeoutExpired):
            far_end.communicate(timeout=3)
    finally:
        far_end.kill()
        far_end.communicate()
    assert "INVITE" not in (messages.read_text() if messages.exists() else "")
