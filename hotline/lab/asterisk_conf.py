"""The config the lab's Asterisk runs: the project's reference files (asterisk-conf/, dialplan/),
the lab's own endpoints, and the AMI and ARI users generated from the lab's secrets, copied into
the root."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hotline.errors import LabError
from hotline.lab.credentials import LabSecrets
from hotline.lab.shell import write_if_changed

AMI_USER = "hotline"
ARI_USER = "hotline"
# The lab's carrier and SIP video phone: sipp sending from addresses of their own on the loopback
# (Linux answers for all of 127/8), identified by address as a deployment's trunks are. Agents'
# phones and browsers use 127.0.0.1 and are found by their From user.
TRUNK_ADDRESS = "127.0.0.2"
VIDEO_PHONE_ADDRESS = "127.0.0.3"
# The far end of the lab's outbound trunk: a sipp answering on an address of its own, which the
# `sipp-carrier` endpoint dials (provisioning's trunks name it, as a site names its carrier's).
CARRIER_ADDRESS = "127.0.0.4"
CARRIER_ENDPOINT = "sipp-carrier"
LOCAL_FILE = "pjsip_local.conf"  # included by the reference pjsip.conf: a site's own endpoints
# What the daemon's AMI user may read (events) and do (actions), by Asterisk's class names:
# FullyBooted, Reload, Shutdown and ContactStatus are `system` events, DeviceStateChange is
# `call`; its actions are CoreSettings, Filter, GetConfig, PJSIPShowEndpoints, Reload (`system`),
# ShowDialPlan (`config`, `reporting`), Command (`command`, for `hotline doctor`) and Ping.
AMI_READ = "system,call"
AMI_WRITE = "system,command,config,reporting"


def sync_config(project_dir: Path, root: Path, conf_dir: Path, secrets: LabSecrets) -> set[str]:
    """Copy the project's config and the secrets includes into the root; names changed."""
    if conf_dir.is_symlink() or not conf_dir.resolve().is_relative_to(root):
        raise LabError(f"{conf_dir} points out of the lab root; rebuild the lab")
    wanted = {src.name: (src.read_bytes(), 0o644) for src in _project_conf_files(project_dir)}
    wanted[LOCAL_FILE] = (render_lab_endpoints().encode(), 0o644)
    wanted["manager_users.conf"] = (render_manager_users(secrets.ami_secret).encode(), 0o600)
    ari_users = conf_dir / "ari_users.conf"
    if not _ari_users_current(ari_users, secrets.ari_password):
        # A new salt on every run would rewrite the file and reload Asterisk for nothing.
        wanted["ari_users.conf"] = (render_ari_users(secrets.ari_password).encode(), 0o600)
    return {name for name, (data, mode) in wanted.items()
            if write_if_changed(conf_dir / name, data, mode)}


def _project_conf_files(project_dir: Path) -> list[Path]:
    files = sorted((project_dir / "asterisk-conf").glob("*.conf"))
    if not files:
        raise LabError(f"no Asterisk config in {project_dir / 'asterisk-conf'}; "
                       "run the lab from a hotline checkout")
    return files + sorted((project_dir / "dialplan").glob("*.conf"))


def render_lab_endpoints() -> str:
    """The lab's test carrier and SIP video phone, from the reference templates (pjsip.conf)."""
    return (
        "; written by `hotline lab`: the lab's own endpoints, never part of a deployment's config.\n"
        f"; The test carrier: sipp sending from {TRUNK_ADDRESS}; its calls land in hotline-inbound.\n"
        "[sipp-trunk](hotline-trunk)\n"
        "; sipp's callers in the tests and benches send no RTP, and a bench's callers wait for\n"
        "; minutes: no RTP timeout here (tests/e2e/test_free_call_floods.py proves it on the web\n"
        "; endpoint, where `hotline apply` sets it)\n"
        "rtp_timeout = 0\nrtp_timeout_hold = 0\n\n"
        f"[sipp-trunk]\ntype = identify\nendpoint = sipp-trunk\nmatch = {TRUNK_ADDRESS}\n\n"
        f"; A SIP video phone (sipp with an m=video offer) sending from {VIDEO_PHONE_ADDRESS}.\n"
        "[sipp-video](hotline-video-phone)\nrtp_timeout = 0\nrtp_timeout_hold = 0\n\n"
        f"[sipp-video]\ntype = identify\nendpoint = sipp-video\nmatch = {VIDEO_PHONE_ADDRESS}\n\n"
        f"; The outbound carrier: calls to outside numbers go to a sipp answering on {CARRIER_ADDRESS}\n"
        "; (PJSIP/NUMBER@sipp-carrier puts NUMBER in the request URI at the aor's contact).\n"
        f"[{CARRIER_ENDPOINT}](hotline-trunk)\naors = {CARRIER_ENDPOINT}\n"
        "rtp_timeout = 0\nrtp_timeout_hold = 0\n\n"
        f"[{CARRIER_ENDPOINT}]\ntype = aor\ncontact = sip:{CARRIER_ADDRESS}:5060\n\n"
        f"[{CARRIER_ENDPOINT}]\ntype = identify\nendpoint = {CARRIER_ENDPOINT}\nmatch = {CARRIER_ADDRESS}\n")


def render_manager_users(secret: str) -> str:
    return ("; written by `hotline lab`: the daemon's AMI user (secret in the lab's secrets.json),\n"
            "; with the classes the daemon and its commands use, no more\n"
            f"[{AMI_USER}]\nsecret = {secret}\n"
            "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
            f"read = {AMI_READ}\nwrite = {AMI_WRITE}\n")


def render_ari_users(password: str) -> str:
    return ("; written by `hotline lab`: the daemon's ARI user (password in the lab's "
            "secrets.json, only its hash here)\n"
            f"[{ARI_USER}]\ntype = user\nread_only = no\n"
            f"password = {crypt_sha512(password)}\npassword_format = crypt\n")


def crypt_sha512(password: str, salt: str | None = None) -> str:
    """`password` as crypt(3) SHA-512 (`$6$...`), what ari.conf's password_format = crypt reads.
    Python 3.13 has no crypt module: OpenSSL makes it, the password on stdin (never in `ps`)."""
    cmd = ["openssl", "passwd", "-6", "-stdin", *(["-salt", salt] if salt else [])]
    try:
        done = subprocess.run(cmd, input=password + "\n", capture_output=True, text=True,
                              check=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        raise LabError(f"cannot hash the lab's ARI password with openssl: {exc}") from exc
    return done.stdout.strip()


def _ari_users_current(path: Path, password: str) -> bool:
    """Whether `path` already holds `password`'s hash (same salt, same hash)."""
    try:
        text = path.read_text()
    except OSError:
        return False
    hashes = [line.partition("=")[2].strip() for line in text.splitlines()
              if line.startswith("password ")]
    return ("password_format = crypt" in text and len(hashes) == 1 and hashes[0].startswith("$6$")
            and crypt_sha512(password, hashes[0].split("$")[2]) == hashes[0])
