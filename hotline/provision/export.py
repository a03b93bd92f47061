"""Provisioning -> the declarative TOML file (`hotline export`), the inverse of parse."""

from __future__ import annotations

from datetime import time

import tomli_w

from hotline.provision.model import (
    WEEKDAYS,
    Agent,
    Hotline,
    Menu,
    MenuOption,
    Node,
    Number,
    OpeningHours,
    Provisioning,
    Queue,
    RegionRoute,
    Trunk,
)
from hotline.provision.parse import DAY_END

Table = dict[str, object]  # one object's TOML table, as `hotline provision` reads it back

HEADER = "# hotline provisioning, exported from the database; apply with `hotline provision FILE`\n"


def to_toml(prov: Provisioning, *, with_secrets: bool = False) -> str:
    doc = {
        "queues": {q.name: queue_table(q) for q in prov.queues.values()},
        "menus": {m.name: menu_table(m) for m in prov.menus.values()},
        "hotlines": {h.name: hotline_table(h) for h in prov.hotlines.values()},
        "numbers": {n.number: number_table(n) for n in prov.numbers.values()},
        "agents": {a.name: agent_table(a, with_secrets) for a in prov.agents.values()},
        "trunks": {t.name: trunk_table(t) for t in prov.trunks.values()},
        "nodes": {n.name: node_table(n) for n in prov.nodes.values()},
        "pause_reasons": list(prov.pause_reasons),
    }
    return HEADER + tomli_w.dumps({k: v for k, v in doc.items() if v})


def _drop_none(table: Table) -> Table:
    return {k: v for k, v in table.items() if v is not None}


def queue_table(q: Queue) -> Table:
    return _drop_none({
        "strategy": q.strategy, "ring_timeout": q.ring_timeout, "retry": q.retry, "wrapup": q.wrapup,
        "max_wait": "none" if q.max_wait is None else q.max_wait, "max_len": q.max_len,
        "join_empty": q.join_empty,
        "announce_period": q.announce_period, "music": q.music, "service_level": q.service_level,
        "prefer_video_agents": q.prefer_video_agents, "overflow": str(q.overflow),
        "announce_holdtime": q.announce_holdtime, "breakout_menu": q.breakout_menu, "ringback": q.ringback,
        "video_fallback": "never" if q.video_fallback is None else q.video_fallback,
        "video_key": q.video_key,
        "transfer_no_answer": q.transfer_no_answer,
        "callback_key": q.callback_key, "callback_retries": q.callback_retries,
        "callback_retry_interval": q.callback_retry_interval,
        "callback_expiry": "never" if q.callback_expiry is None else q.callback_expiry,
        "record": q.record, "record_announcement": q.record_announcement,
        "survey": list(q.survey) or None, "survey_thanks": q.survey_thanks})


def menu_table(m: Menu) -> Table:
    options = {o.digit: option_spec(o) for o in m.options}
    return _drop_none({"prompt": m.prompt, "timeout": m.timeout, "retries": m.retries,
                       "invalid_prompt": m.invalid_prompt, "timeout_prompt": m.timeout_prompt,
                       "options": options})


def option_spec(o: MenuOption) -> str | Table:
    """A key as the file writes it: its target alone, or a table with its prompt and priority."""
    if o.prompt is None and o.priority is None and o.then is None:
        return str(o.target)
    return _drop_none({"action": str(o.target), "then": str(o.then) if o.then else None,
                       "prompt": o.prompt, "priority": o.priority})


def region_spec(r: RegionRoute) -> str | Table:
    return r.queue if r.priority is None else {"queue": r.queue, "priority": r.priority}


def _hhmm(value: time) -> str:
    return "24:00" if value == DAY_END else f"{value:%H:%M}"


def _hours(spans: tuple[OpeningHours, ...]) -> list[str]:
    """Consecutive days with the same hours become one range: 'mon-fri 09:00-18:00'."""
    by_range: dict[tuple[time, time], list[int]] = {}
    for s in spans:
        by_range.setdefault((s.opens, s.closes), []).append(s.weekday)
    out: list[str] = []
    for (opens, closes), days in by_range.items():
        out.extend(f"{run} {_hhmm(opens)}-{_hhmm(closes)}" for run in _day_runs(days))
    return out


def _day_runs(days: list[int]) -> list[str]:
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [WEEKDAYS[r[0] - 1] if len(r) == 1 else f"{WEEKDAYS[r[0] - 1]}-{WEEKDAYS[r[-1] - 1]}"
            for r in runs]


def hotline_table(h: Hotline) -> Table:
    table: Table = {"entry": str(h.entry), "description": h.description or None,
                             "time_zone": h.time_zone, "closed": str(h.closed),
                             "closed_prompt": h.closed_prompt,
                             "record": None if h.record == "never" else h.record,
                             "record_announcement": h.record_announcement,
                             "page_title": h.page_title, "page_text": h.page_text,
                             "page_logo": h.page_logo, "page_color": h.page_color,
                             "language": h.language}
    if h.hours:
        table["hours"] = _hours(h.hours)
    if h.holidays:
        table["holidays"] = {d.day.isoformat(): (f"{_hhmm(d.opens)}-{_hhmm(d.closes)}"
                                                 if d.opens and d.closes else "closed")
                             for d in h.holidays}
    if h.regions:
        table["regions"] = {r.match: region_spec(r) for r in h.regions}
    return _drop_none(table)


def number_table(n: Number) -> Table:
    return _drop_none({"hotline": n.hotline, "kind": n.kind, "lines": n.lines if n.lines else "unlimited",
                       "priority": n.priority, "language": n.language})


def agent_table(a: Agent, with_secrets: bool = False) -> Table:
    return _drop_none({
        "endpoint": a.endpoint, "display_name": a.display_name or None,
        "password_ha1": a.password_ha1 if with_secrets else None,
        "capabilities": sorted(a.capabilities), "queues": dict(a.queues) or None,
        "supervisor": True if a.supervisor else None})


def trunk_table(t: Trunk) -> Table:
    return {"endpoint": t.endpoint, "caller_id": t.caller_id, "allow": list(t.allow),
            "ring_timeout": t.ring_timeout}


def node_table(n: Node) -> Table:
    return {"ari": n.ari, "ami": n.ami, "sip": n.sip}
