"""More than one lab on a machine. Lab 1 listens on 127.0.0.1 in the machine's own network
namespace; lab N (N >= 2) runs the very same ports in a network namespace of its own,
`hotline-labN` (only `lo`, no way out), from HOME-N, a copy of lab 1's root. A process reaches lab N
by entering that namespace (`enter_netns`, or `ip netns exec hotline-labN ...`); everything it
spawns afterwards (the daemon, sipp, psql) inherits it. The test suite runs two labs side by side
this way, one per pytest-xdist worker (tests/conftest.py)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from pathlib import Path

from hotline.errors import LabError
from hotline.lab.shell import run

INSTANCE_ENV = "HOTLINE_LAB_INSTANCE"
HOME_ENV = "HOTLINE_LAB_HOME"
NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps a namespace's handle
VETH, VETH_PEER = "hotline0", "hotline1"  # the namespace's own interfaces besides lo
CLONE_NEWNET = 0x40000000  # <sched.h>; Python 3.11 has no os.setns


def instance_from_env() -> int:
    """$HOTLINE_LAB_INSTANCE, 1 when unset; LabError when it is not a whole number >= 1."""
    text = os.environ.get(INSTANCE_ENV, "").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise LabError(f"{INSTANCE_ENV}={text!r}: a lab instance is a whole number from 1")
    return int(text)


def lab_home(instance: int) -> Path:
    """Lab 1: $HOTLINE_LAB_HOME (default ~/.cache/hotline/lab); lab N: that path with -N."""
    base = Path(os.environ.get(HOME_ENV, "~/.cache/hotline/lab")).expanduser()
    return base if instance == 1 else base.with_name(f"{base.name}-{instance}")


def netns_name(instance: int) -> str | None:
    """The network namespace lab `instance` runs in; None for lab 1 (the machine's own)."""
    return None if instance == 1 else f"hotline-lab{instance}"


def ensure_netns(name: str, instance: int) -> None:
    """The namespace `name` exists, with its loopback up and one more interface (idempotent)."""
    if not shutil.which("ip"):
        raise LabError("`ip` (iproute2) is not installed; run `make setup`")
    if not (NETNS_DIR / name).exists():
        run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    _ensure_lan(name, instance)


def _ensure_lan(name: str, instance: int) -> None:
    """A veth pair inside the namespace, one end with a private address: Chromium's WebRTC never
    offers a loopback address as an ICE candidate, so with `lo` alone a browser call never gets as
    far as its INVITE (seen with the browser tests). Both ends stay inside: no way out."""
    if run(["ip", "-n", name, "link", "show", VETH], check=False).returncode != 0:
        run(["ip", "-n", name, "link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER])
    address = f"10.254.{instance % 256}.1/30"
    if address not in run(["ip", "-n", name, "-o", "addr", "show", "dev", VETH]).stdout:
        run(["ip", "-n", name, "addr", "add", address, "dev", VETH])
    for link in (VETH_PEER, VETH):
        run(["ip", "-n", name, "link", "set", link, "up"])


def in_netns(name: str) -> bool:
    """Whether this thread already is in the namespace `name`."""
    try:
        ours, theirs = os.stat("/proc/thread-self/ns/net"), os.stat(NETNS_DIR / name)
    except FileNotFoundError:
        return False
    return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)


def enter_netns(name: str) -> None:
    """Move this thread (and so whatever it spawns or opens from now on) into namespace `name`.
    Sockets opened before stay where they were: call this before opening any."""
    if in_netns(name):
        return
    path = NETNS_DIR / name
    if not path.exists():
        raise LabError(f"no network namespace {name}: bring its lab up first "
                       f"(`hotline lab --instance {name.removeprefix('hotline-lab')} up`)")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabError(f"cannot enter the network namespace {name}: {os.strerror(err)} "
                           "(the lab needs root)")
    finally:
        os.close(fd)
