"""Commands and files on the host, the lab's way: a failure is one LabError quoting the cause."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hotline.errors import LabError

Progress = Callable[[str], None]  # where the lab reports what it is doing

# Commands in the root get a clean environment: the host's locale may not exist there.
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
}


def print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(argv: list[str], *, timeout: float = 120, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv, capture its output; with check, a failure is a LabError quoting its stderr."""
    try:
        result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout,
                                input=input, env=env or ROOT_ENV,
                                stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(argv[:4])} ...` did not finish within {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"`{' '.join(argv[:4])} ...` failed: {detail[0]}")
    return result


def write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write data to path atomically unless it already holds exactly that; True if written."""
    with contextlib.suppress(OSError):
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
            return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # umask must not widen or narrow it
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return True


def read_text(path: Path) -> str:
    """The file's text; "" when it cannot be read (a missing /proc entry, an absent apt file)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it uses chroot and mount); run it as root")
