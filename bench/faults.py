"""Faults under load on the lab: calls flow through a queue of sipp agents while one part fails.

    .venv/bin/python bench/faults.py [--fault daemon-kill|asterisk-restart|db-outage|slow-db|all]
                                     [--rate 10] [--seconds 30] [--agents 16]

Each fault runs on its own scratch database and daemon (bench/loadlab.py): sipp callers at
`--rate` calls/s (each answered by an agent phone and hung up by the caller 2 s later) for
`--seconds`, the fault injected a third of the way in, and then, once the last call is over, the
same checks for every fault: every call sent outside the fault's window has exactly one hop, no
call has two, every hop is closed, no queue event is duplicated, no channel or bridge is left in
Asterisk, no call failed at the caller's end; and each fault's own promise (README, "Faults under
load"). The exit status is the number of faults whose checks failed. It needs the lab free.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadlab import Callers, QueueLab, fmt, log, pct, run_cleanly  # noqa: E402
from hotline.store.active_lock import ACTIVE  # noqa: E402
from hotline.store.db import APPLICATION_NAME  # noqa: E402

SERVE_AFTER_DAEMON_RESTART_S = 5.0
SERVE_AFTER_FULLY_BOOTED_S = 10.0
SLOW_DB_MARGIN_MS = 50.0  # how much a slow database may add to the routing p99
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


@dataclass
class Verdict:
    fault: str
    figures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def report(self) -> str:
        head = f"{self.fault}: {'ok' if not self.problems else 'FAILED'}"
        return "\n".join([head, *(f"  {f}" for f in self.figures), *(f"  ! {p}" for p in self.problems)])


@dataclass(frozen=True)
class Load:
    rate: float
    seconds: float

    @property
    def calls(self) -> int:
        return max(1, round(self.rate * self.seconds))


# ---- the common checks ------------------------------------------------------------------------------
def refused_calls(callers: Callers) -> dict[str, int]:
    """Caller number -> the final status of each call sipp aborted on an unexpected answer (its
    error file names the Call-ID, `<call number>-<pid>@<ip>`)."""
    path = callers.log_file.with_name(callers.log_file.name.replace("_logs.log", "_errors.log"))
    if not path.exists():
        return {}
    found = re.finditer(r"Call-Id '(\d+)-[^']*'.*?received 'SIP/2\.0 (\d{3})",
                        path.read_text(errors="replace"), re.S)
    return {f"{callers.prefix}{m.group(1)}": int(m.group(2)) for m in found}


def settle_and_check(q: QueueLab, callers: Callers, load: Load, verdict: Verdict,
                     window: tuple[float, float] | None = None, settle_s: float = 60,
                     may_be_cut: frozenset[str] = frozenset()) -> None:
    """Wait for the callers and the engine to finish, then the checks every fault shares. Calls
    sent inside `window` (the service was away) may have been refused: they need no hop; calls in
    `may_be_cut` were up when the fault cut them."""
    callers.wait(timeout_s=load.seconds + 120)
    verdict.check(q.wait_settled(callers.prefix, settle_s), f"not settled {settle_s:.0f} s after the load")
    sent = callers.sent()
    per_caller = {r["caller_num"]: r["n"] for r in q.query(
        "SELECT caller_num, count(*) AS n FROM hops WHERE caller_num LIKE %s GROUP BY 1",
        f"{callers.prefix}%")}
    inside = {n for n, t in sent.items() if window and window[0] <= t <= window[1]}
    missing = sorted(n for n in sent if n not in inside and n not in per_caller)
    twice = sorted(n for n, count in per_caller.items() if count > 1)
    ok, failed = callers.outcome()
    refused = refused_calls(callers)
    left = q.leftovers(callers)
    verdict.figures.append(left.line())
    verdict.figures.append(f"sipp: {ok} calls ok, {failed} failed"
                           + (f" ({len(refused)} refused: {summarise(refused)})" if refused else ""))
    if window:
        with_hop = sum(1 for n in inside if n in per_caller)
        verdict.figures.append(f"{len(inside)} calls sent in the {window[1] - window[0]:.1f} s window"
                               f" of the fault, {with_hop} of them with a hop")
    verdict.check(not missing, f"{len(missing)} calls sent outside the fault's window have no hop"
                               f" (e.g. {missing[:3]})")
    verdict.check(not twice, f"{len(twice)} calls have more than one hop (e.g. {twice[:3]})")
    verdict.check(left.contacts_intact, "the agents' contacts were unloaded during the run (someone"
                                        " reloaded the lab's res_pjsip): the figures are void")
    verdict.check(left.open_hops == 0, f"{left.open_hops} hops still open")
    for hop in q.query("SELECT id, channel_id, caller_num, entered_at, queued_at, answered_at FROM hops"
                       " WHERE caller_num LIKE %s AND ended_at IS NULL ORDER BY id LIMIT 5",
                       f"{callers.prefix}%"):
        verdict.figures.append("open hop: " + ", ".join(f"{k} {v}" for k, v in hop.items()))
    verdict.check(left.duplicated_events == 0, f"{left.duplicated_events} queue events duplicated")
    if left.channels:
        listing = q.cli("core show channels concise").splitlines()
        verdict.figures.append("channels left: " + "; ".join(listing[:5]))
    verdict.check(left.channels == 0, f"{left.channels} channels left in Asterisk")
    verdict.check(left.bridges == 0, f"{left.bridges} bridges left in Asterisk")
    ended = callers.ended()
    cut = sorted(n for n in sent if n not in inside and n not in ended and n not in may_be_cut)
    verdict.check(not cut, f"{len(cut)} calls sent outside the fault's window were not answered and"
                           f" hung up normally by the caller (e.g. {cut[:3]})")


def summarise(refused: dict[str, int]) -> str:
    counts: dict[int, int] = {}
    for status in refused.values():
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} x {status}" for status, n in sorted(counts.items()))


def p50_99(values: list[float]) -> str:
    return f"p50 {fmt(pct(values, 50))} p99 {fmt(pct(values, 99))} ms ({len(values)} calls)"


def first_agent_invite_after(q: QueueLab, callers: Callers, t: float) -> float | None:
    """When an agent phone next got a call whose caller dialled after `t`."""
    sent = callers.sent()
    later = [at for n, at in q.agent_invites(callers.prefix).items() if sent.get(n, 0) > t]
    return min(later) if later else None


def daemon_log_time(q: QueueLab, text: str, after: float) -> float | None:
    """When the daemon first logged a line holding `text`, after `after` (epoch s)."""
    for line in q.daemon_log_text().splitlines():
        m = LOG_TIME.match(line)
        if m and text in line:
            t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if t >= after:
                return t
    return None


def wait_logged(q: QueueLab, text: str, after: float, timeout_s: float = 20) -> float | None:
    """daemon_log_time, waited for (the daemon may not have got there yet)."""
    deadline = time.monotonic() + timeout_s
    while (t := daemon_log_time(q, text, after)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return t


# ---- the faults ----------------------------------------------------------------------------------
def daemon_kill(q: QueueLab, load: Load, prefix: str = "7410") -> Verdict:
    """SIGKILL the daemon with calls talking and callers waiting, start it again at once: the
    talking keep talking to the same agent, the waiting keep their place and are served, and the
    queue serves a new caller within 5 s of the restart."""
    v = Verdict("daemon SIGKILLed and restarted")
    callers = q.start_callers(load.rate, load.calls, prefix)
    time.sleep(load.seconds / 3)
    killed = q.kill_daemon()
    talking = {r["caller_num"]: r["agent_id"] for r in q.query(
        "SELECT caller_num, agent_id FROM hops WHERE caller_num LIKE %s AND answered_at IS NOT NULL"
        " AND ended_at IS NULL", f"{prefix}%")}
    # in line, not being rung: the hop has no ring event after its last ring_noanswer
    waiting = [r["caller_num"] for r in q.query(
        "SELECT caller_num FROM hops h WHERE caller_num LIKE %s AND queued_at IS NOT NULL"
        " AND answered_at IS NULL AND ended_at IS NULL AND NOT EXISTS (SELECT 1 FROM queue_events e"
        " WHERE e.hop_id = h.id AND e.event = 'ring') ORDER BY queued_at", f"{prefix}%")]
    spawned = q.start_daemon()
    ready = time.time()
    settle_and_check(q, callers, load, v, window=(killed, ready))
    served = first_agent_invite_after(q, callers, spawned)
    gap = None if served is None else served - spawned
    v.figures.append(f"daemon killed with {len(talking)} calls talking and {len(waiting)} callers waiting;"
                     f" the new one ready {ready - spawned:.1f} s after its start, first new caller at an"
                     f" agent {fmt(gap)} s after its start")
    v.check(gap is not None and gap <= SERVE_AFTER_DAEMON_RESTART_S,
            f"the queue served a new caller {fmt(gap)} s after the restart"
            f" (limit {SERVE_AFTER_DAEMON_RESTART_S} s)")
    ends = {r["caller_num"]: r for r in q.query(
        "SELECT caller_num, agent_id, end_reason, ended_at FROM hops WHERE caller_num = ANY(%s)",
        [*talking, *waiting])}
    hung_up = callers.ended()
    uncut = [n for n in talking if n in hung_up]
    # A call whose caller hung up before the new daemon was there is closed as its party left it
    # ("ended while no daemon watched": completed); one still up when it came is adopted and completes.
    adopted = [n for n in talking if hung_up.get(n, 0) > ready]
    completed = [n for n in adopted if ends.get(n, {}).get("end_reason") == "completed"
                 and ends[n]["agent_id"] == talking[n]]
    served_waiting = [n for n in waiting if ends.get(n, {}).get("end_reason") == "completed"]
    # A bench caller hangs up 2 s after it was answered, whatever happened: one that joined just
    # before the kill may run out of that patience while the restart and its ring take their time.
    # It kept its place if it was rung in its turn (checked below) and left by its own BYE.
    rung_again = set(rung_callers(q, waiting, killed))
    left_in_turn = [n for n in waiting if n in hung_up and ends.get(n, {}).get("end_reason") == "abandoned"
                    and (n in rung_again or hung_up[n] <= ready)]  # or gone before the new daemon came
    v.figures.append(f"talking at the kill: {len(uncut)}/{len(talking)} never cut; {len(adopted)} still up"
                     f" when the new daemon was ready, {len(completed)} of them completed with the same"
                     f" agent; waiting at the kill: {len(served_waiting)}/{len(waiting)} served,"
                     f" {len(left_in_turn)} hung up by their 2 s patience before an agent took them")
    v.check(len(uncut) == len(talking), f"{len(talking) - len(uncut)} calls bridged at the kill were cut")
    v.check(len(completed) == len(adopted), "a call adopted while talking did not complete with its agent: "
            + str({n: ends.get(n) for n in adopted if n not in completed}))
    v.check(len(served_waiting) + len(left_in_turn) == len(waiting),
            "a caller waiting at the kill was neither served nor left by itself: "
            + str({n: ends.get(n) for n in waiting if n not in served_waiting + left_in_turn}))
    order = rung_order(q, waiting, killed)
    v.check(order == sorted(order), f"callers waiting at the kill were rung out of their order: {order}")
    return v


def rung_callers(q: QueueLab, callers: list[str], after: float) -> list[str]:
    """Those of `callers` an agent was rung for after `after` (epoch s), in the order of their
    first ring."""
    rows = q.query("SELECT h.caller_num FROM hops h JOIN queue_events e ON e.hop_id = h.id"
                   " WHERE h.caller_num = ANY(%s) AND e.event = 'ring' AND e.at > to_timestamp(%s)"
                   " GROUP BY h.caller_num ORDER BY min(e.at)", callers, after)
    return [r["caller_num"] for r in rows]


def rung_order(q: QueueLab, callers_in_line: list[str], after: float) -> list[int]:
    """Each caller's place in `callers_in_line` (their order in line), in the order an agent was
    first rung for them after `after` (epoch s)."""
    return [callers_in_line.index(n) for n in rung_callers(q, callers_in_line, after)]


def asterisk_restart(q: QueueLab, load: Load, prefix: str = "7420") -> Verdict:
    """Restart Asterisk under load: the daemon reconnects, the calls it cut are closed `failed`
    with their cause, and new calls reach an agent within 10 s of `FullyBooted`."""
    v = Verdict("Asterisk restarted")
    callers = q.start_callers(load.rate, load.calls, prefix)
    time.sleep(load.seconds / 3)
    down = time.time()
    live = [r["caller_num"] for r in q.query(
        "SELECT caller_num FROM hops WHERE caller_num LIKE %s AND ended_at IS NULL", f"{prefix}%")]
    q.lab.restart_asterisk()
    up = time.time()
    # The lab's phones never register: the static contacts are qualified again at once, as a
    # phone that registers again would be reachable at once.
    q.wait_phones_reachable(timeout_s=30)
    booted = wait_logged(q, "Asterisk fully booted", down) or up
    # Until the daemon's ARI WebSocket is back (within its backoff) Asterisk refuses new calls
    # with 503: the window of the fault runs to then, and the 10 s count from FullyBooted.
    connected = wait_logged(q, "ARI connected", booted) or time.time()
    reconnected = q.daemon_log_text().count("reconnecting")
    settle_and_check(q, callers, load, v, window=(down, max(booted, connected)), may_be_cut=frozenset(live))
    served = first_agent_invite_after(q, callers, booted)
    gap = None if served is None else served - booted
    v.figures.append(f"Asterisk down {up - down:.1f} s; FullyBooted seen by the daemon {booted - down:.1f} s"
                     f" after the stop, its ARI back {connected - booted:.1f} s after that; first new"
                     f" caller at an agent {fmt(gap)} s after FullyBooted; reconnect lines in the"
                     f" daemon's log: {reconnected}")
    v.check(gap is not None and gap <= SERVE_AFTER_FULLY_BOOTED_S,
            f"a new call reached an agent {fmt(gap)} s after FullyBooted"
            f" (limit {SERVE_AFTER_FULLY_BOOTED_S} s)")
    hung_up = callers.ended()
    cut = q.query("SELECT caller_num, end_reason, hangup_cause, hangup_cause_text FROM hops"
                  " WHERE caller_num = ANY(%s)", [n for n in live if n not in hung_up])
    reasons: dict[str, int] = {}
    for r in cut:
        reasons[str(r["end_reason"])] = reasons.get(str(r["end_reason"]), 0) + 1
    v.figures.append(f"{len(live)} calls live at the restart, {len(cut)} of them cut by it, closed as:"
                     f" {reasons}")
    wrong = [r for r in cut if r["end_reason"] != "failed"
             or (r["hangup_cause"] is None and not r["hangup_cause_text"])]
    v.check(not wrong, f"{len(wrong)} calls cut by the restart not closed `failed` with a cause"
                       f" (e.g. {wrong[:2]})")
    return v



def db_outage(q: QueueLab, load: Load, outage_s: float = 30, prefix: str = "7430") -> Verdict:
    """The database away for `outage_s` under load: calls keep flowing (no caller fails, routing
    latency as before), and every record arrives once it is back: each answered call's hop with
    its queue, its agent, and its join, answer and complete events."""
    v = Verdict(f"database away for {outage_s:.0f} s")
    callers = q.start_callers(load.rate, load.calls, prefix)
    time.sleep(min(load.seconds / 3, max(0.0, load.seconds - outage_s) / 2))
    assert q.db_name is not None
    t0 = time.time()
    with q.lab.database_cut_off(q.db_name, APPLICATION_NAME, f"{ACTIVE} %"):  # as a failover: the lock too
        time.sleep(outage_s)
    t1 = time.time()
    settle_and_check(q, callers, load, v, settle_s=120)
    before = q.latencies_ms(callers, 0, t0)
    during = q.latencies_ms(callers, t0, t1)
    v.figures.append(f"routing latency before the outage {p50_99(before)}; during it {p50_99(during)}")
    v.check(len(during) > 0, "no call reached an agent while the database was away")
    limit = (pct(before, 99) or 0) + SLOW_DB_MARGIN_MS
    v.check((pct(during, 99) or 0) <= limit,
            f"routing p99 while the database was away {fmt(pct(during, 99))} ms > {limit:.0f} ms")
    incomplete = q.query(
        "SELECT h.caller_num, h.queue_id, h.queued_at, h.agent_id,"
        " array_agg(e.event ORDER BY e.at) FILTER (WHERE e.event IS NOT NULL) AS events"
        " FROM hops h LEFT JOIN queue_events e ON e.hop_id = h.id"
        " WHERE h.caller_num = ANY(%s) GROUP BY h.id"
        " HAVING h.queue_id IS NULL OR h.queued_at IS NULL OR h.agent_id IS NULL"
        " OR NOT array_agg(e.event) @> ARRAY['join', 'answer', 'complete']",
        list(callers.answered()))
    v.figures.append(f"answered calls whose records are incomplete: {len(incomplete)} of "
                     f"{len(callers.answered())}")
    v.check(not incomplete, f"{len(incomplete)} answered calls lack a record once the database is back"
                            f" (e.g. {incomplete[:2]})")
    return v


@contextmanager
def slow_database(dsn: str, delay_ms: int) -> Iterator[None]:
    """Every transaction that writes a case, a hop or a queue event waits `delay_ms`, once, at its
    first such write (a statement-level trigger and a transaction-local flag): a database slowed
    by load, a slow disk or a synchronous replica far away. Once, not per statement: the
    write-behind applies a batch of hundreds of records in one statement of many inner ones."""
    tables = ("cases", "hops", "queue_events")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE FUNCTION bench_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                     f" IF current_setting('bench.slowed', true) IS DISTINCT FROM 'yes' THEN"
                     f" PERFORM set_config('bench.slowed', 'yes', true);"
                     f" PERFORM pg_sleep({delay_ms / 1000}); END IF; RETURN NULL; END $$")
        for t in tables:
            conn.execute(f"CREATE TRIGGER bench_slow BEFORE INSERT OR UPDATE ON {t}"
                         " FOR EACH STATEMENT EXECUTE FUNCTION bench_slow()")
        try:
            yield
        finally:
            for t in tables:
                conn.execute(f"DROP TRIGGER bench_slow ON {t}")
            conn.execute("DROP FUNCTION bench_slow()")


def slow_db(q: QueueLab, load: Load, delay_ms: int = 200, prefix: str = "7440") -> Verdict:
    """The first half of the load on a normal database, the second with every write delayed by
    `delay_ms`: the routing latency (caller INVITE -> agent INVITE) of the second half stays
    within SLOW_DB_MARGIN_MS of the first."""
    v = Verdict(f"database slowed by {delay_ms} ms a write")
    callers = q.start_callers(load.rate, load.calls, prefix)
    time.sleep(load.seconds / 2)
    t0 = time.time()
    with slow_database(q.dsn, delay_ms):
        time.sleep(load.seconds / 2 + 3)
        settle_and_check(q, callers, load, v)
    before = q.latencies_ms(callers, 0, t0)
    slowed = q.latencies_ms(callers, t0)
    v.figures.append(f"routing latency normal {p50_99(before)}; slowed {p50_99(slowed)}")
    limit = (pct(before, 99) or 0) + SLOW_DB_MARGIN_MS
    v.check(bool(slowed) and (pct(slowed, 99) or 0) <= limit,
            f"routing p99 with the slow database {fmt(pct(slowed, 99))} ms > {limit:.0f} ms"
            f" (the normal p99 + {SLOW_DB_MARGIN_MS:.0f})")
    return v


FAULTS: dict[str, Callable[..., Verdict]] = {
    "daemon-kill": daemon_kill, "asterisk-restart": asterisk_restart,
    "db-outage": db_outage, "slow-db": slow_db,
}


# A daemon killed or an Asterisk restarted must meet callers waiting in line: 16 agents carry 8
# calls/s of 2 s. The database faults compare routing latencies: enough agents that no caller
# waits for one, so the latency is the engine's and not the line's.
AGENTS = {"daemon-kill": 16, "asterisk-restart": 16, "db-outage": 40, "slow-db": 40}


def run_fault(name: str, load: Load, agents: int | None = None, **options: float) -> Verdict:
    """One fault on a queue lab of its own (its database, its daemon), cleaned up afterwards."""
    agents = agents or AGENTS[name]
    q = QueueLab(agents, tag="faults")
    try:
        q.setup()
        q.start_phones()
        q.start_daemon()
        log(f"{name}: {load.rate:g} calls/s for {load.seconds:g} s ({load.calls} calls), {agents} agents")
        return FAULTS[name](q, load, **options)
    finally:
        q.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault", choices=[*FAULTS, "all"], default="all")
    parser.add_argument("--rate", type=float, default=10, help="calls/s")
    parser.add_argument("--seconds", type=float, default=30, help="how long calls are placed")
    parser.add_argument("--agents", type=int, default=None,
                        help="agents in the queue (default 16 for daemon-kill and asterisk-restart,"
                             " so that callers wait in line; 40 for the database faults)")
    parser.add_argument("--outage", type=float, default=30, help="db-outage: seconds the database is away")
    parser.add_argument("--delay-ms", type=int, default=200, help="slow-db: delay of each write statement")
    args = parser.parse_args()
    names = list(FAULTS) if args.fault == "all" else [args.fault]
    verdicts: list[Verdict] = []

    def body() -> int:
        for name in names:
            options: dict[str, float] = {}
            seconds = args.seconds
            if name == "db-outage":
                options["outage_s"] = args.outage
                seconds = max(seconds, args.outage + 15)
            if name == "slow-db":
                options["delay_ms"] = args.delay_ms
            verdicts.append(run_fault(name, Load(args.rate, seconds), args.agents, **options))
            log(verdicts[-1].report())
        return 0

    run_cleanly(body, lambda: None)
    print("\n".join(v.report() for v in verdicts))
    return sum(1 for v in verdicts if v.problems)


if __name__ == "__main__":
    sys.exit(main())
