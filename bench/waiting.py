"""The daemon's CPU while callers wait and no agent is free: the cost of a queue's waiting line.

    .venv/bin/python bench/waiting.py [--callers 200] [--seconds 30] [--repo DIR]

A queue whose only agent is logged in but unreachable (its phone never registered): no agent is
free, so every caller waits, with music, for as long as the bench runs. `--callers` sipp callers
join the line; once all of them wait, the daemon's CPU is read over `--seconds`. A daemon that
polls its waiting callers pays for each of them every second; one that wakes them only when the
queue changes should be near idle. `--repo` runs another checkout's daemon and CLI (its own
`.venv`), so a commit and the one before it are measured by the same bench, back to back.
It needs the lab free (no test run, no other daemon), and cleans up after itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from bench.loadlab import cpu_s, free_udp_port, restore_files, rss_kb, stop_gently  # noqa: E402
from hotline.lab import Lab  # noqa: E402
from hotline.lab.asterisk_conf import TRUNK_ADDRESS  # noqa: E402

SCENARIO = Path(__file__).parent / "scenarios" / "caller_waits.xml"
NUMBER, DIAL = "+74950009800", "84950009800"
RENDERED = ("pjsip_hotline.conf", "extensions_hotline.conf")
PROVISIONING = f"""
[queues.waiting]
ring_timeout = 15

[hotlines.waiting]
entry = "queue:waiting"

[numbers."{NUMBER}"]
hotline = "waiting"
lines = "unlimited"

[agents.away]
queues = {{ waiting = 0 }}
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class WaitingBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.repo = Path(args.repo).resolve()
        self.python = self.repo / ".venv" / "bin" / "python"
        self.lab = Lab(PROJECT_DIR)
        self.work = Path(tempfile.mkdtemp(prefix="hotline-waiting-"))
        self.env: dict[str, str] = {}
        self.db_name = f"bench_{uuid.uuid4().hex[:10]}"
        self.daemon: subprocess.Popen[bytes] | None = None
        self.callers: subprocess.Popen[bytes] | None = None
        self.conf_backup: dict[str, bytes | None] = {}

    def hotline(self, *args: str) -> str:
        res = subprocess.run([str(self.python), "-m", "hotline", *args], env=self.env, cwd=self.repo,
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"hotline {' '.join(args)} failed:\n{res.stdout}{res.stderr}")
        return res.stdout

    def setup(self) -> None:
        self.lab.up()
        for name in RENDERED:
            path = self.lab.conf_dir / name
            self.conf_backup[name] = path.read_bytes() if path.exists() else None
        admin = self.lab.admin_dsn()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.db_name}")
        params = psycopg.conninfo.conninfo_to_dict(admin)
        params["dbname"] = self.db_name
        self.env = {**os.environ, **self.lab.env(), "HOTLINE_DSN": psycopg.conninfo.make_conninfo(**params),
                    "HOTLINE_NODE": "bench-node", "HOTLINE_WEB_LISTEN": "",
                    "HOTLINE_HEALTH_LISTEN": ""}
        toml = self.work / "waiting.toml"
        toml.write_text(PROVISIONING)
        self.hotline("db", "migrate")
        self.hotline("provision", str(toml))
        self.hotline("apply")
        self.hotline("agent", "login", "away")
        self.lab.restart_asterisk()  # no channel or registration left from an earlier run

    def start_daemon(self) -> None:
        logf = (self.work / "daemon.log").open("ab")
        self.daemon = subprocess.Popen([str(self.python), "-m", "hotline", "-v", "run"], env=self.env,
                                       cwd=self.repo, stdout=logf, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.monotonic() + 30
        while "hotline running on node" not in (self.work / "daemon.log").read_text(errors="replace"):
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hotline run did not start:\n"
                                   + (self.work / "daemon.log").read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        time.sleep(2)  # reconcile, device states

    def fill_the_line(self) -> None:
        n = self.args.callers
        self.callers = subprocess.Popen(
            ["sipp", "127.0.0.1:5060", "-sf", str(SCENARIO), "-s", DIAL, "-key", "prefix", "7916",
             "-r", "20", "-m", str(n), "-l", str(n), "-i", TRUNK_ADDRESS, "-p", str(free_udp_port()),
             "-mp", str(free_udp_port()), "-nostdin", "-trace_err", "-error_file",
             str(self.work / "callers_errors.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=self.work)
        deadline = time.monotonic() + n / 20 + 60
        while (waiting := self.waiting()) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {waiting} of {n} callers joined the line")
            time.sleep(1)
        log(f"{n} callers waiting")

    def waiting(self) -> int:
        with psycopg.connect(self.env["HOTLINE_DSN"], autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM hops WHERE queued_at IS NOT NULL AND ended_at IS NULL"
                               " AND answered_at IS NULL").fetchone()
        return int(row[0]) if row else 0

    def measure(self) -> dict[str, float | int | None]:
        assert self.daemon is not None
        asterisk = self.lab.status().asterisk_pid
        time.sleep(5)  # the line has settled (music started, announcements none)
        before = (cpu_s(self.daemon.pid), cpu_s(asterisk), time.monotonic())
        time.sleep(self.args.seconds)
        after = (cpu_s(self.daemon.pid), cpu_s(asterisk), time.monotonic())
        elapsed = after[2] - before[2]

        def per_second(i: int) -> float | None:
            b, a = before[i], after[i]
            return None if a is None or b is None else (a - b) * 1000 / elapsed
        return {"callers": self.args.callers, "seconds": round(elapsed, 1),
                "daemon_cpu_ms_per_s": per_second(0), "asterisk_cpu_ms_per_s": per_second(1),
                "daemon_rss_kb": rss_kb(self.daemon.pid), "still_waiting": self.waiting()}

    def cleanup(self) -> None:
        if self.callers is not None and self.callers.poll() is None:
            self.callers.kill()
            self.callers.wait()
        try:
            self.lab.asterisk_cli("channel request hangup all")
        except Exception as exc:  # noqa: BLE001 - cleanup goes on
            log(f"cleanup: hangup: {exc}")
        stop_gently(self.daemon)
        restore_files(self.lab.conf_dir, self.conf_backup)
        self.lab.asterisk_cli("module reload res_pjsip.so")
        self.lab.asterisk_cli("dialplan reload")
        try:
            with psycopg.connect(self.lab.admin_dsn(), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        except psycopg.Error as exc:
            log(f"cleanup: database {self.db_name}: {exc}")
        log(f"cleaned up (logs kept in {self.work})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", type=int, default=200, help="callers waiting in the line")
    parser.add_argument("--seconds", type=int, default=30, help="how long the daemon's CPU is read")
    parser.add_argument("--repo", default=str(PROJECT_DIR), help="the checkout whose daemon runs (its .venv)")
    args = parser.parse_args()
    bench = WaitingBench(args)
    try:
        bench.setup()
        bench.start_daemon()
        bench.fill_the_line()
        result = bench.measure()
    finally:
        bench.cleanup()
    cpu = result["daemon_cpu_ms_per_s"]
    log(f"repo {bench.repo}: {result['callers']} callers waiting, daemon CPU "
        f"{'-' if cpu is None else f'{cpu:.1f}'} ms per second over {result['seconds']} s; "
        f"Asterisk {result['asterisk_cpu_ms_per_s'] or 0:.1f} ms/s; daemon RSS {result['daemon_rss_kb']} kB; "
        f"{result['still_waiting']} still waiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
