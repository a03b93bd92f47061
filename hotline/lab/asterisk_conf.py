"""The config the lab's Asterisk runs: the project's reference files (asterisk-conf/, dialplan/)
and the AMI and ARI users generated from the lab's secrets, copied into the root."""

from __future__ import annotations

from pathlib import Path

from hotline.errors import LabError
from hotline.lab.credentials import LabSecrets
from hotline.lab.shell import write_if_changed

AMI_USER = "hotline"
ARI_USER = "hotline"


def sync_config(project_dir: Path, root: Path, conf_dir: Path, secrets: LabSecrets) -> set[str]:
    """Copy the project's config and the secrets includes into the root; names changed."""
    if conf_dir.is_symlink() or not conf_dir.resolve().is_relative_to(root):
        raise LabError(f"{conf_dir} points out of the lab root; rebuild the lab")
    wanted = {src.name: (src.read_bytes(), 0o644) for src in _project_conf_files(project_dir)}
    wanted["manager_users.conf"] = (render_manager_users(secrets.ami_secret).encode(), 0o600)
    wanted["ari_users.conf"] = (render_ari_users(secrets.ari_password).encode(), 0o600)
    return {name for name, (data, mode) in wanted.items()
            if write_if_changed(conf_dir / name, data, mode)}


def _project_conf_files(project_dir: Path) -> list[Path]:
    files = sorted((project_dir / "asterisk-conf").glob("*.conf"))
    if not files:
        raise LabError(f"no Asterisk config in {project_dir / 'asterisk-conf'}; "
                       "run the lab from a hotline checkout")
    return files + sorted((project_dir / "dialplan").glob("*.conf"))


def render_manager_users(secret: str) -> str:
    return ("; written by `hotline lab`: the daemon's AMI user (secret in the lab's secrets.json)\n"
            f"[{AMI_USER}]\nsecret = {secret}\n"
            "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
            "read = all\nwrite = all\n")


def render_ari_users(password: str) -> str:
    return ("; written by `hotline lab`: the daemon's ARI user (password in the lab's "
            "secrets.json)\n"
            f"[{ARI_USER}]\ntype = user\nread_only = no\n"
            f"password = {password}\npassword_format = plain\n")
