"""The lab's generated Asterisk config: its own endpoints apart from the reference files, the ARI
password only as a crypt hash, the AMI user with named classes only."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from hotline.lab.asterisk_conf import (
    CARRIER_ADDRESS,
    LOCAL_FILE,
    TRUNK_ADDRESS,
    VIDEO_PHONE_ADDRESS,
    crypt_sha512,
    render_ari_users,
    render_lab_endpoints,
    render_manager_users,
    sync_config,
)
from hotline.lab.credentials import LabSecrets

PROJECT_DIR = Path(__file__).resolve().parents[2]
SECRETS = LabSecrets(db_password="db-pw", ami_secret="ami-secret-1", ari_password="ari-pw-1")


def test_the_reference_config_names_no_lab_endpoint_and_includes_the_local_file() -> None:
    pjsip = (PROJECT_DIR / "asterisk-conf" / "pjsip.conf").read_text()
    assert "[sipp-" not in pjsip and "127.0.0.2" not in pjsip and "127.0.0.3" not in pjsip
    assert f"#tryinclude {LOCAL_FILE}" in pjsip
    assert "endpoint_identifier_order = header,ip,username,anonymous" in pjsip


def test_the_labs_carrier_and_video_phone_are_known_by_their_own_addresses() -> None:
    text = render_lab_endpoints()
    assert "[sipp-trunk](hotline-trunk)" in text and "[sipp-video](hotline-video-phone)" in text
    assert f"match = {TRUNK_ADDRESS}" in text and f"match = {VIDEO_PHONE_ADDRESS}" in text
    # the outbound carrier is dialled at its own address, where the lab tests run a sipp far end
    assert "[sipp-carrier](hotline-trunk)" in text and f"contact = sip:{CARRIER_ADDRESS}:5060" in text
    assert "127.0.0.1" not in text  # the agents' and browsers' address stays theirs


def test_the_ari_password_is_written_only_as_its_sha512_crypt_hash() -> None:
    text = render_ari_users(SECRETS.ari_password)
    assert SECRETS.ari_password not in text
    [hashed] = [line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith("password ")]
    assert hashed.startswith("$6$") and "password_format = crypt" in text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")  # gone in Python 3.13; libc's crypt(3) is what Asterisk runs
    assert crypt.crypt(SECRETS.ari_password, hashed) == hashed


def test_a_password_with_shell_and_config_characters_hashes_all_the_same() -> None:
    password = "a b;c'$(x)\"#"
    hashed = crypt_sha512(password, "saltsalt")
    assert hashed == crypt_sha512(password, "saltsalt") != crypt_sha512("a", "saltsalt")


def test_the_ami_user_reads_and_writes_named_classes_never_all() -> None:
    options = dict(line.split(" = ", 1) for line in render_manager_users(SECRETS.ami_secret).splitlines()
                   if " = " in line and not line.startswith(";"))
    assert (options["read"], options["write"]) == ("system,call", "system,command,config,reporting")


def test_syncing_again_keeps_the_ari_hash_so_nothing_reloads(tmp_path: Path) -> None:
    root = tmp_path / "root"
    conf = root / "etc" / "asterisk"
    conf.mkdir(parents=True)
    first = sync_config(PROJECT_DIR, root, conf, SECRETS)
    assert {"ari_users.conf", "manager_users.conf", LOCAL_FILE, "pjsip.conf"} <= first
    hashed = (conf / "ari_users.conf").read_text()
    assert sync_config(PROJECT_DIR, root, conf, SECRETS) == set()
    assert (conf / "ari_users.conf").read_text() == hashed
    changed = sync_config(PROJECT_DIR, root, conf, LabSecrets("db-pw", "ami-secret-1", "new-ari-pw"))
    assert changed == {"ari_users.conf"}
