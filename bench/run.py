"""hotline vs a plain-dialplan Queue() on the lab: the same sipp load, the same sipp agents.

Run it with `make bench` (after `make setup`), or `.venv/bin/python bench/run.py [--rates 1,2,5]`.
See bench/README.md for what is measured and how. It cleans up after itself: the scratch database,
the files it rendered into the lab's config directory, every sipp and the daemon it started.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadlab import (  # noqa: E402
    ENGINE_DIAL,
    QueueLab,
    cpu_s,
    cpu_tree_s,
    fmt,
    log,
    pct,
    per_call_ms,
    rss_kb,
    run_cleanly,
)

RESULTS = Path(__file__).parent / "results.md"
BASELINE_DIAL = "84950009999"    # extensions_hotline.conf: Queue(bench-baseline), no Stasis
P99_LIMIT_MS = 100.0


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


class Bench(QueueLab):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.agents, args.phones)
        self.args = args

    # ---- set-up -------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
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
        self.start_phones()

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

    def start_daemon(self, timeout_s: float = 30) -> float:
        spawned = super().start_daemon(timeout_s)
        time.sleep(1)  # let it load provisioning and agent states
        return spawned

    # ---- load ---------------------------------------------------------------------------------
    def run_step(self, side: str, rate: int, prefix: str) -> Step:
        dial = ENGINE_DIAL if side == "hotline" else BASELINE_DIAL
        n = rate * self.args.seconds
        step = Step(side, rate, placed=n)
        log(f"{side}: {rate} calls/s for {self.args.seconds} s ({n} calls)")
        status = self.lab.status()
        asterisk_pid, postgres_pid = status.asterisk_pid, status.postgres_pid
        cpu_before = (cpu_s(self.daemon.pid) if self.daemon else None, cpu_s(asterisk_pid),
                      cpu_tree_s(postgres_pid))
        caller = self.start_callers(rate, n, prefix, timeout_s=self.args.seconds + 60, dial=dial)
        time.sleep(self.args.seconds / 2)
        step.active_calls = self.active_calls()
        if self.daemon is not None and side == "hotline":
            step.daemon_rss_kb = rss_kb(self.daemon.pid)
            step.daemon_idle_rss_kb = self.idle_rss_kb
        caller.wait(timeout_s=self.args.seconds + 90)
        cpu_after = (cpu_s(self.daemon.pid) if self.daemon else None, cpu_s(asterisk_pid),
                     cpu_tree_s(postgres_pid))
        if side == "hotline":
            step.daemon_cpu_ms = per_call_ms(cpu_before[0], cpu_after[0], n)
        step.asterisk_cpu_ms = per_call_ms(cpu_before[1], cpu_after[1], n)
        step.postgres_cpu_ms = per_call_ms(cpu_before[2], cpu_after[2], n)
        ok, failed = caller.outcome()
        callers = caller.sent()
        agents = self.agent_invites(prefix)
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
    results: dict[str, list[Step]] = {}
    half_latency: list[float] = []
    half_rate: int | None = None

    def body() -> int:
        nonlocal half_rate, half_latency
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
        return 0

    run_cleanly(body, bench.cleanup)
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
