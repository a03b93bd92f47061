"""sipp against the lab's Asterisk: a caller that presses keys and hangs up after a while, and a
registered phone that answers. What `hotline lab call|phones` and the tests share."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from hotline.errors import LabError
from hotline.lab.asterisk_conf import TRUNK_ADDRESS
from hotline.lab.instances import instance_from_env
from hotline.lab.ports import HOST, SIP_PORT

SCENARIOS = Path(__file__).parent / "scenarios"
ASTERISK_SIP = f"{HOST}:{SIP_PORT}"
KEYS = frozenset("0123456789*#")


def require_sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise LabError("sipp is not installed (Debian's package sip-tester: apt-get install sip-tester)")
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def work_dir() -> Path:
    """Where sipp's injection files, generated scenarios and its own error logs go; one per lab
    instance (hotline.lab.instances), so that two labs' phones never share a pid file."""
    instance = instance_from_env()
    path = Path(tempfile.gettempdir()) / ("hotline-sipp" if instance == 1 else f"hotline-sipp-lab{instance}")
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def injection_file(*fields: str | int) -> Path:
    """A one-line sipp injection file with `fields` as field0, field1, ..."""
    path = work_dir() / f"inf-{uuid.uuid4().hex[:8]}.csv"
    path.write_text("SEQUENTIAL\n" + "".join(f"{f};" for f in fields) + "\n")
    return path


def register(endpoint: str, password: str, port: int, expires_s: int = 120) -> None:
    """Register `endpoint` (digest auth) with a contact on `port`, where a phone_answers.xml
    sipp listens next; LabError with sipp's last lines when Asterisk refuses."""
    result = subprocess.run(
        [require_sipp(), ASTERISK_SIP, "-sf", str(SCENARIOS / "phone_register.xml"),
         "-inf", str(injection_file(endpoint, expires_s)), "-au", endpoint, "-ap", password, "-aa",
         "-m", "1", "-i", HOST, "-p", str(port), "-timeout", "10s", "-timeout_error", "-nostdin"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=work_dir(), timeout=20)
    if result.returncode != 0:
        raise LabError(f"phone {endpoint} could not register (wrong password, or no such endpoint "
                       f"in Asterisk: run `hotline apply`): sipp exited {result.returncode}\n"
                       + "\n".join(result.stdout.splitlines()[-15:]))


def answer(endpoint: str, port: int, *, ring_ms: int, calls: int, timeout_s: int | None = None,
           detached: bool = False) -> subprocess.Popen[str]:
    """A sipp UAS on `port` (registered there by `register`) that answers `calls` calls after
    `ring_ms` of ringing; runs until they are done (or `timeout_s`). `detached`: in a session of
    its own with no output kept, to outlive the command that started it."""
    cmd = [require_sipp(), "-sf", str(SCENARIOS / "phone_answers.xml"),
           "-inf", str(injection_file(endpoint, ring_ms)), "-aa", "-m", str(calls), "-i", HOST,
           "-p", str(port), "-mp", str(free_udp_port()), "-nostdin"]
    if timeout_s is not None:
        cmd += ["-timeout", f"{timeout_s}s", "-timeout_error"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL if detached else subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, cwd=work_dir(),
                            start_new_session=detached)


def place_call(number: str, *, caller: str, keys: Sequence[str] = (), first_key_ms: int = 1000,
               key_gap_ms: int = 1500, talk_s: int = 15) -> subprocess.Popen[str]:
    """One caller to `number`: answered, presses `keys` (SIP INFO), stays until Asterisk hangs up
    or `talk_s` seconds after the answer, then hangs up. Runs in the background."""
    bad = [k for k in keys if k not in KEYS]
    if bad:
        raise LabError(f"keys {''.join(bad)!r}: a key is one of 0-9, * or #")
    scenario = work_dir() / f"caller-{uuid.uuid4().hex[:8]}.xml"
    scenario.write_text(caller_scenario(keys, first_key_ms, key_gap_ms, talk_s * 1000))
    cmd = [require_sipp(), ASTERISK_SIP, "-sf", str(scenario), "-s", number,
           "-inf", str(injection_file(caller, "hotline lab")), "-aa", "-m", "1", "-i", TRUNK_ADDRESS,
           "-p", str(free_udp_port()), "-mp", str(free_udp_port()),
           "-timeout", f"{talk_s + 30}s", "-timeout_error", "-nostdin"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, cwd=work_dir())


def caller_scenario(keys: Sequence[str], first_key_ms: int, key_gap_ms: int, talk_ms: int) -> str:
    """A sipp UAC scenario: INVITE, the keys, then either Asterisk's BYE or our own after
    `talk_ms` from the answer. Field0 = caller number, field1 = caller name."""
    steps = []
    waited = 0
    for i, key in enumerate(keys):
        pause = first_key_ms if i == 0 else key_gap_ms
        waited += pause
        steps.append(f'  <pause milliseconds="{pause}"/>\n' + _in_dialog("INFO", i + 2, (
            "Content-Type: application/dtmf-relay", f"Signal={escape(key)}\nDuration=160")) +
            '  <recv response="200"/>\n')
    rest = max(talk_ms - waited, 1)
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hotline lab call">
{_INVITE}
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
{_in_dialog("ACK", 1, None)}
{"".join(steps)}
  <recv request="BYE" timeout="{rest}" ontimeout="hang_up"/>
{_OK_TO_BYE}
  <nop next="done"/>
  <label id="hang_up"/>
{_in_dialog("BYE", len(keys) + 2, None)}
  <recv response="200"/>
  <label id="done"/>
</scenario>
"""


_INVITE = """  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[field1]" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Subject: hotline lab call
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>"""

_OK_TO_BYE = """  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>"""


def _in_dialog(method: str, cseq: int, body: tuple[str, str] | None) -> str:
    """A request of ours inside the call's dialog (ACK, INFO, BYE), with an optional
    (Content-Type header, body)."""
    content = f"      {body[0]}\n      Content-Length: [len]\n\n      " + body[1].replace(
        "\n", "\n      ") if body else "      Content-Length: 0\n"
    return f"""  <send{' retrans="500"' if method != "ACK" else ""}>
    <![CDATA[
      {method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[field1]" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
{content}
    ]]>
  </send>
"""
