"""`hotline apply` against the lab's real Asterisk 22: endpoints and dialplan from the database.

The number used here is not one other lab tests call (they dial 84951234567 and expect it
unrendered), and each test's agent has a name of its own. Every test removes the rendered files
and reloads afterwards, leaving Asterisk as `hotline lab up` left it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from hotline.asterisk.ami import AmiSession
from hotline.config import load_settings
from hotline.provision import sip_auth
from hotline.provision.render import DIALPLAN_FILE, PJSIP_FILE

from support import sipp
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess

pytestmark = pytest.mark.lab

NUMBER = "+74957770101"
NATIONAL = "84957770101"


@dataclass(frozen=True)
class ProvisionedAgent:
    endpoint: str
    password: str


def asterisk(env: Mapping[str, str], cli: str) -> str:
    """A CLI command's output, through AMI `Command`."""
    async def go() -> str:
        ami = AmiSession(load_settings(environ=env).ami)
        await ami.connect()
        try:
            return await ami.command(cli)
        finally:
            await ami.close()
    return asyncio.run(go())


@pytest.fixture
def agent(daemon_env: dict[str, str], tmp_path: Path,
          rendered_files_removed_afterwards: Path) -> ProvisionedAgent:
    """An agent (and a WebRTC video agent, `<endpoint>-web`) and the number +74957770101,
    provisioned in this test's database through `hotline provision`."""
    provisioned = ProvisionedAgent(f"apply-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12))
    file = tmp_path / "provisioning.toml"
    file.write_text(f"""
[queues.support]
[hotlines.moscow]
entry = "queue:support"
[numbers."{NUMBER}"]
hotline = "moscow"
[agents.{provisioned.endpoint}]
display_name = "Apply Test"
password = "{provisioned.password}"
queues = {{ support = 0 }}
[agents.{provisioned.endpoint}-web]
capabilities = ["audio", "video", "webrtc"]
""")
    run = hotline_cli(daemon_env, "provision", str(file))
    assert run.returncode == 0, run.stderr
    return provisioned


def register(endpoint: str, password: str) -> subprocess.Popen[str]:
    """A sipp agent phone: registers, stays 4 s, unregisters (agent_register.xml)."""
    inf = sipp.INJECTION_DIR / f"agent-{uuid.uuid4().hex[:8]}.csv"
    inf.write_text(f"SEQUENTIAL\n{endpoint};\n")
    cmd = ["sipp", sipp.ASTERISK_SIP, "-sf", str(sipp.SCENARIOS / "agent_register.xml"), "-inf", str(inf),
           "-au", endpoint, "-ap", password, "-aa", "-m", "1", "-i", "127.0.0.1",
           "-p", str(sipp.free_udp_port()), "-timeout", "20s", "-timeout_error", "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, cwd=sipp.INJECTION_DIR)  # sipp's logs land there


def option(shown: str, name: str) -> str:
    """One parameter's value in `pjsip show endpoint` output."""
    match = re.search(rf"^ {name}\s+: (.*)$", shown, re.M)
    assert match, f"{name} not in:\n{shown}"
    return match[1].strip()


def contacts_of(env: Mapping[str, str], endpoint: str) -> list[str]:
    return re.findall(rf"Contact:\s+({re.escape(endpoint)}/sip:\S+)", asterisk(env, "pjsip show contacts"))


def test_apply_loads_the_agents_endpoint_and_the_numbers_into_asterisk_and_then_has_nothing_to_do(
        daemon_env: dict[str, str], agent: ProvisionedAgent, rendered_files_removed_afterwards: Path) -> None:
    conf_dir = rendered_files_removed_afterwards
    first = hotline_cli(daemon_env, "apply")
    assert (first.returncode, first.stderr) == (0, "")  # no warning: the lab's config includes both
    assert first.stdout.splitlines() == [
        f"wrote {conf_dir / PJSIP_FILE}", f"wrote {conf_dir / DIALPLAN_FILE}",
        "reloaded res_pjsip.so (pjsip_hotline.conf changed)",
        "reloaded pbx_config.so (extensions_hotline.conf changed)"]

    endpoints = asterisk(daemon_env, "pjsip show endpoints")
    assert re.search(rf"Endpoint:\s+{agent.endpoint}/", endpoints), endpoints  # name/caller id
    assert re.search(rf"InAuth:\s+{agent.endpoint}/{agent.endpoint}\s", endpoints), endpoints
    assert re.search(rf"Aor:\s+{agent.endpoint}\s+1\s", endpoints), endpoints  # one contact at most
    endpoint = asterisk(daemon_env, f"pjsip show endpoint {agent.endpoint}")
    assert option(endpoint, "context") == "hotline-agents"
    assert option(endpoint, "allow") == "(ulaw|alaw|opus)"
    assert option(endpoint, "callerid").startswith('"Apply Test" <')
    browser = asterisk(daemon_env, f"pjsip show endpoint {agent.endpoint}-web")
    assert option(browser, "webrtc") == "yes" and option(browser, "max_video_streams") == "4"
    assert option(browser, "allow") == "(opus|ulaw|alaw|vp8|h264)"
    assert re.search(r"Transport:\s+transport-ws\s", browser)
    dialplan = asterisk(daemon_env, f"dialplan show {NATIONAL}@hotline-inbound")
    assert f"Stasis(hotline,inbound,{NUMBER},video=" in dialplan and "extensions_hotline.conf" in dialplan
    assert (conf_dir / PJSIP_FILE).stat().st_mode & 0o777 == 0o640  # it holds SIP passwords

    second = hotline_cli(daemon_env, "apply")
    assert (second.returncode, second.stdout) == (0, "nothing changed\n"), second.stderr


def test_provisioned_agent_registers_with_its_password_and_its_contact_shows_until_it_unregisters(
        daemon_env: dict[str, str], agent: ProvisionedAgent) -> None:
    assert hotline_cli(daemon_env, "apply").returncode == 0
    # Asterisk holds the password's HA1 only, and a phone answering its challenge still gets in.
    auth = asterisk(daemon_env, f"pjsip show auth {agent.endpoint}")
    assert sip_auth.ha1(agent.endpoint, agent.password) in auth and agent.password not in auth
    phone = register(agent.endpoint, agent.password)
    try:
        contact = wait_until(lambda: contacts_of(daemon_env, agent.endpoint), timeout_s=4,
                             what=f"a contact for {agent.endpoint}")
        assert contact[0].startswith(f"{agent.endpoint}/sip:{agent.endpoint}@127.0.0.1:")
    finally:
        out, _ = phone.communicate(timeout=30)
    assert phone.returncode == 0, out  # registered, stayed, unregistered: every answer as expected
    assert contacts_of(daemon_env, agent.endpoint) == []


def test_agent_with_a_wrong_password_cannot_register(daemon_env: dict[str, str],
                                                      agent: ProvisionedAgent) -> None:
    assert hotline_cli(daemon_env, "apply").returncode == 0
    phone = register(agent.endpoint, "not-" + agent.password)
    out, _ = phone.communicate(timeout=30)
    assert phone.returncode != 0 and "401" in out  # challenged again instead of 200 OK
    assert contacts_of(daemon_env, agent.endpoint) == []


def test_call_to_the_national_form_of_a_provisioned_number_reaches_stasis_with_the_e164_number(
        daemon: DaemonProcess, db: psycopg.Connection, daemon_env: dict[str, str],
        agent: ProvisionedAgent) -> None:
    assert hotline_cli(daemon_env, "apply").returncode == 0
    caller = sipp.start_call(NATIONAL, "caller_hangs_up.xml")
    try:
        hop = wait_until(lambda: rows(db, "SELECT dialled, dialled_e164, channel_kind FROM hops"),
                         what="the call's hop")[0]
    finally:
        sipp.finish(caller)
    assert hop == {"dialled": NUMBER, "dialled_e164": NUMBER, "channel_kind": "pstn"}


@pytest.mark.parametrize(("args", "env_change", "why"), [
    (["--no-reload"], {}, "--no-reload"),
    ([], {"HOTLINE_AMI_URL": ""}, "no AMI URL set"),
])
def test_apply_without_reload_writes_into_the_given_directory_and_says_asterisk_was_not_reloaded(
        daemon_env: dict[str, str], agent: ProvisionedAgent, tmp_path: Path, args: list[str],
        env_change: dict[str, str], why: str) -> None:
    conf_dir = tmp_path / "asterisk"
    conf_dir.mkdir()
    run = hotline_cli({**daemon_env, **env_change}, "apply", "--conf-dir", str(conf_dir), *args)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[:2] == [f"wrote {conf_dir / PJSIP_FILE}",
                                           f"wrote {conf_dir / DIALPLAN_FILE}"]
    assert f"not reloaded ({why}): res_pjsip.so" in run.stdout
    rendered = (conf_dir / PJSIP_FILE).read_text()
    assert f"md5_cred = {sip_auth.ha1(agent.endpoint, agent.password)}" in rendered
    assert agent.password not in rendered  # only the digest Asterisk checks against
    assert "pjsip.conf not found" in run.stderr  # a bare directory: Asterisk would not read them


def test_apply_into_a_directory_that_does_not_exist_fails_naming_it(daemon_env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    run = hotline_cli(daemon_env, "apply", "--conf-dir", str(tmp_path / "nowhere"))
    assert run.returncode == 1
    assert run.stderr.strip() == (f"Error: Asterisk config directory {tmp_path / 'nowhere'} does not "
                                  f"exist: set HOTLINE_ASTERISK_CONF_DIR or --conf-dir (nothing written)")
