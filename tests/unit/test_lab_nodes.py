"""The nodes lab's per-node Asterisk config (hotline.lab.nodes): pure file rewriting."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.errors import LabError
from hotline.lab.nodes import node_address, node_names, write_node_config

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The lab's synced config: the project's files plus the lab-written users."""
    conf = tmp_path / "asterisk"
    conf.mkdir()
    for src in [*(PROJECT / "asterisk-conf").glob("*.conf"), PROJECT / "dialplan/extensions.conf"]:
        (conf / src.name).write_bytes(src.read_bytes())
    (conf / "manager_users.conf").write_text("[hotline]\npermit = 127.0.0.1/255.255.255.255\n")
    return conf


def test_node_names_and_addresses() -> None:
    assert node_names(2) == ["a", "b"]
    assert [node_address(n) for n in node_names(3)] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    with pytest.raises(LabError, match="1 to 8"):
        node_names(9)


def test_a_node_binds_its_own_address_and_has_its_own_identity(base: Path, tmp_path: Path) -> None:
    target = tmp_path / "asterisk-b"
    changed = write_node_config(base, target, "b")
    assert {"asterisk.conf", "pjsip.conf", "pjsip_local.conf", "extensions_lab.conf"} <= changed
    pjsip = (target / "pjsip.conf").read_text()
    assert "bind = 127.0.0.3:5060" in pjsip and "127.0.0.1:5060" not in pjsip
    assert "endpoint_identifier_order = header,ip,username,anonymous" in pjsip
    assert "bindaddr = 127.0.0.3" in (target / "http.conf").read_text()
    assert "bindaddr = 127.0.0.3" in (target / "manager.conf").read_text()
    core = (target / "asterisk.conf").read_text()
    assert "systemname = b" in core and "entityid = 02:00:00:00:00:02" in core
    assert "astrundir => /var/run/asterisk-b" in core and "astetcdir => /etc/asterisk-b" in core
    assert "#tryinclude extensions_lab.conf" in (target / "extensions.conf").read_text()
    # Kamailio's endpoint as `hotline apply` renders it behind a proxy; apply owns the file after
    rendered = (target / "pjsip_hotline.conf").read_text()
    assert "[hotline-proxy](hotline-trunk)" in rendered and "match = 127.0.0.1" in rendered
    assert write_node_config(base, target, "b") == set()  # unchanged: nothing rewritten
    (target / "pjsip_hotline.conf").write_text("; applied\n")
    (base / "pjsip_hotline.conf").write_text("; the one Asterisk's own\n")
    assert write_node_config(base, target, "b") == set()
    assert (target / "pjsip_hotline.conf").read_text() == "; applied\n"
