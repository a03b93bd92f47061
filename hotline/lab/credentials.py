"""The lab's secrets: generated on first use, kept in HOME/state/secrets.json (0600), never
defaults; the lab's Asterisk users and PostgreSQL role are set from them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotline.errors import LabError
from hotline.lab.shell import write_if_changed

_MAKERS: dict[str, Callable[[], str]] = {
    "db_password": lambda: secrets.token_urlsafe(24),
    "ami_secret": lambda: secrets.token_hex(16),
    "ari_password": lambda: secrets.token_urlsafe(24),
}


@dataclass(frozen=True)
class LabSecrets:
    db_password: str
    ami_secret: str
    ari_password: str


def load_secrets(state_dir: Path) -> LabSecrets:
    """The secrets in state_dir/secrets.json; the missing ones are made and written first."""
    path = state_dir / "secrets.json"
    data = _read(path)
    missing = {key: make() for key, make in _MAKERS.items() if key not in data}
    if missing:
        data.update(missing)
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_if_changed(path, (json.dumps(data, indent=2) + "\n").encode(), 0o600)
        except OSError as exc:
            raise LabError(f"cannot write the lab's secrets to {path}: {exc}") from exc
    return LabSecrets(**{key: data[key] for key in _MAKERS})


def _read(path: Path) -> dict[str, str]:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        loaded = {}
    except PermissionError as exc:
        raise LabError(f"cannot read {path}: {exc.strerror}; run as root") from exc
    except (OSError, ValueError) as exc:
        raise LabError(f"cannot read {path} ({exc}); delete it for new secrets") from exc
    if not isinstance(loaded, dict):
        raise LabError(f"{path} is not a JSON object; delete it for new secrets")
    return {str(key): str(value) for key, value in loaded.items() if value}
