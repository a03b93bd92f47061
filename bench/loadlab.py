"""What the bench, the soak and the faults tool share: a queue of sipp agent phones on the lab,
`hotline run` on a scratch database, sipp callers at a steady rate, and the checks of what is
left afterwards (hops against calls placed, open hops, duplicated queue events, channels and
bridges still in Asterisk).

`QueueLab` provisions N agents in one queue, each with a static contact on one of a few sipp UAS
phones (scenarios/agent_uas.xml: they answer at once and keep the call until the caller's BYE),
as a trunk-like desk phone would be configured: hundreds of agents need no REGISTER each. It
cleans up after itself: the scratch database, the files it rendered into the lab's config
directory, every sipp and the daemon it started.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

PROJECT_DIR = Path(__file__).resolve().parents[1]
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from hotline.lab import Lab  # noqa: E402
from hotline.lab.asterisk_conf import TRUNK_ADDRESS  # noqa: E402
from hotline.store.migrations import migrate  # noqa: E402

SCENARIOS = Path(__file__).parent / "scenarios"
ASTERISK_SIP = "127.0.0.1:5060"
ENGINE_NUMBER = "+74950009900"   # provisioned: hotline -> queue bench, no line limit, no IVR
ENGINE_DIAL = "84950009900"
RENDERED = ("pjsip_hotline.conf", "extensions_hotline.conf", "queues_hotline.conf")
READY_LINE = "hotline running on node"  # logged once the daemon's ARI WebSocket is up


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


# ---- processes ----------------------------------------------------------------------------------
def stop_gently(proc: subprocess.Popen[bytes] | None, timeout_s: float = 15) -> None:
    """SIGTERM (a daemon's calls stay in Stasis, as on a real stop), SIGKILL if it does not end."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds a process (all its threads) has used so far."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat")) if pid is not None else None
    return None if fields is None else _seconds(fields[11:13])


def cpu_tree_s(pid: int | None) -> float | None:
    """CPU seconds of a process and its children, live and exited (PostgreSQL: the postmaster,
    its backends and its background workers)."""
    if pid is None:
        return None
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields is None:
            continue
        if int(stat.parent.name) == pid:  # with the CPU of its children that have exited
            total += _seconds(fields[11:15])
        elif int(fields[1]) == pid:
            total += _seconds(fields[11:13])
    return total


def _stat_fields(stat: Path) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces), or None when
    the process is gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _seconds(ticks: list[str]) -> float:
    return sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK")


def per_call_ms(before: float | None, after: float | None, calls: int) -> float | None:
    return None if before is None or after is None or not calls else (after - before) * 1000 / calls


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


# ---- sipp's files -------------------------------------------------------------------------------
def read_stat(path: Path) -> tuple[int, int]:
    """SuccessfulCall(C) and FailedCall(C) from the last line of sipp's -trace_stat file."""
    if not path.exists():
        return 0, 0
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) < 2:
        return 0, 0
    head = lines[0].split(";")
    last = lines[-1].split(";")
    return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])


def read_log(path: Path, tag: str) -> dict[str, float]:
    """`TAG number seconds microseconds` lines of a sipp -trace_logs file -> {number: epoch}."""
    out: dict[str, float] = {}
    if not path.exists():
        return out
    for m in re.finditer(rf"^{tag} (\S+) (\d+)(?:\.\d*)? (\d+)", path.read_text(errors="replace"), re.M):
        out.setdefault(m.group(1), int(m.group(2)) + int(m.group(3)) / 1e6)
    return out


async def log_in(dsn: str, agents: list[str]) -> None:
    """`hotline agent login` for each agent, in one connection (hundreds of CLI runs are slow)."""
    from hotline.store import agent_sessions

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with conn:
        for agent in agents:
            await agent_sessions.login(conn, agent)


@dataclass
class Callers:
    """One sipp UAC placing `placed` calls at `rate`/s; its logs name each call by caller number."""
    proc: subprocess.Popen[bytes]
    prefix: str
    placed: int
    log_file: Path
    stat_file: Path
    started: float = field(default_factory=time.time)

    def wait(self, timeout_s: float) -> None:
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def sent(self) -> dict[str, float]:
        """Caller number -> when its INVITE was sent (epoch s)."""
        return read_log(self.log_file, "CALLER")

    def answered(self) -> dict[str, float]:
        return read_log(self.log_file, "ANSWERED")

    def ended(self) -> dict[str, float]:
        """Caller number -> when the caller's own BYE was answered: the call was never cut."""
        return read_log(self.log_file, "ENDED")

    def outcome(self) -> tuple[int, int]:
        return read_stat(self.stat_file)


@dataclass
class Leftovers:
    """What a run left behind: every figure should be 0 (or equal, for hops and calls)."""
    calls_sent: int
    hops: int
    open_hops: int
    duplicated_events: int
    channels: int
    bridges: int
    end_reasons: dict[str, int]
    contacts_intact: bool = True

    def problems(self, expected_hops: int | None = None) -> list[str]:
        want = self.calls_sent if expected_hops is None else expected_hops
        out = []
        if not self.contacts_intact:
            out.append("the agents' contacts were unloaded during the run (someone reloaded the"
                       " lab's res_pjsip): the figures are void")
        if self.hops != want:
            out.append(f"{self.hops} hops for {want} calls")
        if self.open_hops:
            out.append(f"{self.open_hops} hops still open")
        if self.duplicated_events:
            out.append(f"{self.duplicated_events} queue events duplicated")
        if self.channels:
            out.append(f"{self.channels} channels left in Asterisk")
        if self.bridges:
            out.append(f"{self.bridges} bridges left in Asterisk")
        return out

    def line(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.end_reasons.items()))
        return (f"calls sent {self.calls_sent}, hops {self.hops} ({reasons}), open {self.open_hops}, "
                f"duplicated queue events {self.duplicated_events}, channels left {self.channels}, "
                f"bridges left {self.bridges}")


# A queue event written twice is the same row twice (each record carries its own time); and a
# caller joins, is answered and completes at most once per hop, whatever restarts in between.
DUPLICATES_SQL = """
SELECT (SELECT coalesce(sum(n - 1), 0) FROM (
          SELECT count(*) AS n FROM queue_events WHERE event NOT IN ('join', 'answer', 'complete')
          GROUP BY hop_id, event, agent_id, at, detail HAVING count(*) > 1) same)
     + (SELECT coalesce(sum(n - 1), 0) FROM (
          SELECT count(*) AS n FROM queue_events WHERE event IN ('join', 'answer', 'complete')
          GROUP BY hop_id, event HAVING count(*) > 1) twice)
"""


class QueueLab:
    """`agents` agents in queue `bench` behind number ENGINE_NUMBER, with static contacts on
    `phones` sipp UAS phones, a scratch database, and `hotline run` on it."""

    def __init__(self, agents: int, phones: int = 2, *, tag: str = "bench", ring_timeout: int = 15,
                 agent_prefix: str = "bench-agent") -> None:
        self.lab = Lab(PROJECT_DIR)
        self.work = Path(tempfile.mkdtemp(prefix=f"hotline-{tag}-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.daemon: subprocess.Popen[bytes] | None = None
        self.db_name: str | None = None
        self.dsn = ""
        self.env: dict[str, str] = {}
        self.agents = [f"{agent_prefix}-{n:03d}" for n in range(1, agents + 1)]
        self.passwords = {a: secrets.token_urlsafe(12) for a in self.agents}
        self.agent_logs: list[Path] = []
        self.phone_ports = [free_udp_port() for _ in range(phones)]
        self.daemon_log = self.work / "daemon.log"
        self.web_port = free_tcp_port()
        self.ring_timeout = ring_timeout
        self.conf_backup: dict[str, bytes | None] = {}
        self.idle_rss_kb: int | None = None

    # ---- set-up ---------------------------------------------------------------------------------
    def hotline(self, *args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "hotline", *args], env=self.env,
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"hotline {' '.join(args)} failed:\n{res.stdout}{res.stderr}")
        return res.stdout

    def cli(self, cmd: str) -> str:
        return self.lab.asterisk_cli(cmd)

    def setup(self) -> None:
        """The scratch database, the provisioning applied, the agents' contacts and sessions, and
        the phones answering (the daemon is started separately)."""
        self.lab.up()
        for name in RENDERED:  # put back whatever was there (normally nothing) afterwards
            path = self.lab.conf_dir / name
            self.conf_backup[name] = path.read_bytes() if path.exists() else None
        self.dsn = self._scratch_database()
        self.env = {**os.environ, **self.lab.env(), "HOTLINE_DSN": self.dsn, "HOTLINE_NODE": "bench-node",
                    "HOTLINE_WEB_LISTEN": f"127.0.0.1:{self.web_port}"}
        toml = self.work / "bench.toml"
        toml.write_text(
            f'[queues.bench]\nstrategy = "rrmemory"\nring_timeout = {self.ring_timeout}\nwrapup = 0\n\n'
            '[hotlines.bench]\nentry = "queue:bench"\n\n'
            f'[numbers."{ENGINE_NUMBER}"]\nhotline = "bench"\nlines = "unlimited"\n\n'
            + "".join(f'[agents.{a}]\npassword = "{p}"\nqueues = {{ bench = 0 }}\n\n'
                      for a, p in self.passwords.items()))
        self.hotline("provision", str(toml))
        self.hotline("apply")
        self.give_agents_static_contacts()
        asyncio.run(log_in(self.dsn, self.agents))
        self.cli("channel request hangup all")

    def _scratch_database(self) -> str:
        admin = self.lab.admin_dsn()
        self.db_name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.db_name}")
        params = psycopg.conninfo.conninfo_to_dict(admin)
        params["dbname"] = self.db_name
        dsn = psycopg.conninfo.make_conninfo(**params)

        async def mig() -> None:
            conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
            async with conn:
                await migrate(conn)
        asyncio.run(mig())
        return dsn

    def give_agents_static_contacts(self) -> None:
        """Each agent's AOR in the rendered pjsip_hotline.conf gets a static contact on one of the
        sipp phones (round robin)."""
        conf = self.lab.conf_dir / "pjsip_hotline.conf"
        text = conf.read_text()
        for i, a in enumerate(self.agents):
            aor = f"[{a}]\ntype = aor\n"
            port = self.phone_ports[i % len(self.phone_ports)]
            text = text.replace(aor, f"{aor}contact = sip:{a}@127.0.0.1:{port}\n")
        conf.write_text(text)
        # A reload asked for while `hotline apply`'s own is still running is dropped: ask again
        # until the contacts are there.
        for _ in range(10):
            self.cli("module reload res_pjsip.so")
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if f"{self.agents[-1]}/sip:" in self.cli(f"pjsip show contacts like {self.agents[-1]}"):
                    return
                time.sleep(0.3)
        raise RuntimeError("res_pjsip did not load the agents' static contacts")

    def start_phones(self) -> None:
        for n, port in enumerate(self.phone_ports, 1):
            logf = self.work / f"phone{n}_logs.log"
            self.agent_logs.append(logf)
            self.procs.append(subprocess.Popen(
                ["sipp", "-sf", str(SCENARIOS / "agent_uas.xml"), "-m", "10000000",
                 "-key", "agent", f"phone{n}", "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                 "-mp", str(free_udp_port()), "-trace_logs", "-log_file", str(logf),
                 "-trace_err", "-error_file", str(self.work / f"phone{n}_errors.log"),
                 *(["-trace_msg", "-message_file", str(self.work / f"phone{n}_messages.log")]
                   if os.environ.get("BENCH_TRACE_AGENTS") else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                cwd=self.work))
        self.wait_phones_reachable()

    def wait_phones_reachable(self, timeout_s: float = 90) -> None:
        """Every static contact qualified by Asterisk. It spreads the first qualify of static
        contacts over qualify_frequency (30 s); `pjsip qualify` asks at once."""
        for a in self.agents:
            self.cli(f"pjsip qualify {a}")
        deadline = time.monotonic() + timeout_s
        contacts = ""
        while time.monotonic() < deadline:
            contacts = self.cli(f"pjsip show contacts like {self.agents[0].rsplit('-', 1)[0]}")
            if contacts.count(" Avail ") >= len(self.agents):
                return
            time.sleep(0.5)
        raise RuntimeError(f"not every agent's phone is reachable ({contacts.count(' Avail ')}"
                           f" of {len(self.agents)}):\n{contacts[:2000]}")

    # ---- the daemon -----------------------------------------------------------------------------
    def start_daemon(self, timeout_s: float = 30) -> float:
        """`hotline -v run`, waited for until it logs that its ARI WebSocket is up (its own
        readiness, not Asterisk's list of apps, which keeps an app listed after its daemon was
        killed while calls are up). Returns when it was spawned (epoch s)."""
        ready_before = self.daemon_log_text().count(READY_LINE)
        spawned = time.time()
        logf = self.daemon_log.open("ab")
        self.daemon = subprocess.Popen([sys.executable, "-m", "hotline", "-v", "run"], env=self.env,
                                       stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.monotonic() + timeout_s
        while self.daemon_log_text().count(READY_LINE) <= ready_before:
            if self.daemon.poll() is not None:
                raise RuntimeError("hotline run exited:\n" + self.daemon_log_text()[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError("hotline run did not get ready:\n" + self.daemon_log_text()[-3000:])
            time.sleep(0.05)
        self.idle_rss_kb = self.idle_rss_kb or rss_kb(self.daemon.pid)
        return spawned

    def kill_daemon(self) -> float:
        """SIGKILL, as a crash or the OOM killer would; returns when (epoch s)."""
        assert self.daemon is not None
        killed = time.time()
        self.daemon.kill()
        self.daemon.wait()
        self.daemon = None
        return killed

    def stop_daemon(self) -> None:
        stop_gently(self.daemon)
        self.daemon = None

    def daemon_log_text(self) -> str:
        return self.daemon_log.read_text(errors="replace") if self.daemon_log.exists() else ""

    # ---- the load -------------------------------------------------------------------------------
    def start_callers(self, rate: float, calls: int, prefix: str, timeout_s: float | None = None,
                      dial: str = ENGINE_DIAL) -> Callers:
        """sipp callers at `rate`/s, `calls` in all, each answered and hung up 2 s later; caller
        numbers are `prefix` + the call's number."""
        logf = self.work / f"caller-{prefix}_logs.log"
        stat = self.work / f"caller-{prefix}_stat.csv"
        duration = timeout_s or calls / rate + 60
        cmd = ["sipp", ASTERISK_SIP, "-sf", str(SCENARIOS / "caller.xml"), "-s", dial,
               "-key", "prefix", prefix, "-r", str(rate), "-m", str(calls),
               "-l", str(max(50, int(rate * 30))), "-i", TRUNK_ADDRESS, "-p", str(free_udp_port()),
               "-mp", str(free_udp_port()), "-recv_timeout", "30000", "-timeout", f"{int(duration)}s",
               "-nostdin", "-trace_logs", "-log_file", str(logf), "-trace_stat", "-stf", str(stat),
               "-fd", "1", "-trace_err", "-error_file", str(self.work / f"caller-{prefix}_errors.log")]
        if rate < 1:  # sipp's -r is calls per -rp ms
            cmd[cmd.index("-r") + 1:cmd.index("-r") + 2] = ["1"]
            cmd[cmd.index("-m"):cmd.index("-m")] = ["-rp", str(int(1000 / rate))]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, cwd=self.work)
        self.procs.append(proc)
        return Callers(proc, prefix, calls, logf, stat)

    def agent_invites(self, prefix: str) -> dict[str, float]:
        """Caller number -> when an agent phone got its INVITE (epoch s)."""
        out: dict[str, float] = {}
        for a in self.agent_logs:
            out.update({k: v for k, v in read_log(a, "AGENT").items() if k.startswith(prefix)})
        return out

    def latencies_ms(self, callers: Callers, since: float = 0, until: float = float("inf")) -> list[float]:
        """Caller INVITE -> agent INVITE, for the calls sent between `since` and `until`."""
        agents = self.agent_invites(callers.prefix)
        return [(agents[n] - t0) * 1000 for n, t0 in callers.sent().items()
                if n in agents and since <= t0 <= until]

    # ---- what is left ---------------------------------------------------------------------------
    def channel_count(self) -> int:
        m = re.search(r"^(\d+) active channels?", self.cli("core show channels count"), re.M)
        return int(m.group(1)) if m else -1

    def bridge_count(self) -> int:
        m = re.search(r"^(\d+) total bridges?", self.cli("bridge show all"), re.M | re.I)
        if m:
            return int(m.group(1))
        listing = self.cli("bridge show all").splitlines()
        return sum(1 for line in listing if re.match(r"^[0-9a-f-]{20,}", line))

    def contacts_intact(self) -> bool:
        """Are the agents' static contacts still loaded? The lab is shared: a test session that
        starts meanwhile removes the rendered config and reloads res_pjsip (tests/conftest.py),
        and the agents become unreachable in the middle of the run."""
        listing = self.cli(f"pjsip show contacts like {self.agents[0].rsplit('-', 1)[0]}")
        return listing.count("/sip:") >= len(self.agents)

    def wait_settled(self, prefix: str, timeout_s: float = 60) -> bool:
        """Until no channel is up in Asterisk and every hop of the run is closed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.channel_count() == 0 and self.query_one(
                    "SELECT count(*) FROM hops WHERE caller_num LIKE %s AND ended_at IS NULL",
                    f"{prefix}%") == 0:
                return True
            time.sleep(0.5)
        return False

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()

    def query_one(self, sql: str, *params: Any) -> Any:
        return next(iter(self.query(sql, *params)[0].values()))

    def leftovers(self, callers: Callers) -> Leftovers:
        like = f"{callers.prefix}%"
        reasons = {r["end_reason"] or "open": r["n"] for r in self.query(
            "SELECT end_reason, count(*) AS n FROM hops WHERE caller_num LIKE %s GROUP BY 1", like)}
        return Leftovers(
            calls_sent=len(callers.sent()),
            hops=self.query_one("SELECT count(*) FROM hops WHERE caller_num LIKE %s", like),
            open_hops=self.query_one("SELECT count(*) FROM hops WHERE caller_num LIKE %s"
                                     " AND ended_at IS NULL", like),
            duplicated_events=int(self.query_one(DUPLICATES_SQL)),
            channels=self.channel_count(), bridges=self.bridge_count(), end_reasons=reasons,
            contacts_intact=self.contacts_intact())

    # ---- clean-up -------------------------------------------------------------------------------
    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.stop_daemon()
        self._restore_lab_config()
        if self.db_name:
            try:
                with psycopg.connect(self.lab.admin_dsn(), autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
            except Exception as exc:  # noqa: BLE001
                log(f"cleanup: database {self.db_name}: {exc}")
        log(f"cleaned up (logs kept in {self.work})")

    def _restore_lab_config(self) -> None:
        try:
            self.cli("channel request hangup all")
            restore_files(self.lab.conf_dir, self.conf_backup)
            self.cli("module reload res_pjsip.so")
            self.cli("dialplan reload")
            self.cli("module reload app_queue.so")
        except Exception as exc:  # noqa: BLE001 - report, go on cleaning
            log(f"cleanup: lab config: {exc}")


def run_cleanly(body: Callable[[], int], cleanup: Callable[[], None]) -> int:
    """`body`, then `cleanup` whatever happens: `kill` or a closed terminal ends the run through
    the same clean-up as Ctrl-C."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        return body()
    finally:
        cleanup()


def restore_files(directory: Path, backup: dict[str, bytes | None]) -> None:
    """Put the lab's config files back as they were before a bench wrote them (None: absent)."""
    for name, content in backup.items():
        path = directory / name
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(content)
