"""What hotline needs of the operator's Asterisk, and how to read it from Asterisk's own answers
over AMI (`module show`, `pjsip show transports`, `dialplan show CTX`, `http show status`,
GetConfig): pure parsing, so `hotline doctor` can say what is missing and what to add."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Modules hotline uses, each with what for (modules.conf: `load = NAME`, or autoload).
REQUIRED_MODULES: Mapping[str, str] = {
    # ARI: call control, its events WebSocket, and what the daemon asks of it
    "res_http_websocket.so": "ARI's events WebSocket and the SIP WebSocket",
    "res_ari.so": "ARI",
    "res_ari_applications.so": "ARI applications (the daemon's subscriptions)",
    "res_ari_asterisk.so": "ARI asterisk/info",
    "res_ari_bridges.so": "ARI bridges (caller and agent talk in one)",
    "res_ari_channels.so": "ARI channels (answer, ring, originate to agents)",
    "res_ari_endpoints.so": "ARI endpoints",
    "res_ari_events.so": "ARI's events WebSocket",
    "res_ari_playbacks.so": "ARI playbacks (prompts and menus)",
    "res_stasis.so": "Stasis",
    "app_stasis.so": "the dialplan's Stasis() step",
    "res_stasis_answer.so": "answering channels over ARI",
    "res_stasis_playback.so": "playing prompts over ARI",
    "res_musiconhold.so": "music while callers wait",
    "bridge_simple.so": "two-party bridges",
    "bridge_softmix.so": "video (SFU) and conference bridges",
    "res_manager_devicestate.so": "AMI DeviceStateChange (agents' phone states)",
    # SIP: trunks, agents' phones, browsers
    "res_pjsip.so": "PJSIP",
    "chan_pjsip.so": "PJSIP channels",
    "res_pjsip_session.so": "PJSIP calls",
    "res_pjsip_sdp_rtp.so": "PJSIP media",
    "res_pjsip_endpoint_identifier_ip.so": "trunks and SIP video phones, known by address",
    "res_pjsip_endpoint_identifier_user.so": "agents and browsers, known by From user",
    "res_pjsip_authenticator_digest.so": "agents' passwords",
    "res_pjsip_registrar.so": "agents' phones register",
    "res_pjsip_dtmf_info.so": "callers' keys sent as SIP INFO",
    "res_pjsip_transport_websocket.so": "browsers' SIP over WebSocket",
    "res_rtp_asterisk.so": "RTP",
    "res_srtp.so": "browsers' DTLS-SRTP media",
    # the dialplan hotline apply renders
    "pbx_config.so": "extensions.conf",
    "app_stack.so": "Gosub (the web calls' limits)",
    "app_verbose.so": "Log (refused web calls, for fail2ban)",
    "app_db.so": "DBdeltree (web calls per minute)",
    "func_db.so": "DB (web calls per minute)",
    "func_groupcount.so": "GROUP, GROUP_COUNT (web calls per source)",
    "func_global.so": "GLOBAL",
    "func_channel.so": "CHANNEL()",
    "func_strings.so": "FILTER() (the dialled number before Stasis)",
}

# ari.conf's websocket_write_timeout (ms) hotline needs at least: Asterisk's default of 100 ms
# drops the daemon's events WebSocket under a burst of events.
MIN_WEBSOCKET_WRITE_TIMEOUT_MS = 1000
WEBSOCKET_WRITE_TIMEOUT_MS = 5000  # what the reference ari.conf sets

_MODULE_LINE = re.compile(r"^(\S+\.so)\s.*?\s(Running|Not Running|Declined|Unknown)\s+\S+\s*$", re.M)
_TRANSPORT_LINE = re.compile(r"^Transport:\s+(\S+)\s+(\S+)\s+\d+\s+\d+\s+(\S+)\s*$", re.M)
_STASIS_APP = re.compile(r"\bStasis\(([^,)]+)")
_HTTP_URI = re.compile(r"^(/\S*) => ", re.M)


def loaded_modules(module_show: str) -> set[str]:
    """The modules `module show` lists as Running."""
    return {name for name, status in _MODULE_LINE.findall(module_show) if status == "Running"}


def missing_modules(loaded: set[str]) -> list[str]:
    return [name for name in REQUIRED_MODULES if name not in loaded]


def transports(pjsip_show_transports: str) -> dict[str, str]:
    """Transport id -> its protocol (udp, tcp, tls, ws, wss), from `pjsip show transports`."""
    return {tid: proto for tid, proto, _ in _TRANSPORT_LINE.findall(pjsip_show_transports)
            if tid != "<TransportId........>"}


def http_uris(http_show_status: str) -> set[str]:
    """The URIs `http show status` lists as enabled (/ws, /ari/...)."""
    return set(_HTTP_URI.findall(http_show_status))


def stasis_apps(dialplan_show: str) -> set[str]:
    """The Stasis applications a context's extensions hand calls to (`dialplan show CTX`)."""
    return set(_STASIS_APP.findall(dialplan_show))


def config_value(get_config: Mapping[str, str], key: str) -> str | None:
    """`key`'s value in a GetConfig reply for one category (Line-000000-000001: key=value)."""
    for field, line in get_config.items():
        if field.startswith("Line-"):
            name, _, value = line.partition("=")
            if name.strip() == key:
                return value.strip()
    return None


# The first releases of each branch whose REFER an app can take over (PJSIP_TRANSFER_HANDLING()
# = ari-only, ChannelTransfer, transfer_progress): an agent's transfer button needs one of them.
ARI_TRANSFERS_SINCE: Mapping[int, tuple[int, int]] = {20: (20, 13), 21: (21, 8), 22: (22, 3)}


def takes_refer_over_ari(version: str) -> bool | None:
    """Whether Asterisk `version` (as asterisk/info says it: "22.10.1", "22.3.0-rc1") hands an
    agent's REFER to the app; None when the version cannot be read."""
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None:
        return None
    major, minor = int(found[1]), int(found[2])
    since = ARI_TRANSFERS_SINCE.get(major)
    return (major, minor) >= since if since is not None else major > max(ARI_TRANSFERS_SINCE)
