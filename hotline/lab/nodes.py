"""Several Asterisk nodes in one lab (`hotline lab up --nodes N`, issue 20): node a on 127.0.0.2,
b on 127.0.0.3, ..., each an Asterisk from the lab's root with its own config directory
(/etc/asterisk-NODE: the lab's config with its binds moved to the node's address, its own
entityid and systemname, and run/spool/log/db directories of its own), all on the same ports;
Kamailio (hotline.lab.kamailio) on 127.0.0.1 in front of them."""

from __future__ import annotations

import re
from pathlib import Path

from hotline.config import Settings
from hotline.errors import LabError
from hotline.lab.ports import HOST
from hotline.lab.shell import write_if_changed
from hotline.media import WEB_CONTEXT
from hotline.provision.model import Provisioning
from hotline.provision.render import DIALPLAN_FILE, PJSIP_FILE, render

MAX_NODES = 8
LAB_DIALPLAN = "extensions_lab.conf"
# The node's own copies of these are edited; every other file is the lab's, copied as it is,
# but for what `hotline apply` renders, which is each node's own.
_BOUND = ("pjsip.conf", "http.conf", "manager.conf")
RENDERED = (PJSIP_FILE, DIALPLAN_FILE)


def node_names(count: int) -> list[str]:
    """a, b, c, ...: `count` node names (Asterisk's systemname, `nodes.name`)."""
    if not 1 <= count <= MAX_NODES:
        raise LabError(f"--nodes {count}: the lab runs 1 to {MAX_NODES} nodes")
    return [chr(ord("a") + i) for i in range(count)]


def node_address(name: str) -> str:
    """127.0.0.2 for node a, 127.0.0.3 for b, ..."""
    return f"127.0.0.{2 + ord(name) - ord('a')}"


def write_node_config(base: Path, target: Path, name: str) -> set[str]:
    """target (/etc/asterisk-NAME in the root) from the lab's synced config in `base`; names of
    the files that changed."""
    address = node_address(name)
    wanted: dict[str, tuple[bytes, int]] = {}
    for src in sorted(base.iterdir()):
        if src.is_file() and src.suffix == ".conf" and src.name not in RENDERED:
            wanted[src.name] = (src.read_bytes(), src.stat().st_mode & 0o777)
    if "asterisk.conf" not in wanted:
        raise LabError(f"no asterisk.conf in {base}; run `hotline lab up` once without --nodes")
    for conf in _BOUND:
        text = wanted[conf][0].decode()
        text = re.sub(r"^(\s*(?:bind|bindaddr)\s*=\s*)127\.0\.0\.1", rf"\g<1>{address}", text,
                      flags=re.M)
        wanted[conf] = (text.encode(), wanted[conf][1])
    wanted["asterisk.conf"] = (_asterisk_conf(wanted["asterisk.conf"][0].decode(), name).encode(),
                               0o644)
    wanted["pjsip.conf"] = (_behind_proxy(wanted["pjsip.conf"][0].decode()).encode(), 0o644)
    users = wanted["manager_users.conf"][0].decode().replace(
        "permit = 127.0.0.1/255.255.255.255", "permit = 127.0.0.0/255.0.0.0")
    wanted["manager_users.conf"] = (users.encode(), 0o600)
    wanted["pjsip_local.conf"] = (b"; written by `hotline lab up --nodes N`: nothing of the lab's "
                                  b"own; Kamailio's endpoint is in pjsip_hotline.conf\n", 0o644)
    wanted["extensions.conf"] = (wanted["extensions.conf"][0] +
                                 f"\n#tryinclude {LAB_DIALPLAN}\n".encode(), 0o644)
    wanted[LAB_DIALPLAN] = (render_lab_dialplan().encode(), 0o644)
    target.mkdir(parents=True, exist_ok=True)
    changed = {n for n, (data, mode) in wanted.items() if write_if_changed(target / n, data, mode)}
    if not (target / PJSIP_FILE).exists():  # `hotline apply` owns it from then on
        empty = render_behind_proxy(Provisioning())
        write_if_changed(target / PJSIP_FILE, empty.encode(), 0o640)
        changed.add(PJSIP_FILE)
    return changed


def render_behind_proxy(prov: Provisioning) -> str:
    """pjsip_hotline.conf as `hotline apply` renders it for a lab node behind the lab's Kamailio
    (sip_proxy = 127.0.0.1): Kamailio's endpoint, and `prov`'s agents reached through it."""
    return render(prov, Settings(ari_app="hotline", sip_proxy=HOST))[PJSIP_FILE]


def _asterisk_conf(text: str, name: str) -> str:
    """The lab's asterisk.conf with the node's identity and directories of its own."""
    if "[directories]" in text:
        raise LabError("asterisk.conf already has [directories]: the nodes lab sets them")
    entity = f"02:00:00:00:00:{ord(name) - ord('a') + 1:02x}"
    return (f"{text.rstrip()}\n; node {name} of the lab (hotline.lab.nodes)\n"
            f"entityid = {entity}\nsystemname = {name}\n\n[directories]\n"
            f"astetcdir => /etc/asterisk-{name}\nastrundir => /var/run/asterisk-{name}\n"
            f"astspooldir => /var/spool/asterisk-{name}\nastlogdir => /var/log/asterisk-{name}\n"
            f"astdbdir => /var/lib/asterisk-{name}\n")


def _behind_proxy(text: str) -> str:
    """Calls arrive from Kamailio's address: a web caller is told apart by the header Kamailio
    adds (X-Hotline-Media), so header identification comes before the address."""
    return re.sub(r"^endpoint_identifier_order\s*=.*$",
                  "endpoint_identifier_order = header,ip,username,anonymous", text, flags=re.M)


def render_lab_dialplan() -> str:
    """A test-only harness until a daemon serves every node: 7000 answers and holds the call
    (a browser's too, in the web endpoint's context),
    77AGENT dials PJSIP/AGENT (through Kamailio, by the AOR `hotline apply` renders with
    sip_proxy). Everything else goes to Stasis as in production."""
    return (
        "; written by `hotline lab up --nodes N`: the lab's test harness, never a deployment's.\n"
        "[hotline-inbound]\n"
        "exten => 7000,1,Answer()\n same => n,Wait(30)\n same => n,Hangup()\n"
        "exten => _77.,1,Dial(PJSIP/${EXTEN:2},15)\n"
        " same => n,Hangup()\n"
        f"[{WEB_CONTEXT}]\n"
        "exten => 7000,1,Answer()\n same => n,Wait(30)\n same => n,Hangup()\n")
