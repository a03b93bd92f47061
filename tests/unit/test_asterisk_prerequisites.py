"""Reading what hotline needs from Asterisk's own answers (captured from the lab's Asterisk 22.10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hotline.asterisk import prerequisites as pre
from hotline.media import WS_TRANSPORT

PROJECT_DIR = Path(__file__).resolve().parents[2]

MODULE_SHOW = """\
Module                         Description                              Use Count  Status      Support Level
res_ari.so                     Asterisk RESTful Interface               11         Running              core
res_ari_applications.so        RESTful API module - Stasis application  0          Running              core
res_srtp.so                    Secure RTP (SRTP)                        0          Not Running          core
func_db.so                     Database (astdb) related dialplan functi 0          Declined             core
3 modules loaded
"""

TRANSPORTS = """
Transport:  <TransportId........>  <Type>  <cos>  <tos>  <BindAddress....................>
==========================================================================================

Transport:  transport-tcp             tcp      0      0  127.0.0.1:5060
Transport:  transport-udp             udp      0      0  127.0.0.1:5060
Transport:  transport-ws               ws      0      0  127.0.0.1:5060

Objects found: 3
"""

HTTP_STATUS = """HTTP Server Status:
Prefix:
Server: Asterisk/22.10.1
Server Enabled and Bound to 127.0.0.1:8088

Enabled URI's:
/ari/... => Asterisk RESTful API
/ws => Asterisk HTTP WebSocket

Enabled Redirects:
  None.
"""

DIALPLAN = """[ Context 'hotline-inbound' created by 'pbx_config' ]
  '_+X.' =>         1. Stasis(hotline,inbound,${FILTER(--.0-9a-zA-Z_+,${EXTEN})}) [extensions.conf:23]
                    2. Hangup(34)                                 [extensions.conf:24]
  '_X.' =>          1. Stasis(other-app,inbound,${EXTEN}) [extensions.conf:21]

-= 2 extensions (3 priorities) in 1 context. =-
"""


def test_only_running_modules_count_as_loaded() -> None:
    assert pre.loaded_modules(MODULE_SHOW) == {"res_ari.so", "res_ari_applications.so"}


def test_missing_modules_are_listed_in_the_order_they_are_required() -> None:
    missing = pre.missing_modules({"res_ari.so", "res_pjsip.so"})
    assert missing[0] == "res_http_websocket.so" and "res_ari.so" not in missing
    assert missing == [m for m in pre.REQUIRED_MODULES if m in missing]


def test_the_reference_modules_conf_loads_every_required_module() -> None:
    modules_conf = (PROJECT_DIR / "asterisk-conf" / "modules.conf").read_text()
    loads = set(re.findall(r"^load = (\S+)", modules_conf, re.M))
    assert pre.missing_modules(loads) == []


def test_transports_by_id_and_protocol() -> None:
    assert pre.transports(TRANSPORTS) == {"transport-tcp": "tcp", "transport-udp": "udp",
                                          "transport-ws": "ws"}
    assert pre.transports("No objects found.\n") == {}


def test_the_reference_pjsip_conf_and_the_rendered_endpoints_name_the_same_ws_transport() -> None:
    reference = (PROJECT_DIR / "asterisk-conf" / "pjsip.conf").read_text()
    assert re.search(rf"^\[{WS_TRANSPORT}\]\ntype = transport\nprotocol = ws\n", reference, re.M)
    template = (PROJECT_DIR / "hotline" / "provision" / "templates" / "pjsip_hotline.conf.j2").read_text()
    assert "transport = {{ ws_transport }}" in template and "transport-ws" not in template


def test_http_uris() -> None:
    assert pre.http_uris(HTTP_STATUS) == {"/ari/...", "/ws"}


def test_stasis_apps_of_a_context() -> None:
    assert pre.stasis_apps(DIALPLAN) == {"hotline", "other-app"}


def test_a_value_from_get_config() -> None:
    reply = {"Response": "Success", "Category-000000": "general", "Line-000000-000000": "enabled=yes",
             "Line-000000-000002": "websocket_write_timeout=5000"}
    assert pre.config_value(reply, "websocket_write_timeout") == "5000"
    assert pre.config_value(reply, "pretty") is None


@pytest.mark.parametrize(("version", "takes"), [
    ("22.10.1", True), ("22.3.0", True), ("22.2.0", False), ("22.3.0-rc1", True), ("21.8.0", True),
    ("21.7.3", False), ("20.13.1", True), ("20.12.0", False), ("18.26.0", False), ("23.0.0", True),
    ("GIT-master-abc", None)])
def test_an_asterisk_takes_an_agents_refer_over_ari_from_22_3_21_8_or_20_13(version: str,
                                                                            takes: bool | None) -> None:
    assert pre.takes_refer_over_ari(version) is takes
