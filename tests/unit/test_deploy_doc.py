"""docs/deploy.md says what the code and the reference config really do: the modules doctor
checks, the inbound context, the AMI user's classes, ari.conf's write timeout."""

from __future__ import annotations

import re
from pathlib import Path

from hotline.asterisk import prerequisites as pre
from hotline.lab.asterisk_conf import AMI_READ, AMI_WRITE

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOC = (PROJECT_DIR / "docs" / "deploy.md").read_text()


def test_the_readme_links_the_guide() -> None:
    assert "(docs/deploy.md)" in (PROJECT_DIR / "README.md").read_text()


def test_the_modules_listed_are_those_doctor_checks() -> None:
    assert re.findall(r"^load = (\S+)", DOC, re.M) == list(pre.REQUIRED_MODULES)


def test_the_inbound_context_is_the_reference_one() -> None:
    reference = (PROJECT_DIR / "dialplan" / "extensions.conf").read_text()
    context = reference[reference.index("[hotline-inbound]"):reference.index("#tryinclude")].rstrip()
    assert f"```ini\n{context}\n\n#tryinclude extensions_hotline.conf\n```" in DOC


def test_the_ami_user_has_the_classes_of_the_labs_user() -> None:
    assert f"\nread = {AMI_READ}\nwrite = {AMI_WRITE}\n" in DOC


def test_the_write_timeout_is_the_reference_one_and_doctors() -> None:
    reference = (PROJECT_DIR / "asterisk-conf" / "ari.conf").read_text()
    assert f"\nwebsocket_write_timeout = {pre.WEBSOCKET_WRITE_TIMEOUT_MS}\n" in reference
    assert f"\nwebsocket_write_timeout = {pre.WEBSOCKET_WRITE_TIMEOUT_MS} " in DOC
    assert f"under {pre.MIN_WEBSOCKET_WRITE_TIMEOUT_MS} ms" in DOC


def test_the_transports_are_the_reference_ones() -> None:
    reference = (PROJECT_DIR / "asterisk-conf" / "pjsip.conf").read_text()
    for name, protocol in (("transport-udp", "udp"), ("transport-tcp", "tcp"), ("transport-ws", "ws")):
        block = f"[{name}]\ntype = transport\nprotocol = {protocol}\n"
        assert block in reference and block in DOC
