"""The lab's Debian root: built once with mmdebstrap into HOME/root (Asterisk 22 and PostgreSQL
from sid), reused after; its /proc is bind-mounted while the lab runs, and every mount is recorded
so that only the lab's own are ever unmounted."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from hotline.errors import LabError
from hotline.lab.host import mounts_under, pids_in_root
from hotline.lab.mirror import read_debian_mirror
from hotline.lab.shell import Progress, read_text, run, write_if_changed

SUITE = "sid"  # Asterisk 22 is in Debian's sid only
PACKAGES = (
    "asterisk",
    "asterisk-moh-opsound-gsm",
    "asterisk-core-sounds-en-gsm",
    "asterisk-core-sounds-ru-gsm",
    "postgresql",
)
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MARKER = ".hotline-lab-built"
ASTERISK_OWNED = ("/etc/asterisk", "/var/lib/asterisk", "/var/log/asterisk",
                  "/var/spool/asterisk", "/usr/share/asterisk")
# Emptied in a copied root (copy_from): the first lab's sockets, pid files and logs.
COPY_EMPTIED = ("tmp", "run/asterisk", "var/log/asterisk", "var/log/postgresql")
NETWORK_TROUBLE = ("Could not resolve", "Temporary failure resolving", "Failed to fetch",
                   "Could not connect", "Connection failed", "Network is unreachable",
                   "Unable to connect", "No route to host", "Connection timed out")


class DebianRoot:
    """HOME/root, built in HOME/root.partial and renamed once complete (the marker says so)."""

    def __init__(self, home: Path, progress: Progress) -> None:
        self.home = home
        self.path = home / "root"
        self.partial = home / "root.partial"
        self.state_dir = home / "state"
        self._progress = progress

    @property
    def built(self) -> bool:
        return (self.path / MARKER).is_file()

    # -- build --------------------------------------------------------------------------------------

    def ensure_built(self) -> None:
        if self.built:
            return
        if not shutil.which("mmdebstrap"):
            raise LabError("mmdebstrap is not installed; run `make setup`")
        self._discard(self.path)  # half-built (no marker): start again
        self._discard(self.partial)
        self.home.mkdir(parents=True, exist_ok=True)
        mirror = _mirror()
        started = time.monotonic()
        self._progress(f"lab: building the root once (Debian {SUITE}: Asterisk 22, PostgreSQL 18)"
                       f" from {mirror}; log: {self.home / 'build.log'}")
        self._mmdebstrap(mirror)
        self._progress("lab: fixing up the root (owners, /etc/hosts, stock config removed)")
        self._fix_root(self.partial)
        marker = {"built": datetime.now(UTC).isoformat(timespec="seconds"),
                  "mirror": mirror, "suite": SUITE, "packages": list(PACKAGES)}
        (self.partial / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        os.rename(self.partial, self.path)
        self._progress(f"lab: root built in {time.monotonic() - started:.0f} s")

    def copy_from(self, source: DebianRoot, leave_out: tuple[Path, ...] = ()) -> None:
        """This root as a copy of `source` (built), without the paths of `leave_out` (in this
        root), the runtime files (sockets, pids) and the logs of the lab it came from. Only the
        root's own file system is copied: never what is mounted in it (its /proc)."""
        if self.built:
            return
        self._discard(self.path)
        self._discard(self.partial)
        self.home.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self._progress(f"lab: copying the root of {source.path} into {self.path} (once)")
        run(["cp", "-a", "--one-file-system", str(source.path), str(self.partial)], timeout=900)
        for path in leave_out:
            shutil.rmtree(self.partial / path.relative_to(self.path), ignore_errors=True)
        for runtime in COPY_EMPTIED:
            folder = self.partial / runtime
            if folder.resolve() != folder or not folder.is_dir():  # never through a link out
                continue
            for entry in folder.iterdir():
                if not entry.is_dir() or entry.is_symlink():  # files only: keep the folders
                    entry.unlink()
        os.rename(self.partial, self.path)
        self._progress(f"lab: root copied in {time.monotonic() - started:.0f} s")

    def _mmdebstrap(self, mirror: str) -> None:
        signed_by = f"[signed-by={KEYRING}] " if KEYRING.is_file() else ""
        argv = ["mmdebstrap", "--variant=apt",
                '--aptopt=Acquire::Check-Valid-Until "false"',  # sid's Release is past it
                f"--include={','.join(PACKAGES)}", SUITE, str(self.partial),
                f"deb {signed_by}{mirror} {SUITE} main"]
        log_path = self.home / "build.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, errors="replace")
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if line.startswith("I: "):  # mmdebstrap's own step lines make good progress
                    self._progress(f"  {line[3:].strip()}")
            code = proc.wait()
        if code != 0:
            self._build_failed(code, mirror, log_path)

    def _build_failed(self, code: int, mirror: str, log_path: Path) -> None:
        with contextlib.suppress(LabError):
            self._discard(self.partial)
        text = read_text(log_path)
        if any(sign in text for sign in NETWORK_TROUBLE):
            raise LabError(f"cannot reach the Debian mirror {mirror} (the first `lab up` "
                           f"downloads Asterisk and PostgreSQL); check the network; see {log_path}")
        raise LabError(f"building the lab root failed (mmdebstrap exit {code}); see {log_path}")

    def _fix_root(self, root: Path) -> None:
        # The packages' files belong to the root's asterisk uid; Asterisk runs as root here.
        run(["chroot", str(root), "chown", "-R", "root:root", *ASTERISK_OWNED])
        run(["chroot", str(root), "mkdir", "-p", "/var/run/asterisk"])
        write_hosts(root)
        for stock in (root / "etc/asterisk").glob("*.conf"):  # only the project's config loads
            stock.unlink()
        sounds = root / "usr/share/asterisk/sounds"
        ru = sounds / "ru"
        if not ru.exists() and not ru.is_symlink() and (sounds / "ru_RU_f_IvrvoiceRU").is_dir():
            ru.symlink_to("ru_RU_f_IvrvoiceRU")  # so that a channel with language=ru finds them

    def _discard(self, path: Path) -> None:
        """Remove a root left half-built, after unmounting whatever is still mounted in it."""
        if not path.exists():
            return
        if pids_in_root(path):
            raise LabError(f"processes still run inside {path}; stop them before the lab rebuilds")
        self.unmount_all(path)
        self._progress(f"lab: removing the unfinished root {path}")
        shutil.rmtree(path)

    # -- mounts -------------------------------------------------------------------------------------

    def ensure_proc_mounted(self) -> None:
        target = self.path / "proc"
        if str(target) in mounts_under(target):  # ours from an earlier `up` (or a crash): reuse
            return
        run(["mount", "--bind", "/proc", str(target)])
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "mounts").write_text(f"{target}\n")

    def unmount_all(self, root: Path) -> None:
        for _ in range(10):  # a point mounted twice (two crashed `up`s) needs two passes
            points = mounts_under(root)
            for point in points:
                if run(["umount", point], check=False).returncode != 0:
                    run(["umount", "--lazy", point], check=False)  # busy: detach it now
            if not points:
                break
        left = mounts_under(root)
        if left:
            raise LabError(f"{left[0]} is still mounted; unmount it by hand")
        with contextlib.suppress(OSError):
            (self.state_dir / "mounts").unlink()


def write_hosts(root: Path) -> None:
    """Without /etc/hosts Asterisk resolves its own name over DNS, stalling 5 s a call."""
    hosts = root / "etc/hosts"
    if hosts.is_symlink():  # never write through a link out of the root
        hosts.unlink()
    name = socket.gethostname()
    text = (f"127.0.0.1\tlocalhost {name}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n")
    write_if_changed(hosts, text.encode())


def _mirror() -> str:
    override = os.environ.get("HOTLINE_LAB_MIRROR", "").strip()
    return override.rstrip("/") if override else read_debian_mirror()
