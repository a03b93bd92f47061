"""The lab's Asterisk: `asterisk -f` chrooted into the root, recorded in a pid file (or adopted
when found running there), restarted when a file it reads only at start changed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from hotline.errors import LabError
from hotline.lab.host import (
    STOP_TIMEOUT,
    all_pids,
    check_ports_free,
    live_pid,
    process_alive,
    process_argv,
    process_root,
    runs_in_root,
    wait_gone,
)
from hotline.lab.ports import AMI_PORT, ASTERISK_PORTS, HTTP_PORT, SIP_PORT
from hotline.lab.shell import ROOT_ENV, Progress, run

BOOT_TIMEOUT = 60.0
# Changing these needs a restart: `core reload` loads no new module and keeps core options (and
# pjsip.conf's endpoint_identifier_order).
RESTART_ON_CHANGE = frozenset({"asterisk.conf", "modules.conf", "pjsip.conf"})


class LabAsterisk:
    def __init__(self, root: Path, state_dir: Path, progress: Progress,
                 node: str | None = None) -> None:
        """The lab's one Asterisk, or with `node` one of several from the same root (`hotline lab
        up --nodes N`): its own config, run, spool, log and db directories (suffix -NODE), started
        with `-C` naming its asterisk.conf (hotline.lab.nodes writes them)."""
        self.root = root
        self.state_dir = state_dir
        self._progress = progress
        self.node = node
        self._suffix = f"-{node}" if node else ""
        self._label = f"Asterisk node {node}" if node else "Asterisk"

    @property
    def conf_dir(self) -> Path:
        return self.root / "etc" / f"asterisk{self._suffix}"

    @property
    def _conf_args(self) -> list[str]:
        """`-C /etc/asterisk-NODE/asterisk.conf` for a node; nothing for the lab's one Asterisk."""
        return ["-C", f"/etc/asterisk{self._suffix}/asterisk.conf"] if self.node else []

    @property
    def recording_dir(self) -> Path:
        """Where Asterisk writes recordings (its astspooldir/recording, seen from the host):
        Debian's package lacks it, and ARI's record then answers 500."""
        return self.root / f"var/spool/asterisk{self._suffix}/recording"

    @property
    def log(self) -> Path:
        """Asterisk's own log (messages)."""
        return self.root / f"var/log/asterisk{self._suffix}/messages"

    @property
    def console_log(self) -> Path:
        """Its stdout/stderr, which alone holds what went wrong when it fails before its logger
        starts."""
        return self.state_dir / f"asterisk{self._suffix}-console.log"

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / f"asterisk{self._suffix}.pid"

    def pid(self, clear: bool = False) -> int | None:
        """Our Asterisk daemon, from the pid file, or found running in our root (adopted)."""
        pid = live_pid(self._pid_file, self.root, "asterisk", clear=clear)
        if pid is not None:
            return pid
        for candidate in all_pids():
            argv = process_argv(candidate)
            daemon = "-f" in argv and not any(a.startswith(("-r", "-R")) for a in argv[1:])
            ours = daemon and self._conf_of(argv) == self._conf_args[1:]
            if ours and runs_in_root(candidate, self.root, "asterisk") \
                    and process_root(candidate) is not None:
                if clear:  # we hold the lock: record it, so that `down` stops it later
                    self._pid_file.write_text(f"{candidate}\n")
                return candidate
        return None

    def rx(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """`asterisk -rx COMMAND` in the root."""
        return run(["chroot", str(self.root), "asterisk", *self._conf_args, "-rx", command],
                   check=False, timeout=timeout)

    def ensure(self, changed: set[str]) -> None:
        """Running with the config as synced; `changed`: the config files that just changed."""
        self.recording_dir.mkdir(parents=True, exist_ok=True)
        pid = self.pid(clear=True)
        if pid is None:
            self.start()
        elif changed & RESTART_ON_CHANGE:
            self._progress(f"lab: {', '.join(sorted(changed & RESTART_ON_CHANGE))} changed: "
                           "restarting Asterisk")
            self.stop()
            self.start()
        else:
            self._wait_booted(pid, time.monotonic())
            if changed:
                self._progress(f"lab: config changed ({', '.join(sorted(changed))}): core reload")
                self.rx("core reload", timeout=30)

    @staticmethod
    def _conf_of(argv: list[str]) -> list[str]:
        """The asterisk.conf a running Asterisk was started with (`-C FILE`), as a list."""
        at = argv.index("-C") if "-C" in argv else -1
        return argv[at + 1:at + 2] if at >= 0 else []

    def start(self) -> None:
        if self.node is None:  # a node's ports are on its own address
            check_ports_free(ASTERISK_PORTS)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        console = self.console_log
        if console.exists():  # keep the previous run's console (a crash's last words)
            os.replace(console, console.with_suffix(".log.1"))
        self._progress(f"lab: starting {self._label} (AMI {AMI_PORT}, HTTP/ARI {HTTP_PORT}, "
                       f"SIP {SIP_PORT})")
        started = time.monotonic()
        pid = self._spawn(console)
        self._pid_file.write_text(f"{pid}\n")
        self._wait_booted(pid, started)
        self._progress(f"lab: {self._label} fully booted in {time.monotonic() - started:.1f} s")

    def _spawn(self, console: Path) -> int:
        """Start `asterisk -f` in its own session through a shell that exits at once, so the
        daemon is not our child: it outlives us and never lingers as our unreaped zombie."""
        script = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
        result = subprocess.run(
            ["sh", "-c", script, "sh", str(console),
             "chroot", str(self.root), "asterisk", *self._conf_args, "-f", "-n", "-U", "root"],
            check=False, capture_output=True, text=True, env=ROOT_ENV, start_new_session=True,
            timeout=30)
        try:
            return int(result.stdout.strip())
        except ValueError:
            raise LabError(f"could not start Asterisk: {result.stderr.strip()}") from None

    def _wait_booted(self, pid: int, started: float) -> None:
        deadline = started + BOOT_TIMEOUT
        while True:
            if not process_alive(pid):
                raise LabError(f"Asterisk exited while starting; see {self.console_log}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"Asterisk did not finish booting within {BOOT_TIMEOUT:.0f} s; "
                               f"see {self.log}")
            with contextlib.suppress(LabError):  # LabError here = the wait itself timed out
                if "fully booted" in self.rx("core waitfullybooted", timeout=left).stdout:
                    return
            time.sleep(0.1)

    def stop(self) -> None:
        pid = self.pid(clear=True)
        if pid is None:
            return
        self._progress(f"lab: stopping {self._label}")
        with contextlib.suppress(LabError):
            self.rx("core stop now", timeout=STOP_TIMEOUT)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if wait_gone(pid, STOP_TIMEOUT):
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        wait_gone(pid, STOP_TIMEOUT)
        with contextlib.suppress(OSError):
            self._pid_file.unlink()
