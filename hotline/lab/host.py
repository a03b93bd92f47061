"""Host checks: processes, pid files, ports and mounts as /proc shows them, so that the lab only
ever touches a process, a port or a mount that is provably its own."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from pathlib import Path

from hotline.errors import LabError
from hotline.lab.ports import HOST
from hotline.lab.shell import read_text

STOP_TIMEOUT = 10.0  # how long a daemon asked to stop may take before it is killed


# -- processes ------------------------------------------------------------------------------------

def process_alive(pid: int) -> bool:
    """True while any thread of pid runs. A zombie (exited, not yet reaped) counts as gone, but
    a leader that shows Z while its other threads still tear down (and hold sockets) does not."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(_task_state(pid, tid) not in (None, "Z", "X") for tid in tasks)


def _task_state(pid: int, tid: str) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[0] if fields else None


def process_argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def process_root(pid: int) -> str | None:
    """Where pid is chrooted; None when that cannot be read (gone, or we are not root)."""
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None


def runs_in_root(pid: int, root: Path, program: str) -> bool:
    """pid is a live `program` chrooted into root, not a pid since reused by another program."""
    if pid <= 0 or not process_alive(pid):
        return False
    argv = process_argv(pid)
    if not argv or Path(argv[0]).name != program:
        return False
    where = process_root(pid)
    return where is None or where == str(root)


def read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def live_pid(pid_file: Path, root: Path, program: str, clear: bool = False) -> int | None:
    """The pid recorded in pid_file if it is still our program; with clear, a stale file goes."""
    pid = read_pid_file(pid_file)
    if pid is not None and runs_in_root(pid, root, program):
        return pid
    if clear:
        with contextlib.suppress(OSError):
            pid_file.unlink()
    return None


def describe_process(pid: int) -> str:
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        name = "?"
    where = process_root(pid)
    chrooted = f", chrooted into {where}" if where not in (None, "/") else ""
    return f"pid {pid} ({name}{chrooted})"


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def pids_in_root(root: Path) -> list[int]:
    return [pid for pid in all_pids() if process_root(pid) == str(root)]


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- ports ----------------------------------------------------------------------------------------

def port_is_free(port: int, proto: str = "tcp", host: str = HOST) -> bool:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        if proto == "tcp":  # a TIME_WAIT left by our own last run does not make the port taken
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def socket_inodes(table: str, port: int, listening_only: bool) -> set[int]:
    """Inodes of the sockets bound to port in a /proc/net/{tcp,udp}[6] table."""
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or ":" not in fields[1]:
            continue
        if int(fields[1].rsplit(":", 1)[1], 16) != port:
            continue
        if listening_only and fields[3] != "0A":  # 0A = TCP_LISTEN
            continue
        if fields[9] != "0":
            inodes.add(int(fields[9]))
    return inodes


def port_holder(port: int, proto: str) -> str | None:
    """Which process holds port (e.g. 'pid 42 (sipp)'), or None if it cannot be found."""
    inodes: set[int] = set()
    for suffix in ("", "6"):
        inodes |= socket_inodes(read_text(Path(f"/proc/net/{proto}{suffix}")), port,
                                listening_only=proto == "tcp")
    targets = {f"socket:[{inode}]" for inode in inodes}
    for pid in all_pids() if targets else []:
        if targets & _socket_links(pid):
            return describe_process(pid)
    return None


def _socket_links(pid: int) -> set[str]:
    links: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return links
    for fd in fds:
        with contextlib.suppress(OSError):
            links.add(os.readlink(fd))
    return links


def check_ports_free(ports: tuple[tuple[int, str], ...], patience: float = 3.0) -> None:
    """LabError naming the first port (and its holder) that something else uses. A process that
    has just exited may hold its sockets a moment longer: wait up to `patience` seconds."""
    deadline = time.monotonic() + patience
    for port, proto in ports:
        while not port_is_free(port, proto):
            if time.monotonic() >= deadline:
                holder = port_holder(port, proto) or "another program"
                raise LabError(f"port {HOST}:{port}/{proto} is taken by {holder}; stop it and "
                               "run `hotline lab up` again")
            time.sleep(0.1)


# -- mounts ---------------------------------------------------------------------------------------

def mount_points(mountinfo: str) -> list[str]:
    """Mount points listed in a /proc/self/mountinfo text (octal escapes such as \\040 undone)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, deepest first (the order to unmount them in)."""
    prefix = str(path)
    found = [point for point in mount_points(read_text(Path("/proc/self/mountinfo")))
             if point == prefix or point.startswith(prefix + "/")]
    return sorted(set(found), key=len, reverse=True)
