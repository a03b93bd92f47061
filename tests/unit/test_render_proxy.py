"""`hotline apply` for a node behind Kamailio (setting sip_proxy): what the PJSIP file gets."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.config import Settings
from hotline.errors import ConfigError
from hotline.provision.model import Agent, Provisioning
from hotline.provision.render import AGENT_HEADER, PJSIP_FILE, SUPERVISE_CODES, render
from hotline.provision.sip_auth import ha1

SINGLE = Settings(ari_app="hotline")
BEHIND = replace(SINGLE, sip_proxy="10.0.0.5")
ANNA = Agent("anna", "anna", "Anna Petrova", ha1("anna", "pw-anna-1"))
OLGA = Agent("olga", "olga-web", "Olga", ha1("olga-web", "pw-olga-1"),
             frozenset({"audio", "video", "webrtc"}))
PROV = Provisioning(agents={"anna": ANNA, "olga": OLGA}, numbers={})


def objects(settings: Settings) -> dict[tuple[str, str], dict[str, str]]:
    """(section, type) -> options of the rendered pjsip_hotline.conf; `(template)` kept apart."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    current: dict[str, str] = {}
    name = ""
    for raw in render(PROV, settings)[PJSIP_FILE].splitlines() + ["[end]"]:
        line = raw.split(";", 1)[0].strip()
        if match := re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line):
            if name:
                out[(name, current.get("type", "endpoint"))] = current
            name, current = match[1], ({"template": match[2]} if match[2] else {})
        elif line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return out


def test_without_a_proxy_agents_register_at_asterisk_as_before() -> None:
    found = objects(SINGLE)
    assert ("hotline-proxy", "endpoint") not in found
    assert found[("anna", "aor")] == {"type": "aor", "max_contacts": "1",
                                      "remove_existing": "yes", "qualify_frequency": "30"}
    assert found[("olga-web", "endpoint")]["transport"] == "transport-ws"
    assert found[("hotline-web", "endpoint")]["identify_by"] == "username"


def test_behind_kamailio_its_calls_land_inbound_and_agents_are_reached_through_it() -> None:
    found = objects(BEHIND)
    proxy = found[("hotline-proxy", "endpoint")]
    assert proxy == {"template": "hotline-trunk", "aors": "hotline-proxy"}
    assert found[("hotline-proxy", "identify")] == {"type": "identify", "endpoint": "hotline-proxy",
                                                   "match": "10.0.0.5"}
    assert found[("hotline-proxy", "aor")]["contact"] == "sip:10.0.0.5:5060"
    # PJSIP/anna still works: its contact is Kamailio with the agent's user; no REGISTER here
    assert found[("anna", "aor")] == {"type": "aor", "contact": "sip:anna@10.0.0.5:5060",
                                      "max_contacts": "0", "qualify_frequency": "0"}
    assert "transport" not in found[("olga-web", "endpoint")]  # Kamailio speaks UDP to the node
    web = found[("hotline-web", "endpoint")]
    assert web["identify_by"] == "header" and "transport" not in web
    assert found[("hotline-web-proxy", "identify")] == {
        "type": "identify", "endpoint": "hotline-web", "match_header": "X-Hotline-Media: webrtc"}
    # SIP video phones (Kamailio marks an offer with video): video codecs, not the trunk's
    assert found[("hotline-proxy-video", "endpoint")] == {"template": "hotline-video-phone",
                                                         "identify_by": "header"}
    assert found[("hotline-proxy-video", "identify")] == {
        "type": "identify", "endpoint": "hotline-proxy-video", "match_header": "X-Hotline-Media: video"}


def test_a_proxy_port_other_than_5060_is_kept() -> None:
    found = objects(replace(SINGLE, sip_proxy="kamailio.example.org:5080"))
    assert found[("anna", "aor")]["contact"] == "sip:anna@kamailio.example.org:5080"


@pytest.mark.parametrize("bad", ["10.0.0.5:0", "10.0.0.5:99999", "sip:10.0.0.5", "a b", "x;y",
                                 "10.0.0.5\n[evil]", "-host"])
def test_a_sip_proxy_that_is_no_address_is_refused_naming_the_setting(bad: str) -> None:
    with pytest.raises(ConfigError, match="sip_proxy"):
        render(PROV, replace(SINGLE, sip_proxy=bad))


def test_an_agent_cannot_take_the_proxys_endpoint_name() -> None:
    with pytest.raises(ConfigError, match="hotline-proxy"):
        render(Provisioning(agents={"x": replace(ANNA, endpoint="hotline-proxy")}, numbers={}),
               BEHIND)


def web_guard_source(settings: Settings) -> list[str]:
    """The web guard's lines that decide a call's source."""
    dialplan = next(text for name, text in render(PROV, settings).items() if name.startswith("extensions"))
    guard = dialplan[dialplan.index("[hotline-web-guard]"):]
    return [line for line in guard.splitlines() if "LOCAL(source)=" in line]


def test_behind_kamailio_the_web_guard_counts_a_browser_by_kamailios_header_else_its_address() -> None:
    assert web_guard_source(SINGLE) == ["exten => s,1,Set(LOCAL(source)=${CHANNEL(pjsip,remote_addr)})"]
    # a browser on a single node could forge the header: it is read only behind Kamailio
    assert web_guard_source(BEHIND) == [
        "exten => s,1,Set(LOCAL(source)=${PJSIP_HEADER(read,X-Hotline-Source)})",
        ' same => n,ExecIf($["${source}" = ""]?Set(LOCAL(source)=${CHANNEL(pjsip,remote_addr)}))']


def test_behind_kamailio_each_agent_is_found_by_the_header_kamailio_adds_to_its_own_calls() -> None:
    found = objects(BEHIND)
    assert found[("anna", "identify")] == {"type": "identify", "endpoint": "anna",
                                           "match_header": "X-Hotline-Agent: anna"}
    assert found[("olga-web", "identify")] == {"type": "identify", "endpoint": "olga-web",
                                               "match_header": "X-Hotline-Agent: olga-web"}
    # still challenged with its own password, and its calls land in the agents' context
    assert found[("anna", "endpoint")]["auth"] == "anna"
    assert found[("anna", "endpoint")]["context"] == "hotline-agents"
    assert [key for key in objects(SINGLE) if key[1] == "identify"] == []  # one node: no header


def test_an_agent_cannot_take_the_name_of_the_browsers_identify() -> None:
    with pytest.raises(ConfigError, match="hotline-web-proxy"):
        render(Provisioning(agents={"x": replace(ANNA, endpoint="hotline-web-proxy")}, numbers={}),
               BEHIND)


KAMAILIO_CFG = Path(__file__).resolve().parents[2] / "deploy" / "kamailio" / "kamailio.cfg"


def test_the_shipped_kamailio_config_marks_agents_calls_and_knows_the_feature_codes() -> None:
    """kamailio.cfg names the header the identifies match, and steers the supervisor's feature
    codes (SUPERVISE_CODES) by the supervised agent: its pattern takes each code before an agent
    and nothing else."""
    cfg = KAMAILIO_CFG.read_text()
    assert f'remove_hf("{AGENT_HEADER}")' in cfg
    assert f'append_hf("{AGENT_HEADER}: $fU\\r\\n")' in cfg
    [pattern] = re.findall(r'\$rU =~ "([^"]+)"', cfg)
    for code, _ in SUPERVISE_CODES:
        assert re.search(pattern, f"{code}anna") and re.search(pattern, f"{code}olga-web")
    for other in ("anna", "*54anna", "*51", "*51 anna", "5551anna"):
        assert not re.search(pattern, other)
