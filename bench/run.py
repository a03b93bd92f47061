"""hotline vs a plain-dialplan Queue() on the lab: the same sipp load, the same sipp agents.

Run it with `make bench` (after `make setup`), or `.venv/bin/python bench/run.py [--rates 1,2,5]`.
See bench/README.md for what is measured and how. It cleans up after itself: the scratch database,
the files it rendered into the lab's config directory, every sipp and the daemon it started.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from hotline.lab import Lab  # noqa: E402
from hotline.lab.asterisk_conf import TRUNK_ADDRESS  # noqa: E402
from hotline.store.migrations import migrate  # noqa: E402

SCENARIOS = Path(__file__).parent / "scenarios"
RESULTS = Path(__file__).parent / "results.md"
ASTERISK_SIP = "127.0.0.1:5060"
ENGINE_NUMBER = "+74950009900"   # provisioned: hotline -> queue bench, no line limit, no IVR
ENGINE_DIAL = "84950009900"
BASELINE_DIAL = "84950009999"    # extensions_hotline.conf: Queue(bench-baseline), no Stasis
RENDERED = ("pjsip_hotline.conf", "extensions_hotline.conf", "queues_hotline.conf")
P99_LIMIT_MS = 100.0


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


@dataclass
class Step:
    side: str
    rate: int
    placed: int = 0
    ok: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    active_calls: int | None = None
    daemon_rss_kb: int | None = None
    daemon_idle_rss_kb: int | None = None  # the daemon that served this step, before its first call
    daemon_cpu_ms: float | None = None    # CPU time the daemon used over the step, per call
    asterisk_cpu_ms: float | None = None  # the same for Asterisk
    postgres_cpu_ms: float | None = None  # the same for PostgreSQL (every backend)

    @property
    def sustained(self) -> bool:
        p99 = pct(self.latencies_ms, 99)
        return self.failed == 0 and self.ok > 0 and p99 is not None and p99 < P99_LIMIT_MS


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lab = Lab(PROJECT_DIR)
        self.work = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.daemon: subprocess.Popen[bytes] | None = None
        self.db_name: str | None = None
        self.env: dict[str, str] = {}
        self.agents = [f"bench-agent-{n:03d}" for n in range(1, args.agents + 1)]
        self.passwords = {a: secrets.token_urlsafe(12) for a in self.agents}
        self.agent_logs: list[Path] = []
        self.phone_ports = [free_udp_port() for _ in range(args.phones)]
        self.daemon_log = self.work / "daemon.log"
        self.conf_backup: dict[str, bytes | None] = {}
        self.idle_rss_kb: int | None = None

    # ---- set-up -------------------------------------------------------------------------------
    def hotline(self, *args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "hotline", *args], env=self.env,
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"hotline {' '.join(args)} failed:\n{res.stdout}{res.stderr}")
        return res.stdout

    def cli(self, cmd: str) -> str:
        return self.lab.asterisk_cli(cmd)

    def setup(self) -> None:
        self.lab.up()
        for name in RENDERED:  # put back whatever was there (normally nothing) afterwards
            path = self.lab.conf_dir / name
            self.conf_backup[name] = path.read_bytes() if path.exists() else None
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
        self.env = {**os.environ, **self.lab.env(), "HOTLINE_DSN": dsn, "HOTLINE_NODE": "bench-node"}
        toml = self.work / "bench.toml"
        toml.write_text(
            '[queues.bench]\nstrategy = "rrmemory"\nring_timeout = 15\nwrapup = 0\n\n'
            '[hotlines.bench]\nentry = "queue:bench"\n\n'
            f'[numbers."{ENGINE_NUMBER}"]\nhotline = "bench"\nlines = "unlimited"\n\n'
            + "".join(f'[agents.{a}]\npassword = "{p}"\nqueues = {{ bench = 0 }}\n\n'
                      for a, p in self.passwords.items()))
        self.hotline("provision", str(toml))
        self.hotline("apply")
        self.give_agents_static_contacts()
        asyncio.run(log_in(dsn, self.agents))
        # the baseline: a plain dialplan Queue() with the same agents, no Stasis on the way;
        # with --baseline-ring, its callers hear ringing instead of music (option r)
        queue_options = ",r" if self.args.baseline_ring else ""
        conf = self.lab.conf_dir
        with (conf / "extensions_hotline.conf").open("a") as f:
            f.write(f"\n; bench baseline (bench/run.py): a plain dialplan queue\n[hotline-inbound](+)\n"
                    f"exten => {BASELINE_DIAL},1,Queue(bench-baseline{queue_options})\n"
                    " same => n,Hangup()\n")
        (conf / "queues_hotline.conf").write_text(
            "; bench baseline (bench/run.py), removed when the bench ends\n[bench-baseline]\n"
            "strategy = rrmemory\ntimeout = 15\nretry = 1\nwrapuptime = 0\nringinuse = no\nautofill = yes\n"
            "joinempty = yes\nleavewhenempty = no\nannounce-frequency = 0\n"
            "periodic-announce-frequency = 0\nannounce-position = no\nannounce-holdtime = no\n"
            "reportholdtime = no\n" + "".join(f"member => PJSIP/{a}\n" for a in self.agents))
        self.cli("dialplan reload")
        self.cli("module reload app_queue.so")
        self.cli("channel request hangup all")
        self.start_agents()

    def give_agents_static_contacts(self) -> None:
        """Each agent's AOR gets a static contact on one of the sipp phones (round robin), as a
        trunk-like desk phone would be configured: hundreds of agents need no REGISTER each."""
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

    def start_agents(self) -> None:
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

    def wait_phones_reachable(self) -> None:
        # Asterisk spreads the first qualify of static contacts over qualify_frequency (30 s).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # every static contact qualified by Asterisk: reachable
            contacts = self.cli("pjsip show contacts like bench-agent")
            if contacts.count(" Avail ") >= len(self.agents):
                return
            time.sleep(1)
        raise RuntimeError(f"not every bench agent's phone is reachable ({contacts.count(' Avail ')}"
                           f" of {len(self.agents)}):\n{contacts[:2000]}")

    def fresh_asterisk(self, side: str) -> None:
        """Restart Asterisk before each step, so no step inherits what ran before it (the other
        side, a breaking rate, an earlier bench or test run: thousands of calls, hundreds of MB
        grown); then wait for the phones to be qualified again. The daemon runs for the engine's
        steps only: a `Queue()` deployment has no daemon, and one subscribed to every channel
        would cost the baseline's Asterisk the events of its calls."""
        keep_daemon = side == "hotline" or self.args.baseline_with_daemon
        if not keep_daemon:
            self.stop_daemon()
        log("restarting Asterisk before the step")
        self.lab.restart_asterisk()
        self.wait_phones_reachable()
        if not keep_daemon:
            return
        if self.daemon is None:
            self.start_daemon()
            return
        app = self.env.get("HOTLINE_ARI_APP", "hotline")
        deadline = time.monotonic() + 30
        while app not in (line.strip() for line in self.cli("ari show apps").splitlines()):
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not reconnect after the Asterisk restart")
            time.sleep(0.5)
        time.sleep(2)  # its reconcile and device states

    def start_daemon(self) -> None:
        logf = self.daemon_log.open("ab")
        self.daemon = subprocess.Popen([sys.executable, "-m", "hotline", "-v", "run"], env=self.env,
                                       stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.monotonic() + 20
        app = self.env.get("HOTLINE_ARI_APP", "hotline")
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError("hotline run exited:\n" + self.daemon_log.read_text()[-3000:])
            if app in (line.strip() for line in self.cli("ari show apps").splitlines()):
                time.sleep(1)  # let it load provisioning and agent states
                self.idle_rss_kb = rss_kb(self.daemon.pid)
                return
            time.sleep(0.2)
        raise RuntimeError("hotline run did not register its Stasis app")

    def stop_daemon(self) -> None:
        stop_gently(self.daemon)
        self.daemon = None

    # ---- load ---------------------------------------------------------------------------------
    def run_step(self, side: str, rate: int, prefix: str) -> Step:
        dial = ENGINE_DIAL if side == "hotline" else BASELINE_DIAL
        n = rate * self.args.seconds
        step = Step(side, rate, placed=n)
        logf = self.work / f"caller-{prefix}_logs.log"
        stat = self.work / f"caller-{prefix}_stat.csv"
        cmd = ["sipp", ASTERISK_SIP, "-sf", str(SCENARIOS / "caller.xml"), "-s", dial,
               "-key", "prefix", prefix, "-r", str(rate), "-m", str(n), "-l", str(max(50, rate * 30)),
               "-i", TRUNK_ADDRESS, "-p", str(free_udp_port()), "-mp", str(free_udp_port()),
               "-recv_timeout", "30000", "-timeout", f"{self.args.seconds + 60}s", "-nostdin",
               "-trace_logs", "-log_file", str(logf), "-trace_stat", "-stf", str(stat), "-fd", "1"]
        log(f"{side}: {rate} calls/s for {self.args.seconds} s ({n} calls)")
        status = self.lab.status()
        asterisk_pid, postgres_pid = status.asterisk_pid, status.postgres_pid
        cpu_before = (cpu_s(self.daemon.pid) if self.daemon else None, cpu_s(asterisk_pid),
                      cpu_tree_s(postgres_pid))
        caller = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL, cwd=self.work)
        self.procs.append(caller)
        time.sleep(self.args.seconds / 2)
        step.active_calls = self.active_calls()
        if self.daemon is not None and side == "hotline":
            step.daemon_rss_kb = rss_kb(self.daemon.pid)
            step.daemon_idle_rss_kb = self.idle_rss_kb
        try:
            caller.wait(timeout=self.args.seconds + 90)
        except subprocess.TimeoutExpired:
            caller.kill()
            caller.wait()
        cpu_after = (cpu_s(self.daemon.pid) if self.daemon else None, cpu_s(asterisk_pid),
                     cpu_tree_s(postgres_pid))
        if side == "hotline":
            step.daemon_cpu_ms = per_call_ms(cpu_before[0], cpu_after[0], n)
        step.asterisk_cpu_ms = per_call_ms(cpu_before[1], cpu_after[1], n)
        step.postgres_cpu_ms = per_call_ms(cpu_before[2], cpu_after[2], n)
        ok, failed = read_stat(stat)
        callers = read_log(logf, "CALLER")
        agents: dict[str, float] = {}
        for a in self.agent_logs:
            agents.update({k: v for k, v in read_log(a, "AGENT").items() if k.startswith(prefix)})
        reached = 0
        for number, t0 in callers.items():
            t1 = agents.get(number)
            if t1 is not None:
                reached += 1
                step.latencies_ms.append((t1 - t0) * 1000)
        # a call is ok when the caller's sipp saw it through and an agent got its INVITE
        step.ok = min(ok, reached)
        step.failed = n - step.ok
        log(f"  sipp ok {ok} failed {failed}; agents reached {reached}/{n}; "
            f"p50 {fmt(pct(step.latencies_ms, 50))} ms p99 {fmt(pct(step.latencies_ms, 99))} ms")
        # let the last calls end and agents go idle before the next step
        self.wait_idle()
        return step

    def active_calls(self) -> int | None:
        out = self.cli("core show channels count")
        m = re.search(r"(\d+) active channels?", out)
        return int(m.group(1)) // 2 if m else None  # a caller leg + an agent leg per call

    def wait_idle(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if re.search(r"^0 active channels", self.cli("core show channels count"), re.M):
                break
            time.sleep(0.5)
        else:
            self.cli("channel request hangup all")
        time.sleep(2)

    def ramp(self, sides: list[str], rates: list[int]) -> dict[str, list[Step]]:
        """Both sides rate by rate, back to back, each step on a freshly restarted Asterisk: on
        a shared machine whose speed drifts by a fifth within the hour, the two sides of one
        rate meet the same machine. A side stops at its first rate not sustained."""
        results: dict[str, list[Step]] = {side: [] for side in sides}
        for i, rate in enumerate(rates):
            for side in sides:
                steps = results[side]
                if steps and not steps[-1].sustained:
                    continue
                self.fresh_asterisk(side)
                prefix = f"7{'1' if side == 'hotline' else '2'}{i:02d}0"
                steps.append(self.run_step(side, rate, prefix=prefix))
            if all(steps and not steps[-1].sustained for steps in results.values()):
                break
        return results

    # ---- clean-up -----------------------------------------------------------------------------
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
        try:
            self.cli("channel request hangup all")
            for name, content in self.conf_backup.items():
                path = self.lab.conf_dir / name
                if content is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(content)
            self.cli("module reload res_pjsip.so")
            self.cli("dialplan reload")
            self.cli("module reload app_queue.so")
        except Exception as exc:  # noqa: BLE001 - report, go on cleaning
            log(f"cleanup: lab config: {exc}")
        if self.db_name:
            try:
                with psycopg.connect(self.lab.admin_dsn(), autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
            except Exception as exc:  # noqa: BLE001
                log(f"cleanup: database {self.db_name}: {exc}")
        log(f"cleaned up (logs kept in {self.work})")


async def log_in(dsn: str, agents: list[str]) -> None:
    """`hotline agent login` for each agent, in one connection (hundreds of CLI runs are slow)."""
    from hotline.store import agent_sessions

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with conn:
        for agent in agents:
            await agent_sessions.login(conn, agent)


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


def engine_latency(daemon_log: Path, since: float, until: float) -> list[float]:
    """'entered' (logged on StasisStart) -> first 'ringing' (logged just before the originate) per
    call, from the daemon's -v log (ms timestamps)."""
    stamp = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?call (\S+?):? "
    joined: dict[str, float] = {}
    ringing: dict[str, float] = {}
    for line in daemon_log.read_text(errors="replace").splitlines():
        m = re.match(stamp, line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if not since <= t <= until:
            continue
        if "entered: " in line:
            joined.setdefault(m.group(2), t)
        elif ": ringing " in line:
            ringing.setdefault(m.group(2), t)
    return [(ringing[c] - t0) * 1000 for c, t0 in joined.items() if c in ringing]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=400, help="agents in the queue (one call each)")
    parser.add_argument("--phones", type=int, default=2, help="sipp UAS processes the agents share")
    parser.add_argument("--rates", default="20,40,60,80,100,120,140,160,180",
                        help="calls/s, comma separated, tried in order until one fails")
    parser.add_argument("--seconds", type=int, default=20, help="length of each step")
    parser.add_argument("--only", choices=("baseline", "hotline"), help="ramp one side only")
    parser.add_argument("--baseline-ring", action="store_true",
                        help="Queue(bench-baseline,r): the baseline's callers hear ringing, not music")
    parser.add_argument("--baseline-with-daemon", action="store_true",
                        help="keep the daemon connected during the baseline's steps (it then receives "
                             "the events of the baseline's calls, as a daemon beside a Queue() would)")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    bench = Bench(args)
    # `kill`/a closed terminal ends the run through the same clean-up as Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    results: dict[str, list[Step]] = {}
    half_latency: list[float] = []
    half_rate = None
    try:
        bench.setup()
        results.update(bench.ramp([side for side in ("baseline", "hotline") if args.only in (None, side)],
                                  rates))
        best = max((s.rate for s in results.get("hotline", []) if s.sustained), default=None)
        if best is not None:  # the engine's own latency at half its highest sustained rate
            half_rate = max(1, best // 2)
            bench.fresh_asterisk("hotline")
            t0 = time.time()
            step = bench.run_step("hotline", half_rate, prefix="7300")
            half_latency = engine_latency(bench.daemon_log, t0, time.time())
            results["hotline-half"] = [step]
    finally:
        bench.cleanup()
    report(results, half_rate, half_latency, args)
    return 0


def report(results: dict[str, list[Step]], half_rate: int | None, half_latency: list[float],
           args: argparse.Namespace) -> None:
    lines = [f"# hotline bench, {datetime.now():%Y-%m-%d %H:%M} ({os.cpu_count()} CPUs)", "",
             f"Calls of 2 s, each rate for {args.seconds} s; sustained = no failed call and caller "
             f"INVITE -> agent INVITE p99 < {P99_LIMIT_MS:.0f} ms. Baseline: "
             + ("`Queue(bench-baseline,r)`, its callers hear ringing." if args.baseline_ring else
                "`Queue(bench-baseline)`, its callers hear music on hold (early media).")
             + " hotline: a caller whose agent is free hears ringing (no answer, no music).", "",
             "| side | rate/s | calls ok | failed | p50 ms | p99 ms | sustained | active calls"
             " | daemon RSS KB | CPU ms/call: daemon | Asterisk | PostgreSQL |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for side, steps in results.items():
        for s in steps:
            lines.append(f"| {side} | {s.rate} | {s.ok} | {s.failed} | {fmt(pct(s.latencies_ms, 50))} | "
                         f"{fmt(pct(s.latencies_ms, 99))} | {'yes' if s.sustained else 'no'} | "
                         f"{s.active_calls if s.active_calls is not None else '-'} | "
                         f"{s.daemon_rss_kb if s.daemon_rss_kb is not None else '-'} | "
                         f"{fmt(s.daemon_cpu_ms)} | {fmt(s.asterisk_cpu_ms)} | "
                         f"{fmt(s.postgres_cpu_ms)} |")
    best = {side: max((s.rate for s in results.get(side, []) if s.sustained), default=None)
            for side in ("baseline", "hotline")}
    lines += ["", f"Highest sustained rate: baseline {best['baseline']}, hotline {best['hotline']} calls/s"]
    if best["baseline"] and best["hotline"]:
        lines.append(f"Ratio hotline/baseline: {best['hotline'] / best['baseline']:.2f}x")
    if half_rate is not None:
        lines.append(f"Engine added latency (StasisStart -> agent dial: the 'entered' and 'ringing' lines "
                     f"of the daemon's -v log) at {half_rate} calls/s: "
                     f"p50 {fmt(pct(half_latency, 50))} ms, p99 {fmt(pct(half_latency, 99))} ms "
                     f"({len(half_latency)} calls)")
    top = [s for s in results.get("hotline", []) if s.sustained and s.rate == best["hotline"]]
    if top and top[0].daemon_rss_kb and top[0].active_calls:
        s = top[0]
        lines.append(f"Daemon memory at {s.rate} calls/s: RSS {s.daemon_rss_kb} KB over {s.active_calls} "
                     f"active calls = {s.daemon_rss_kb / s.active_calls:.0f} KB per active call "
                     "(whole RSS)")
        idle = s.daemon_idle_rss_kb
        if idle:
            lines.append(f"Daemon RSS idle (agents registered, no call) {idle} KB; increase at "
                         f"{s.rate} calls/s {s.daemon_rss_kb - idle} KB = "
                         f"{(s.daemon_rss_kb - idle) / s.active_calls:.1f} KB per active call")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text + stats_section())


def stats_section() -> str:
    """bench/stats_bench.py's part of results.md, kept as it is."""
    old = RESULTS.read_text() if RESULTS.exists() else ""
    begin, end = "<!-- stats-bench: begin -->", "<!-- stats-bench: end -->"
    if begin not in old or end not in old:
        return ""
    return "\n" + old[old.index(begin): old.index(end) + len(end)] + "\n"


if __name__ == "__main__":
    sys.exit(main())
