"""A soak on the lab: sipp callers at a steady rate through a queue of sipp agents for a bounded
time, and what a long-running daemon must not do: grow.

    .venv/bin/python bench/soak.py [--minutes 20] [--rate 10] [--agents 40] [--warmup 2]

Set up as bench/loadlab.py does (a scratch database, `hotline run`, agents with static contacts
on sipp phones that answer at once; each call is hung up by its caller 2 s after the answer).
While the calls flow it samples, every `--sample` seconds, the daemon's RSS and open file
descriptors and Asterisk's channel count; and every 200 ms it times a GET of the daemon's own web
page (served by the same event loop as the calls, from memory: its latency is how long the loop
takes to get to a new task, measured from outside the daemon). At the end, once the last call is
over: RSS and descriptors after the warm-up (first and last sample, the fitted slope), the GET
latency (p50, p99, max), the routing latency (caller INVITE -> agent INVITE), and what was left
(hops against calls, open hops, duplicated queue events, channels, bridges). The table is printed
and written to bench/soak-results.md. Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadlab import Leftovers, QueueLab, fmt, log, open_fds, pct, rss_kb, run_cleanly  # noqa: E402
from hotline.errors import LabError  # noqa: E402

RESULTS = Path(__file__).parent / "soak-results.md"
# A daemon that runs for months must not grow with the calls it served: after the warm-up, the
# fitted RSS slope per call served (at 10 calls/s, 100 B a call would be 86 MB a day).
RSS_PER_CALL_LIMIT_B = 100.0
FD_SPREAD_LIMIT = 8      # pool connections and sockets come and go; a leak climbs past this
PROBE_EVERY_S = 0.2  # 5 a second: under the pages' per-client limit (10 a second)


@dataclass
class Sample:
    t: float
    rss_kb: int | None
    fds: int | None
    channels: int


@dataclass
class Probe:
    """GETs of the daemon's page every 200 ms, in a thread of their own."""
    url: str
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (when, ms)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    resp.read()
                self.latencies.append((time.time(), (time.monotonic() - t0) * 1000))
            except OSError:
                self.failures += 1
            self.stop.wait(max(0.0, PROBE_EVERY_S - (time.monotonic() - t0)))


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t seconds, value), per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return None if var == 0 else sum((t - mt) * (v - mv) for t, v in points) / var * 60


def soak(q: QueueLab, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Run the load, sample, and return (figures, problems)."""
    seconds = args.minutes * 60
    calls = round(args.rate * seconds)
    probe = Probe(f"http://127.0.0.1:{q.web_port}/")
    prober = threading.Thread(target=probe.run, name="loop-lag-probe", daemon=True)
    started = time.time()
    callers = q.start_callers(args.rate, calls, "75", timeout_s=seconds + 90)
    prober.start()
    samples: list[Sample] = []
    assert q.daemon is not None
    pid = q.daemon.pid
    log(f"soak: {args.rate:g} calls/s for {args.minutes:g} min ({calls} calls), {len(q.agents)} agents")
    interrupted = None
    while callers.proc.poll() is None and interrupted is None:
        t = time.time() - started
        samples.append(Sample(t, rss_kb(pid), open_fds(pid), -1))
        interrupted = lab_interrupted(q, samples[-1])
        s = samples[-1]
        if len(samples) % max(1, round(60 / args.sample)) == 0:
            log(f"  {s.t / 60:.1f} min: RSS {s.rss_kb} KB, {s.fds} fds, {s.channels} channels")
        time.sleep(args.sample)
    probe.stop.set()
    prober.join()
    (q.work / "samples.csv").write_text("seconds,rss_kb,fds,channels\n" + "".join(
        f"{s.t:.0f},{s.rss_kb},{s.fds},{s.channels}\n" for s in samples))
    if interrupted is not None:  # what was measured until then, and why it stopped
        callers.proc.kill()
        figures, problems = judge(args, samples, probe, q.latencies_ms(callers, until=started + t), None,
                                  True, callers.outcome())
        return figures, [interrupted, *problems]
    settled = q.wait_settled(callers.prefix, timeout_s=60)
    left = q.leftovers(callers)
    return judge(args, samples, probe, q.latencies_ms(callers), left, settled, callers.outcome())


def lab_interrupted(q: QueueLab, sample: Sample) -> str | None:
    """Why the soak cannot go on, if it cannot: the lab is shared, and a session that starts
    meanwhile may restart its Asterisk or reload its config (tests/conftest.py's lab fixture)."""
    minute = f"{sample.t / 60:.1f} min"
    try:
        sample.channels = q.channel_count()
        if not q.contacts_intact():
            return (f"stopped at {minute}: the agents' contacts were unloaded (someone reloaded the"
                    " lab's res_pjsip)")
    except LabError as exc:
        return f"stopped at {minute}: the lab's Asterisk went away ({exc})"
    return None


def judge(args: argparse.Namespace, samples: list[Sample], probe: Probe, routing: list[float],
          left: Leftovers | None, settled: bool, outcome: tuple[int, int]) -> tuple[list[str], list[str]]:
    warm = [s for s in samples if s.t >= args.warmup * 60 and s.rss_kb is not None and s.fds is not None]
    figures: list[str] = []
    problems = left.problems() if left is not None else []
    if not settled:
        problems.append("calls or hops still up 60 s after the load")
    ok, failed = outcome
    figures.append(f"sipp: {ok} calls ok, {failed} failed")
    if failed:
        problems.append(f"{failed} calls failed at the caller's end")
    if len(warm) >= 2:
        first, last = warm[0], warm[-1]
        rss_slope = slope_per_min([(s.t, float(s.rss_kb or 0)) for s in warm])
        fd_values = [s.fds or 0 for s in warm]
        growth = (rss_slope or 0) * (last.t - first.t) / 60
        figures.append(f"daemon RSS after the warm-up: {first.rss_kb} KB -> {last.rss_kb} KB (min "
                       f"{min(s.rss_kb or 0 for s in warm)}, max {max(s.rss_kb or 0 for s in warm)}),"
                       f" fitted slope {fmt(rss_slope)} KB/min = {growth:+.0f} KB over the run")
        figures.append(f"daemon open fds after the warm-up: {first.fds} -> {last.fds}"
                       f" (min {min(fd_values)}, max {max(fd_values)})")
        per_call = (rss_slope or 0) * 1024 / (args.rate * 60)
        figures.append(f"daemon RSS growth after the warm-up per call served: {per_call:.0f} B"
                       f" ({per_call * args.rate * 86400 / 2**20:.0f} MB a day at {args.rate:g} calls/s)")
        if per_call > RSS_PER_CALL_LIMIT_B:
            problems.append(f"RSS grows {per_call:.0f} B a call served after the warm-up (limit"
                            f" {RSS_PER_CALL_LIMIT_B:.0f} B)")
        if max(fd_values) - min(fd_values) > FD_SPREAD_LIMIT:
            problems.append(f"open fds not flat after the warm-up: {min(fd_values)}..{max(fd_values)}")
        figures.append(f"Asterisk channels during the run: max {max(s.channels for s in samples)}")
    else:
        problems.append("too few samples after the warm-up")
    lag = [ms for _, ms in probe.latencies]
    figures.append(f"daemon page GET every 200 ms (event-loop responsiveness): {len(lag)} GETs, p50 "
                   f"{fmt(pct(lag, 50))} ms, p99 {fmt(pct(lag, 99))} ms, max {fmt(max(lag, default=None))}"
                   f" ms, {probe.failures} failed")
    if probe.failures:
        problems.append(f"{probe.failures} GETs of the daemon's page failed")
    figures.append(f"routing latency (caller INVITE -> agent INVITE): p50 {fmt(pct(routing, 50))} ms,"
                   f" p99 {fmt(pct(routing, 99))} ms ({len(routing)} calls)")
    if left is not None:
        figures.append(left.line())
    return figures, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20, help="how long calls are placed")
    parser.add_argument("--rate", type=float, default=10, help="calls/s")
    parser.add_argument("--agents", type=int, default=40, help="agents in the queue (rate x 2 s are busy)")
    parser.add_argument("--warmup", type=float, default=2, help="minutes before RSS and fds must stay flat")
    parser.add_argument("--sample", type=float, default=10, help="seconds between RSS/fd samples")
    args = parser.parse_args()
    q = QueueLab(args.agents, tag="soak")
    result: dict[str, list[str]] = {}

    def body() -> int:
        q.setup()
        q.start_phones()
        q.start_daemon()
        result["figures"], result["problems"] = soak(q, args)
        return 0

    run_cleanly(body, q.cleanup)
    lines = [f"# hotline soak, {datetime.now():%Y-%m-%d %H:%M}: {args.rate:g} calls/s for {args.minutes:g}"
             f" min, {args.agents} agents, warm-up {args.warmup:g} min", "",
             *(f"- {f}" for f in result["figures"]), "",
             "Checks: " + ("all passed" if not result["problems"] else "FAILED"),
             *(f"- {p}" for p in result["problems"])]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
