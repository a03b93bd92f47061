"""`hotline run` as a real subprocess, as an operator runs it; waits on its health endpoint,
never on sleeps."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def free_tcp_port() -> int:
    """A port for a test daemon's web pages (two daemons of a test never share one), below the
    kernel's ephemeral range: a port bind(0) handed out is free only until the daemon binds it,
    and in between any outgoing connection of a busy machine (psql, ARI, sipp) may take it (seen
    as "address already in use" with other work running). Ports below that range are given to
    no outgoing connection, and one worker runs in each lab's network namespace."""
    low, high = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free TCP port below the ephemeral range {low}-{high}")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


class DaemonProcess:
    def __init__(self, env: Mapping[str, str], log_path: Path, *, hotline: Sequence[str] = (),
                 cwd: Path | None = None) -> None:
        """`hotline` is the command to run (default: this checkout's, `python -m hotline`)."""
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.command = [*(hotline or (sys.executable, "-m", "hotline")), "-v", "run"]
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20) -> None:
        self.launch()
        self.wait_registered(timeout_s)

    def launch(self) -> None:
        """Start it without waiting: a standby never registers the app."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def wait_standby(self, timeout_s: float = 20) -> dict[str, Any]:
        """Until its health endpoint says it is a standby that sees the active daemon; that body."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"hotline run exited with {self.proc.returncode}:\n{self.log()}")
            health = self.health()
            if health and health["status"] == "standby" and health.get("active"):
                return health
            time.sleep(0.1)
        raise AssertionError(f"hotline run did not report standby in {timeout_s} s:\n{self.log()}")

    def tcp_peer_ports(self) -> set[int]:
        """The remote ports of this process's established TCP connections (`ss`, in the lab's
        network namespace): which of Asterisk's ARI and AMI it is connected to."""
        assert self.proc is not None
        out = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True,
                             check=True).stdout
        return {int(line.split()[3].rpartition(":")[2]) for line in out.splitlines()
                if f"pid={self.proc.pid}," in line}

    def wait_registered(self, timeout_s: float = 20, *, connections_before: int = 0) -> None:
        """Until this daemon's own ARI connection is up, as its health endpoint reports it (and,
        after an Asterisk restart, a connection newer than `connections_before`). Asterisk keeps
        listing the app in `ari show apps` after a killed daemon's WebSocket, so only the
        daemon itself can say it is ready."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"hotline run exited with {self.proc.returncode}:\n{self.log()}")
            health = self.health()
            if health and health["ari_connected"] and health["ari_connections"] > connections_before:
                return
            time.sleep(0.1)
        raise AssertionError(f"hotline run did not report ARI connected in {timeout_s} s:\n{self.log()}")

    def health(self) -> dict[str, Any] | None:
        """GET /health of this daemon (any status), None while nothing answers."""
        answer = self._get_health()
        return answer[1] if answer else None

    def health_status(self) -> int | None:
        """The HTTP status of GET /health, None while nothing answers."""
        answer = self._get_health()
        return answer[0] if answer else None

    def metrics(self) -> str:
        """GET /metrics of this daemon: Prometheus' text format, as a scrape reads it."""
        address = self.env.get("HOTLINE_HEALTH_LISTEN") or "127.0.0.1:8091"
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def _get_health(self) -> tuple[int, dict[str, Any]] | None:
        address = self.env.get("HOTLINE_HEALTH_LISTEN") or "127.0.0.1:8091"
        try:
            with urllib.request.urlopen(f"http://{address}/health", timeout=5) as resp:
                return resp.status, dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            return exc.code, dict(json.loads(exc.read()))
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"hotline run did not stop on signal {sig}:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


def ari_get(env: Mapping[str, str], path: str) -> tuple[int, bytes]:
    from urllib.parse import urlsplit
    url = urlsplit(env["HOTLINE_ARI_URL"])
    token = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
    req = urllib.request.Request(f"http://{url.hostname}:{url.port}/ari/{path}",
                                 headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def app_is_connected(env: Mapping[str, str]) -> bool:
    status, _ = ari_get(env, f"applications/{env.get('HOTLINE_ARI_APP', 'hotline')}")
    return status == 200


