"""The lab's Kamailio (Debian's kamailio on the machine itself, not in the lab's root): the
project's deploy/kamailio/kamailio.cfg as it ships, with a kamailio-local.cfg that the lab writes
(its addresses, the database URL of Kamailio's own role), on 127.0.0.1 in front of the lab's
nodes. Started in the lab's network namespace like everything else of the lab."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from hotline.errors import LabError
from hotline.lab.host import STOP_TIMEOUT, check_ports_free, live_pid, process_alive, wait_gone
from hotline.lab.ports import HOST, SIP_PORT
from hotline.lab.shell import ROOT_ENV, Progress, run, write_if_changed

WS_PORT = 8090  # browsers' SIP over WebSocket (ws://127.0.0.1:8090)
KAMAILIO_PORTS = ((SIP_PORT, "udp"), (SIP_PORT, "tcp"), (WS_PORT, "tcp"))
BOOT_TIMEOUT = 20.0
DB_ROLE = "kamailio"


class LabKamailio:
    def __init__(self, project_dir: Path, state_dir: Path, progress: Progress) -> None:
        self.project_dir = project_dir
        self.dir = state_dir / "kamailio"
        self._pid_file = state_dir / "kamailio.pid"
        self._progress = progress

    @property
    def config(self) -> Path:
        return self.dir / "kamailio.cfg"

    @property
    def console_log(self) -> Path:
        return self.dir / "kamailio.log"

    @property
    def ctl_socket(self) -> Path:
        return self.dir / "kamailio_ctl"

    def pid(self, clear: bool = False) -> int | None:
        return live_pid(self._pid_file, Path("/"), "kamailio", clear=clear)

    def write_config(self, db_url: str) -> bool:
        """The shipped kamailio.cfg and the lab's kamailio-local.cfg into the lab's state;
        whether either changed."""
        shipped = self.project_dir / "deploy" / "kamailio" / "kamailio.cfg"
        if not shipped.is_file():
            raise LabError(f"no {shipped}; run the lab from a hotline checkout")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        local = (f"# written by `hotline lab up --nodes N`\n"
                 f"listen=udp:{HOST}:{SIP_PORT}\nlisten=tcp:{HOST}:{SIP_PORT}\n"
                 f"listen=tcp:{HOST}:{WS_PORT}\n"
                 f'#!substdefs "!DBURL!{db_url}!g"\n#!define PROBE_FROM "sip:dispatcher@{HOST}"\n'
                 f'#!define CTL_SOCKET "unix:{self.ctl_socket}"\n')
        a = write_if_changed(self.config, shipped.read_bytes())
        b = write_if_changed(self.dir / "kamailio-local.cfg", local.encode(), 0o600)
        return a or b

    def check(self) -> str:
        """`kamailio -c` on the written config: its verdict, LabError when it refuses it."""
        result = run(["kamailio", "-c", "-f", str(self.config)], check=False, timeout=30)
        if result.returncode != 0:
            raise LabError(f"kamailio -c refused {self.config}:\n{result.stderr[-2000:]}")
        return result.stderr

    def ensure(self, db_url: str) -> None:
        """Running with that database; restarted when its config changed."""
        if not shutil.which("kamailio"):
            raise LabError("kamailio is not installed; run `make test-packages` (the nodes lab "
                           "needs Debian's kamailio, kamailio-postgres-modules and "
                           "kamailio-websocket-modules)")
        changed = self.write_config(db_url)
        pid = self.pid(clear=True)
        if pid is not None and not changed:
            return
        if pid is not None:
            self._progress("lab: Kamailio's config changed: restarting it")
            self.stop()
        self.start()

    def start(self) -> None:
        check_ports_free(KAMAILIO_PORTS)
        self.check()
        self._progress(f"lab: starting Kamailio (SIP {HOST}:{SIP_PORT}, WebSocket "
                       f"ws://{HOST}:{WS_PORT})")
        started = time.monotonic()
        with contextlib.suppress(OSError):
            self.ctl_socket.unlink()
        script = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
        result = subprocess.run(
            ["sh", "-c", script, "sh", str(self.console_log), "kamailio", "-DD", "-E",
             "-f", str(self.config), "-Y", str(self.dir)],
            check=False, capture_output=True, text=True, env=ROOT_ENV, start_new_session=True,
            timeout=30)
        try:
            pid = int(result.stdout.strip())
        except ValueError:
            raise LabError(f"could not start Kamailio: {result.stderr.strip()}") from None
        self._pid_file.write_text(f"{pid}\n")
        self._wait_ready(pid, started)
        self._progress(f"lab: Kamailio ready in {time.monotonic() - started:.1f} s")

    def _wait_ready(self, pid: int, started: float) -> None:
        while True:
            if not process_alive(pid):
                raise LabError(f"Kamailio exited while starting; see {self.console_log}")
            if time.monotonic() - started > BOOT_TIMEOUT:
                raise LabError(f"Kamailio not ready within {BOOT_TIMEOUT:.0f} s; "
                               f"see {self.console_log}")
            if self.ctl_socket.exists() and self.rpc("core.version").returncode == 0:
                return
            time.sleep(0.1)

    def rpc(self, *command: str) -> subprocess.CompletedProcess[str]:
        """`kamcmd COMMAND...` on the lab's Kamailio (e.g. dispatcher.list)."""
        return run(["kamcmd", "-s", f"unix:{self.ctl_socket}", *command], check=False,
                   timeout=10)

    def stop(self) -> None:
        pid = self.pid(clear=True)
        if pid is None:
            return
        self._progress("lab: stopping Kamailio")
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if wait_gone(pid, STOP_TIMEOUT):
                break
        with contextlib.suppress(OSError):
            self._pid_file.unlink()
